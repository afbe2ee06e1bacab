"""The reactor's fd-indexed readers and writers against the selector's registrations and a plain model.

``Reactor.run_once`` finds a ready descriptor's callbacks in lists indexed by
descriptor number (``evloop.reactor_files``), not in the selector's keys.
These tests hold those lists to what the plain path would do: every callback
registered runs when its file is ready, nothing removed or replaced runs, and
the selector watches exactly the events that have a callback.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from evloop import Reactor

EVENT_READ, EVENT_WRITE = 1, 2  # selectors' values


class _Recorder:
    """A bound method reader, as a transport's ``_on_readable``."""

    def __init__(self, ran: list[tuple[int, str, int]], tag: tuple[int, str, int]) -> None:
        self.ran, self.tag = ran, tag

    def fire(self) -> None:
        self.ran.append(self.tag)


@contextlib.contextmanager
def _ready_pairs(selector_cls: Any, count: int) -> Iterator[tuple[Reactor, list[tuple[socket.socket, socket.socket]]]]:
    """A reactor on ``selector_cls``, and socket pairs whose first end is both readable (a byte waits, never read)
    and writable; all closed after."""
    pairs = [socket.socketpair() for _ in range(count)]
    for ours, theirs in pairs:
        ours.setblocking(False)
        theirs.sendall(b"x")
    reactor = Reactor(selector_cls())
    try:
        yield reactor, pairs
    finally:
        reactor.close()
        for a, b in pairs:
            a.close()
            b.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_adds_and_removes_run_what_a_plain_model_says(selector_cls, seed):
    """Random add/remove of readers and writers (with arguments, without, bound methods) on ready files: each pass runs
    exactly the model's callbacks, ``remove_*`` answers as the model does, and the selector's interest is the
    model's (no stale events)."""
    rng = random.Random(seed)
    with _ready_pairs(selector_cls, 6) as (reactor, pairs):
        model: dict[tuple[int, str], int] = {}  # (file index, "r"/"w") -> tag of the callback registered
        ran: list[tuple[int, str, int]] = []
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


def test_a_callback_removing_or_replacing_other_ready_files_readers_in_the_pass(selector_cls):
    """As with the selector's keys: whichever ready file's reader runs first removes the reader of another ready
    file and replaces a third's; in that pass the removed and the replaced are never called, the replacement is."""
    with _ready_pairs(selector_cls, 3) as (reactor, pairs):
        socks = [ours for ours, _ in pairs]
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


def test_descriptors_far_apart_are_watched(selector_cls):
    """The lists grow to the largest descriptor watched; a low one registered after a high one still works."""
    with _ready_pairs(selector_cls, 2) as (reactor, pairs):
        high = pairs[1][0].fileno() + 200
        calls: list[str] = []
        os.dup2(pairs[1][0].fileno(), high)
        reactor.add_reader(high, calls.append, "high")
        reactor.add_reader(pairs[0][0], calls.append, "low")
        reactor.run_once(0)
        assert sorted(calls) == ["high", "low"]
        assert reactor.remove_reader(high) and not reactor.remove_reader(high)
        os.close(high)


def test_a_failing_bound_method_reader_is_reported_by_name_and_the_pass_goes_on(selector_cls):
    """A reader called as its function and object reports as its bound method would, even after removing itself."""
    with _ready_pairs(selector_cls, 2) as (reactor, pairs):
        seen: list[str] = []
        ran: list[tuple[int, str, int]] = []
        reactor.set_exception_handler(lambda loop, context: seen.append(context["message"]))

        class Failing:
            def on_readable(self) -> None:
                reactor.remove_reader(pairs[0][0])
                raise KeyError("reader")

        reactor.add_reader(pairs[0][0], Failing().on_readable)
        reactor.add_reader(pairs[1][0], _Recorder(ran, (1, "r", 0)).fire)
        reactor.run_once(0)
        assert len(seen) == 1 and "Failing.on_readable" in seen[0]
        assert ran == [(1, "r", 0)]


