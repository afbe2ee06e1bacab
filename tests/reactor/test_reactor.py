"""The reactor over real descriptors, for every selector class available."""

from __future__ import annotations

import gc
import logging
import os
import selectors
import signal
import socket
import time

import pytest

from evloop import Handle, Reactor, Timer


# ------------------------------------------------------------- call_soon
def test_call_soon_runs_in_order(reactor):
    out = []
    for i in range(5):
        reactor.call_soon(out.append, i)
    reactor.run_once(0)
    assert out == [0, 1, 2, 3, 4]


def test_call_soon_returns_cancellable_handle(reactor):
    out = []
    h = reactor.call_soon(out.append, "no")
    reactor.call_soon(out.append, "yes")
    assert isinstance(h, Handle)
    h.cancel()
    reactor.run_once(0)
    assert out == ["yes"]


def test_callbacks_queued_during_a_pass_run_next_pass(reactor):
    out = []

    def again(n):
        out.append(n)
        reactor.call_soon(again, n + 1)

    reactor.call_soon(again, 0)
    reactor.run_once(0)
    assert out == [0]
    reactor.run_once(0)
    assert out == [0, 1]


def test_self_rescheduling_callback_cannot_starve_io(reactor):
    a, b = socket.socketpair()
    with a, b:
        spins = []
        got = []

        def spin():
            spins.append(1)
            reactor.call_soon(spin)

        reactor.call_soon(spin)
        reactor.add_reader(a, lambda: got.append(a.recv(100)))
        b.send(b"ping")
        t0 = time.monotonic()
        while not got and time.monotonic() - t0 < 2:
            reactor.run_once(0)
        assert got == [b"ping"]
        assert len(spins) <= 3  # the reader ran within a pass or two
        reactor.remove_reader(a)


def test_ready_callbacks_do_not_block_select(reactor):
    reactor.call_soon(lambda: None)
    t0 = time.monotonic()
    reactor.run_once(5)
    assert time.monotonic() - t0 < 1


# ---------------------------------------------------------------- timers
def test_time_is_monotonic(reactor):
    assert abs(reactor.time() - time.monotonic()) < 1


def test_call_later_order_and_same_deadline_fifo(reactor, run_until):
    out = []
    now = reactor.time()
    reactor.call_at(now + 0.03, out.append, "c")
    reactor.call_at(now + 0.01, out.append, "a1")
    reactor.call_at(now + 0.01, out.append, "a2")
    reactor.call_at(now + 0.01, out.append, "a3")
    reactor.call_at(now + 0.02, out.append, "b")
    t = reactor.call_later(0.015, out.append, "later")
    assert isinstance(t, Timer)
    run_until(reactor, lambda: len(out) == 6)
    assert out == ["a1", "a2", "a3", "later", "b", "c"]


def test_timer_does_not_fire_early(reactor, run_until):
    fired = []
    start = reactor.time()
    reactor.call_later(0.05, lambda: fired.append(reactor.time()))
    run_until(reactor, lambda: fired)
    assert fired[0] - start >= 0.05


def test_run_once_blocks_until_next_timer_not_longer(reactor):
    fired = []
    reactor.call_later(0.05, fired.append, 1)
    t0 = time.monotonic()
    reactor.run_once(5)  # the timer bounds the wait
    while not fired and time.monotonic() - t0 < 2:
        reactor.run_once(5)
    took = time.monotonic() - t0
    assert fired == [1]
    assert 0.04 <= took < 1.0


def test_cancel_timer(reactor, run_until):
    out = []
    t1 = reactor.call_later(0.01, out.append, 1)
    reactor.call_later(0.02, out.append, 2)
    t1.cancel()
    t1.cancel()
    run_until(reactor, lambda: out)
    assert out == [2]


def test_cancel_due_timer_from_earlier_callback(reactor, run_until):
    out = []
    now = reactor.time()
    later = reactor.call_at(now + 0.01, out.append, "cancelled")
    reactor.call_at(now + 0.01 - 1e-6, later.cancel)
    reactor.call_at(now + 0.02, out.append, "end")
    run_until(reactor, lambda: "end" in out)
    assert out == ["end"]


def test_cancelled_timer_does_not_bound_wait_forever(reactor):
    t = reactor.call_later(0.01, lambda: None)
    t.cancel()
    t0 = time.monotonic()
    reactor.run_once(0.05)
    assert time.monotonic() - t0 < 1


