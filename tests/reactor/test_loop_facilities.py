"""The reactor as a loop for embedders: thread-safe calls, the clock, futures, periodic
calls, stats, fork safety, and the edges that programs built on it ran into."""

from __future__ import annotations

import logging
import math
import os
import selectors
import signal
import socket
import sys
import threading
import time

import pytest

import evloop
from evloop import CancelledError, Future, InvalidStateError, ManualClock, Reactor


# ------------------------------------------------------------------ clock
def test_manual_clock_drives_timers_without_sleeping(selector_cls):
    clock = ManualClock()
    with Reactor(selector_cls(), clock=clock) as reactor:
        fired = []
        reactor.call_later(600, fired.append, "ten minutes")
        reactor.call_later(60, fired.append, "one minute")
        started = time.monotonic()
        reactor.run_once(0)
        assert fired == []
        clock.advance(59.999)
        reactor.run_once(0)
        assert fired == []
        clock.advance(0.001)
        reactor.run_once(0)
        assert fired == ["one minute"]
        clock.advance(540)
        reactor.run_once(0)
        assert fired == ["one minute", "ten minutes"]
        assert reactor.time() == 600
        assert time.monotonic() - started < 1.0


def test_manual_clock_never_sleeps_for_a_timer():
    """Without autojump a far timer does not bound select: run_once(0.01) waits 0.01 s of real time."""
    clock = ManualClock()
    with Reactor(clock=clock) as reactor:
        reactor.call_later(0.001, lambda: None)
        started = time.monotonic()
        reactor.run_once(0.05)
        assert time.monotonic() - started >= 0.04  # the caller's bound, not the timer's
        assert reactor.stats().timers_pending == 1  # time did not move, so it did not fire


def test_manual_clock_due_timer_does_not_block_an_unbounded_pass():
    clock = ManualClock()
    with Reactor(clock=clock) as reactor:
        out = []
        reactor.call_later(5, out.append, 1)
        clock.advance(5)
        reactor.run_once()  # no bound: must not sleep with a timer already due
        assert out == [1]


def test_cancelled_timers_leave_the_heap_on_the_next_pass(reactor):
    import gc
    import tracemalloc

    tracemalloc.start()
    try:
        timers = [reactor.call_later(10 + i % 100, lambda: None) for i in range(10_000)]
        reactor.call_soon(lambda: None)  # a ready callback: the pass does not look for a deadline
        for timer in timers:
            timer.cancel()
        reactor.run_once(0)
        del timers, timer
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # Nothing of the 10,000 timers is left (a heap entry and its timer are about 200 bytes).
    assert kept < 8 * 1024, kept


def test_autojump_clock_jumps_to_the_next_timer():
    clock = ManualClock(100.0, autojump=True)
    with Reactor(clock=clock) as reactor:
        fired = []
        reactor.call_later(3600, lambda: (fired.append(reactor.time()), reactor.stop()))
        started = time.monotonic()
        reactor.run()
        assert fired == [3700.0]
        assert time.monotonic() - started < 1.0


def test_manual_clock_rejects_going_backwards_and_non_finite():
    clock = ManualClock(5)
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.set(4)
    with pytest.raises(ValueError):
        clock.advance(math.nan)
    with pytest.raises(ValueError):
        ManualClock(math.inf)
    clock.set(7)
    assert clock.time() == 7


def test_default_clock_is_monotonic(reactor):
    assert isinstance(reactor.clock, evloop.MonotonicClock)
    assert abs(reactor.time() - time.monotonic()) < 1


# --------------------------------------------------- timers: bad delays
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_call_later_rejects_nan_and_infinities(reactor, bad):
    with pytest.raises(ValueError):
        reactor.call_later(bad, lambda: None)
    with pytest.raises(ValueError):
        reactor.call_at(bad, lambda: None)
    # The loop is unharmed: a later timer still fires.
    out = []
    reactor.call_later(0, out.append, 1)
    reactor.run_once(0)
    assert out == [1]


def test_negative_delay_counts_as_zero(selector_cls):
    clock = ManualClock(10)
    with Reactor(selector_cls(), clock=clock) as reactor:
        out = []
        reactor.call_later(0, out.append, "first")
        timer = reactor.call_later(-5, out.append, "second")
        assert timer.when == 10
        reactor.run_once(0)
        assert out == ["first", "second"]  # same deadline: scheduling order


