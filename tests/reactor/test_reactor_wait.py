"""``run_once``'s own wait on the real clock (the nearest live timer, read inline) against ``_wait_bound``'s
general steps: the timeout it hands the selector is the one ``_wait_bound`` computes."""

from __future__ import annotations

import selectors
import socket

import pytest

from evloop import Reactor


class RecordingSelector(selectors.PollSelector):
    """A real poll selector that remembers the timeout of each ``select``."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: list[float | None] = []

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        self.timeouts.append(timeout)
        return super().select(timeout)


@pytest.fixture
def watched():
    """A reactor on a recording selector, with a socket that is always readable (so no pass waits)."""
    selector = RecordingSelector()
    reactor = Reactor(selector)
    a, b = socket.socketpair()
    b.send(b"x")
    reactor.add_reader(a, lambda: None)
    yield reactor, selector
    reactor.close()
    a.close()
    b.close()


@pytest.mark.parametrize("delays", [(), (30.0,), (5.0, 1.0, 9.0), (-2.0,), (2 * 86400.0,)])
def test_the_inline_wait_is_wait_bound_s(watched, delays):
    """No timer: no bound; a live timer: until it (past due: 0; beyond a day: a day), as ``_wait_bound`` says."""
    reactor, selector = watched
    for delay in delays:
        reactor.call_later(delay, lambda: None)
    expected, _ = reactor._wait_bound(None)
    reactor.run_once()
    got = selector.timeouts[-1]
    if expected is None:
        assert got is None
    else:
        assert got is not None and expected - 1.0 <= got <= expected  # the real clock moved between the two


def test_a_cancelled_nearest_timer_takes_the_general_steps(watched):
    """The nearest timer cancelled: the wait is the next live one's (``_wait_bound`` drops the cancelled)."""
    reactor, selector = watched
    reactor.call_later(1.0, lambda: None).cancel()
    reactor.call_later(50.0, lambda: None)
    reactor.run_once()
    assert 48.0 < selector.timeouts[-1] <= 50.0