def test_timer_in_the_past_runs_next_pass(reactor):
    out = []
    reactor.call_at(reactor.time() - 10, out.append, 1)
    reactor.call_later(-1, out.append, 2)
    reactor.run_once(0)
    assert out == [1, 2]


# --------------------------------------------------------------- run_once
def test_run_once_timeout_bounds_wait(reactor):
    t0 = time.monotonic()
    reactor.run_once(0.05)
    took = time.monotonic() - t0
    assert 0.03 <= took < 1


def test_run_once_zero_does_not_block(reactor):
    reactor.call_later(10, lambda: None)
    t0 = time.monotonic()
    for _ in range(10):
        reactor.run_once(0)
    assert time.monotonic() - t0 < 0.5


# --------------------------------------------------------------- run/stop
def test_run_until_stop(reactor):
    out = []
    reactor.call_later(0.01, lambda: (out.append(1), reactor.stop()))
    reactor.run()
    assert out == [1]
    assert not reactor.is_running
    # run again after a stop
    reactor.call_soon(reactor.stop)
    reactor.run()


def test_is_running_inside_run(reactor):
    seen = []
    reactor.call_soon(lambda: (seen.append(reactor.is_running), reactor.stop()))
    reactor.run()
    assert seen == [True]


def test_run_while_running_raises(reactor):
    errors = []

    def nested():
        try:
            reactor.run()
        except RuntimeError as exc:
            errors.append(exc)
        reactor.stop()

    reactor.call_soon(nested)
    reactor.run()
    assert len(errors) == 1


def test_stop_lets_ready_callbacks_of_the_pass_run(reactor):
    out = []
    reactor.call_soon(reactor.stop)
    reactor.call_soon(out.append, 1)
    reactor.run()
    assert out == [1]


