"""Issue 15, items 1-3: an application's mistakes never take the server down or leak its sockets.

Each test runs the real ``evloop-demo`` with ``--app fault_app:app`` (``fault_app.py`` beside
this file) in a subprocess and talks to it over real sockets.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from support.clients import (
    connect,
    fd_count,
    read_response,
    read_status_or_close,
    request,
    sockets_in_state,
    wait_until,
)

HERE = Path(__file__).resolve().parent
APP = ["--app", "fault_app:app"]


@pytest.fixture
def start_faulty(start_demo):
    """Start ``evloop-demo --app fault_app:app`` with extra arguments."""

    def start(*args: str):
        return start_demo(*APP, *args, env={"PYTHONPATH": str(HERE)})

    return start


def _get(port: int, path: str) -> bytes:
    """Send one keep-alive GET and read until the server closes or 5 s pass; returns what came."""
    with connect(port, timeout_s=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
        except ConnectionResetError:
            pass
        return b"".join(chunks)


# ------------------------------------------------- 1. SystemExit and KeyboardInterrupt
@pytest.mark.parametrize("path", ["/sysexit", "/kbint"])
def test_a_handler_raising_sysexit_or_keyboardinterrupt_gets_500_and_the_server_stays_up(start_faulty, path):
    server = start_faulty()
    for _ in range(3):
        status, _, body = request(server.port, path)
        assert status == 500
    assert request(server.port, "/")[2] == b"alive"
    assert server.proc.poll() is None
    log = server.log()
    assert log.count(f"handler for GET {path} failed") == 3
    assert ("SystemExit" if path == "/sysexit" else "KeyboardInterrupt") in log


def test_a_body_iterator_raising_sysexit_aborts_its_response_only(start_faulty):
    server = start_faulty()
    reply = _get(server.port, "/body-sysexit")
    # The head and the first chunk went out; the response is cut (chunked, no last chunk).
    assert reply.startswith(b"HTTP/1.1 200 ") and b"first chunk" in reply and not reply.endswith(b"0\r\n\r\n")
    assert request(server.port, "/")[2] == b"alive" and server.proc.poll() is None
    assert "response body of GET /body-sysexit failed" in server.log()


def test_a_body_close_raising_sysexit_is_logged_and_the_response_stands(start_faulty):
    server = start_faulty()
    reply = _get(server.port, "/close-sysexit")
    assert reply.startswith(b"HTTP/1.1 200 ") and reply.endswith(b"whole body\n\r\n0\r\n\r\n")
    assert request(server.port, "/")[2] == b"alive" and server.proc.poll() is None
    wait_until(lambda: "closing a response body failed" in server.log(), 5, what="the close() failure logged")


def test_a_deferred_callback_raising_sysexit_is_logged_and_its_request_times_out(start_faulty):
    server = start_faulty("--handler-timeout", "0.5")
    status, _, _ = request(server.port, "/timer-sysexit")
    assert status == 503
    assert request(server.port, "/")[2] == b"alive" and server.proc.poll() is None
    assert "SystemExit" in server.log()


def test_with_workers_repeated_sysexit_requests_leave_every_request_served(start_faulty):
    """The issue's case: 3 of 116 requests were served while workers restarted in back-off."""
    server = start_faulty("--workers", "2")
    started = time.monotonic()
    statuses = [request(server.port, "/sysexit")[0] for _ in range(30)]
    statuses += [request(server.port, "/")[0] for _ in range(30)]
    assert statuses == [500] * 30 + [200] * 30
    assert time.monotonic() - started < 10
    assert "exited" not in server.log().lower()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_wsgi_app_calling_sys_exit_gets_500_and_every_follow_up_is_served(start_demo, workers):
    server = start_demo("--wsgi", "wsgi_fault_app:app", "--workers", workers, env={"PYTHONPATH": str(HERE)})
    statuses = [request(server.port, "/sysexit")[0] for _ in range(20)]
    statuses += [request(server.port, "/")[0] for _ in range(20)]
    assert statuses == [500] * 20 + [200] * 20
    reply = _get(server.port, "/kbint-body")
    assert reply.startswith(b"HTTP/1.1 200 ") and b"part one" in reply
    assert request(server.port, "/")[2] == b"wsgi alive" and server.proc.poll() is None


def test_a_real_sigint_still_stops_the_server(start_faulty):
    server = start_faulty("--graceful-timeout", "2")
    assert request(server.port, "/kbint")[0] == 500  # the app's KeyboardInterrupt did not stop it
    server.signal(signal.SIGINT)
    assert server.wait(10) == 0


EMBEDDED = textwrap.dedent("""
    import os, signal, sys, time
    from evloop.app import App, Response
    from evloop.reactor import Reactor
    from evloop.server import Server, ServerConfig

    app = App()

    @app.route("/ctrl-c")
    def ctrl_c(request):
        os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, delivered while the handler runs
        time.sleep(5)
        return Response(body=b"not reached")

    reactor = Reactor()
    server = Server(app, reactor, ServerConfig(port=0, access_log=False))
    listeners = server.start()
    print(listeners[0].addresses[0][1], flush=True)
    try:
        reactor.run()
    except KeyboardInterrupt:
        print("stopped by Ctrl-C", flush=True)
        sys.exit(0)
    sys.exit(1)
""")


