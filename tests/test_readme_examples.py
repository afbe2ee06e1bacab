"""The example programs of README.md ("Four example programs", "Datagrams", "Child processes",
"Name resolution"), run as real processes.

Each block is extracted by its first line (``# example: NAME.py``), written to
``tmp_path`` and run with ``sys.executable``; the tests talk to it over real
sockets and signals.  Nothing sleeps to synchronise: the tests wait for lines
on the program's stdout or bytes on a socket, always with a deadline, and every
process a test started is killed in a ``finally`` (by its pid).
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.dnsmasq import running_dnsmasq

ROOT = Path(__file__).resolve().parents[1]
WAIT_S = 10.0  # the most any single wait for output or bytes may take

pytestmark = pytest.mark.timeout(90)


def readme_example(name: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(# example: ([\w.]+)\n.*?)```", text, re.S)
    found = {block_name: code for code, block_name in blocks}
    assert name in found, f"README has no block starting with '# example: {name}' (found {sorted(found)})"
    return found[name]


class Program:
    """A Python script running as a child process, its stdout read line by line with deadlines."""

    def __init__(self, script: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.name = script.name
        self.stderr_path = script.with_suffix(".stderr")
        with open(self.stderr_path, "wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, str(script), *args],
                stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, cwd=script.parent,
                env=None if env is None else {**os.environ, **env},
            )
        self.pid = self.proc.pid
        os.set_blocking(self.proc.stdout.fileno(), False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.proc.stdout, selectors.EVENT_READ)
        self._buffer = bytearray()
        self._eof = False
        self.lines: list[str] = []  # every line read so far, for failure messages
        self.address: tuple[str, int] | None = None  # where it listens, once a test has read it

    def _fill(self, timeout_s: float) -> bool:
        """Read what stdout has, waiting at most ``timeout_s``; False at EOF or when nothing came."""
        if self._eof or not self._selector.select(max(timeout_s, 0.0)):
            return False
        data = os.read(self.proc.stdout.fileno(), 65536)
        if not data:
            self._eof = True
            return False
        self._buffer += data
        return True

    def readline(self, deadline: float) -> str | None:
        """The next line (without its newline), or None at EOF or when ``deadline`` passed."""
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = self._buffer[:end].decode(errors="replace")
                del self._buffer[:end + 1]
                self.lines.append(line)
                return line
            if not self._fill(deadline - time.monotonic()) and (self._eof or time.monotonic() >= deadline):
                return None

    def expect(self, pattern: str, timeout_s: float = WAIT_S) -> re.Match[str]:
        """Read lines until one matches ``pattern`` (``re.search``); fail after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while (line := self.readline(deadline)) is not None:
            match = re.search(pattern, line)
            if match:
                return match
        raise AssertionError(f"{self.name}: no line matching {pattern!r} within {timeout_s} s; "
                             f"got {self.lines!r}; stderr: {self.stderr()!r}")

    def try_line(self, timeout_s: float) -> str | None:
        """The next line if one comes within ``timeout_s`` (a poll, not a sleep)."""
        return self.readline(time.monotonic() + timeout_s)

    def rest(self, timeout_s: float = WAIT_S) -> list[str]:
        """Every line up to EOF (the process ended)."""
        deadline = time.monotonic() + timeout_s
        lines = []
        while (line := self.readline(deadline)) is not None:
            lines.append(line)
        assert self._eof, f"{self.name}: stdout still open after {timeout_s} s"
        return lines

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout_s: float = WAIT_S) -> int:
        return self.proc.wait(timeout=timeout_s)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=WAIT_S)
        self._selector.close()
        self.proc.stdout.close()


@contextlib.contextmanager
def run_script(path: Path, *args: str, env: dict[str, str] | None = None):
    """Run the script at ``path``; always killed at the end; its stderr must have no traceback."""
    program = Program(path, *args, env=env)
    try:
        yield program
    finally:
        program.kill()
    assert "Traceback" not in program.stderr(), program.stderr()


def run_example(tmp_path: Path, name: str, *args: str, env: dict[str, str] | None = None):
    script = tmp_path / name
    script.write_text(readme_example(name), encoding="utf-8")
    return run_script(script, *args, env=env)


def listening_address(program: Program, what: str) -> tuple[str, int]:
    match = program.expect(rf"^{what} on (\S+):(\d+)$")
    host, port = match.group(1), int(match.group(2))
    assert port != 0
    return host, port