def _passes_script(reactor, log, stop_at=None):
    """Callbacks that reschedule themselves, a timer and a socket pair's readiness, logging each pass's calls."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.send(b"x" * 3)

    def read():  # one byte a pass, three passes
        log.append(("read", a.recv(1)))
        if sum(entry[0] == "read" for entry in log) == 3:
            reactor.remove_reader(a)

    def tick(n):
        log.append(("tick",))
        if n:
            reactor.call_soon(tick, n - 1)
        elif stop_at is not None:
            reactor.stop()

    reactor.add_reader(a, read)
    reactor.call_soon(tick, 4)
    reactor.call_later(0, log.append, ("timer",))
    return a, b


def test_run_takes_the_same_passes_as_run_once(reactor, selector_cls):
    """run() loops over the pass in one frame (Reactor._run_passes): the same calls, in the same passes, as
    run_once() called once a pass, and the same statistics."""
    by_run_once, by_run = [], []
    sockets = _passes_script(reactor, by_run_once)
    for _ in range(5):
        reactor.run_once(0)
        by_run_once.append("pass")
    once_passes = reactor.stats().passes
    other = Reactor(selector_cls())
    try:
        sockets += _passes_script(other, by_run, stop_at=True)
        other.call_soon(lambda: None)  # run()'s passes never block: every pass has a ready callback or I/O
        other.run()
        assert [entry for entry in by_run_once if entry != "pass"] == by_run
        assert other.stats().passes == once_passes
    finally:
        other.close()
        for sock in sockets:
            sock.close()


# ------------------------------------------------------------------ errors
def test_callback_exception_is_logged_and_loop_continues(reactor, caplog):
    out = []

    def boom():
        raise ValueError("kaboom")

    reactor.call_soon(boom)
    reactor.call_soon(out.append, "after")
    reactor.call_later(0, lambda: 1 / 0)
    with caplog.at_level(logging.ERROR, logger="evloop"):
        reactor.run_once(0)
        reactor.run_once(0)
    assert out == ["after"]
    records = [r for r in caplog.records if r.name == "evloop"]
    assert any(r.exc_info and isinstance(r.exc_info[1], ValueError) for r in records)
    assert any(r.exc_info and isinstance(r.exc_info[1], ZeroDivisionError) for r in records)
    assert "boom" in caplog.text
    assert "Traceback" in caplog.text


def test_io_callback_exception_is_logged(reactor, caplog):
    a, b = socket.socketpair()
    with a, b:
        def reader():
            a.recv(10)
            raise KeyError("io")

        reactor.add_reader(a, reader)
        b.send(b"x")
        with caplog.at_level(logging.ERROR, logger="evloop"):
            reactor.run_once(1)
        assert "KeyError" in caplog.text
        reactor.remove_reader(a)


def test_more_ready_descriptors_than_one_poll_returns_are_all_served(reactor):
    # One epoll.poll returns at most 64 events (reactor._EPOLL_MAX_EVENTS):
    # the descriptors still ready come in the next pass, each once.
    pairs = [socket.socketpair() for _ in range(100)]
    try:
        served = []

        def reader(i, sock):
            served.append(i)
            sock.recv(10)

        for i, (a, b) in enumerate(pairs):
            reactor.add_reader(a, reader, i, a)
            b.send(b"x")
        reactor.run_once(1)
        assert len(served) == (64 if type(reactor._selector) is selectors.EpollSelector else 100)
        reactor.run_once(1)
        assert sorted(served) == list(range(100))
    finally:
        for a, b in pairs:
            reactor.remove_reader(a)
            a.close()
            b.close()


@pytest.mark.parametrize("slow_callback_s", [None, 60.0], ids=["untimed", "timed"])
def test_io_callbacks_timed_or_not_report_and_go_on_alike(selector_cls, slow_callback_s):
    # run_once calls I/O callbacks itself unless they are timed (then through
    # _run_callback): both paths report a failing reader or writer with its
    # handle, run the other callbacks of the pass, and let a stop through.
    with Reactor(selector_cls(), slow_callback_s=slow_callback_s) as reactor:
        seen = []
        reactor.set_exception_handler(lambda loop, context: seen.append(type(context["exception"])))
        a, b = socket.socketpair()
        with a, b:
            ran = []

            def failing_reader():
                a.recv(10)
                raise KeyError("io")

            def failing_writer():
                raise ValueError("io")

            reactor.add_reader(a, failing_reader)
            reactor.add_writer(a, failing_writer)
            reactor.add_writer(b, lambda: ran.append("b writable"))
            b.send(b"x")
            reactor.run_once(1)
            assert sorted(seen, key=lambda t: t.__name__) == [KeyError, ValueError]
            assert ran == ["b writable"]
            reactor.remove_writer(a)
            reactor.remove_writer(b)

            def interrupted_reader():
                a.recv(10)
                raise KeyboardInterrupt

            reactor.add_reader(a, interrupted_reader)
            b.send(b"y")
            with pytest.raises(KeyboardInterrupt):
                reactor.run_once(1)
            assert len(seen) == 2
            reactor.remove_reader(a)


@pytest.mark.parametrize("slow_callback_s", [None, 60.0], ids=["untimed", "timed"])
def test_ready_callbacks_timed_or_not_report_and_go_on_alike(selector_cls, slow_callback_s):
    # _run_ready calls ready callbacks itself unless they are timed (then
    # through _run_callback): both paths skip a cancelled one, report a
    # failing one with its handle, run the rest of the pass, leave what a
    # callback queues for the next pass, and let a stop through.
    with Reactor(selector_cls(), slow_callback_s=slow_callback_s) as reactor:
        seen = []
        reactor.set_exception_handler(lambda loop, context: seen.append((type(context["exception"]),
                                                                         context["handle"])))
        ran = []

        def interrupt():
            raise KeyboardInterrupt

        failing = reactor.call_soon(divmod, 1, 0)
        reactor.call_soon(ran.append, "first")
        reactor.call_soon(ran.append, "cancelled").cancel()
        reactor.call_soon(lambda: reactor.call_soon(ran.append, "next pass"))
        reactor.call_soon(ran.append, "last")
        reactor.run_once(0)
        assert ran == ["first", "last"]
        assert seen == [(ZeroDivisionError, failing)]
        reactor.call_soon(interrupt)
        reactor.call_soon(ran.append, "after the stop")
        with pytest.raises(KeyboardInterrupt):
            reactor.run_once(0)
        assert ran == ["first", "last", "next pass"]
        reactor.run_once(0)
        assert ran == ["first", "last", "next pass", "after the stop"]
        assert len(seen) == 1


def test_exception_handler_receives_exception(reactor, caplog):
    seen = []
    reactor.set_exception_handler(lambda loop, context: seen.append((loop, context["exception"], context["handle"])))
    exc = RuntimeError("x")

    def boom():
        raise exc

    h = reactor.call_soon(boom)
    with caplog.at_level(logging.ERROR, logger="evloop"):
        reactor.run_once(0)
    assert seen == [(reactor, exc, h)]
    assert not caplog.records
    reactor.set_exception_handler(None)
    reactor.call_soon(boom)
    with caplog.at_level(logging.ERROR, logger="evloop"):
        reactor.run_once(0)
    assert "RuntimeError" in caplog.text


def test_broken_exception_handler_is_logged(reactor, caplog):
    def handler(loop, context):
        raise TypeError("handler broke")

    reactor.set_exception_handler(handler)
    reactor.call_soon(lambda: 1 / 0)
    out = []
    reactor.call_soon(out.append, 1)
    with caplog.at_level(logging.ERROR, logger="evloop"):
        reactor.run_once(0)
    assert out == [1]
    assert "handler broke" in caplog.text
    assert "ZeroDivisionError" in caplog.text


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_keyboard_interrupt_and_system_exit_pass_through(reactor, exc_type):
    def boom():
        raise exc_type()

    reactor.call_soon(boom)
    with pytest.raises(exc_type):
        reactor.run()
    assert not reactor.is_running
    # The reactor still works afterwards.
    out = []
    reactor.call_soon(out.append, 1)
    reactor.run_once(0)
    reactor.run_once(0)
    assert 1 in out


def test_slow_callback_is_logged_by_name(selector_cls, caplog):
    with Reactor(selector_cls(), slow_callback_s=0.02) as reactor:
        def sluggish_handler():
            time.sleep(0.05)  # the blocking handler under test, not synchronisation

        def quick_handler():
            pass

        reactor.call_soon(sluggish_handler)
        reactor.call_soon(quick_handler)
        with caplog.at_level(logging.WARNING, logger="evloop"):
            reactor.run_once(0)
        assert "sluggish_handler" in caplog.text
        assert "quick_handler" not in caplog.text


def test_slow_callbacks_off_by_default(reactor, caplog):
    reactor.call_soon(time.sleep, 0.02)
    with caplog.at_level(logging.DEBUG, logger="evloop"):
        reactor.run_once(0)
    assert not caplog.records


# -------------------------------------------------------------------- I/O
def test_reader_and_writer_on_socketpair(reactor, run_until):
    a, b = socket.socketpair()
    with a, b:
        got = []
        reactor.add_reader(a, lambda: got.append(a.recv(100)))
        writable = []
        reactor.add_writer(b, lambda: writable.append(1))
        run_until(reactor, lambda: writable)
        assert reactor.remove_writer(b) is True
        assert reactor.remove_writer(b) is False
        b.send(b"hello")
        run_until(reactor, lambda: got)
        assert got == [b"hello"]
        assert reactor.remove_reader(a) is True
        assert reactor.remove_reader(a) is False


def test_reader_args_and_fd_numbers(reactor, run_until):
    a, b = socket.socketpair()
    with a, b:
        got = []
        reactor.add_reader(a.fileno(), lambda sock, tag: got.append((tag, sock.recv(10))), a, "t")
        b.send(b"x")
        run_until(reactor, lambda: got)
        assert got == [("t", b"x")]
        # Removing by the socket object finds the registration made by fd.
        assert reactor.remove_reader(a) is True


def test_reader_and_writer_on_same_fd(reactor, run_until):
    a, b = socket.socketpair()
    with a, b:
        events = []
        reactor.add_writer(a, lambda: events.append("w"))
        reactor.add_reader(a, lambda: (events.append("r"), a.recv(10)))
        b.send(b"x")
        run_until(reactor, lambda: "r" in events and "w" in events)
        assert reactor.remove_writer(a)
        events.clear()
        b.send(b"y")
        run_until(reactor, lambda: "r" in events)
        assert "w" not in events
        assert reactor.remove_reader(a)
        assert not reactor.remove_reader(a)


def test_re_adding_replaces_callback(reactor, run_until):
    a, b = socket.socketpair()
    with a, b:
        got = []
        reactor.add_reader(a, lambda: got.append(("old", a.recv(10))))
        reactor.add_reader(a, lambda: got.append(("new", a.recv(10))))
        b.send(b"x")
        run_until(reactor, lambda: got)
        assert got == [("new", b"x")]
        w = []
        reactor.add_writer(a, lambda: w.append("old"))
        reactor.add_writer(a, lambda: w.append("new"))
        run_until(reactor, lambda: w)
        assert set(w) == {"new"}
        assert reactor.remove_reader(a) and reactor.remove_writer(a)


def test_removing_reader_in_same_pass_prevents_its_call(reactor):
    a, b = socket.socketpair()
    c, d = socket.socketpair()
    with a, b, c, d:
        calls = []

        def first():
            calls.append("first")
            a.recv(10)
            reactor.remove_reader(c)
            reactor.remove_reader(a)

        def second():
            calls.append("second")
            c.recv(10)
            reactor.remove_reader(a)
            reactor.remove_reader(c)

        reactor.add_reader(a, first)
        reactor.add_reader(c, second)
        b.send(b"x")
        d.send(b"x")  # a socketpair is readable as soon as send returns
        reactor.run_once(1)
        assert len(calls) == 1  # whichever ran first removed the other


def test_run_once_negative_timeout_polls(reactor):
    """A negative bound polls, as selectors' select() does (epoll.poll itself would block for ever)."""
    started = time.monotonic()
    reactor.run_once(-1.0)
    assert time.monotonic() - started < 2.0