# ---------------------------------------------------------- call_every
def test_call_every_is_drift_free(selector_cls):
    clock = ManualClock()
    with Reactor(selector_cls(), clock=clock) as reactor:
        seen = []

        def beat():
            seen.append(reactor.time())
            clock.advance(0.3)  # the callback itself takes 0.3 s

        handle = reactor.call_every(1.0, beat)
        for _ in range(5):
            clock.set(handle.when)
            reactor.run_once(0)
        assert seen == [1.0, 2.0, 3.0, 4.0, 5.0]  # not 1, 2.3, 3.6, ...
        assert handle.calls == 5 and handle.missed == 0


def test_call_every_skips_missed_beats_after_a_stall(selector_cls):
    clock = ManualClock()
    with Reactor(selector_cls(), clock=clock) as reactor:
        seen = []
        handle = reactor.call_every(1.0, lambda: seen.append(reactor.time()))
        clock.advance(1.0)
        reactor.run_once(0)
        clock.advance(4.5)  # a stall: beats at 2, 3, 4 and 5 were missed (now 5.5)
        reactor.run_once(0)
        reactor.run_once(0)
        assert seen == [1.0, 5.5]  # one late call, no burst
        assert handle.when == 6.0 and handle.missed == 3
        clock.set(6.0)
        reactor.run_once(0)
        assert seen == [1.0, 5.5, 6.0]


def test_call_every_cancel_from_inside_and_after_errors(reactor, caplog):
    clock = ManualClock()
    with Reactor(clock=clock) as r:
        calls = []

        def beat():
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("beat failed")
            if len(calls) == 3:
                handle.cancel()

        handle = r.call_every(2, beat)
        with caplog.at_level(logging.ERROR, logger="evloop"):
            for _ in range(6):
                clock.advance(2)
                r.run_once(0)
        assert len(calls) == 3  # went on after the error, stopped by cancel()
        assert "beat failed" in caplog.text
        assert r.stats().timers_pending == 0
    with pytest.raises(ValueError):
        reactor.call_every(0, lambda: None)
    with pytest.raises(ValueError):
        reactor.call_every(math.nan, lambda: None)


