"""The default logging of ``evloop-demo`` and ``serve()``: one line per event on stderr, the access log beside it.

A program that configured logging itself (a handler on the root logger or
on ``evloop``) keeps its own: ``configure_default_logging`` then does nothing.
"""

from __future__ import annotations

import logging
import sys
from typing import IO

from .server.access_log import install_access_handler

__all__ = ["configure_logging", "configure_default_logging", "LOG_FORMAT", "LEVELS"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LEVELS = ("critical", "error", "warning", "info", "debug")


def configure_logging(level: str = "info", *, access_log: bool = True, stream: IO[str] | None = None) -> None:
    """Server lines at ``level`` (any case) on ``stream`` (stderr), and the access log's lines when ``access_log``.

    The access log goes to the same stream, one Common Log Format line per
    response, written in batches (``evloop.server.access_log``).
    """
    stream = stream or sys.stderr
    logging.basicConfig(level=getattr(logging, level.upper()), format=LOG_FORMAT, stream=stream)
    if access_log:
        install_access_handler(stream)
    else:
        logging.getLogger("evloop.access").setLevel(logging.WARNING)


def configure_default_logging(*, access_log: bool = True) -> bool:
    """``configure_logging()`` unless the program has configured logging; returns whether it did.

    So that ``serve(app)`` in a script says "serving on ..." and logs its
    requests, as ``evloop-demo`` does, instead of printing nothing.
    """
    if logging.getLogger().handlers or logging.getLogger("evloop").handlers:
        return False
    configure_logging("info", access_log=access_log)
    return True