class _UnrecognisedEpoll(selectors.EpollSelector if hasattr(selectors, "EpollSelector") else object):  # type: ignore[misc]
    """An EpollSelector subclass: the reactor takes selectors' own select() for it, the plain path."""


@pytest.mark.skipif(not hasattr(selectors, "EpollSelector"), reason="epoll is Linux's")
def test_own_epoll_poll_calls_what_selectors_select_calls():
    """The reactor's poll of an EpollSelector's epoll object (see Reactor.__init__) wakes the same
    readers and writers as selectors' select(): readable, writable, a peer's hangup, a peer's reset."""

    def woken(selector: selectors.BaseSelector) -> list[str]:
        calls: list[str] = []
        pairs = [socket.socketpair() for _ in range(3)]
        try:
            readable, hung_up, reset = pairs
            readable[1].send(b"x")
            hung_up[1].close()
            reset[1].setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            reset[1].close()
            with Reactor(selector) as reactor:
                for name, (sock, _) in zip(("readable", "hung_up", "reset"), pairs, strict=True):
                    reactor.add_reader(sock, calls.append, f"{name} reader")
                    reactor.add_writer(sock, calls.append, f"{name} writer")
                reactor.run_once(0)
        finally:
            for a, b in pairs:
                a.close()
                b.close()
        return sorted(calls)

    expected = woken(_UnrecognisedEpoll())
    assert "readable reader" in expected and "hung_up reader" in expected
    assert woken(selectors.EpollSelector()) == expected


