"""Worker processes, proxy headers and HAProxy in front: real processes on loopback.

The supervisor's progress is read from its log (there is no other event to
wait on), always with a deadline; requests open a new connection each, so the
kernel spreads them between the workers' SO_REUSEPORT sockets.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support.demo import DemoServer, wait_for_log

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(90)


def get(server: DemoServer, path: str = "/inspect", headers: dict[str, str] | None = None,
        timeout_s: float = 10.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=timeout_s)
    try:
        conn.request("GET", path, headers={"Connection": "close", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def worker_of(server: DemoServer) -> tuple[int, int]:
    status, body = get(server)
    assert status == 200
    worker = json.loads(body)["worker"]
    return worker["id"], worker["pid"]


def workers_seen(server: DemoServer, want: int, max_requests: int = 400) -> dict[int, int]:
    """Request until ``want`` different worker pids answered; returns pid -> id."""
    seen: dict[int, int] = {}
    for _ in range(max_requests):
        worker_id, pid = worker_of(server)
        seen[pid] = worker_id
        if len(seen) >= want:
            break
    return seen


class Hammer:
    """Threads making one new connection per request until stopped; counts outcomes."""

    def __init__(self, server: DemoServer, threads: int = 4) -> None:
        self.server = server
        self.ok = 0
        self.errors: list[str] = []
        self.pids: set[int] = set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status, body = get(self.server, timeout_s=5.0)
                pid = json.loads(body)["worker"]["pid"] if status == 200 else None
                with self._lock:
                    if status == 200:
                        self.ok += 1
                        self.pids.add(pid)
                    else:
                        self.errors.append(f"status {status}")
            except Exception as exc:  # refused, reset, timeout: all count
                with self._lock:
                    self.errors.append(repr(exc))

    def __enter__(self) -> Hammer:
        for t in self._threads:
            t.start()
        return self

    def wait_ok(self, n: int, timeout_s: float = 20.0) -> None:
        """Wait until ``n`` more requests have succeeded."""
        target = self.ok + n
        deadline = time.monotonic() + timeout_s
        # A few errors may be the kernel's reuseport window (see
        # _errors_beyond_reuseport_window); more end the wait at once.
        while self.ok < target and time.monotonic() < deadline and len(self.errors) <= 3:
            time.sleep(0.01)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)


# ------------------------------------------------------------------ workers
def test_two_workers_answer_from_two_processes(start_demo):
    server = start_demo("--workers", "2", "--no-access-log")
    seen = workers_seen(server, 2)
    assert len(seen) == 2, f"only {seen} answered"
    assert sorted(seen.values()) == [0, 1]
    assert server.proc.pid not in seen  # the supervisor serves nothing


def test_killed_worker_is_replaced(start_demo):
    server = start_demo("--workers", "2", "--no-access-log")
    victim_id, victim = worker_of(server)
    os.kill(victim, signal.SIGKILL)  # a child of the server this test started
    wait_for_log(server, rf"worker {victim_id} \(pid {victim}\) died unexpectedly \(killed by SIGKILL\)")
    match = wait_for_log(server, rf"started worker {victim_id} \(pid (\d+)\)", count=2)[-1]
    new_pid = int(match.group(1))
    wait_for_log(server, rf"worker {victim_id} \(pid {new_pid}\) is listening")
    seen = workers_seen(server, 2)
    assert victim not in seen and new_pid in seen, seen


def test_a_worker_dying_again_soon_is_restarted_with_back_off(start_demo):
    server = start_demo("--workers", "2", "--no-access-log")
    victim_id, victim = worker_of(server)
    os.kill(victim, signal.SIGKILL)  # a child of the server this test started
    wait_for_log(server, rf"worker {victim_id} \(pid {victim}\) died unexpectedly .*; restarting at once")
    second = int(wait_for_log(server, rf"started worker {victim_id} \(pid (\d+)\)", count=2)[-1].group(1))
    wait_for_log(server, rf"worker {victim_id} \(pid {second}\) is listening")
    os.kill(second, signal.SIGKILL)  # within 5 s of its start: not healthy yet
    wait_for_log(server, rf"worker {victim_id} \(pid {second}\) died unexpectedly .*; restarting in 0\.2 s")
    third = int(wait_for_log(server, rf"started worker {victim_id} \(pid (\d+)\)", count=3)[-1].group(1))
    wait_for_log(server, rf"worker {victim_id} \(pid {third}\) is listening")
    assert third in workers_seen(server, 2)


def test_sigquit_stops_gracefully_and_exits_0(start_demo):
    server = start_demo("--workers", "2", "--no-access-log")
    server.signal(signal.SIGQUIT)
    assert server.wait(timeout_s=20) == 0
    log = server.log()
    assert "SIGQUIT: stopping 2 workers gracefully" in log
    assert log.count("exiting after") == 2  # each worker drained and exited by itself
    assert "SIGKILL" not in log


def test_sigterm_drains_requests_in_flight_and_exits_0(start_demo):
    server = start_demo("--workers", "2", "--log-level", "debug")
    results: list[object] = []

    def slow() -> None:
        try:
            results.append(get(server, "/delay/1000"))
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=slow) for _ in range(6)]
    for t in threads:
        t.start()
    wait_for_log(server, r"request head from \S+: GET /delay/1000", count=6)
    started = time.monotonic()
    server.signal(signal.SIGTERM)
    assert server.wait(timeout_s=20) == 0
    for t in threads:
        t.join(timeout=10)
    assert results == [(200, b"delayed")] * 6
    assert time.monotonic() - started < 10
    log = server.log()
    assert "SIGTERM: stopping 2 workers gracefully" in log
    assert "every worker has exited" in log


def test_second_sigint_stops_at_once(start_demo):
    server = start_demo("--workers", "2", "--log-level", "debug")
    thread = threading.Thread(target=lambda: _swallow(lambda: get(server, "/delay/30000", timeout_s=30)))
    thread.start()
    wait_for_log(server, r"request head from \S+: GET /delay/30000")
    server.signal(signal.SIGINT)
    wait_for_log(server, r"SIGINT: stopping 2 workers gracefully")
    server.signal(signal.SIGINT)
    server.wait(timeout_s=10)  # the /delay/30000 would have held a graceful stop for 30 s
    thread.join(timeout=10)
    assert "second SIGINT" in server.log()


def _swallow(fn) -> None:
    try:
        fn()
    except Exception:
        pass


def _errors_beyond_reuseport_window(errors: list[str]) -> list[str]:
    """The errors a replacement may not cause.

    With ``net.ipv4.tcp_migrate_req = 0`` the kernel resets a connection that
    lands in a draining worker's accept queue between its last accept() and
    its close() (a window of microseconds, documented in evloop.workers.worker); the
    client sees a reset or an empty reply.  A few such resets are the kernel's
    and are let through; a refused connection, a timeout or a bad status never.
    """
    try:
        with open("/proc/sys/net/ipv4/tcp_migrate_req") as f:
            migrates = f.read().strip() == "1"
    except OSError:
        migrates = False
    if migrates:
        return errors
    resets = [e for e in errors if e.startswith(("ConnectionResetError", "RemoteDisconnected"))]
    return [e for e in errors if e not in resets] if len(resets) <= 3 else errors


def test_sighup_replaces_every_worker_without_refusing_a_connection(start_demo):
    server = start_demo("--workers", "2", "--no-access-log")
    old = set(workers_seen(server, 2))
    with Hammer(server) as hammer:
        hammer.wait_ok(200)
        server.signal(signal.SIGHUP)
        for pid in old:
            wait_for_log(server, rf"worker \d \(pid {pid}\) exited \(exit status 0\)")
        hammer.wait_ok(300)
    assert not _errors_beyond_reuseport_window(hammer.errors), hammer.errors[:5]
    new = set(workers_seen(server, 2))
    assert len(new) == 2 and not (new & old), (old, new)
    assert hammer.ok >= 500


def test_ttin_adds_and_ttou_removes_a_worker(start_demo):
    server = start_demo("--workers", "2", "--no-access-log")
    server.signal(signal.SIGTTIN)
    pid = int(wait_for_log(server, r"started worker 2 \(pid (\d+)\)")[0].group(1))
    wait_for_log(server, rf"worker 2 \(pid {pid}\) is listening")
    seen = workers_seen(server, 3)
    assert sorted(seen.values()) == [0, 1, 2]
    server.signal(signal.SIGTTOU)
    wait_for_log(server, rf"worker 2 \(pid {pid}\) exited \(exit status 0\)")
    for _ in range(50):
        assert worker_of(server)[1] != pid


def test_max_requests_recycles_workers_without_dropping_requests(start_demo):
    server = start_demo("--workers", "1", "--max-requests", "20", "--max-requests-jitter", "5",
                        "--no-access-log")
    pids: list[int] = []
    errors: list[str] = []
    while len(set(pids)) < 3 and len(pids) < 1000:  # a replacement starts within a tick, not at once
        try:
            status, body = get(server)
        except (ConnectionResetError, http.client.RemoteDisconnected) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")  # see _errors_beyond_reuseport_window
            continue
        assert status == 200
        pids.append(json.loads(body)["worker"]["pid"])
    assert _errors_beyond_reuseport_window(errors) == []
    assert len(set(pids)) >= 3, "workers were not recycled"
    assert min(pids.count(pid) for pid in set(pids[:-1])) >= 20  # none retired before its quota
    assert "reached --max-requests: replacing it" in server.log()
    assert server.stop() == 0


def test_workers_share_an_inherited_fd(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    log_path = tmp_path / "fd.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "evloop.demo", "--fd", str(listener.fileno()), "--workers", "2", "--no-access-log"],
            stdout=log, stderr=subprocess.STDOUT, pass_fds=[listener.fileno()],
        )
    listener.close()
    try:
        server = _Attached(proc, log_path, port)
        wait_for_log(server, rf"evloop serving on http://127\.0\.0\.1:{port}")
        assert "workers share one listening socket (the inherited socket" in server.log()
        assert len(workers_seen(server, 2, max_requests=600)) == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


def test_systemd_socket_activation(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    launcher = (
        "import os, sys; os.dup2(int(sys.argv[1]), 3); "
        "os.environ.update(LISTEN_FDS='1', LISTEN_PID=str(os.getpid())); "
        "os.execv(sys.executable, [sys.executable, '-m', 'evloop.demo', '--no-access-log'])"
    )
    log_path = tmp_path / "systemd.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-c", launcher, str(listener.fileno())],
                                stdout=log, stderr=subprocess.STDOUT, pass_fds=[listener.fileno()])
    listener.close()
    try:
        server = _Attached(proc, log_path, port)
        wait_for_log(server, rf"serving on http://127\.0\.0\.1:{port}")
        assert get(server, "/healthz") == (200, b"ok")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


class _Attached:
    """Like support.demo.DemoServer, for a process started by the test itself."""

    def __init__(self, proc: subprocess.Popen, log_path: Path, port: int) -> None:
        self.proc, self.log_path, self.host, self.port = proc, log_path, "127.0.0.1", port

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


# ------------------------------------------------------------ proxy headers
_WSGI_APP = '''
import json
def app(environ, start_response):
    body = json.dumps({"remote_addr": environ["REMOTE_ADDR"], "scheme": environ["wsgi.url_scheme"]}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
'''


@pytest.mark.parametrize("allow, trusted", [("127.0.0.1", True), ("10.0.0.0/8,192.168.0.0/16", False), ("*", True)])
def test_proxy_headers_only_from_trusted_peers(start_demo, tmp_path, allow, trusted):
    (tmp_path / "proxyapp.py").write_text(_WSGI_APP)
    server = start_demo("--wsgi", "proxyapp:app", "--proxy-headers", "--forwarded-allow-ips", allow,
                        env={"PYTHONPATH": str(tmp_path)})
    xff = {"X-Forwarded-For": "198.51.100.7, 127.0.0.1", "X-Forwarded-Proto": "https, https"}
    status, body = get(server, "/", headers=xff)
    data = json.loads(body)
    # Trusted: the right-most untrusted hop (or, with "*", the left-most) is the client.
    assert data == ({"remote_addr": "198.51.100.7", "scheme": "https"} if trusted
                    else {"remote_addr": "127.0.0.1", "scheme": "http"})
    status, body = get(server, "/", headers={"Forwarded": 'for="[2001:db8::1]:4711";proto=https'})
    data = json.loads(body)
    assert data == ({"remote_addr": "2001:db8::1", "scheme": "https"} if trusted
                    else {"remote_addr": "127.0.0.1", "scheme": "http"})
    # The access log names the real client.
    client = "2001:db8::1" if trusted else "127.0.0.1"
    wait_for_log(server, re.escape(client) + r' - - \[[^]]+\] "GET / HTTP/1.1" 200')


def test_proxy_headers_ignored_without_the_option(start_demo, tmp_path):
    (tmp_path / "proxyapp.py").write_text(_WSGI_APP)
    server = start_demo("--wsgi", "proxyapp:app", env={"PYTHONPATH": str(tmp_path)})
    status, body = get(server, "/", headers={"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"})
    assert json.loads(body) == {"remote_addr": "127.0.0.1", "scheme": "http"}


# ------------------------------------------------------------------ HAProxy
def _haproxy() -> str:
    path = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
    if path is None:
        pytest.skip("haproxy is not installed (bash .ci/run installs it: apt-get install -y haproxy)")
    return path


@pytest.mark.timeout(120)
def test_haproxy_in_front_of_two_instances(start_demo, tmp_path):
    haproxy = _haproxy()
    sys.path.insert(0, str(REPO / "load"))
    try:
        import run_haproxy
    finally:
        sys.path.pop(0)
    a = start_demo("--keepalive-timeout", "30")
    b = start_demo("--keepalive-timeout", "30")
    # HAProxy serves a socket we bound on port 0 ("bind fd@N"): no port number is guessed.
    front = run_haproxy.front_socket("127.0.0.1")
    front_port = front.getsockname()[1]
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(run_haproxy.render_config(front.fileno(), [(a.host, a.port), (b.host, b.port)],
                                             stats_socket=str(tmp_path / "haproxy.sock")))
    log = open(tmp_path / "haproxy.log", "wb")
    proc = subprocess.Popen([haproxy, "-db", "-f", str(cfg)], stdout=log, stderr=subprocess.STDOUT,
                            pass_fds=[front.fileno()])
    front.close()
    try:
        front_server = _Attached(proc, tmp_path / "haproxy.log", front_port)
        run_haproxy.wait_backends_up(str(tmp_path / "haproxy.sock"), 2, timeout_s=20, proc=proc)
        for _ in range(40):
            assert get(front_server, "/") == (200, b"Hello, World!")
        hits_a = a.log().count('"GET / HTTP/1.1" 200')
        hits_b = b.log().count('"GET / HTTP/1.1" 200')
        assert hits_a > 0 and hits_b > 0, (hits_a, hits_b)
        assert a.stop() == 0  # one instance goes away
        for _ in range(100):
            assert get(front_server, "/") == (200, b"Hello, World!")
        # The access log is written in batches (when the loop goes idle): the
        # last lines may reach the file after the responses reach us.
        wait_for_log(b, r'"GET / HTTP/1\.1" 200', count=hits_b + 100, timeout_s=10.0)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
