"""The logging of ``evloop-demo`` and ``serve()``: one line per event on stderr, the access log beside it.

A program that configured logging itself (a handler on the root logger or
on ``evloop``) keeps its own: ``configure_default_logging`` then does nothing.
``evloop-demo --log-config FILE`` hands the whole set-up to
``logging.config`` instead; ``--log-format json`` writes every line as one
JSON object (``evloop.logline.JSONFormatter``); ``--access-log FILE``
appends the access log's lines to a file.
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
from typing import IO

from .logline import JSONFormatter
from .server.access_log import install_access_handler

__all__ = ["configure_logging", "configure_default_logging", "load_log_config", "LoggingSetupError", "LOG_FORMAT",
           "LEVELS"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LEVELS = ("critical", "error", "warning", "info", "debug")


class LoggingSetupError(ValueError):
    """A log configuration file or an access log file that cannot be used; ``str()`` says which and why."""


def configure_logging(level: str = "info", *, access_log: bool | str = True, stream: IO[str] | None = None,
                      log_format: str = "text", log_config: str | None = None) -> None:
    """Server lines at ``level`` (any case) on ``stream`` (stderr), and the access log's lines when ``access_log``.

    The access log goes to the same stream, one line per response, written
    in batches (``evloop.server.access_log``), or appended to the file
    ``access_log`` names.  ``log_format`` ``"json"``: the server's lines as
    JSON objects (the access log's are chosen by the server's
    ``access_log_format``).  ``log_config``: a ``logging.config`` file
    (``load_log_config``) replaces all of this but turning the access log
    off or sending it to a file.  Raises ``LoggingSetupError`` for a file that
    cannot be used.
    """
    stream = stream or sys.stderr
    if log_config is not None:
        load_log_config(log_config)  # the file sets the levels and formats too
    else:
        logging.basicConfig(level=getattr(logging, level.upper()), format=LOG_FORMAT, stream=stream)
        if log_format == "json":
            for handler in logging.getLogger().handlers:
                handler.setFormatter(JSONFormatter())
    access = logging.getLogger("evloop.access")
    if not access_log:
        access.setLevel(logging.WARNING)
    elif isinstance(access_log, str):
        try:
            # Appended, as logrotate's copytruncate or a reopen by a config's WatchedFileHandler expect;
            # workers after a fork share the descriptor, and each batch is one write.
            install_access_handler(open(access_log, "a", encoding="utf-8"))
        except OSError as exc:
            raise LoggingSetupError(f"--access-log {access_log}: {exc.strerror or exc}") from None
    elif log_config is None:
        install_access_handler(stream)


def load_log_config(path: str) -> None:
    """Configure logging from ``path``: ``logging.config.dictConfig`` for JSON, ``fileConfig`` for an INI file.

    A ``.json`` file, or one whose first character is ``{``, is JSON (the
    dictConfig schema, ``"version": 1``); anything else is INI.  Loggers
    that already exist stay enabled (``disable_existing_loggers`` false,
    unless the JSON says otherwise), so the server's own keep logging.
    """
    try:
        with open(path, encoding="utf-8") as f:
            content = f.read()
    except OSError as exc:
        raise LoggingSetupError(f"--log-config {path}: {exc.strerror or exc}") from None
    try:
        if path.endswith(".json") or content.lstrip().startswith("{"):
            config = json.loads(content)
            if not isinstance(config, dict):
                raise ValueError("a JSON object (the dictConfig schema) was expected")
            config.setdefault("disable_existing_loggers", False)
            logging.config.dictConfig(config)
        else:
            logging.config.fileConfig(path, disable_existing_loggers=False)
    except Exception as exc:  # json, configparser and logging.config each raise their own kinds
        raise LoggingSetupError(f"--log-config {path}: {type(exc).__name__}: {exc}") from None


def configure_default_logging(*, access_log: bool = True) -> bool:
    """``configure_logging()`` unless the program has configured logging; returns whether it did.

    So that ``serve(app)`` in a script says "serving on ..." and logs its
    requests, as ``evloop-demo`` does, instead of printing nothing.
    """
    if logging.getLogger().handlers or logging.getLogger("evloop").handlers:
        return False
    configure_logging("info", access_log=access_log)
    return True
