"""How a reactor reports what user code raised: asyncio's exception-handler contract.

``ErrorReporting`` is a base of ``Reactor``: the reactor's single dispatch
point (``Reactor._run_callback``) and every transport hand an exception to
``call_exception_handler`` with its context and go on; ``exit_stops_loop``
says which exceptions are let through instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .exits import is_stop_request

__all__ = ["ErrorReporting", "ExceptionHandler", "safe_repr"]

logger = logging.getLogger("evloop")

ExceptionHandler = Callable[[Any, dict[str, Any]], None]
"""``handler(reactor, context)``: see ``ErrorReporting.set_exception_handler``."""


class ErrorReporting:
    """The reactor's exception handler, its default (the ``evloop`` logger), and the exits that end the loop."""

    _exception_handler: ExceptionHandler | None = None
    # contain_exits: a callback's SystemExit or KeyboardInterrupt that no
    # signal raised (evloop.exits) is reported like any other exception
    # and the loop goes on.  evloop.serve sets it: in a server they come
    # from application code (sys.exit() in a deferred callback).
    contain_exits = False

    def set_exception_handler(self, handler: ExceptionHandler | None) -> None:
        """Report exceptions raised by user code to ``handler(reactor, context)``.

        ``context`` is a dict with asyncio's keys: ``message``, ``exception``,
        and, where they apply, ``handle`` (the callback's handle),
        ``transport`` and ``protocol``.  None restores the default, which
        logs to the ``evloop`` logger.
        """
        self._exception_handler = handler

    def get_exception_handler(self) -> ExceptionHandler | None:
        return self._exception_handler

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        """Report an error with its context (see ``set_exception_handler``); never raises."""
        if self._exception_handler is not None:
            try:
                self._exception_handler(self, context)
                return
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # a broken handler must not break the loop
                logger.error("exception handler failed", exc_info=exc)
        self.default_exception_handler(context)

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        """Log ``context`` to the ``evloop`` logger at ERROR, with the traceback."""
        message = context.get("message") or "unhandled exception"
        details = [
            f"{key}: {safe_repr(value)}" for key, value in context.items() if key not in ("message", "exception")
        ]
        if details:
            message = f"{message} ({', '.join(details)})"
        logger.error("%s", message, exc_info=context.get("exception"))

    def exit_stops_loop(self, exc: BaseException) -> bool:
        """Whether ``exc``, raised by a callback, ends ``run()``: a ``SystemExit`` or
        ``KeyboardInterrupt`` does, unless ``contain_exits`` is set and no signal raised it."""
        if not isinstance(exc, (KeyboardInterrupt, SystemExit)):
            return False
        return not self.contain_exits or is_stop_request(exc)


def safe_repr(value: Any) -> str:
    """``repr(value)``, or a placeholder when that raises: reporting an error must not raise another."""
    try:
        return repr(value)
    except Exception as exc:
        return f"<{type(value).__name__}: repr() failed: {exc!r}>"
