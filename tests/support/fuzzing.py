"""The feed loop the fuzz target and the fuzz properties share.

``feed`` drives a fresh ``ServerConnection`` with some chunks then EOF,
answering every complete request (an empty 200) so that pipelined requests
are parsed too, and reports what happened: the names of the events other than
``Data`` (how the body was cut into ``Data`` events depends on the chunks; the
rest must not) and the status of the ``ProtocolError`` that ended it, if any.
Used by ``tests/fuzz/fuzz_parser.py`` (the atheris target, which puts
``tests/`` on the path itself) and ``tests/reliability/test_fuzz_properties.py``.
"""

from __future__ import annotations

from collections.abc import Iterable

from evloop.http import NEED_DATA, PAUSED, Limits, ProtocolError, ServerConnection

__all__ = ["DATE", "feed"]

DATE = b"Thu, 01 Jan 2026 00:00:00 GMT"


def feed(chunks: Iterable[bytes], limits: Limits) -> tuple[list[str], int | None]:
    """Feed the non-empty ``chunks`` then EOF; return (event names but ``Data``, error status or None)."""
    conn = ServerConnection(limits)
    events: list[str] = []
    try:
        for chunk in [*(chunk for chunk in chunks if chunk), b""]:
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
        return events, exc.status
    return events, None
