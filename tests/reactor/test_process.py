"""Child processes through spawn(): pipes, backpressure, exit codes, and nothing left behind.

Every test runs with the exit learnt both ways: from a pidfd (where the
kernel has them) and from SIGCHLD (``use_pidfd=False``, the fallback).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from evloop import ProcessProtocol, Reactor, spawn
from evloop.net.process import pidfd_supported

PY = sys.executable
MODES = [pytest.param(None, id="pidfd" if pidfd_supported() else "auto"), pytest.param(False, id="sigchld")]
WAIT_S = 20.0


@pytest.fixture(params=MODES)
def use_pidfd(request):
    return request.param


class Recorder(ProcessProtocol):
    """Records the call grammar and what each pipe brought."""

    def __init__(self):
        self.events: list[tuple] = []
        self.output = {1: bytearray(), 2: bytearray()}
        self.transport = None
        self.returncode = None

    def connection_made(self, transport):
        assert not self.events
        self.transport = transport
        self.events.append(("CM",))

    def pipe_data_received(self, fd, data):
        assert self.returncode is None, "data after process_exited"
        self.output[fd] += data

    def pipe_connection_lost(self, fd, exc):
        assert self.returncode is None
        self.events.append(("lost", fd, exc))

    def process_exited(self, returncode):
        assert self.returncode is None, "process_exited twice"
        self.returncode = returncode
        self.events.append(("exit", returncode))

    def pause_writing(self):
        self.events.append(("PW",))

    def resume_writing(self):
        self.events.append(("RW",))


def run(reactor: Reactor, argv, use_pidfd, **kwargs) -> Recorder:
    protocol = Recorder()
    transport = spawn(reactor, argv, lambda: protocol, use_pidfd=use_pidfd, **kwargs)
    assert reactor.run_until_complete(transport.exited, WAIT_S) == protocol.returncode
    return protocol


@pytest.mark.parametrize("script, code", [
    ("pass", 0),
    ("raise SystemExit(3)", 3),
    ("import os, signal; os.kill(os.getpid(), signal.SIGTERM)", -signal.SIGTERM),
])
def test_exit_codes(reactor, use_pidfd, script, code):
    protocol = run(reactor, [PY, "-c", script], use_pidfd)
    assert protocol.returncode == code
    # Every pipe is lost (drained) before process_exited, which comes last, once.
    assert sorted(e for e in protocol.events[1:-1]) == [("lost", 0, None), ("lost", 1, None), ("lost", 2, None)]
    assert protocol.events[-1] == ("exit", code)


def test_kill_terminate_and_signals_after_exit(reactor, use_pidfd):
    for stop, code in (("kill", -signal.SIGKILL), ("terminate", -signal.SIGTERM)):
        protocol = Recorder()
        transport = spawn(reactor, ["sleep", "60"], lambda p=protocol: p, use_pidfd=use_pidfd)
        getattr(transport, stop)()
        assert reactor.run_until_complete(transport.exited, WAIT_S) == code
        assert transport.returncode == code
        # Its pid may belong to someone else now: no signal goes there.
        with pytest.raises(ProcessLookupError):
            transport.send_signal(signal.SIGTERM)


def test_output_arrives_before_process_exited(reactor, use_pidfd):
    script = "import sys; sys.stdout.write('out' * 50000); sys.stderr.write('err'); raise SystemExit(5)"
    protocol = run(reactor, [PY, "-c", script], use_pidfd)
    assert protocol.output[1] == b"out" * 50000
    assert protocol.output[2] == b"err"
    assert protocol.returncode == 5


def test_stdin_written_then_closed_with_write_eof(reactor, use_pidfd):
    protocol = Recorder()
    transport = spawn(reactor, ["cat"], lambda: protocol, use_pidfd=use_pidfd)
    stdin = transport.get_pipe_transport(0)
    assert stdin.can_write_eof()
    stdin.write(b"hello ")
    stdin.writelines([b"from ", memoryview(b"the parent")])
    stdin.write_eof()
    assert reactor.run_until_complete(transport.exited, WAIT_S) == 0
    assert protocol.output[1] == b"hello from the parent"
    # stdin was lost first, when we closed it; cat then saw EOF and exited.
    assert protocol.events[1] == ("lost", 0, None)


def test_stdin_backpressure_and_stdout_pause(reactor, use_pidfd, run_until):
    """cat, with our reading of its stdout paused: its pipes fill, ours queues and pauses, then all flows."""
    protocol = Recorder()
    transport = spawn(reactor, ["cat"], lambda: protocol, use_pidfd=use_pidfd)
    stdout, stdin = transport.get_pipe_transport(1), transport.get_pipe_transport(0)
    stdout.pause_reading()
    assert not stdout.is_reading()
    payload = bytes(range(256)) * 16384  # 4 MiB: more than two pipes and cat's buffer hold
    stdin.write(payload)
    assert stdin.get_write_buffer_size() > 64 * 1024
    assert ("PW",) in protocol.events
    for _ in range(5):
        reactor.run_once(0.01)
    assert protocol.output[1] == b""  # paused: nothing delivered
    stdout.resume_reading()
    run_until(reactor, lambda: ("RW",) in protocol.events, WAIT_S)
    stdin.write_eof()
    assert reactor.run_until_complete(transport.exited, WAIT_S) == 0
    assert protocol.output[1] == payload


def _rss_peak_reset() -> bool:
    """Reset this process's peak RSS (VmHWM), Linux 4.0 and later; False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/self/status")


