"""A result that arrives later: the callback-and-result object of the reactor.

No coroutines: a ``Future`` is what ``connect()``, a name lookup or a child
process's exit hands back, so a program can attach callbacks to it or run the
loop until it is done (``Reactor.run_until_complete``).  It follows
``asyncio.Future``'s method names, with one rule asyncio also keeps: done
callbacks always run from the loop (``call_soon``), never inside the call that
completed the future, so completing a future never re-enters its caller.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from .reactor import Reactor

__all__ = ["Future", "CancelledError", "InvalidStateError"]

T = TypeVar("T")


class CancelledError(Exception):
    """The future was cancelled."""


class InvalidStateError(RuntimeError):
    """The operation does not fit the future's state (a result read too early, or set twice)."""


class FutureState(enum.Enum):
    PENDING = "pending"
    CANCELLED = "cancelled"
    FINISHED = "finished"


# Module globals: on Python 3.11 an Enum class attribute lookup goes through
# EnumType.__getattr__ (see load/BENCHMARKS.md, second pass).
_PENDING, _CANCELLED, _FINISHED = FutureState.PENDING, FutureState.CANCELLED, FutureState.FINISHED


class Future(Generic[T]):
    """A result or an exception set once, later; created by ``reactor.create_future()``.

    Call order: at most one of ``set_result``, ``set_exception`` or ``cancel``
    takes effect; after it, ``done()`` is true and every done callback is
    scheduled once with the future as its argument.  ``result()`` returns the
    result, or raises the exception (``CancelledError`` when cancelled, and
    ``InvalidStateError`` while still pending).
    """

    __slots__ = ("_reactor", "_state", "_result", "_exception", "_callbacks", "_cancel_message")

    def __init__(self, reactor: Reactor) -> None:
        self._reactor = reactor
        self._state: FutureState = _PENDING
        self._result: T | None = None
        self._exception: BaseException | None = None
        self._callbacks: list[Callable[[Future[T]], Any]] = []
        self._cancel_message: str | None = None

    # ------------------------------------------------------------- queries
    def done(self) -> bool:
        """True once a result, an exception or a cancellation was set."""
        return self._state is not _PENDING

    def cancelled(self) -> bool:
        return self._state is _CANCELLED

    def result(self) -> T:
        """The result; raises the exception set, ``CancelledError``, or ``InvalidStateError`` if pending."""
        if self._state is _PENDING:
            raise InvalidStateError("result is not ready")
        if self._state is _CANCELLED:
            raise CancelledError(self._cancel_message or "the future was cancelled")
        if self._exception is not None:
            raise self._exception
        return self._result  # type: ignore[return-value]

    def exception(self) -> BaseException | None:
        """The exception set (None after a result); raises like ``result()`` when cancelled or pending."""
        if self._state is _PENDING:
            raise InvalidStateError("exception is not set")
        if self._state is _CANCELLED:
            raise CancelledError(self._cancel_message or "the future was cancelled")
        return self._exception

    # ------------------------------------------------------------ setting
    def set_result(self, result: T) -> None:
        """Complete with ``result``; ``InvalidStateError`` if already done."""
        self._check_pending("set_result")
        self._result = result
        self._finish(_FINISHED)

    def set_exception(self, exception: BaseException | type[BaseException]) -> None:
        """Complete with ``exception`` (an instance or a class); ``InvalidStateError`` if already done."""
        self._check_pending("set_exception")
        if isinstance(exception, type):
            exception = exception()
        if isinstance(exception, StopIteration):
            raise TypeError("StopIteration cannot be set on a future")
        self._exception = exception
        self._finish(_FINISHED)

    def cancel(self, msg: str | None = None) -> bool:
        """Cancel; returns False if the future was already done (then nothing changes)."""
        if self._state is not _PENDING:
            return False
        self._cancel_message = msg
        self._finish(_CANCELLED)
        return True

    # ---------------------------------------------------------- callbacks
    def add_done_callback(self, fn: Callable[[Future[T]], Any]) -> None:
        """Call ``fn(future)`` from the loop once the future is done (at once scheduled if it is)."""
        if self._state is _PENDING:
            self._callbacks.append(fn)
        else:
            self._reactor.call_soon(fn, self)

    def remove_done_callback(self, fn: Callable[[Future[T]], Any]) -> int:
        """Remove every pending registration of ``fn``; returns how many."""
        kept = [cb for cb in self._callbacks if cb != fn]
        removed = len(self._callbacks) - len(kept)
        self._callbacks = kept
        return removed

    # ----------------------------------------------------------- internals
    def _check_pending(self, what: str) -> None:
        if self._state is not _PENDING:
            raise InvalidStateError(f"{what}() on a future that is {self._state.value}")

    def _finish(self, state: FutureState) -> None:
        self._state = state
        callbacks, self._callbacks = self._callbacks, []
        call_soon = self._reactor.call_soon
        for fn in callbacks:
            call_soon(fn, self)

    def __repr__(self) -> str:
        if self._state is _FINISHED:
            detail = f" exception={self._exception!r}" if self._exception is not None else f" result={self._result!r}"
        else:
            detail = ""
        return f"<Future {self._state.value}{detail}>"