# ---------------------------------------------------------- thread-safe calls
def test_call_soon_threadsafe_wakes_a_sleeping_loop(reactor):
    """The loop sleeps in select with no timer pending; another thread's call runs within a millisecond."""
    latencies = []
    woke = threading.Event()

    def handled(sent_at):
        latencies.append(time.perf_counter() - sent_at)
        woke.set()

    def other_thread():
        for _ in range(20):
            woke.clear()
            time.sleep(0.002)  # let the loop go back to sleep in select
            reactor.call_soon_threadsafe(handled, time.perf_counter())
            if not woke.wait(5):
                return
        reactor.call_soon_threadsafe(reactor.stop)

    thread = threading.Thread(target=other_thread)
    thread.start()
    try:
        reactor.run()  # no timer, no bound: only the self-pipe can wake it
    finally:
        thread.join(10)
    assert len(latencies) == 20
    latencies.sort()
    assert latencies[len(latencies) // 2] < 0.001, latencies


def test_call_soon_threadsafe_from_many_threads_loses_nothing(reactor, run_until):
    got = []
    threads = [
        threading.Thread(target=lambda n=n: [reactor.call_soon_threadsafe(got.append, (n, i)) for i in range(500)])
        for n in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    run_until(reactor, lambda: len(got) == 2000)
    for n in range(4):
        assert [i for m, i in got if m == n] == list(range(500))  # each thread's calls in order


def test_call_soon_threadsafe_returns_a_cancellable_handle(reactor):
    out = []
    handle = reactor.call_soon_threadsafe(out.append, "no")
    reactor.call_soon_threadsafe(out.append, "yes")
    handle.cancel()
    reactor.run_once(0.5)
    reactor.run_once(0)
    assert out == ["yes"]


def test_call_soon_threadsafe_after_close_raises(selector_cls):
    reactor = Reactor(selector_cls())
    reactor.close()
    with pytest.raises(RuntimeError):
        reactor.call_soon_threadsafe(lambda: None)


# ------------------------------------------------------------------ futures
def test_future_result_and_callbacks_run_from_the_loop(reactor):
    future = reactor.create_future()
    assert isinstance(future, Future) and not future.done()
    with pytest.raises(InvalidStateError):
        future.result()
    seen = []
    future.add_done_callback(seen.append)
    future.set_result(42)
    assert seen == []  # never synchronously
    assert future.done() and future.result() == 42 and future.exception() is None
    reactor.run_once(0)
    assert seen == [future]
    late = []
    future.add_done_callback(late.append)  # already done: scheduled, not called now
    assert late == []
    reactor.run_once(0)
    assert late == [future]
    with pytest.raises(InvalidStateError):
        future.set_result(1)


def test_future_exception_and_cancel(reactor):
    failed = reactor.create_future()
    failed.set_exception(ValueError("bad"))
    with pytest.raises(ValueError, match="bad"):
        failed.result()
    assert isinstance(failed.exception(), ValueError)
    assert not failed.cancel()

    cancelled = reactor.create_future()
    removed = reactor.create_future()
    calls = []
    cancelled.add_done_callback(calls.append)
    cancelled.add_done_callback(calls.append)
    assert cancelled.remove_done_callback(calls.append) == 2
    assert cancelled.cancel("no longer wanted") and cancelled.cancelled()
    with pytest.raises(CancelledError, match="no longer wanted"):
        cancelled.result()
    with pytest.raises(CancelledError):
        cancelled.exception()
    reactor.run_once(0)
    assert calls == []
    removed.set_exception(KeyError)  # a class is instantiated
    assert isinstance(removed.exception(), KeyError)


def test_run_until_complete_returns_result_or_raises(reactor):
    future = reactor.create_future()
    reactor.call_later(0.01, future.set_result, "done")
    assert reactor.run_until_complete(future) == "done"
    assert not reactor.is_running

    failing = reactor.create_future()
    reactor.call_soon(failing.set_exception, OSError("nope"))
    with pytest.raises(OSError, match="nope"):
        reactor.run_until_complete(failing)


def test_run_until_complete_timeout_on_the_reactor_clock():
    clock = ManualClock(autojump=True)
    with Reactor(clock=clock) as reactor:
        never = reactor.create_future()
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            reactor.run_until_complete(never, timeout_s=300)
        assert reactor.time() == 300
        assert time.monotonic() - started < 1
        assert not never.done()
        assert reactor.stats().timers_pending == 0  # the timeout timer is gone


def test_run_until_complete_refuses_while_running_and_after_stop(reactor):
    errors = []
    future = reactor.create_future()

    def nested():
        try:
            reactor.run_until_complete(future)
        except RuntimeError as exc:
            errors.append(exc)
        reactor.stop()

    reactor.call_soon(nested)
    reactor.run()
    assert errors
    reactor.call_soon(reactor.stop)
    with pytest.raises(RuntimeError, match="stopped"):
        reactor.run_until_complete(future)


# ------------------------------------------------------------ re-entry
def test_nested_run_once_is_refused(reactor):
    errors = []
    after = []

    def nested():
        try:
            reactor.run_once(0)
        except RuntimeError as exc:
            errors.append(exc)

    reactor.call_soon(nested)
    reactor.call_soon(after.append, 1)
    reactor.call_soon(reactor.stop)
    reactor.run()  # the outer loop goes on
    assert errors and "re-entrant" in str(errors[0])
    assert after == [1]


# ----------------------------------------------------------- stop() before run()
def test_stop_before_run_runs_one_pass(reactor):
    out = []
    reactor.call_soon(out.append, 1)
    reactor.stop()
    started = time.monotonic()
    reactor.run()  # one pass, then it returns
    assert out == [1]
    assert time.monotonic() - started < 1
    assert not reactor.is_running


# ------------------------------------------------------------ select's fd limit
def test_select_selector_refuses_descriptors_past_its_limit():
    with Reactor(selectors.SelectSelector()) as reactor:
        a, b = socket.socketpair()
        try:
            high = os.dup2(a.fileno(), 1500)
        except OSError:
            pytest.skip("cannot open descriptor 1500 here (RLIMIT_NOFILE)")
        try:
            with pytest.raises(ValueError, match="1024"):
                reactor.add_reader(high, lambda: None)
            out = []
            reactor.call_soon(out.append, 1)
            reactor.run_once(0)  # the loop goes on: the descriptor never reached select()
            assert out == [1]
        finally:
            os.close(high)
            a.close()
            b.close()


# ------------------------------------------------------- the exception handler
def test_every_user_exception_reaches_the_handler_with_context(reactor, run_until):
    from evloop import Protocol, SocketTransport

    seen = []
    reactor.set_exception_handler(lambda loop, context: seen.append(context))

    class Broken(Protocol):
        def data_received(self, data):
            raise ValueError("bad data")

        def pause_writing(self):
            raise KeyError("bad pause")

    a, b = socket.socketpair()
    with b:
        protocol = Broken()
        transport = SocketTransport(reactor, a, protocol, high_water=1)
        transport.start()
        b.send(b"x")
        run_until(reactor, lambda: any("data_received" in c["message"] for c in seen))
        context = next(c for c in seen if "data_received" in c["message"])
        assert isinstance(context["exception"], ValueError)
        assert context["transport"] is transport and context["protocol"] is protocol
        assert transport.is_closing()  # aborted, as asyncio does

    a2, b2 = socket.socketpair()
    with b2:
        transport2 = SocketTransport(reactor, a2, Broken(), high_water=1)
        transport2.start()
        transport2.write(b"more than one byte" * 100000)  # past the high water mark: pause_writing raises
        context = next(c for c in seen if "pause_writing" in c["message"])
        assert isinstance(context["exception"], KeyError) and context["transport"] is transport2
        transport2.abort()
        reactor.run_once(0)

    handle = reactor.call_soon(lambda: 1 / 0)
    reactor.run_once(0)
    assert seen[-1]["handle"] is handle and isinstance(seen[-1]["exception"], ZeroDivisionError)


def test_default_exception_handler_logs_context(reactor, caplog):
    with caplog.at_level(logging.ERROR, logger="evloop"):
        reactor.call_exception_handler({"message": "something broke", "exception": OSError("x"), "transport": "T"})
    assert "something broke" in caplog.text and "'T'" in caplog.text and "OSError" in caplog.text


# -------------------------------------------------------------------- stats
def test_stats_counts_passes_callbacks_and_timer_lag():
    clock = ManualClock()
    with Reactor(clock=clock) as reactor:
        before = reactor.stats()
        for _ in range(3):
            reactor.call_soon(lambda: None)
        reactor.call_later(1.0, lambda: None)
        reactor.call_later(50, lambda: None)
        reactor.run_once(0)
        clock.advance(1.25)  # the timer due at 1.0 runs 0.25 s late
        reactor.run_once(0)
        stats = reactor.stats()
        assert stats.passes - before.passes == 2
        assert stats.callbacks - before.callbacks == 4
        assert stats.timers_pending == 1
        assert stats.max_timer_lag_s == pytest.approx(0.25)
        assert stats.interval_s == pytest.approx(1.25)
        assert reactor.stats().max_timer_lag_s == 0.0  # a new interval


# ------------------------------------------------------------ a second reactor's signals
def test_second_reactor_cannot_steal_signal_handlers(selector_cls):
    first = Reactor(selector_cls())
    second = Reactor(selector_cls())
    try:
        first.add_signal_handler(signal.SIGUSR1, lambda: None)
        with pytest.raises(RuntimeError, match="another Reactor"):
            second.add_signal_handler(signal.SIGUSR2, lambda: None)
        # Still the first's: a signal reaches it.
        got = []
        first.add_signal_handler(signal.SIGUSR1, got.append, 1)
        os.kill(os.getpid(), signal.SIGUSR1)
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            first.run_once(0.05)
        assert got == [1]
        first.close()
        second.add_signal_handler(signal.SIGUSR2, lambda: None)  # free once the first is closed
    finally:
        first.close()
        second.close()


# --------------------------------------------------------------------- fork
def _sigterm_still_reaches(reactor: Reactor) -> bool:
    got = []
    reactor.add_signal_handler(signal.SIGTERM, got.append, "TERM")
    os.kill(os.getpid(), signal.SIGTERM)
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        reactor.run_once(0.05)
    return got == ["TERM"]


def test_child_leaving_with_reactor_does_not_break_the_parent(selector_cls, wait_child):
    """A child that leaves ``with Reactor()`` (sys.exit) runs close(): the parent must keep its signals."""
    with Reactor(selector_cls()) as reactor:
        reactor.add_signal_handler(signal.SIGTERM, lambda: None)
        pid = os.fork()
        if pid == 0:  # the child closes its inherited copy, as `with` would
            code = 1
            try:
                reactor.close()
                code = 0
            finally:
                os._exit(code)
        assert wait_child(pid) == 0
        assert _sigterm_still_reaches(reactor)  # the shared epoll set still has the parent's self-pipe
        reactor.remove_signal_handler(signal.SIGTERM)


def test_run_once_in_a_forked_child_is_refused(selector_cls, wait_child):
    with Reactor(selector_cls()) as reactor:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                try:
                    reactor.run_once(0)
                except RuntimeError as exc:
                    code = 9 if "process" in str(exc) else 3
            finally:
                os._exit(code)
        assert wait_child(pid) == 9


def test_reactor_fork_keeps_signals_of_child_and_parent_apart(selector_cls, tmp_path, wait_child):
    """A signal sent to the child right after fork() never runs the parent's handler."""
    with Reactor(selector_cls()) as reactor:
        parent_got = []
        reactor.add_signal_handler(signal.SIGUSR1, parent_got.append, "parent")
        ready_r, ready_w = os.pipe()
        pid = reactor.fork()
        if pid == 0:
            code = 1
            try:
                os.close(ready_r)
                assert reactor.is_closed
                # The handler from before the reactor's is back: SIGUSR1's default ends the process.
                code = 5 if signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL else 6
                with Reactor() as mine:
                    child_got = []
                    mine.add_signal_handler(signal.SIGUSR1, child_got.append, "child")
                    os.write(ready_w, b"r")
                    deadline = time.monotonic() + 5
                    while not child_got and time.monotonic() < deadline:
                        mine.run_once(0.05)
                    code = 7 if child_got == ["child"] and code == 5 else 8
            finally:
                os._exit(code)
        os.close(ready_w)
        os.kill(pid, signal.SIGUSR1)  # before the child is ready: the default action could kill it ...
        status = wait_child(pid)
        os.close(ready_r)
        # ... or it arrived after the child's own handler: either way the parent's handler never ran.
        assert status in (7, -signal.SIGUSR1)
        for _ in range(5):
            reactor.run_once(0.01)
        assert parent_got == []
        assert _sigterm_still_reaches(reactor)
        reactor.remove_signal_handler(signal.SIGTERM)


def test_reactor_fork_child_with_its_own_loop(selector_cls, wait_child):
    with Reactor(selector_cls()) as reactor:
        reactor.add_signal_handler(signal.SIGUSR1, lambda: None)
        pid = reactor.fork()
        if pid == 0:
            code = 1
            try:
                with Reactor() as mine:
                    future = mine.create_future()
                    mine.call_later(0.01, future.set_result, 7)
                    code = mine.run_until_complete(future, timeout_s=5)
            finally:
                os._exit(code)
        assert wait_child(pid) == 7
        assert _sigterm_still_reaches(reactor)
        reactor.remove_signal_handler(signal.SIGTERM)


def test_failing_factory_connection_made_and_connection_lost_are_reported_with_context(reactor, run_until):
    from evloop import Protocol, listen

    seen = []
    reactor.set_exception_handler(lambda loop, context: seen.append(context))
    made = []

    class Flaky(Protocol):
        def connection_made(self, transport):
            made.append(transport)
            if len(made) == 1:
                raise ValueError("first connection_made fails")

        def connection_lost(self, exc):
            raise KeyError("connection_lost fails")

    calls = []

    def factory():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("factory fails")
        return Flaky()

    listener = listen(reactor, factory, "127.0.0.1", 0)
    clients = [socket.create_connection(("127.0.0.1", listener.port), timeout=5) for _ in range(3)]
    try:
        run_until(reactor, lambda: len(made) == 2)
        messages = [c["message"] for c in seen]
        assert any("factory failed" in m for m in messages)
        assert any("connection_made() failed" in m for m in messages)
        context = next(c for c in seen if "connection_made" in c["message"])
        assert context["transport"] is made[0] and isinstance(context["exception"], ValueError)
        made[1].close()
        run_until(reactor, lambda: any(c.get("transport") is made[1] for c in seen))
        lost = next(c for c in seen if c.get("transport") is made[1])
        assert "connection_lost() failed" in lost["message"] and isinstance(lost["exception"], KeyError)
    finally:
        for c in clients:
            c.close()
        listener.close()


def test_call_every_beats_are_computed_not_accumulated():
    clock = ManualClock()
    with Reactor(clock=clock) as reactor:
        handle = reactor.call_every(0.1, lambda: None)
        for k in range(1, 2001):
            clock.set(k * 0.1)  # exactly beat k's time: 0.1 added k times would drift past it
            reactor.run_once(0)
            assert handle.calls == k, k
        assert handle.missed == 0


# ----------------------------------------------------------- more edges
def test_any_fork_discards_inherited_reactors(selector_cls, wait_child):
    """os.fork() directly (as multiprocessing does): the child's signals are its own."""
    with Reactor(selector_cls()) as reactor:
        parent_got = []
        reactor.add_signal_handler(signal.SIGUSR1, parent_got.append, "parent")
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(r)
                ok = reactor.is_closed and signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
                with Reactor() as mine:
                    got = []
                    mine.add_signal_handler(signal.SIGUSR2, got.append, "child")
                    reactor.close()  # closing the inherited one must not undo the child's handlers
                    os.kill(os.getpid(), signal.SIGUSR2)
                    deadline = time.monotonic() + 5
                    while not got and time.monotonic() < deadline:
                        mine.run_once(0.05)
                    code = 7 if ok and got == ["child"] else 8
                os.write(w, b"r")
                os.kill(os.getpid(), signal.SIGUSR1)  # default action: the child ends, the parent hears nothing
                code = 9
            finally:
                os._exit(code)
        os.close(w)
        assert os.read(r, 1) == b"r"
        assert wait_child(pid) == -signal.SIGUSR1
        os.close(r)
        for _ in range(5):
            reactor.run_once(0.01)
        assert parent_got == []
        reactor.remove_signal_handler(signal.SIGUSR1)


def test_a_forked_child_cannot_change_the_parents_registrations(wait_child):
    from evloop import Protocol, listen

    with Reactor(selectors.EpollSelector()) as reactor:
        accepted = []
        listener = listen(reactor, lambda: (accepted.append(1), Protocol())[1], "127.0.0.1", 0)
        port = listener.port
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                listener.close()  # a child tidying up: must not unregister the parent's listener
                try:
                    reactor.add_reader(0, lambda: None)
                except RuntimeError:
                    code = 0
            finally:
                os._exit(code)
        assert wait_child(pid) == 0
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        deadline = time.monotonic() + 5
        while not accepted and time.monotonic() < deadline:
            reactor.run_once(0.05)
        client.close()
        assert accepted == [1]
        listener.close()


def test_signals_are_not_lost_behind_many_thread_safe_calls(reactor):
    got = []
    reactor.add_signal_handler(signal.SIGUSR1, got.append, "USR1")
    try:
        calls = []
        # Queued from another thread while the loop is not reading the self-pipe.
        thread = threading.Thread(target=lambda: [reactor.call_soon_threadsafe(calls.append, i) for i in range(20_000)])
        thread.start()
        thread.join(10)
        os.kill(os.getpid(), signal.SIGUSR1)
        deadline = time.monotonic() + 5
        while not (got and len(calls) == 20_000) and time.monotonic() < deadline:
            reactor.run_once(0.05)
        assert got == ["USR1"] and len(calls) == 20_000
    finally:
        reactor.remove_signal_handler(signal.SIGUSR1)


def test_a_removed_signal_handler_does_not_run(reactor):
    got = []

    def on_term():
        got.append("TERM")
        reactor.remove_signal_handler(signal.SIGUSR2)

    reactor.add_signal_handler(signal.SIGUSR1, on_term)
    reactor.add_signal_handler(signal.SIGUSR2, got.append, "USR2")
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGUSR2)  # both read in one pass; the first removes the second
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            reactor.run_once(0.05)
        for _ in range(3):
            reactor.run_once(0.01)
        assert got == ["TERM"]
    finally:
        reactor.remove_signal_handler(signal.SIGUSR1)
        reactor.remove_signal_handler(signal.SIGUSR2)


def test_stop_outside_run_does_not_make_run_once_spin(reactor):
    reactor.stop()
    started = time.monotonic()
    reactor.run_once(0.05)  # waits its bound: nothing is ready
    assert time.monotonic() - started >= 0.04
    reactor.run()  # the stop still counts for run(): one pass, then it returns


def test_default_exception_handler_survives_a_failing_repr(reactor, caplog):
    class BadRepr:
        def __repr__(self):
            raise RuntimeError("no repr")

    with caplog.at_level(logging.ERROR, logger="evloop"):
        reactor.call_exception_handler({"message": "boom", "exception": ValueError("x"), "protocol": BadRepr()})
    assert "boom" in caplog.text and "repr() failed" in caplog.text


def test_select_selector_connection_past_the_limit_is_closed_not_left_open(run_until):
    """An accepted connection whose descriptor select() cannot watch is aborted and reported."""
    import resource

    from evloop import Protocol, listen

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 1100:
        pytest.skip("needs more than 1100 descriptors")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1100), hard))
    fillers = []
    try:
        with Reactor(selectors.SelectSelector()) as reactor:
            seen = []
            reactor.set_exception_handler(lambda loop, context: seen.append(context))
            lost = []

            class Watch(Protocol):
                def connection_lost(self, exc):
                    lost.append(exc)

            listener = listen(reactor, Watch, "127.0.0.1", 0)
            while True:  # use up every descriptor below select()'s limit
                fd = os.open(os.devnull, os.O_RDONLY)
                fillers.append(fd)
                if fd >= 1030:
                    break
            client = socket.create_connection(("127.0.0.1", listener.port), timeout=5)
            run_until(reactor, lambda: lost)
            assert isinstance(lost[0], ValueError)
            assert any("cannot watch" in c["message"] for c in seen)
            client.settimeout(5)
            assert client.recv(10) == b""  # closed, not left hanging
            client.close()
            listener.close()
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _future_in(reactor, state):
    future = reactor.create_future()
    if state == "finished":
        future.set_result(1)
    elif state == "failed":
        future.set_exception(ValueError("x"))
    elif state == "cancelled":
        future.cancel()
    return future