def test_a_child_writing_100_mib_to_a_reader_that_pauses_stays_bounded(use_pidfd):
    size = 100 * 1024 * 1024
    script = ("import sys\nchunk = bytes(range(256)) * 4096\n"
              f"for _ in range({size} // len(chunk)): sys.stdout.buffer.write(chunk)\n")

    class PausingReader(Recorder):
        """Counts and checks the bytes instead of keeping them; pauses after each MiB, resumes a pass later."""

        def __init__(self):
            super().__init__()
            self.received = 0
            self.since_pause = 0
            self.pauses = 0
            self.largest_chunk = 0
            self.delivered_while_paused = 0

        def pipe_data_received(self, fd, data):
            assert fd == 1
            if not self.transport.get_pipe_transport(1).is_reading():
                self.delivered_while_paused += 1
            offset = self.received % 256
            assert data[:256 - offset] == bytes(range(offset, 256))[:len(data)]
            self.received += len(data)
            self.largest_chunk = max(self.largest_chunk, len(data))
            self.since_pause += len(data)
            if self.since_pause >= 1024 * 1024:
                self.since_pause = 0
                self.pauses += 1
                pipe = self.transport.get_pipe_transport(1)
                pipe.pause_reading()
                self.transport.reactor.call_later(0.0005, pipe.resume_reading)

    with Reactor() as reactor:
        can_measure = _rss_peak_reset()
        rss_before = _status_kib("VmRSS")
        protocol = PausingReader()
        transport = spawn(reactor, [PY, "-c", script], lambda: protocol, use_pidfd=use_pidfd)
        assert reactor.run_until_complete(transport.exited, 120) == 0
        assert protocol.received == size
        assert protocol.pauses >= 99 and protocol.delivered_while_paused == 0
        assert protocol.largest_chunk <= 256 * 1024  # one read at a time, into the reactor's buffer
        if can_measure:
            grown_kib = _status_kib("VmHWM") - rss_before
            assert grown_kib < 32 * 1024, f"peak RSS grew by {grown_kib} KiB while 100 MiB went through"


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def _zombie_children() -> list[int]:
    me = os.getpid()
    zombies = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rpartition(b")")[2].split()
        except OSError:
            continue  # gone meanwhile
        if fields[0] == b"Z" and int(fields[1]) == me:
            zombies.append(int(entry))
    return zombies


def test_200_short_lived_children_leave_no_descriptor_and_no_zombie(use_pidfd):
    with Reactor() as reactor:
        reactor.run_once(0)
        fds_before = _fd_count()
        zombies_before = _zombie_children()
        for i in range(200):
            protocol = Recorder()
            transport = spawn(reactor, ["sh", "-c", f"echo {i}; exit {i % 3}"], lambda p=protocol: p,
                              use_pidfd=use_pidfd)
            assert reactor.run_until_complete(transport.exited, WAIT_S) == i % 3
            assert protocol.output[1] == f"{i}\n".encode()
        assert _fd_count() == fds_before
        assert _zombie_children() == zombies_before


def test_sigchld_fallback_never_reaps_a_child_it_did_not_start(reactor):
    handler_before = signal.getsignal(signal.SIGCHLD)
    other = subprocess.Popen(["sh", "-c", "exit 7"])  # not ours: its owner waits for it
    try:
        protocol = run(reactor, ["sh", "-c", "exit 4"], False)
        assert protocol.returncode == 4
        # The SIGCHLD handler was the reactor's only while it had a child to watch.
        assert signal.getsignal(signal.SIGCHLD) == handler_before
        # The other child exited too (it is a zombie, or soon one), and is still there for its owner.
        assert other.wait(WAIT_S) == 7
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()


def test_missing_program_raises_and_leaves_nothing_open(reactor, use_pidfd):
    fds_before = _fd_count()
    with pytest.raises(FileNotFoundError):
        spawn(reactor, ["/nonexistent/program"], Recorder, use_pidfd=use_pidfd)
    assert _fd_count() == fds_before


