"""Deadlines that share one timeout: an insertion-ordered queue behind one reactor timer.

Theory of operation.  A server arms the same timeout (keep-alive, header,
send) on thousands of connections.  A reactor timer each costs ~300 bytes per
connection (the ``Timer``, its heap entry, a sequence number, a bound method)
and a heap push whenever it moves.  But when every deadline added to a queue
is *now + the same timeout*, deadlines arrive in the order they are added:
a dict keyed by owner, in insertion order, is then also in deadline order.
Adding (or moving an owner to the back) and removing are O(1) dict
operations, the first entry is the next due, and one reactor timer, armed
for that entry, serves the whole queue (nginx keeps its keep-alive
connections in such a queue too).  The timer is re-armed lazily: removing or
moving the first entry leaves it alone; when it fires early it re-arms for
the entry then in front.  Per owner the queue holds one dict entry and its
deadline (the float the owner keeps anyway).

A deadline earlier than the latest one added (rare: a TLS connection's header
deadline counts from its accept, before a handshake of its own length) would
break the order: it gets a reactor timer of its own.

The owner's ``expired`` call comes once its deadline has passed (never
early), after the owner has left the queue, so the call may add it again.
An owner whose deadline moves often (a connection, at every request) may
leave its entry as it is and only note the later deadline: when the entry
expires it adds itself again with that deadline (the lazy re-arm of
``server/h1.py``), so a move costs a store, not a dict operation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .timers import Timer

if TYPE_CHECKING:
    from .reactor import Reactor

__all__ = ["DeadlineQueue"]


class DeadlineQueue:
    """Owners with a deadline each; ``expired(owner)`` runs when an owner's deadline passes.

    ``add(owner, deadline)`` sets (or moves) the owner's deadline,
    ``discard(owner)`` forgets it.  Owners are hashable (by identity, for a
    connection).  ``close()`` cancels the reactor timers and forgets all.
    ``timeout_s``: the timeout its users add to the time (the queue keeps
    it for them; it reads only the deadlines).
    """

    __slots__ = ("timeout_s", "_reactor", "_expired", "_entries", "_latest", "_timer", "_stragglers")

    def __init__(self, reactor: Reactor, expired: Callable[[Any], object], timeout_s: float = 0.0) -> None:
        self.timeout_s = timeout_s
        self._reactor = reactor
        self._expired = expired
        # owner -> deadline, in deadline order (see the module's docstring).
        self._entries: dict[Any, float] = {}
        # The latest deadline added to _entries: a later add keeps the order.
        self._latest = float("-inf")
        # Due at or before the first entry's deadline while _entries has one.
        self._timer: Timer | None = None
        self._stragglers: dict[Any, Timer] = {}  # owners whose deadline came out of order

    def __len__(self) -> int:
        return len(self._entries) + len(self._stragglers)

    def __contains__(self, owner: object) -> bool:
        return owner in self._entries or owner in self._stragglers

    def add(self, owner: Any, deadline: float) -> None:
        """Set ``owner``'s deadline to ``deadline`` (on the reactor's clock), replacing any it had here."""
        entries = self._entries
        if deadline >= self._latest:
            self._latest = deadline
            # Moved to the back: a dict keeps an updated key where it was.
            if entries.pop(owner, None) is None and self._stragglers:
                self._drop_straggler(owner)
            entries[owner] = deadline
            if self._timer is None:
                self._timer = self._reactor.call_at(deadline, self._on_timer)
        else:
            self.discard(owner)
            self._stragglers[owner] = self._reactor.call_at(deadline, self._on_straggler, owner)

    def discard(self, owner: object) -> None:
        """Forget ``owner``'s deadline, if it has one here."""
        if self._entries.pop(owner, None) is None and self._stragglers:
            self._drop_straggler(owner)

    def close(self) -> None:
        """Cancel the reactor timers and forget every deadline: no ``expired`` call comes after this."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for timer in self._stragglers.values():
            timer.cancel()
        self._stragglers.clear()
        self._entries.clear()

    def _on_timer(self) -> None:
        """The first entry may be due: expire every entry that is, then arm for the next one."""
        entries = self._entries
        try:
            now = self._reactor.time()
            due = []
            for owner, deadline in entries.items():
                if deadline > now:
                    break
                due.append(owner)
            # self._timer still names the timer that fired while the owners are
            # called, so that an add() meanwhile does not arm one for its own,
            # later, deadline: the finally clause arms for the first entry.
            for owner in due:
                when = entries.get(owner)
                if when is not None and when <= now:  # an earlier call may have moved or removed it
                    del entries[owner]
                    self._expired(owner)
        finally:
            self._timer = None
            if entries:
                self._timer = self._reactor.call_at(next(iter(entries.values())), self._on_timer)

    def _on_straggler(self, owner: Any) -> None:
        del self._stragglers[owner]
        self._expired(owner)

    def _drop_straggler(self, owner: object) -> None:
        timer = self._stragglers.pop(owner, None)
        if timer is not None:
            timer.cancel()

    def __repr__(self) -> str:
        return f"<DeadlineQueue {len(self)} deadlines>"
