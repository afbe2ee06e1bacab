"""DeadlineQueue on a reactor with a manual clock: order, moves, removal, stragglers, and one timer for all."""

from __future__ import annotations

import pytest

from evloop import ManualClock
from evloop.deadlines import DeadlineQueue
from evloop.reactor import Reactor

TIMEOUT_S = 5.0


class Owner:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


@pytest.fixture
def loop():
    clock = ManualClock(100.0)
    reactor = Reactor(clock=clock)
    yield clock, reactor
    reactor.close()


def _queue(reactor: Reactor, expired: list, on_expired=None) -> DeadlineQueue:
    return DeadlineQueue(reactor, on_expired or expired.append)


def _advance(clock: ManualClock, reactor: Reactor, seconds: float) -> None:
    clock.advance(seconds)
    for _ in range(3):  # due timers, then what they scheduled
        reactor.run_once(0)


def _arm(queue: DeadlineQueue, clock: ManualClock, owner: Owner) -> None:
    queue.add(owner, clock.time() + TIMEOUT_S)


def _two_armed(reactor: Reactor, clock: ManualClock) -> tuple[DeadlineQueue, list, Owner, Owner]:
    """A queue recording what expires, with owners a and b armed now."""
    expired: list = []
    queue = _queue(reactor, expired)
    a, b = Owner("a"), Owner("b")
    _arm(queue, clock, a)
    _arm(queue, clock, b)
    return queue, expired, a, b


def test_owners_expire_in_deadline_order_never_early(loop):
    clock, reactor = loop
    expired: list = []
    queue = _queue(reactor, expired)
    a, b, c = Owner("a"), Owner("b"), Owner("c")
    for owner in (a, b, c):
        _arm(queue, clock, owner)
        clock.advance(1.0)
    # a at 105, b at 106, c at 107; now 103
    _advance(clock, reactor, 1.9)
    assert expired == []
    _advance(clock, reactor, 0.1)
    assert expired == [a]
    _advance(clock, reactor, 1.5)
    assert expired == [a, b]
    _advance(clock, reactor, 0.5)
    assert expired == [a, b, c]
    assert len(queue) == 0 and a not in queue


def test_activity_moves_an_owner_to_its_new_deadline(loop):
    clock, reactor = loop
    queue, expired, a, b = _two_armed(reactor, clock)
    _advance(clock, reactor, 3.0)
    _arm(queue, clock, a)  # a request on a: its keep-alive deadline starts again (108)
    _advance(clock, reactor, 2.0)
    assert expired == [b]
    _advance(clock, reactor, 2.9)
    assert expired == [b]
    _advance(clock, reactor, 0.1)
    assert expired == [b, a]


def test_a_discarded_owner_never_expires(loop):
    clock, reactor = loop
    queue, expired, a, b = _two_armed(reactor, clock)
    queue.discard(a)  # the connection closed
    queue.discard(a)  # twice is harmless
    assert a not in queue and b in queue and len(queue) == 1
    _advance(clock, reactor, TIMEOUT_S)
    assert expired == [b]


def test_one_reactor_timer_serves_every_owner(loop):
    clock, reactor = loop
    expired: list = []
    queue = _queue(reactor, expired)
    owners = [Owner(str(i)) for i in range(1000)]
    for i, owner in enumerate(owners):
        _arm(queue, clock, owner)
        if i % 10 == 9:
            clock.advance(0.001)
    for owner in owners[::2]:
        _arm(queue, clock, owner)  # moved to the back, again and again: no timer each
    assert reactor.stats().timers_pending == 1
    _advance(clock, reactor, TIMEOUT_S + 1)
    assert expired == owners[1::2] + owners[::2]  # first the ones left alone, in the order they were set
    assert len(queue) == 0


def test_a_deadline_earlier_than_the_last_one_still_expires_on_time(loop):
    """A TLS connection's header deadline counts from its accept: it may come before one already set."""
    clock, reactor = loop
    expired: list = []
    queue = _queue(reactor, expired)
    a, b = Owner("a"), Owner("b")
    queue.add(a, clock.time() + 10)
    queue.add(b, clock.time() + 7)
    assert b in queue and len(queue) == 2
    _advance(clock, reactor, 7)
    assert expired == [b]
    queue.add(b, clock.time() + 1)  # out of order again, then moved into the order
    queue.add(b, clock.time() + 20)
    _advance(clock, reactor, 3)
    assert expired == [b, a]
    _advance(clock, reactor, 17)
    assert expired == [b, a, b]
    straggler = Owner("s")
    queue.add(Owner("late"), clock.time() + 30)
    queue.add(straggler, clock.time() + 5)
    queue.discard(straggler)
    _advance(clock, reactor, 10)
    assert expired == [b, a, b]


def test_the_expired_call_may_set_the_owner_again_and_later_owners_keep_their_time(loop):
    clock, reactor = loop
    expired: list = []
    queue: DeadlineQueue

    def again(owner: Owner) -> None:
        expired.append(owner)
        if owner.name == "a":
            queue.add(owner, clock.time() + 50)  # a send timeout that saw progress: armed again, far later

    queue = DeadlineQueue(reactor, again)
    a, b = Owner("a"), Owner("b")
    _arm(queue, clock, a)
    clock.advance(1.0)
    _arm(queue, clock, b)
    _advance(clock, reactor, TIMEOUT_S - 1.0)
    assert expired == [a]
    _advance(clock, reactor, 1.0)
    assert expired == [a, b]  # b's deadline was not pushed back to a's new one


def test_a_failing_expired_call_is_reported_and_the_rest_still_expire(loop):
    clock, reactor = loop
    reports: list = []
    reactor.set_exception_handler(lambda _reactor, context: reports.append(context["exception"]))
    expired: list = []

    def failing(owner: Owner) -> None:
        expired.append(owner)
        if owner.name == "a":
            raise RuntimeError("boom")

    queue = DeadlineQueue(reactor, failing)
    a, b = Owner("a"), Owner("b")
    _arm(queue, clock, a)
    _arm(queue, clock, b)
    _advance(clock, reactor, TIMEOUT_S)
    assert expired == [a, b] and len(reports) == 1


def test_close_cancels_every_deadline(loop):
    clock, reactor = loop
    expired: list = []
    queue = _queue(reactor, expired)
    _arm(queue, clock, Owner("a"))
    queue.add(Owner("early"), clock.time() + 1)
    queue.close()
    assert len(queue) == 0 and reactor.stats().timers_pending == 0
    _advance(clock, reactor, 60)
    assert expired == []