def test_remove_unknown_returns_false(reactor):
    a, b = socket.socketpair()
    with a, b:
        assert reactor.remove_reader(a) is False
        assert reactor.remove_writer(b.fileno()) is False


def test_pipe_fd(reactor, run_until):
    r, w = os.pipe()
    try:
        got = []
        reactor.add_reader(r, lambda: got.append(os.read(r, 100)))
        writable = []
        reactor.add_writer(w, lambda: writable.append(1))
        run_until(reactor, lambda: writable)
        assert reactor.remove_writer(w)
        os.write(w, b"through a pipe")
        run_until(reactor, lambda: got)
        assert got == [b"through a pipe"]
        assert reactor.remove_reader(r)
    finally:
        os.close(r)
        os.close(w)


def test_object_with_fileno(reactor, run_until):
    r, w = os.pipe()

    class Wrapper:
        def fileno(self):
            return r

    try:
        got = []
        reactor.add_reader(Wrapper(), lambda: got.append(os.read(r, 10)))
        os.write(w, b"z")
        run_until(reactor, lambda: got)
        assert reactor.remove_reader(Wrapper())
    finally:
        os.close(r)
        os.close(w)


def test_a_new_file_is_registered_without_its_repr_and_its_number_can_be_reused(reactor, run_until):
    # The reactor tells a new descriptor by its own record, not by the selector's KeyError,
    # whose message is the object's repr (a socket's looks up its addresses, family, type).
    class Unprintable(socket.socket):
        def __repr__(self):
            raise AssertionError("repr() of a file being registered")

    a, b = socket.socketpair()
    with a, b:
        c = Unprintable(fileno=os.dup(a.fileno()))
        got = []
        reactor.add_reader(c, lambda: got.append(c.recv(10)))
        reactor.add_writer(c, lambda: got.append("writable") if reactor.remove_writer(c) else None)
        b.send(b"one")
        run_until(reactor, lambda: len(got) == 2)
        assert sorted(map(str, got)) == ["b'one'", "writable"]
        assert reactor.remove_reader(c)
        c.close()
        # Another socket, most likely given the same (lowest free) number: registered anew.
        d, e = socket.socketpair()
        with d, e:
            reactor.add_reader(d, lambda: got.append(d.recv(10)))
            e.send(b"two")
            run_until(reactor, lambda: len(got) == 3)
            assert got[2] == b"two" and reactor.remove_reader(d)
        with pytest.raises(ValueError):
            reactor.add_reader(c, lambda: None)  # closed: fileno() is -1


