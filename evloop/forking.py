"""Fork support: a forked child never uses the reactors it inherited.

Theory of operation.  The epoll object and the self-pipe are shared with a
forked child: a child that registered or unregistered anything, or read the
self-pipe, would change its parent's reactor, and a signal arriving in the
child would be written into the parent's pipe.  So an ``os.register_at_fork``
hook discards every reactor in ``live_reactors`` in every forked child,
however it was forked (``reactor.discard_after_fork``: the shared objects are
left alone, the child's copies of the descriptors are closed, and the signal
handlers that were there before the reactor's are back; every later call on
it raises ``RuntimeError``).  ``fork_and_discard`` (``reactor.fork()``) also
blocks every signal around ``os.fork()`` until that is done, so a signal sent
to the child at once cannot reach the parent's handler through the shared
pipe.
"""

from __future__ import annotations

import logging
import os
import signal
import weakref
from typing import Protocol

__all__ = ["Inheritable", "live_reactors", "fork_and_discard"]

logger = logging.getLogger("evloop")


class Inheritable(Protocol):
    """What the at-fork hook needs of a reactor."""

    def discard_after_fork(self, *, close_connections: bool = True) -> None: ...


# Every open reactor of this process, so that a forked child can discard them.
# A reactor adds itself once whole, and leaves when closed or discarded.
live_reactors: weakref.WeakSet[Inheritable] = weakref.WeakSet()


def _discard_inherited_reactors() -> None:
    """In every forked child, however it was forked (os.fork, multiprocessing, ...).

    ``close_connections=False``: a child of ``subprocess`` or
    ``multiprocessing`` may have been handed one of those sockets.
    """
    for reactor in list(live_reactors):
        try:
            reactor.discard_after_fork(close_connections=False)
        except Exception as exc:  # an at-fork hook cannot report otherwise
            logger.error("discarding an inherited reactor after fork() failed", exc_info=exc)


os.register_at_fork(after_in_child=_discard_inherited_reactors)


def fork_and_discard(reactor: Inheritable) -> int:
    """``os.fork()`` with every signal blocked until the child has discarded ``reactor``.

    Returns the child's pid in the parent and 0 in the child.  In the child
    the at-fork hook has discarded every inherited reactor, and
    ``reactor.discard_after_fork()`` then closes its connections' sockets,
    before signals are unblocked.  Raises what ``os.fork()`` raises, with
    the signal mask restored.
    """
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        pid = os.fork()
        if pid == 0:
            reactor.discard_after_fork()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    return pid
