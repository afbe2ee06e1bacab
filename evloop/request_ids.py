"""Request ids made here: 32 hex digits, unique across the worker processes of a server.

Theory of operation.  An id is a random prefix of 24 hex digits (96 bits,
drawn from ``random`` once per 2**32 ids) followed by a counter of 8 hex
digits.  ``made`` yields them from C alone: ``itertools.product`` counts
through four pools of the 256 two-digit strings behind the one-string pool
of the prefix (it reuses its result tuple, and ``"".join`` glues the five),
and ``chain.from_iterable`` starts a new prefix when a counter runs out.
Per id that is ~1,030 instructions where the 128 random bits of nginx's
``$request_id`` (``random.getrandbits(128).to_bytes(16, "big").hex()``,
the digits of ``f"{n:032x}"``) cost ~2,160 and the f-string itself ~3,900
(callgrind, a loop of ``next``).  A WSGI request always needs one (its
environ's ``HTTP_X_REQUEST_ID``).

Two processes draw different prefixes (a collision of 96 random bits is
not a concern), so ids stay unique across a server's workers: a forked child
starts a new ``made`` (an ``os.register_at_fork`` hook; ``random`` reseeds
itself in the child first), else it would repeat its parent's ids.  Ids are
unique, not secret: the next one of a process is easy to guess.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from itertools import chain, product, repeat

__all__ = ["made", "renew"]

_PAIRS = tuple(f"{i:02x}" for i in range(256))


def _prefixed(_: object) -> Iterator[str]:
    """The 2**32 ids of one random prefix, in counter order."""
    prefix = random.getrandbits(96).to_bytes(12, "big").hex()
    return map("".join, product((prefix,), _PAIRS, _PAIRS, _PAIRS, _PAIRS))


def _new_ids() -> Iterator[str]:
    return chain.from_iterable(map(_prefixed, repeat(None)))


# ``next(request_ids.made)`` is the next id (read it through the module: a
# forked child rebinds it).
made: Iterator[str] = _new_ids()


def renew() -> None:
    """Start ids of a new prefix (done in every forked child)."""
    global made
    made = _new_ids()


os.register_at_fork(after_in_child=renew)
