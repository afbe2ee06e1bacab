"""A WSGI application that calls ``sys.exit(0)`` on ``GET /sysexit`` (issue 15's first report)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any


def _exit_midway() -> Iterator[bytes]:
    yield b"part one\n"
    raise KeyboardInterrupt


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/sysexit":
        sys.exit(0)
    start_response("200 OK", [("Content-Type", "text/plain")])
    if path == "/kbint-body":
        return _exit_midway()
    return [b"wsgi alive"]
