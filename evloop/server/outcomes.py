"""What the server says when a request does not end the ordinary way.

The canned answers (500 for a handler that failed, 503 for one that did not
answer in time), the guarded release of an application's body objects, and
the text the logs give for a peer and for a request line.  Kept apart from
``h1.py``, which is the ordinary path; every wire protocol will need them.
"""

from __future__ import annotations

import logging
from typing import Any

from ..app import Response
from ..exits import is_stop_request
from ..http import RequestHead, ServerConnection
from ..net.base import Transport

__all__ = ["internal_error", "handler_timeout", "close_quietly", "peer_text", "address_text", "request_line", "TEXT"]

logger = logging.getLogger("evloop.server")

TEXT = "text/plain; charset=utf-8"


def internal_error() -> Response:
    return Response(500, body=b"Internal Server Error\n", content_type=TEXT)


def handler_timeout() -> Response:
    return Response(503, body=b"Service Unavailable: the handler did not answer in time\n", content_type=TEXT)


def close_quietly(obj: Any) -> None:
    """Call ``obj.close()`` if it has one; what it raises is logged (a signal's stop request passes)."""
    close = getattr(obj, "close", None)
    if close is not None:
        try:
            close()
        except BaseException as exc:
            if is_stop_request(exc):
                raise
            logger.exception("closing a response body failed")


def peer_text(transport: Transport | None) -> str:
    """``host:port`` of the peer for log lines, ``-`` when unknown or gone."""
    return "-" if transport is None else address_text(transport.peername)


def address_text(address: Any) -> str:
    """A socket address for log lines: ``host:port``, a Unix path, or ``-``."""
    if isinstance(address, tuple):
        return f"{address[0]}:{address[1]}"
    return str(address or "-")


def request_line(head: RequestHead | None, conn: ServerConnection) -> str:
    """The request line for the logs: the parsed head's, or as far as the refused one came."""
    if head is not None:
        return f"{head.method} {head.target} {head.version}"
    return conn.unparsed_request_line()
