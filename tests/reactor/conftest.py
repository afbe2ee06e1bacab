"""Fixtures for reactor tests: one reactor per selector class available."""

from __future__ import annotations

import selectors
import time
from typing import Callable

import pytest

from evloop import Reactor

SELECTOR_CLASSES = [
    cls
    for name in ("SelectSelector", "PollSelector", "EpollSelector")
    if (cls := getattr(selectors, name, None)) is not None
]


@pytest.fixture(params=SELECTOR_CLASSES, ids=lambda cls: cls.__name__)
def selector_cls(request):
    return request.param


@pytest.fixture
def reactor(selector_cls):
    r = Reactor(selector_cls())
    yield r
    if not r.is_closed:
        r.close()


def run_until(reactor: Reactor, cond: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Run passes until ``cond()`` holds; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not cond():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"condition not met within {timeout_s} s")
        reactor.run_once(min(remaining, 0.05))


@pytest.fixture(name="run_until")
def run_until_fixture():
    return run_until