# ----------------------------------------------------------------- signals
def test_signal_delivered_as_callback(reactor, run_until):
    got = []
    in_signal_frame = []

    def handler(tag):
        import inspect
        in_signal_frame.append(any(f.function == "_ignore_in_signal_frame" for f in inspect.stack()))
        got.append(tag)

    before = signal.getsignal(signal.SIGUSR1)
    reactor.add_signal_handler(signal.SIGUSR1, handler, "usr1")
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        assert got == []  # not run inside the signal frame
        run_until(reactor, lambda: got)
        assert got == ["usr1"]
        assert in_signal_frame == [False]
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGUSR1)
        run_until(reactor, lambda: len(got) >= 2)
    finally:
        assert reactor.remove_signal_handler(signal.SIGUSR1) is True
    assert reactor.remove_signal_handler(signal.SIGUSR1) is False
    assert signal.getsignal(signal.SIGUSR1) is before


def test_signal_handler_replaced(reactor, run_until):
    got = []
    reactor.add_signal_handler(signal.SIGUSR2, got.append, "old")
    reactor.add_signal_handler(signal.SIGUSR2, got.append, "new")
    try:
        os.kill(os.getpid(), signal.SIGUSR2)
        run_until(reactor, lambda: got)
        assert got == ["new"]
    finally:
        reactor.remove_signal_handler(signal.SIGUSR2)


def test_signal_and_thread_safe_wake_byte_in_one_read_both_run(reactor, run_until):
    # The wake byte of a thread-safe call and a signal's number land in the
    # self-pipe together, so one drain reads them both.
    got = []
    reactor.add_signal_handler(signal.SIGUSR1, got.append, "signal")
    try:
        reactor.call_soon_threadsafe(got.append, "call")
        os.kill(os.getpid(), signal.SIGUSR1)
        run_until(reactor, lambda: len(got) == 2)
        assert sorted(got) == ["call", "signal"]
        reactor.call_soon_threadsafe(got.append, "again")  # the wake flag was cleared by that drain
        run_until(reactor, lambda: len(got) == 3)
    finally:
        reactor.remove_signal_handler(signal.SIGUSR1)


def _probe_wakeup_fd() -> int:
    """The current wakeup fd (set_wakeup_fd returns the old one)."""
    current = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(current)
    return current


def test_previous_handler_and_wakeup_fd_restored_on_removal(reactor):
    calls = []

    def previous(signum, frame):
        calls.append(signum)

    old = signal.signal(signal.SIGUSR1, previous)
    r, w = socket.socketpair()
    r.setblocking(False)
    w.setblocking(False)
    old_wakeup = signal.set_wakeup_fd(w.fileno())
    try:
        reactor.add_signal_handler(signal.SIGUSR1, lambda: None)
        assert signal.getsignal(signal.SIGUSR1) is not previous
        assert _probe_wakeup_fd() != w.fileno()
        reactor.add_signal_handler(signal.SIGUSR2, lambda: None)
        reactor.remove_signal_handler(signal.SIGUSR1)
        assert signal.getsignal(signal.SIGUSR1) is previous
        reactor.remove_signal_handler(signal.SIGUSR2)
        assert _probe_wakeup_fd() == w.fileno()
        os.kill(os.getpid(), signal.SIGUSR1)
        assert calls == [signal.SIGUSR1]
    finally:
        signal.set_wakeup_fd(old_wakeup)
        signal.signal(signal.SIGUSR1, old)
        r.close()
        w.close()


def test_handlers_restored_on_close(selector_cls):
    before_usr1 = signal.getsignal(signal.SIGUSR1)
    before_usr2 = signal.getsignal(signal.SIGUSR2)
    before_wakeup = _probe_wakeup_fd()
    reactor = Reactor(selector_cls())
    reactor.add_signal_handler(signal.SIGUSR1, lambda: None)
    reactor.add_signal_handler(signal.SIGUSR2, lambda: None)
    reactor.close()
    assert signal.getsignal(signal.SIGUSR1) is before_usr1
    assert signal.getsignal(signal.SIGUSR2) is before_usr2
    assert _probe_wakeup_fd() == before_wakeup