@pytest.mark.parametrize("state", ["pending", "finished", "failed", "cancelled"])
@pytest.mark.parametrize("event", ["set_result", "set_exception", "cancel"])
def test_future_every_state_and_event(reactor, state, event):
    future = _future_in(reactor, state)
    calls = []
    future.add_done_callback(calls.append)
    if state == "pending":
        outcome = {"set_result": lambda: future.set_result(2), "set_exception": lambda: future.set_exception(KeyError),
                   "cancel": future.cancel}[event]()
        assert future.done()
        assert future.cancelled() == (event == "cancel")
        if event == "cancel":
            assert outcome is True
    elif event == "cancel":
        assert future.cancel() is False  # done futures do not change
    else:
        with pytest.raises(InvalidStateError, match=state if state != "failed" else "finished"):
            getattr(future, event)(3 if event == "set_result" else KeyError)
    reactor.run_once(0)
    assert calls == [future]  # exactly once, from the loop


def test_scheduling_on_a_closed_reactor_raises(selector_cls):
    reactor = Reactor(selector_cls())
    reactor.close()
    for schedule in (lambda: reactor.call_soon(print), lambda: reactor.call_later(1, print),
                     lambda: reactor.call_at(1, print), lambda: reactor.call_every(1, print)):
        with pytest.raises(RuntimeError, match="closed"):
            schedule()