def test_spawn_on_a_closed_reactor_raises_and_leaves_no_descriptor_and_no_zombie(use_pidfd):
    reactor = Reactor()
    reactor.close()
    fds_before = _fd_count()
    zombies_before = _zombie_children()
    with pytest.raises(RuntimeError, match="closed"):
        spawn(reactor, ["sleep", "60"], Recorder, use_pidfd=use_pidfd)
    assert _fd_count() == fds_before
    assert _zombie_children() == zombies_before


def test_streams_not_piped_env_cwd_and_stderr_to_stdout(reactor, use_pidfd, tmp_path):
    script = "import os, sys; print(os.getcwd(), os.environ['EVLOOP_TEST']); print('to stderr', file=sys.stderr)"
    protocol = Recorder()
    transport = spawn(reactor, [PY, "-c", script], lambda: protocol, stdin=subprocess.DEVNULL,
                      stderr=subprocess.STDOUT, env={**os.environ, "EVLOOP_TEST": "yes"}, cwd=tmp_path,
                      use_pidfd=use_pidfd)
    assert transport.get_pipe_transport(0) is None and transport.get_pipe_transport(2) is None
    assert reactor.run_until_complete(transport.exited, WAIT_S) == 0
    assert protocol.output[1].decode().splitlines() == [f"{tmp_path} yes", "to stderr"]
    assert protocol.events[1:] == [("lost", 1, None), ("exit", 0)]


def test_a_cancelled_exited_future_changes_nothing_else(reactor, use_pidfd):
    reported = []
    reactor.set_exception_handler(lambda _reactor, context: reported.append(context))
    protocol = Recorder()
    transport = spawn(reactor, ["sh", "-c", "exit 2"], lambda: protocol, use_pidfd=use_pidfd)
    transport.exited.cancel()
    done = reactor.create_future()
    protocol.process_exited = lambda code: done.set_result(code)
    assert reactor.run_until_complete(done, WAIT_S) == 2
    assert transport.returncode == 2 and not reported


def test_close_kills_a_running_child_and_still_reports_its_exit(reactor, use_pidfd):
    protocol = Recorder()
    transport = spawn(reactor, ["sleep", "60"], lambda: protocol, use_pidfd=use_pidfd)
    transport.close()
    assert transport.is_closing()
    assert reactor.run_until_complete(transport.exited, WAIT_S) == -signal.SIGKILL
    assert protocol.events[-1] == ("exit", -signal.SIGKILL)


def test_reactor_close_kills_and_reaps_before_returning(selector_cls, use_pidfd):
    reactor = Reactor(selector_cls())
    protocol = Recorder()
    transport = spawn(reactor, ["sleep", "60"], lambda: protocol, use_pidfd=use_pidfd)
    pid = transport.pid
    reactor.close()
    assert protocol.returncode == -signal.SIGKILL
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # already reaped: no zombie left


def test_a_failing_pipe_data_received_closes_that_pipe_only(reactor, use_pidfd):
    reported = []
    reactor.set_exception_handler(lambda _reactor, context: reported.append(context))

    class Broken(Recorder):
        def pipe_data_received(self, fd, data):
            if fd == 1:
                raise RuntimeError("cannot handle output")
            super().pipe_data_received(fd, data)

    protocol = Broken()
    transport = spawn(reactor, [PY, "-c", "print('x')"], lambda: protocol, use_pidfd=use_pidfd)
    assert reactor.run_until_complete(transport.exited, WAIT_S) in (0, 1)  # the child may get EPIPE
    assert len(reported) == 1 and isinstance(reported[0]["exception"], RuntimeError)
    assert ("lost", 1, None) in protocol.events and protocol.events[-1][0] == "exit"


def test_a_failing_connection_made_kills_the_child_and_raises(reactor, use_pidfd):
    class Broken(Recorder):
        def connection_made(self, transport):
            super().connection_made(transport)
            raise RuntimeError("no")

    protocol = Broken()
    with pytest.raises(RuntimeError):
        spawn(reactor, ["sleep", "60"], lambda: protocol, use_pidfd=use_pidfd)
    reactor.run_until_complete(protocol.transport.exited, WAIT_S)
    assert protocol.returncode == -signal.SIGKILL


def test_reactor_fork_closes_the_childs_copies_of_the_pipes(reactor, use_pidfd, wait_child):
    protocol = Recorder()
    transport = spawn(reactor, ["cat"], lambda: protocol, use_pidfd=use_pidfd)
    stdin_fd = transport.get_pipe_transport(0).fileno()
    pid = reactor.fork()
    if pid == 0:  # the child closed its copy of cat's stdin: only the parent's keeps cat reading
        try:
            os.fstat(stdin_fd)
        except OSError:
            os._exit(0)
        os._exit(1)
    assert wait_child(pid) == 0
    transport.get_pipe_transport(0).write(b"still ours")
    transport.get_pipe_transport(0).write_eof()
    assert reactor.run_until_complete(transport.exited, WAIT_S) == 0
    assert protocol.output[1] == b"still ours"
