"""Deferred accepts: a listener's connections reach the protocol once their first bytes have arrived.

``listen(..., deferred_accept=True)`` sets Linux's TCP_DEFER_ACCEPT (1 second,
as nginx's ``listen ... deferred``) on TCP listening sockets; the HTTP server
turns it on by default (``--deferred-accept``, ``--no-deferred-accept``).
Compared with the plain listener: the same calls and bytes for a client that
speaks first; an idle client waits in the kernel instead of being accepted.
"""

from __future__ import annotations

import socket
import sys
import time

import pytest
from support.raw_http import read_until_close

from evloop import Protocol, cli, listen
from evloop.demo import build_parser, config_from_settings
from evloop.options import OPTIONS
from evloop.server import Server, ServerConfig

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="TCP_DEFER_ACCEPT is Linux's")


class Served(Protocol):
    """Answers each connection's first bytes with ``ok:`` and them, then closes; counts its connections."""

    made: list[Served] = []

    def __init__(self) -> None:
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        Served.made.append(self)

    def data_received(self, data):
        self.transport.write(b"ok:" + data)
        self.transport.close()


def _defer_value(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT)


@pytest.fixture
def made():
    Served.made = []
    return Served.made


def _accepted_at_once_then_served(reactor, run_until, made, client: socket.socket, payload: bytes) -> None:
    """``client``, connected and silent, is accepted; then what it sends is answered."""
    run_until(reactor, lambda: len(made) == 1)
    client.sendall(payload)
    run_until(reactor, lambda: made[0].transport.is_closing())
    assert read_until_close(client) == b"ok:" + payload


@linux_only
def test_an_idle_client_waits_in_the_kernel_and_one_that_speaks_is_served(reactor, run_until, made):
    """A client that connected first but sends nothing is not accepted before one that connected later and spoke;
    it is accepted, and served, as soon as it speaks."""
    listener = listen(reactor, Served, "127.0.0.1", 0, deferred_accept=True)
    try:
        assert _defer_value(listener.sockets[0]) > 0
        idle = socket.create_connection(("127.0.0.1", listener.port))
        speaker = socket.create_connection(("127.0.0.1", listener.port))
        with idle, speaker:
            speaker.sendall(b"hello")
            run_until(reactor, lambda: len(made) == 1 and made[0].transport.is_closing())
            # Without the option the idle connection, first in the accept queue, would have been accepted first.
            assert read_until_close(speaker) == b"ok:hello"
            assert len(made) == 1
            idle.sendall(b"at last")
            run_until(reactor, lambda: len(made) == 2 and made[1].transport.is_closing())
            assert read_until_close(idle) == b"ok:at last"
    finally:
        listener.close()


@linux_only
def test_without_the_option_an_idle_client_is_accepted_at_once(reactor, run_until, made):
    """The plain listener: the kernel hands over a connection when its handshake is done, bytes or none."""
    listener = listen(reactor, Served, "127.0.0.1", 0)
    try:
        assert _defer_value(listener.sockets[0]) == 0
        with socket.create_connection(("127.0.0.1", listener.port)) as idle:
            _accepted_at_once_then_served(reactor, run_until, made, idle, b"now")
    finally:
        listener.close()


@linux_only
def test_an_idle_client_is_accepted_once_the_second_has_passed(reactor, run_until, made):
    """The kernel gives up waiting after about a second (its SYN-ACK retransmission): the connection is then
    accepted, so a server's header deadline still closes a client that never speaks."""
    listener = listen(reactor, Served, "127.0.0.1", 0, deferred_accept=True)
    try:
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", listener.port)):
            run_until(reactor, lambda: len(made) == 1, timeout_s=10.0)
        assert time.monotonic() - started >= 0.5
    finally:
        listener.close()


def test_a_unix_listener_ignores_the_option(reactor, run_until, made, tmp_path):
    """Not a TCP socket: the option is not set, and connections are accepted as before."""
    path = str(tmp_path / "s")
    listener = listen(reactor, Served, path=path, deferred_accept=True)
    try:
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(path)
            _accepted_at_once_then_served(reactor, run_until, made, client, b"unix")
    finally:
        listener.close()


@linux_only
@pytest.mark.parametrize("argv, expected", [([], True), (["--no-deferred-accept"], False),
                                            (["--deferred-accept"], True)])
def test_the_http_server_defers_accepts_unless_told_not_to(reactor, argv, expected):
    """On by default (HTTP's client speaks first); ``--no-deferred-accept`` turns it off."""
    settings, _ = cli.load(OPTIONS, build_parser(), argv, {})
    config = config_from_settings(settings)
    assert config.deferred_accept is expected
    server = Server(lambda request: None, reactor, ServerConfig(port=0, deferred_accept=config.deferred_accept))
    try:
        listeners = server.start()
        assert (_defer_value(listeners[0].sockets[0]) > 0) is expected
    finally:
        server.close()