class LineClient:
    """A blocking client socket with line reads bounded by a timeout."""

    def __init__(self, address: tuple[str, int], *, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(WAIT_S)
        self.sock.connect(address)
        self.file = self.sock.makefile("rb")

    @property
    def name(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"{host}:{port}"

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\n")

    def readline(self) -> str:
        line = self.file.readline()
        assert line.endswith(b"\n"), f"connection ended mid-line or early: {line!r}"
        return line.decode().rstrip("\r\n")

    def expect_eof(self) -> None:
        try:
            rest = self.file.read()
        except ConnectionResetError:
            rest = b""
        assert rest == b"", rest

    def close(self) -> None:
        self.file.close()
        self.sock.close()


# ---------------------------------------------------------------------- chat
def test_chat_broadcast_idle_timeout_and_graceful_shutdown(tmp_path):
    with run_example(tmp_path, "chat.py", "0", "0.5") as chat:
        address = listening_address(chat, "chat server")
        alice, bob = LineClient(address), LineClient(address)
        try:
            # Each member's line reaches the other (never the sender: the next
            # line each reads is the other's).  The first exchange also shows
            # both are registered before the idle member joins.
            alice.send("hi bob")
            assert bob.readline() == f"{alice.name}: hi bob"
            bob.send("hi alice")
            assert alice.readline() == f"{bob.name}: hi alice"

            # A third member who only listens hears alice and bob, and after the
            # idle timeout is told bye and closed, while alice and bob, who keep
            # talking, stay.
            started = time.monotonic()
            idle = LineClient(address)
            got = bytearray()
            rounds = 0
            with selectors.DefaultSelector() as sel:
                sel.register(idle.sock, selectors.EVENT_READ)
                while b"bye" not in got:
                    assert time.monotonic() - started < WAIT_S, f"the idle member was never told bye: {got!r}"
                    alice.send(f"ping {rounds}")
                    assert bob.readline() == f"{alice.name}: ping {rounds}"
                    bob.send(f"pong {rounds}")
                    assert alice.readline() == f"{bob.name}: pong {rounds}"
                    rounds += 1
                    if sel.select(0.02):  # a short wait for the idle member's bytes, between rounds
                        got += idle.sock.recv(65536)
            elapsed = time.monotonic() - started
            assert elapsed >= 0.45, f"told bye after {elapsed:.3f} s, before the 0.5 s idle timeout"
            heard, _, rest = bytes(got).partition(b"bye")
            # It heard the talk (from whichever line was relayed after it was accepted).
            talk = re.compile(rf"({re.escape(alice.name)}: ping|{re.escape(bob.name)}: pong) \d+")
            heard_lines = heard.decode().split("\r\n")
            assert heard_lines.pop() == "" and heard_lines, heard
            assert all(talk.fullmatch(line) for line in heard_lines), heard
            idle.sock.settimeout(WAIT_S)
            while chunk := idle.sock.recv(65536):
                rest += chunk
            assert rest == b": idle for 0.5 s\r\n", rest  # then EOF: nothing after the bye
            idle.close()

            # The two who kept talking still chat.
            alice.send("still here")
            assert bob.readline() == f"{alice.name}: still here"

            # SIGTERM: every member is told, then gets EOF; the process exits 0.
            chat.signal(signal.SIGTERM)
            for member in (alice, bob):
                assert member.readline() == "server shutting down"
                member.expect_eof()
            assert chat.wait() == 0
            # The listener was closed first: nobody can join any more.
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(address, timeout=WAIT_S).close()
        finally:
            alice.close()
            bob.close()


def test_chat_drops_a_member_who_does_not_read(tmp_path):
    with run_example(tmp_path, "chat.py", "0", "60") as chat:
        address = listening_address(chat, "chat server")
        # A small receive buffer, so the server's queue for this member grows soon.
        slow = LineClient(address, rcvbuf=16 * 1024)
        talker = LineClient(address)
        try:
            line = ("x" * 1000 + "\n").encode()
            batch = line * 64
            sent = 0
            while True:
                assert sent < 64 * 1024 * 1024, "64 MB sent and the member who does not read is still there"
                talker.sock.sendall(batch)
                sent += len(batch)
                said = chat.try_line(0)
                if said is not None and "too slow" in said:
                    break
            assert said == f"dropping {slow.name}: too slow"
            # The dropped member gets what the kernel already held, then EOF (or a reset).
            slow.sock.settimeout(WAIT_S)
            received = 0
            try:
                while chunk := slow.sock.recv(65536):
                    received += len(chunk)
            except ConnectionResetError:
                pass
            assert received < sent
            # The room goes on: a newcomer hears the talker.
            newcomer = LineClient(address)
            try:
                # A connect returns before the server accepts; the talker hearing the
                # newcomer shows it is a member (else "anyone?" could be relayed first).
                newcomer.send("hello")
                assert talker.readline() == f"{newcomer.name}: hello"
                talker.send("anyone?")
                # The server may still be relaying the flood: those lines come first.
                while (heard := newcomer.readline()) != f"{talker.name}: anyone?":
                    assert heard == f"{talker.name}: {'x' * 1000}", heard[:100]
            finally:
                newcomer.close()
            chat.signal(signal.SIGINT)
            assert chat.wait() == 0
        finally:
            slow.close()
            talker.close()


# ----------------------------------------------------------------- reconnect
def test_reconnect_backs_off_connects_and_comes_back(tmp_path):
    # Bound but not listening: connections are refused until listen() below,
    # on this same socket (never close a port and bind its number again).
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(WAIT_S)
    host, port = server.getsockname()
    try:
        with run_example(tmp_path, "reconnect.py", host, str(port)) as client:
            # Three refusals, with delays in [d/2, d] for d = 0.05, 0.1, 0.2 s.
            for attempt in range(3):
                ceiling = 0.05 * 2 ** attempt
                delay = float(client.expect(r"^retrying in ([\d.]+) s").group(1))
                assert ceiling / 2 - 0.01 <= delay <= ceiling + 0.01, (attempt, delay)
            server.listen(8)
            conn, _ = server.accept()
            with conn, conn.makefile("rb") as reader:
                client.expect(r"^connected$")
                conn.settimeout(WAIT_S)
                assert reader.readline() == b"hello\r\n"
                conn.sendall(b"welcome\n")
                client.expect(r"^got welcome$")
            # The server closed: the client retries at the first, small delay (the back-off was reset).
            delay = float(client.expect(r"^retrying in ([\d.]+) s").group(1))
            assert delay <= 0.05 + 0.01, delay
            conn, _ = server.accept()
            with conn, conn.makefile("rb") as reader:
                conn.settimeout(WAIT_S)
                client.expect(r"^connected$")
                assert reader.readline() == b"hello\r\n"
                client.signal(signal.SIGINT)
                # The client closes its connection and exits 0, without a retry.
                assert reader.read() == b""
                assert client.wait() == 0
            assert not any("retrying" in line for line in client.rest()), client.lines
    finally:
        server.close()


def test_reconnect_stops_during_back_off(tmp_path):
    refusing = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    refusing.bind(("127.0.0.1", 0))
    host, port = refusing.getsockname()
    try:
        with run_example(tmp_path, "reconnect.py", host, str(port)) as client:
            client.expect(r"^retrying in")
            client.signal(signal.SIGTERM)
            assert client.wait() == 0
    finally:
        refusing.close()


# ------------------------------------------------------------------- watcher
SLEEPER_MARK = "time.sleep(60)"
SLEEPER = f"print('hello', flush=True); import time; {SLEEPER_MARK}"


def _is_our_sleeper(pid: int) -> bool:
    """Whether ``pid`` is still a live child command of this test (not a reused pid, not a zombie)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rpartition(b")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return SLEEPER_MARK.encode() in cmdline and state != b"Z"


def test_watcher_restarts_a_killed_child_and_forwards_sigterm(tmp_path):
    children: list[int] = []
    try:
        command = (sys.executable, "-c", SLEEPER)
        with run_example(tmp_path, "watcher.py", *command, env={"STATUS_EVERY_S": "0.2"}) as watcher:
            first = int(watcher.expect(r"^started pid (\d+)$").group(1))
            children.append(first)
            watcher.expect(r"^\[child\] hello$")
            watcher.expect(rf"^status: pid {first} running, 0 restarts$")

            os.kill(first, signal.SIGKILL)
            watcher.expect(rf"^pid {first} exited with -9$")
            # The restart waits 0.5 s: a status beat (every 0.2 s) falls in between.
            watcher.expect(r"^status: waiting to restart, 1 restarts$")
            second = int(watcher.expect(r"^started pid (\d+)$").group(1))
            children.append(second)
            assert second != first
            watcher.expect(r"^\[child\] hello$")
            watcher.expect(rf"^status: pid {second} running, 1 restarts$")

            watcher.signal(signal.SIGTERM)
            assert watcher.wait() == 0
            assert f"pid {second} exited with -{int(signal.SIGTERM)}" in watcher.rest()
            # The watcher reaped its child before exiting: that pid is gone.
            with pytest.raises(ProcessLookupError):
                os.kill(second, 0)
    finally:
        for pid in children:
            if _is_our_sleeper(pid):
                os.kill(pid, signal.SIGKILL)


# --------------------------------------------------------------------- proxy
ECHO_WITH_BACKPRESSURE = '''\
import signal
from evloop import Protocol, Reactor, listen

class Echo(Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def pause_writing(self):
        self.transport.pause_reading()

    def resume_writing(self):
        self.transport.resume_reading()

    def eof_received(self):
        return False

with Reactor() as reactor:
    listener = listen(reactor, Echo, "127.0.0.1", 0)
    reactor.add_signal_handler(signal.SIGTERM, reactor.stop)
    reactor.add_signal_handler(signal.SIGINT, reactor.stop)
    print(f"echo on 127.0.0.1:{listener.port}", flush=True)
    reactor.run()
'''


@pytest.fixture
def proxy(tmp_path):
    """An echo server with backpressure, and the README's proxy in front of it: the proxy's Program."""
    echo_script = tmp_path / "echo_upstream.py"
    echo_script.write_text(ECHO_WITH_BACKPRESSURE, encoding="utf-8")
    with run_script(echo_script) as echo:
        upstream = listening_address(echo, "echo")
        with run_example(tmp_path, "proxy.py", "0", upstream[0], str(upstream[1])) as program:
            program.address = listening_address(program, "proxy")
            yield program
            program.signal(signal.SIGTERM)
            assert program.wait() == 0
        echo.signal(signal.SIGTERM)
        assert echo.wait() == 0


def test_proxy_hangs_up_when_the_upstream_is_unreachable(tmp_path):
    refusing = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    refusing.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    host, port = refusing.getsockname()
    try:
        with run_example(tmp_path, "proxy.py", "0", host, str(port)) as proxy:
            address = listening_address(proxy, "proxy")
            with socket.create_connection(address, timeout=WAIT_S) as sock:
                sock.sendall(b"anyone there?")
                try:
                    assert sock.recv(100) == b""
                except ConnectionResetError:
                    pass  # closed with our bytes unread: a reset is fine too
            proxy.expect(r"^upstream unreachable: .*[Rr]efused")
            proxy.signal(signal.SIGINT)
            assert proxy.wait() == 0
    finally:
        refusing.close()


def pattern(offset: int, size: int) -> bytes:
    """``size`` bytes of a stream whose byte ``i`` is ``i % 251`` (a prime: chunks never line up)."""
    start = offset % 251
    cycle = bytes(range(251))
    return (cycle[start:] + cycle * (size // 251 + 2))[:size]


def exchange(sock: socket.socket, payload: bytes, *, half_close: bool) -> bytes:
    """Send ``payload`` while reading; then read ``len(payload)`` bytes, or to EOF when ``half_close``."""
    sock.setblocking(False)
    view = memoryview(payload)
    received = bytearray()
    deadline = time.monotonic() + 30
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
        while True:
            assert time.monotonic() < deadline, f"sent {len(payload) - len(view)}, received {len(received)}"
            for _, mask in sel.select(1.0):
                if mask & selectors.EVENT_WRITE and view:
                    view = view[sock.send(view[:256 * 1024]):]
                    if not view:
                        if half_close:
                            sock.shutdown(socket.SHUT_WR)
                        sel.modify(sock, selectors.EVENT_READ)
                if mask & selectors.EVENT_READ:
                    chunk = sock.recv(256 * 1024)
                    if not chunk:
                        return bytes(received)
                    received += chunk
            if not half_close and not view and len(received) >= len(payload):
                return bytes(received)


def test_proxy_round_trip(proxy):
    payload = pattern(0, 3 * 1024 * 1024 + 17)
    with socket.create_connection(proxy.address, timeout=WAIT_S) as sock:
        assert exchange(sock, payload, half_close=False) == payload
        # Still open both ways after a big transfer.
        assert exchange(sock, b"and again", half_close=False) == b"and again"


def test_proxy_half_close_passes_through(proxy):
    payload = pattern(0, 1024 * 1024)
    with socket.create_connection(proxy.address, timeout=WAIT_S) as sock:
        # shutdown(SHUT_WR) after the last byte; the echo comes back whole, then EOF.
        assert exchange(sock, payload, half_close=True) == payload


def _rss_bytes(pid: int) -> int | None:
    """The resident memory of process ``pid`` (Linux ``/proc``), or None where there is no ``/proc``."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except FileNotFoundError:
        return None
    return None


def test_proxy_backpressure_bounds_what_a_client_can_push(proxy):
    cap = 64 * 1024 * 1024
    chunk_size = 64 * 1024
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with sock:
        # Small buffers on our side, so less of the chain is kernel memory we do not control.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.settimeout(WAIT_S)
        sock.connect(proxy.address)
        assert exchange(sock, b"warm up", half_close=False) == b"warm up"
        rss_before = _rss_bytes(proxy.pid)
        sent = 0
        with selectors.DefaultSelector() as sel:
            sel.register(sock, selectors.EVENT_WRITE)
            # Send without reading until the chain stops taking bytes: the socket
            # stays unwritable for a while (the proxy stopped reading us).
            while sent < cap:
                try:
                    sent += sock.send(pattern(sent, chunk_size))
                except BlockingIOError:
                    if not sel.select(1.5):
                        break
        # Most of what went in sits in the socket buffers of the chain's six
        # other socket ends: with Linux's autotuning (tcp_wmem up to 4 MB,
        # tcp_rmem up to 32 MB here) they took 15-22 MB in trials.  Without
        # backpressure the proxy takes all 64 MB.
        assert sent < cap // 2, f"{sent} bytes went in without being read: no backpressure"
        rss_after = _rss_bytes(proxy.pid)
        if rss_before is not None and rss_after is not None:
            # What the proxy process itself holds stays small: its write buffers are bounded.
            assert rss_after - rss_before < 8 * 1024 * 1024, (rss_before, rss_after, sent)
        # Reading resumes the flow: every byte comes back, in order.
        sock.setblocking(True)
        sock.settimeout(WAIT_S)
        received = bytearray()
        while len(received) < sent:
            chunk = sock.recv(1024 * 1024)
            assert chunk, f"EOF after {len(received)} of {sent} bytes"
            received += chunk
        assert len(received) == sent
        assert received == pattern(0, sent)
        # And the connection still works both ways.
        assert exchange(sock, b"after the flood", half_close=False) == b"after the flood"


# ----------------------------------------------------------------- datagrams
def test_udp_echo_answers_and_udp_ping_times_the_answers(tmp_path):
    with run_example(tmp_path, "udp_echo.py", "0") as echo:
        host, port = listening_address(echo, "udp echo")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(WAIT_S)
            sock.sendto(b"hello", (host, port))
            assert sock.recvfrom(100) == (b"HELLO", (host, port))
        with run_example(tmp_path, "udp_ping.py", host, str(port), "3") as ping:
            for seq in range(3):
                ping.expect(rf"^ping {seq}: answer from {re.escape(host)}:{port} in [\d.]+ ms$")
            assert ping.wait() == 0
        echo.signal(signal.SIGTERM)
        assert echo.wait() == 0


def test_udp_ping_reports_that_nobody_listens(tmp_path):
    # 127.0.0.1:port is held, so nobody else can bind that port on every
    # address, and nothing listens on 127.0.0.2:port: ICMP port unreachable.
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("127.0.0.1", 0))
    try:
        port = holder.getsockname()[1]
        with run_example(tmp_path, "udp_ping.py", "127.0.0.2", str(port), "2") as ping:
            ping.expect(r"^ping 0: Connection refused$")
            ping.expect(r"^ping 1: Connection refused$")
            assert ping.wait() == 1
    finally:
        holder.close()


# ------------------------------------------------------------------ processes
def test_run_prefixes_each_stream_and_passes_the_exit_status_on(tmp_path):
    with run_example(tmp_path, "run.py", "30", "sh", "-c", "echo hello; printf oops >&2; exit 3") as run:
        lines = run.rest()
        # Two pipes: which one is read first is up to the scheduler.
        assert sorted(lines[:2]) == ["err: oops", "out: hello"] and lines[2:] == ["exited with 3"], lines
        assert run.wait() == 3


def test_run_terminates_a_command_past_its_deadline(tmp_path):
    with run_example(tmp_path, "run.py", "0.3", "sh", "-c", "echo started; exec sleep 60") as run:
        run.expect(r"^out: started$")
        run.expect(rf"^exited with -{int(signal.SIGTERM)}$")
        assert run.wait() == 128 + signal.SIGTERM


# ------------------------------------------------------------------- resolve
def test_resolve_looks_up_names_at_once_against_dnsmasq(tmp_path):
    (tmp_path / "dnsmasq").mkdir()
    with running_dnsmasq(tmp_path / "dnsmasq") as (host, port):
        names = ["fromhosts.test", "alias2.test", "v6only.test", "nope.test", "127.0.0.1"]
        with run_example(tmp_path, "resolve.py", "--server", f"{host}:{port}", *names) as program:
            assert program.wait() == 0
            assert program.rest() == [
                "fromhosts.test: 10.1.2.3 fd00::5",
                "alias2.test: 10.1.2.3 fd00::5",  # a CNAME chain
                "v6only.test: 2001:db8::6",
                f"nope.test: error {socket.EAI_NONAME}: Name or service not known (nope.test: no such name)",
                "127.0.0.1: 127.0.0.1",
            ]
