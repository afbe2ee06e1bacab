"""``evloop.serve`` in this process: a ``Worker`` on a real socket, stopped by real signals.

The client is driven by the server's own reactor (a socket registered from
``on_started``), so there are no threads and no sleeps; each test sends the
signals to this process and checks what ``serve`` returns and leaves behind.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time

import pytest

import evloop
from evloop.app import App, Request, Response
from evloop.reactor import Reactor
from evloop.server import Server, ServerConfig
from evloop.workers import Worker, WorkerPhase

pytestmark = pytest.mark.timeout(30)

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)


def _handlers() -> list[object]:
    return [signal.getsignal(signum) for signum in _STOP_SIGNALS]


def _request(server: Server, path: str, then=None) -> bytearray:
    """Send ``GET path`` from a client on the server's reactor; ``then()`` runs at the reply's EOF."""
    received = bytearray()
    client = socket.create_connection(("127.0.0.1", server.listeners[0].port), timeout=5)
    client.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode())
    client.setblocking(False)

    def readable() -> None:
        try:
            data = client.recv(65536)
        except ConnectionResetError:
            data = b""
        received.extend(data)
        if not data:
            server.reactor.remove_reader(client)
            client.close()
            if then is not None:
                then()

    server.reactor.add_reader(client, readable)
    return received


def _hello_app() -> App:
    app = App()

    @app.route("/")
    def hello(request: Request) -> Response:
        return Response(200, body=b"hello", content_type="text/plain")

    return app


def test_serve_answers_then_returns_0_on_sigterm(caplog):
    caplog.set_level(logging.INFO, logger="evloop.workers")
    before = _handlers()
    replies: list[bytearray] = []

    def on_started(server: Server) -> None:
        replies.append(_request(server, "/", then=lambda: os.kill(os.getpid(), signal.SIGTERM)))

    assert evloop.serve(_hello_app(), "127.0.0.1", 0, on_started=on_started, access_log=False) == 0
    assert replies[0].startswith(b"HTTP/1.1 200 ") and replies[0].endswith(b"hello")
    assert _handlers() == before  # the worker's handlers are gone
    assert "SIGTERM: draining (0 connections open)" in caplog.text
    assert "exiting after 1 requests" in caplog.text


def test_serve_on_the_callers_reactor_leaves_it_open():
    before = _handlers()
    with Reactor() as reactor:
        status = evloop.serve(_hello_app(), config=ServerConfig(port=0, access_log=False), reactor=reactor,
                              on_started=lambda server: os.kill(os.getpid(), signal.SIGQUIT))
        assert status == 0
        assert not reactor.is_closed
        assert _handlers() == before
        fired: list[bool] = []
        reactor.call_soon(fired.append, True)
        reactor.run_once(0)  # still usable
        assert fired == [True]


def test_second_sigint_aborts_a_request_in_flight():
    app = App()
    held: list[Request] = []

    @app.route("/hang")
    def hang(request: Request) -> None:
        held.append(request)  # never answered: only an abort ends this request
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)

    replies: list[bytearray] = []
    started = time.monotonic()
    status = evloop.serve(app, "127.0.0.1", 0, graceful_timeout_s=60.0, access_log=False,
                          on_started=lambda server: replies.append(_request(server, "/hang")))
    assert status == 0
    assert time.monotonic() - started < 20  # far below the 60 s a graceful stop would have waited
    assert len(held) == 1
    assert replies == [bytearray()]  # aborted: no response


def test_serve_raises_when_the_port_is_taken_and_leaves_no_handler():
    before = _handlers()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        with pytest.raises(OSError):
            evloop.serve(_hello_app(), "127.0.0.1", taken.getsockname()[1])
    assert _handlers() == before


def test_a_worker_runs_once():
    worker = Worker(_hello_app(), ServerConfig(port=0, access_log=False),
                    on_started=lambda server: os.kill(os.getpid(), signal.SIGTERM))
    assert worker.phase is WorkerPhase.STARTING
    assert worker.run() == 0
    assert worker.phase is WorkerPhase.STOPPED
    with pytest.raises(RuntimeError, match="runs once"):
        worker.run()


@pytest.mark.parametrize("command", ["stop", "abort"])
def test_a_command_before_run_is_refused_naming_the_phase(command):
    worker = Worker(_hello_app(), ServerConfig(port=0))
    try:
        with pytest.raises(RuntimeError, match=f"event '{command}' in phase STARTING"):
            getattr(worker, command)()
        assert worker.phase is WorkerPhase.STARTING
    finally:
        worker.reactor.close()
