"""An atheris fuzz target for evloop's HTTP/1.1 receiving side (parser + ServerConnection).

Each input is split in two at a point taken from its first byte, fed to a
``ServerConnection`` whole and in two pieces (then EOF), with every complete
request answered so that pipelined requests are parsed too.  The target fails
(raises) when anything but ``ProtocolError`` escapes, or when the two feeds
disagree about success or failure.

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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

from evloop.http import NEED_DATA, PAUSED, Limits, ProtocolError, ServerConnection  # noqa: E402

DATE = b"Thu, 01 Jan 2026 00:00:00 GMT"
# Small limits reach the 413/414/431 paths with short inputs.
LIMITS = Limits(max_request_line_bytes=256, max_head_bytes=1024, max_header_count=16, max_body_bytes=512,
                max_chunk_ext_bytes=64, max_pipelined_bytes=2048)


def _feed(chunks: list[bytes]) -> tuple[list[str], int | None]:
    conn = ServerConnection(LIMITS)
    events: list[str] = []
    try:
        for chunk in chunks:
            conn.receive_data(chunk)
            while True:
                event = conn.next_event()
                if event is NEED_DATA:
                    break
                if event is PAUSED:
                    conn.send_response(200, [], content_length=0, date=DATE)
                    if not conn.keep_alive:
                        return events, None
                    conn.start_next_cycle()
                    continue
                name = type(event).__name__
                if name != "Data":
                    events.append(name)
                if name == "ConnectionClosed":
                    return events, None
    except ProtocolError as exc:
        if not 400 <= exc.status <= 505:
            raise AssertionError(f"odd status {exc.status}") from exc
        return events, exc.status
    return events, None


def TestOneInput(data: bytes) -> None:  # noqa: N802  (the name atheris expects)
    if not data:
        return
    cut = data[0] * len(data) // 256
    body = data[1:]
    whole = _feed([body, b""] if body else [b""])
    split = _feed([piece for piece in (body[:cut], body[cut:]) if piece] + [b""])
    if (whole[1] is None) != (split[1] is None) or whole[0] != split[0]:
        raise AssertionError(f"split at {cut} changes the outcome: {whole} != {split}")


def main() -> None:
    import atheris  # noqa: PLC0415  (optional: only needed to fuzz)

    atheris.instrument_all()
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