def test_an_embedder_keeping_pythons_ctrl_c_handling_is_stopped_by_a_real_ctrl_c(tmp_path):
    """Without serve(), SIGINT still raises KeyboardInterrupt: inside a handler that is Ctrl-C, not a fault."""
    script = tmp_path / "embedded.py"
    script.write_text(EMBEDDED)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        with connect(port, timeout_s=10) as sock:
            sock.sendall(b"GET /ctrl-c HTTP/1.1\r\nHost: t\r\n\r\n")
            out, _ = proc.communicate(timeout=10)
        assert "stopped by Ctrl-C" in out and proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ----------------------------------------------------- 2. requests never answered
@pytest.mark.parametrize("path", ["/forget", "/timer-raises"])
def test_clients_leaving_unanswered_requests_leave_no_socket_behind(start_faulty, path):
    server = start_faulty()
    fds_before = fd_count(server.proc.pid)
    socks = [connect(server.port) for _ in range(30)]
    for sock in socks:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    wait_until(lambda: server.log().count(f"GET {path} ") >= 30 or fd_count(server.proc.pid) >= fds_before + 30,
               5, what="the 30 requests to reach the app")
    for sock in socks:
        sock.close()
    wait_until(lambda: sockets_in_state(server.port, "CLOSE_WAIT") == 0 and fd_count(server.proc.pid) <= fds_before,
               5, what="the server to close the abandoned connections")
    assert request(server.port, "/")[2] == b"alive"


def test_an_unanswered_request_gets_503_after_the_handler_timeout_and_the_route_is_logged(start_faulty):
    server = start_faulty("--handler-timeout", "0.5")
    started = time.monotonic()
    with connect(server.port) as sock:
        sock.sendall(b"GET /forget HTTP/1.1\r\nHost: t\r\n\r\n")
        status, _, _ = read_response(sock)
        assert status == 503
        assert 0.4 < time.monotonic() - started < 5
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")  # the connection goes on
        assert read_response(sock)[2] == b"alive"
    assert "GET /forget from" in server.log() and "handler timeout" in server.log()


def test_sigterm_does_not_wait_for_requests_whose_clients_left(start_faulty):
    server = start_faulty("--graceful-timeout", "30")
    socks = [connect(server.port) for _ in range(10)]
    for sock in socks:
        sock.sendall(b"GET /forget HTTP/1.1\r\nHost: t\r\n\r\n")
    for sock in socks:
        sock.close()
    wait_until(lambda: sockets_in_state(server.port, "CLOSE_WAIT") == 0, 5, what="the abandoned connections closed")
    started = time.monotonic()
    server.signal(signal.SIGTERM)
    assert server.wait(10) == 0
    assert time.monotonic() - started < 5


# -------------------------------------- 3. deferred responses whose framing fails
def _requests_on_connections(port: int, path: str, count: int = 20) -> list:
    """``count`` connections, each with one GET of ``path`` sent."""
    socks = [connect(port, timeout_s=5) for _ in range(count)]
    for sock in socks:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    return socks


def test_a_deferred_response_with_a_bad_header_gets_500_on_every_connection(start_faulty):
    server = start_faulty()
    for sock in _requests_on_connections(server.port, "/deferred-int-header"):
        assert read_response(sock)[0] == 500
        sock.close()
    assert "invalid response to GET /deferred-int-header" in server.log()
    assert request(server.port, "/")[2] == b"alive"


def test_a_deferred_stream_of_str_chunks_is_aborted_and_closes(start_faulty):
    server = start_faulty()
    for sock in _requests_on_connections(server.port, "/deferred-str-chunks"):
        status = read_status_or_close(sock)  # the head may have gone out before the first chunk failed
        assert status in (None, 200, 500)
        sock.settimeout(5)
        try:
            while sock.recv(65536):
                pass  # closed by the server within the timeout, or recv raises
        except ConnectionResetError:
            pass
        sock.close()
    wait_until(lambda: sockets_in_state(server.port, "ESTABLISHED") == 0, 5, what="every connection closed")
    assert request(server.port, "/")[2] == b"alive"


def test_a_socket_is_not_left_behind_by_any_fault(start_faulty):
    server = start_faulty("--handler-timeout", "0.5")
    fds_before = fd_count(server.proc.pid)
    for path in ["/sysexit", "/kbint", "/body-sysexit", "/close-sysexit", "/timer-sysexit", "/forget",
                 "/timer-raises", "/deferred-int-header", "/deferred-str-chunks"]:
        _get(server.port, path)
    wait_until(lambda: fd_count(server.proc.pid) <= fds_before, 5, what="descriptors back to their count")
    assert sockets_in_state(server.port, "CLOSE_WAIT") == 0