def _readiness_cases() -> list[tuple[str, Any, list[Any]]]:
    """Sockets in each readiness a connection shows: (name, the socket watched, sockets to close after)."""
    cases = []
    idle, peer = socket.socketpair()
    cases.append(("writable", idle, [idle, peer]))
    both, peer = socket.socketpair()
    peer.sendall(b"x")
    cases.append(("readable and writable", both, [both, peer]))
    full, peer = socket.socketpair()
    full.setblocking(False)
    try:
        while True:
            full.send(b"x" * 65536)
    except BlockingIOError:
        pass
    peer.sendall(b"y")
    cases.append(("readable, send buffer full", full, [full, peer]))
    hung, peer = socket.socketpair()
    peer.close()
    cases.append(("peer closed (hang-up)", hung, [hung]))
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
    accepted.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    accepted.close()  # a reset: an error on the client's end
    cases.append(("peer reset (error)", client, [client]))
    read_end, write_end = os.pipe()
    os.close(read_end)
    cases.append(("pipe without a reader (error, no POLLIN)", _Fd(write_end), [_Fd(write_end)]))
    read_end, write_end = os.pipe()
    os.close(write_end)
    cases.append(("pipe without a writer (hang-up alone)", _Fd(read_end), [_Fd(read_end)]))
    return cases


class _Fd:
    """A bare descriptor as a file object: ``fileno()`` and ``close()``."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass  # closed already (the same descriptor listed twice)


def test_a_ready_descriptor_wakes_the_callbacks_the_selectors_module_names(selector_cls):
    """The loop tests ``mask != POLLOUT`` and ``mask != POLLIN`` where ``selectors`` tests ``mask & ~POLLOUT`` and
    ``mask & ~POLLIN``: for each readiness a connection can show (writable, readable, both, hung up, reset) one
    pass calls exactly the reader and writer that the plain selector's ``select()`` reports for the same file."""
    cases = _readiness_cases()
    reactor = Reactor(selector_cls())
    plain = selector_cls()
    ran: list[tuple[int, str, int]] = []
    try:
        for index, (_, sock, _) in enumerate(cases):
            reactor.add_reader(sock, _Recorder(ran, (index, "r", 0)).fire)
            reactor.add_writer(sock, _Recorder(ran, (index, "w", 0)).fire)
            plain.register(sock, EVENT_READ | EVENT_WRITE, index)
        expected = set()
        for key, mask in plain.select(0):
            expected |= {(key.data, kind, 0) for kind, bit in (("r", EVENT_READ), ("w", EVENT_WRITE)) if mask & bit}
        reactor.run_once(0)
        assert sorted(ran) == sorted(expected), [name for name, _, _ in cases]
        assert {(index, "w", 0) for index in (0, 1, 3, 4)} | {(index, "r", 0) for index in (1, 2, 3, 4)} <= expected
        if selector_cls.__name__ == "EpollSelector":  # epoll's bits: an error without POLLIN, a hang-up alone
            assert {(5, "r", 0), (5, "w", 0), (6, "r", 0), (6, "w", 0)} <= expected
    finally:
        reactor.close()
        plain.close()
        for _, _, socks in cases:
            for sock in socks:
                sock.close()


@pytest.mark.parametrize("slow_callback_s", [None, 60.0], ids=["untimed", "timed"])
def test_a_callback_discarding_the_reactor_ends_the_passs_callbacks(selector_cls, slow_callback_s):
    """As the loop's test of ``_closed`` per event did: once a callback discards the reactor (a forked child that
    goes on), no other reader or writer of the pass runs (bound methods, plain functions, with arguments), timed
    or not; the next pass raises."""
    with _ready_pairs(selector_cls, 4) as (reactor, pairs):
        reactor.slow_callback_s = slow_callback_s
        ran: list[tuple[int, str, int]] = []

        def discard(tag: tuple[int, str, int]) -> None:
            ran.append(tag)
            if len(ran) == 1:
                reactor.discard_after_fork(close_connections=False)

        for index, (ours, _) in enumerate(pairs):
            kind = index % 3
            for event, add in (("r", reactor.add_reader), ("w", reactor.add_writer)):
                tag = (index, event, kind)
                if kind == 0:
                    add(ours, discard, tag)
                elif kind == 1:
                    add(ours, functools.partial(discard, tag))
                else:
                    add(ours, _DiscardingRecorder(discard, tag).fire)
        reactor.run_once(0)  # every file is ready, for reading and writing, in this one poll
        assert len(ran) == 1
        with pytest.raises(RuntimeError):
            reactor.run_once(0)


class _DiscardingRecorder:
    """A bound method callback (a transport's kind) that calls ``discard`` with its tag."""

    def __init__(self, discard: Any, tag: tuple[int, str, int]) -> None:
        self.discard, self.tag = discard, tag

    def fire(self) -> None:
        self.discard(self.tag)
