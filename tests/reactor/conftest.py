"""Fixtures for reactor tests: one reactor per selector class available."""

from __future__ import annotations

import os
import selectors
import signal
import time
from collections.abc import Callable

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


def wait_child(pid: int, timeout_s: float = 10.0) -> int:
    """Wait for a forked child and return its exit code; kill it after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError("child did not exit in time")
        time.sleep(0.01)  # polling a child's exit: there is no fd to wait on


@pytest.fixture(name="wait_child")
def wait_child_fixture():
    return wait_child