def test_a_periodic_callbacks_error_names_its_handle():
    clock = ManualClock()
    with Reactor(clock=clock) as reactor:
        seen = []
        reactor.set_exception_handler(lambda loop, context: seen.append(context))

        def tick():
            raise ValueError("tick failed")

        handle = reactor.call_every(1, tick)
        clock.advance(1)
        reactor.run_once(0)
        assert seen[0]["handle"] is handle and "tick" in seen[0]["message"]
        assert isinstance(seen[0]["exception"], ValueError)
        clock.advance(1)
        reactor.run_once(0)
        assert handle.calls == 2  # the beats go on


def test_thread_safe_wake_ups_are_never_lost_under_contention():
    """Bursts of calls from another thread, each burst waited for: none may stall the loop."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, to hit every interleaving
    stalls = []
    try:
        with Reactor() as reactor:
            def poster():
                deadline = time.monotonic() + 3
                burst = 0
                while time.monotonic() < deadline:
                    for _ in range(3):
                        reactor.call_soon_threadsafe(int)
                    ran = threading.Event()
                    reactor.call_soon_threadsafe(ran.set)
                    if not ran.wait(1.0):
                        stalls.append(burst)
                        break
                    burst += 1
                reactor.call_soon_threadsafe(reactor.stop)

            thread = threading.Thread(target=poster)
            thread.start()
            watchdog = reactor.call_later(10, reactor.stop)  # bounds the test if a wake-up is lost
            reactor.run()
            watchdog.cancel()
            thread.join(10)
    finally:
        sys.setswitchinterval(previous)
    assert stalls == []


def test_a_failing_repr_does_not_break_reporting(reactor, caplog):
    import functools

    class Unprintable:
        def __repr__(self):
            raise RuntimeError("no repr")

    def fails(_):
        raise ValueError("the callback's own error")

    later = []
    reactor.call_soon(functools.partial(fails, Unprintable()))
    reactor.call_soon(later.append, 1)
    with caplog.at_level(logging.ERROR, logger="evloop"):
        reactor.run_once(0)
    assert later == [1] and "the callback's own error" in caplog.text


def test_a_periodic_call_interrupted_by_keyboard_interrupt_goes_on():
    clock = ManualClock()
    with Reactor(clock=clock) as reactor:
        def tick():
            if handle.calls == 2:
                raise KeyboardInterrupt

        handle = reactor.call_every(1, tick)
        for _ in range(6):
            clock.advance(1)
            try:
                reactor.run_once(0)
            except KeyboardInterrupt:
                pass  # a host that catches it and goes on
        assert handle.calls == 6


def test_close_ends_even_when_connection_lost_opens_a_replacement():
    from evloop import Protocol, SocketTransport

    reactor = Reactor()
    seen = []
    reactor.set_exception_handler(lambda loop, context: seen.append(context))
    peers = []

    class SelfHealing(Protocol):
        def connection_lost(self, exc):
            a, b = socket.socketpair()
            peers.extend((a, b))
            SocketTransport(reactor, a, SelfHealing()).start()  # refused while closing

    a, b = socket.socketpair()
    peers.append(b)
    SocketTransport(reactor, a, SelfHealing()).start()
    reactor.close()  # returns: the replacement is refused
    assert reactor.is_closed
    assert any(isinstance(c["exception"], RuntimeError) and "closing" in str(c["exception"]) for c in seen)
    for s in peers:
        s.close()


# ------------------------------------------------------------- idle callbacks
def test_an_idle_callback_runs_when_nothing_else_is_ready(reactor):
    ran = []
    reactor.call_when_idle(ran.append, "idle")
    reactor.call_soon(ran.append, "soon")
    reactor.run_once(0)
    assert ran == ["soon"]  # something was ready: not idle yet
    reactor.run_once(0)
    assert ran == ["soon", "idle"]
    reactor.run_once(0)
    assert ran == ["soon", "idle"]  # once


def test_an_idle_callback_waits_while_io_keeps_arriving(reactor):
    a, b = socket.socketpair()
    try:
        a.setblocking(False)
        got = []
        reactor.add_reader(a, lambda: got.append(a.recv(100)))
        ran = []
        reactor.call_when_idle(ran.append, "idle")
        for i in range(3):
            b.send(b"x%d" % i)
            reactor.run_once(1.0)  # the poll finds the byte: a busy pass, no idle callback
            assert ran == [] and len(got) == i + 1
        reactor.run_once(0)  # the poll finds nothing: idle
        assert ran == ["idle"]
        reactor.remove_reader(a)
    finally:
        a.close()
        b.close()


def test_a_cancelled_idle_callback_does_not_run(reactor):
    ran = []
    reactor.call_when_idle(ran.append, "idle").cancel()
    reactor.run_once(0)
    reactor.run_once(0)
    assert ran == []
