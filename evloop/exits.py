"""``SystemExit`` and ``KeyboardInterrupt``: a real request to stop, or an application's mistake?

Python raises ``KeyboardInterrupt`` for Ctrl-C only through its default
SIGINT handler, and a signal handler written in Python may raise either
exception (``sys.exit()`` in a SIGTERM handler).  Either way the exception
appears inside whatever bytecode was running, which in a server is often an
application's handler.  Application code can also raise them itself: a WSGI
app calling ``sys.exit(0)``, a library that turns its own errors into
``KeyboardInterrupt``.  A server must stop for the first kind and survive the
second (gunicorn's sync workers and uvicorn answer 500 and go on).

``is_stop_request(exc)`` tells them apart:

- an exception that passed through a Python-level signal handler currently
  installed (a frame of its traceback runs that handler's code) came from a
  signal: a stop request;
- a ``KeyboardInterrupt`` while SIGINT still has Python's
  ``default_int_handler`` may be Ctrl-C, and nothing distinguishes it from one
  raised by code: it is treated as a stop request, so Ctrl-C always works;
- anything else was raised by code: not a stop request.

``evloop.serve`` routes SIGINT, SIGTERM and SIGQUIT through the reactor
(``evloop.signals``), whose Python-level handler does nothing, so inside it
neither exception ever comes from a signal and every one is the
application's.  An embedder that keeps Python's Ctrl-C handling keeps Ctrl-C.
"""

from __future__ import annotations

import signal
import types

__all__ = ["is_stop_request"]


def is_stop_request(exc: BaseException) -> bool:
    """True when ``exc`` is a signal's request to stop (see the module docstring), not code's mistake."""
    if not isinstance(exc, (KeyboardInterrupt, SystemExit)):
        return False
    if isinstance(exc, KeyboardInterrupt) and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        return True
    handler_codes = _signal_handler_codes()
    tb: types.TracebackType | None = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code in handler_codes:
            return True
        tb = tb.tb_next
    return False


def _signal_handler_codes() -> set[types.CodeType]:
    """The code objects of the Python functions installed as signal handlers."""
    codes = set()
    for signum in signal.valid_signals():
        try:
            handler = signal.getsignal(signum)
        except (OSError, ValueError):  # signals Python cannot name or query
            continue
        code = getattr(handler, "__code__", None)
        if code is None:  # a bound method: its function's code
            code = getattr(getattr(handler, "__func__", None), "__code__", None)
        if isinstance(code, types.CodeType):
            codes.add(code)
    return codes
