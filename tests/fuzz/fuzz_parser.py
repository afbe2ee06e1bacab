"""An atheris fuzz target for evloop's HTTP/1.1 receiving side (parser + ServerConnection).

Each input is split in two at a point taken from its first byte, fed to a
``ServerConnection`` whole and in two pieces (then EOF), with every complete
request answered so that pipelined requests are parsed too.  The target fails
(raises) when anything but ``ProtocolError`` escapes, or when the two feeds
disagree about success or failure.  The feed loop is ``support.fuzzing.feed``
(``tests/support/fuzzing.py``), shared with ``tests/reliability/test_fuzz_properties.py``.

Run it for longer by hand (atheris builds for CPython 3.11 on Linux x86-64)::

    pip install atheris
    python tests/fuzz/fuzz_parser.py tests/fuzz/corpus -max_total_time=600

``tests/fuzz/corpus/`` seeds it with valid and hostile requests; libFuzzer adds
the new inputs it finds there (use a copy to keep the seeds clean), and writes
a crashing input to ``crash-<sha1>`` in the working directory; replay one with
``python tests/fuzz/fuzz_parser.py crash-<sha1>``.  ``TestOneInput`` needs no
atheris: ``tests/reliability/test_fuzz_corpus.py`` runs it over the corpus.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file sees neither the repository (for evloop) nor tests/ (for support).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_HERE, "..", ".."), os.path.join(_HERE, "..")]

from support.fuzzing import feed  # noqa: E402

from evloop.http import Limits  # noqa: E402

# Small limits reach the 413/414/431 paths with short inputs.
LIMITS = Limits(max_request_line_bytes=256, max_head_bytes=1024, max_header_count=16, max_body_bytes=512,
                max_chunk_ext_bytes=64, max_pipelined_bytes=2048)


def _feed(chunks: list[bytes]) -> tuple[list[str], int | None]:
    events, status = feed(chunks, LIMITS)
    if status is not None and not 400 <= status <= 505:
        raise AssertionError(f"odd status {status}")
    return events, status


def TestOneInput(data: bytes) -> None:  # noqa: N802  (the name atheris expects)
    if not data:
        return
    cut = data[0] * len(data) // 256
    body = data[1:]
    whole = _feed([body])
    split = _feed([body[:cut], body[cut:]])
    if (whole[1] is None) != (split[1] is None) or whole[0] != split[0]:
        raise AssertionError(f"split at {cut} changes the outcome: {whole} != {split}")


def main() -> None:
    import atheris  # noqa: PLC0415  (optional: only needed to fuzz)

    atheris.instrument_all()
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