def test_failed_add_signal_handler_leaves_no_wakeup_fd(selector_cls):
    before_wakeup = _probe_wakeup_fd()
    reactor = Reactor(selector_cls())
    with pytest.raises((OSError, ValueError, RuntimeError)):
        reactor.add_signal_handler(signal.SIGKILL, lambda: None)
    assert _probe_wakeup_fd() == before_wakeup
    reactor.close()
    assert _probe_wakeup_fd() == before_wakeup


def test_signal_wakes_a_blocking_run_once(reactor):
    got = []
    reactor.add_signal_handler(signal.SIGUSR1, got.append, 1)
    try:
        # The kill happens from a timer callback while the reactor is about to
        # select with a long timeout: the wakeup fd must end that select.
        reactor.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
        reactor.run_once(0)
        t0 = time.monotonic()
        while not got and time.monotonic() - t0 < 3:
            reactor.run_once(2)
        assert got == [1]
        assert time.monotonic() - t0 < 1.5
    finally:
        reactor.remove_signal_handler(signal.SIGUSR1)


# ---------------------------------------------------------------- lifetime
def test_context_manager_closes(selector_cls):
    with Reactor(selector_cls()) as reactor:
        assert not reactor.is_closed
    assert reactor.is_closed
    with pytest.raises(RuntimeError):
        reactor.call_soon(lambda: None) and reactor.run_once(0)
    with pytest.raises(RuntimeError):
        reactor.add_reader(0, lambda: None)
    assert reactor.remove_reader(0) is False
    reactor.close()  # idempotent


def test_close_drops_pending_callbacks(selector_cls):
    reactor = Reactor(selector_cls())
    out = []
    reactor.call_soon(out.append, 1)
    reactor.call_later(0, out.append, 2)
    reactor.close()
    assert out == []


def test_close_while_running_raises(reactor):
    errors = []

    def try_close():
        try:
            reactor.close()
        except RuntimeError as exc:
            errors.append(exc)
        reactor.stop()

    reactor.call_soon(try_close)
    reactor.run()
    assert errors and not reactor.is_closed


def test_default_selector():
    with Reactor() as reactor:
        out = []
        reactor.call_soon(out.append, 1)
        reactor.run_once(0)
        assert out == [1]


def test_closed_reactors_release_descriptors(selector_cls):
    gc.collect()
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        r = Reactor(selector_cls())
        r.add_signal_handler(signal.SIGUSR1, lambda: None)
        r.close()
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) <= before


# -------------------------------------------------------------------- fork
def test_fork_child_uses_a_fresh_reactor(reactor, run_until, wait_child):
    a, b = socket.socketpair()
    with a, b:
        got = []
        reactor.add_reader(a, lambda: got.append(a.recv(100)))
        reactor.add_signal_handler(signal.SIGUSR1, lambda: None)
        try:
            pid = os.fork()
            if pid == 0:  # child
                code = 1
                try:
                    reactor.discard_after_fork()
                    with Reactor() as child:
                        fired = []
                        child.call_later(0.01, lambda: (fired.append(1), child.stop()))
                        child.run()
                        code = 7 if fired == [1] else 2
                finally:
                    os._exit(code)
            assert wait_child(pid) == 7
            # The parent's reactor still has its registrations.
            b.send(b"after fork")
            run_until(reactor, lambda: got)
            assert got == [b"after fork"]
            sig = []
            reactor.add_signal_handler(signal.SIGUSR1, sig.append, 1)
            os.kill(os.getpid(), signal.SIGUSR1)
            run_until(reactor, lambda: sig)
        finally:
            reactor.remove_signal_handler(signal.SIGUSR1)
            reactor.remove_reader(a)


def test_run_in_child_without_discard_raises(reactor, wait_child):
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            try:
                reactor.run()
            except RuntimeError as exc:
                code = 9 if "fork" in str(exc) or "process" in str(exc) else 3
        finally:
            os._exit(code)
    assert wait_child(pid) == 9
    out = []
    reactor.call_soon(out.append, 1)
    reactor.run_once(0)
    assert out == [1]
