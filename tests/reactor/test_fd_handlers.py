"""The reactor's fd-indexed readers and writers against the selector's registrations and a plain model.

``Reactor.run_once`` finds a ready descriptor's callbacks in lists indexed by
descriptor number (``evloop.reactor_files``), not in the selector's keys.
These tests hold those lists to what the plain path would do: every callback
registered runs when its file is ready, nothing removed or replaced runs, and
the selector watches exactly the events that have a callback.
"""

from __future__ import annotations

import functools
import os
import random
import socket

import pytest

from evloop import Reactor

EVENT_READ, EVENT_WRITE = 1, 2  # selectors' values


class _Recorder:
    """A bound method reader, as a transport's ``_on_readable``."""

    def __init__(self, ran: list[tuple[int, str, int]], tag: tuple[int, str, int]) -> None:
        self.ran, self.tag = ran, tag

    def fire(self) -> None:
        self.ran.append(self.tag)


def _ready_pairs(count: int) -> list[tuple[socket.socket, socket.socket]]:
    """Socket pairs whose first end is both readable (a byte waits, never read) and writable."""
    pairs = [socket.socketpair() for _ in range(count)]
    for ours, theirs in pairs:
        ours.setblocking(False)
        theirs.sendall(b"x")
    return pairs


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_adds_and_removes_run_what_a_plain_model_says(selector_cls, seed):
    """Random add/remove of readers and writers (with arguments, without, bound methods) on ready files: each pass runs
    exactly the model's callbacks, ``remove_*`` answers as the model does, and the selector's interest is the
    model's (no stale events)."""
    rng = random.Random(seed)
    pairs = _ready_pairs(6)
    reactor = Reactor(selector_cls())
    model: dict[tuple[int, str], int] = {}  # (file index, "r"/"w") -> tag of the callback registered
    ran: list[tuple[int, str, int]] = []
    try:
        for step in range(400):
            index, kind = rng.randrange(len(pairs)), rng.choice("rw")
            sock = pairs[index][0]
            if rng.random() < 0.6:
                add = reactor.add_reader if kind == "r" else reactor.add_writer
                form = rng.randrange(3)
                if form == 0:
                    add(sock, ran.append, (index, kind, step))  # with arguments: called through its handle
                elif form == 1:
                    add(sock, functools.partial(ran.append, (index, kind, step)))  # without: called as it is
                else:
                    add(sock, _Recorder(ran, (index, kind, step)).fire)  # a bound method: its function(owner)
                model[index, kind] = step
            else:
                remove = reactor.remove_reader if kind == "r" else reactor.remove_writer
                assert remove(sock) is ((index, kind) in model)
                model.pop((index, kind), None)
            if step % 5 == 4:
                ran.clear()
                reactor.run_once(0)
                assert sorted(ran) == sorted((i, k, tag) for (i, k), tag in model.items())
                watched = {key.fd: key.events for key in reactor._selector.get_map().values()}
                watched.pop(reactor._self_pipe.rsock.fileno())
                expected: dict[int, int] = {}
                for i, k in model:
                    fd = pairs[i][0].fileno()
                    expected[fd] = expected.get(fd, 0) | (EVENT_READ if k == "r" else EVENT_WRITE)
                assert watched == expected
    finally:
        reactor.close()
        for a, b in pairs:
            a.close()
            b.close()


def test_a_callback_removing_or_replacing_other_ready_files_readers_in_the_pass(selector_cls):
    """As with the selector's keys: whichever ready file's reader runs first removes the reader of another ready
    file and replaces a third's; in that pass the removed and the replaced are never called, the replacement is."""
    pairs = _ready_pairs(3)
    socks = [ours for ours, _ in pairs]
    reactor = Reactor(selector_cls())
    calls: list[str] = []

    def first_to_run(index: int, with_args: bool) -> None:
        calls.append(f"reader {index}")
        if len(calls) == 1:
            others = [sock for sock in socks if sock is not socks[index]]
            reactor.remove_reader(others[0])
            if with_args:
                reactor.add_reader(others[1], calls.append, "replacement")
            else:
                reactor.add_reader(others[1], functools.partial(calls.append, "replacement"))

    try:
        for with_args in (False, True):
            calls.clear()
            for index, sock in enumerate(socks):
                if with_args:
                    reactor.add_reader(sock, first_to_run, index, with_args)
                else:
                    reactor.add_reader(sock, functools.partial(first_to_run, index, with_args))
            reactor.run_once(0)  # the three are ready in one poll
            assert calls[1:] == ["replacement"]
            for sock in socks:
                reactor.remove_reader(sock)
    finally:
        reactor.close()
        for a, b in pairs:
            a.close()
            b.close()


def test_descriptors_far_apart_are_watched(selector_cls):
    """The lists grow to the largest descriptor watched; a low one registered after a high one still works."""
    pairs = _ready_pairs(2)
    reactor = Reactor(selector_cls())
    high = pairs[1][0].fileno() + 200
    calls: list[str] = []
    try:
        os.dup2(pairs[1][0].fileno(), high)
        reactor.add_reader(high, calls.append, "high")
        reactor.add_reader(pairs[0][0], calls.append, "low")
        reactor.run_once(0)
        assert sorted(calls) == ["high", "low"]
        assert reactor.remove_reader(high) and not reactor.remove_reader(high)
        os.close(high)
    finally:
        reactor.close()
        for a, b in pairs:
            a.close()
            b.close()


def test_a_failing_bound_method_reader_is_reported_by_name_and_the_pass_goes_on(selector_cls):
    """A reader called as its function and object reports as its bound method would, even after removing itself."""
    pairs = _ready_pairs(2)
    reactor = Reactor(selector_cls())
    seen: list[str] = []
    ran: list[tuple[int, str, int]] = []
    reactor.set_exception_handler(lambda loop, context: seen.append(context["message"]))

    class Failing:
        def on_readable(self) -> None:
            reactor.remove_reader(pairs[0][0])
            raise KeyError("reader")

    try:
        reactor.add_reader(pairs[0][0], Failing().on_readable)
        reactor.add_reader(pairs[1][0], _Recorder(ran, (1, "r", 0)).fire)
        reactor.run_once(0)
        assert len(seen) == 1 and "Failing.on_readable" in seen[0]
        assert ran == [(1, "r", 0)]
    finally:
        reactor.close()
        for a, b in pairs:
            a.close()
            b.close()
