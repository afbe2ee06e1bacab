"""The reactor's fd-indexed readers and writers against the selector's registrations and a plain model.

``Reactor.run_once`` finds a ready descriptor's callbacks in lists indexed by
descriptor number (``evloop.reactor_files``), not in the selector's keys.
These tests hold those lists to what the plain path would do: every callback
registered runs when its file is ready, nothing removed or replaced runs, and
the selector watches exactly the events that have a callback.
"""

from __future__ import annotations

import os
import random
import socket

import pytest

from evloop import Reactor

EVENT_READ, EVENT_WRITE = 1, 2  # selectors' values


def _ready_pairs(count: int) -> list[tuple[socket.socket, socket.socket]]:
    """Socket pairs whose first end is both readable (a byte waits, never read) and writable."""
    pairs = [socket.socketpair() for _ in range(count)]
    for ours, theirs in pairs:
        ours.setblocking(False)
        theirs.sendall(b"x")
    return pairs


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_adds_and_removes_run_what_a_plain_model_says(selector_cls, seed):
    """Random add/remove of readers and writers on ready files: each pass runs exactly the model's callbacks,
    ``remove_*`` answers as the model does, and the selector's interest is the model's (no stale events)."""
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
                add(sock, ran.append, (index, kind, step))
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


def test_a_callback_replacing_another_ready_files_reader_runs_the_new_one_in_the_pass(selector_cls):
    """As with the selector's keys: a reader replaced by an earlier callback of the pass is never called, and
    its replacement is, in that pass; a reader removed and a writer added by it change nothing else."""
    pairs = _ready_pairs(3)
    reactor = Reactor(selector_cls())
    calls: list[str] = []
    first, second, third = (ours for ours, _ in pairs)

    def replace_the_others() -> None:
        calls.append("first")
        reactor.add_reader(second, calls.append, "second, new")
        reactor.remove_reader(third)

    try:
        for sock, name in ((first, "first"), (second, "second"), (third, "third")):
            reactor.add_reader(sock, calls.append, name)
        reactor.add_reader(first, replace_the_others)
        reactor.add_reader(second, calls.append, "second")
        reactor.add_reader(third, calls.append, "third")
        reactor.run_once(0)  # the three are ready in one poll, served in the order it gives
        if calls[0] == "first":
            assert calls == ["first", "second, new"]
        else:  # the poll gave another file first: it ran before first changed anything
            assert "first" in calls and "second" not in calls[calls.index("first"):]
        calls.clear()
        reactor.run_once(0)
        assert sorted(calls) == ["first", "second, new"]
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
