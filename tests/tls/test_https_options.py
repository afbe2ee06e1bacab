"""HTTPS options not covered elsewhere: the ``sni_callback`` library API, ``--keyfile-password``,
``--fd`` with TLS, proxy headers over TLS, and the head's deadline counted from the accept."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time

import pytest
from support.demo import wait_for_log
from tls_apps import app as tls_app

from evloop.reactor import Reactor
from evloop.server import Server, ServerConfig

TIMEOUT_S = 20.0


def tls_args(certs, *extra: str) -> list[str]:
    return ["--certfile", str(certs.cert_file), "--keyfile", str(certs.key_file), *extra]


def get(port: int, context: ssl.SSLContext, path: str, headers: dict[str, str] | None = None,
        host: str = "localhost") -> tuple[int, bytes]:
    conn = http.client.HTTPSConnection(host, port, timeout=TIMEOUT_S, context=context)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_sni_callback_chooses_the_context(certs):
    """``ServerConfig.sni_callback(server_name)``: its context for the names it knows, the default for None."""
    other = certs.server_context()
    other.load_cert_chain(str(certs.other_cert_file), str(certs.other_key_file))
    asked: list[str | None] = []

    def choose(server_name: str | None) -> ssl.SSLContext | None:
        asked.append(server_name)
        return other if server_name == "other.test" else None

    reactor = Reactor()
    config = ServerConfig(port=0, access_log=False, certfile=str(certs.cert_file), keyfile=str(certs.key_file),
                          sni_callback=choose)
    server = Server(tls_app, reactor, config)
    port = server.start()[0].addresses[0][1]
    thread = threading.Thread(target=reactor.run, daemon=True)
    thread.start()
    try:
        context = certs.client_context()
        for name in ("other.test", "localhost"):
            with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as raw, \
                    context.wrap_socket(raw, server_hostname=name) as tls:  # verified against the name
                tls.sendall(b"GET /tls HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % name.encode())
                reply = b""
                while chunk := tls.recv(65536):
                    reply += chunk
            assert reply.startswith(b"HTTP/1.1 200 "), reply
            assert json.loads(reply.partition(b"\r\n\r\n")[2])["server_name"] == name
        assert asked == ["other.test", "localhost"]
    finally:
        reactor.call_soon_threadsafe(reactor.stop)
        thread.join(TIMEOUT_S)
        server.close()
        reactor.close()


@pytest.fixture
def encrypted_key(certs, tmp_path):
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(certs.key_file.read_bytes(), password=None)
    path = tmp_path / "encrypted.key"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.BestAvailableEncryption(b"s3cret pass")))
    assert b"ENCRYPTED" in path.read_bytes()
    return path


def test_keyfile_password_unlocks_an_encrypted_key(start_demo, certs, encrypted_key):
    server = start_demo("--certfile", str(certs.cert_file), "--keyfile", str(encrypted_key),
                        "--keyfile-password", "s3cret pass", "--no-access-log")
    assert get(server.port, certs.client_context(), "/") == (200, b"Hello, World!")


def test_a_wrong_keyfile_password_stops_the_start_with_a_reason(start_demo, certs, encrypted_key):
    with pytest.raises(RuntimeError, match="exited") as failure:
        start_demo("--certfile", str(certs.cert_file), "--keyfile", str(encrypted_key),
                   "--keyfile-password", "wrong", "--no-access-log")
    assert "Traceback" not in str(failure.value)


@pytest.mark.parametrize("cert_reqs", ["optional", "required"])
def test_client_certificates_without_a_ca_stop_the_start(start_demo, certs, cert_reqs):
    # No CA trusted: every client certificate would fail its handshake, the server serving nobody.
    with pytest.raises(RuntimeError, match="exited") as failure:
        start_demo(*tls_args(certs, "--cert-reqs", cert_reqs, "--no-access-log"))
    assert f"--cert-reqs {cert_reqs} needs --ca-certs" in str(failure.value)


@pytest.mark.parametrize("option", ["--ca-certs", "--cert"])
def test_a_file_that_does_not_load_is_named_in_the_error(start_demo, certs, tmp_path, option):
    missing = tmp_path / "missing.pem"
    value = str(missing) if option == "--ca-certs" else f"other.test={missing}"
    with pytest.raises(RuntimeError, match="exited") as failure:
        start_demo(*tls_args(certs, option, value, "--no-access-log"))
    assert str(missing) in str(failure.value) and "Traceback" not in str(failure.value)


def test_fd_with_tls(start_demo, certs):
    """``--fd``: an inherited listening socket serves HTTPS."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    try:
        server = start_demo("--fd", str(listener.fileno()), *tls_args(certs, "--no-access-log"),
                            pass_fds=[listener.fileno()])
    finally:
        listener.close()  # the server holds its own copy
    assert server.url == f"https://127.0.0.1:{port}"
    status, body = get(port, certs.client_context(), "/inspect")
    assert status == 200 and json.loads(body)["scheme"] == "https"


def test_proxy_headers_over_tls(start_demo, certs):
    """A trusted proxy speaking TLS to the server: its client address and scheme are believed."""
    server = start_demo(*tls_args(certs, "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1"))
    context = certs.client_context()
    status, body = get(server.port, context, "/inspect")
    assert status == 200 and json.loads(body)["scheme"] == "https"  # no header: the connection's own scheme
    status, body = get(server.port, context, "/inspect?via=proxy",
                       {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "http"})
    assert status == 200 and json.loads(body)["scheme"] == "http"
    wait_for_log(server, r"203\.0\.113\.7 .*GET /inspect\?via=proxy")


def test_the_head_deadline_counts_from_the_accept(start_demo, certs):
    """A handshake done late leaves the head only what is left of --header-timeout, as over TCP."""
    # Accepted at once, so that the accept and the handshake are apart (a deferred accept waits for the ClientHello).
    server = start_demo(*tls_args(certs, "--header-timeout", "1", "--no-access-log", "--no-deferred-accept"))
    context = certs.client_context()
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT_S)
    started = time.monotonic()
    time.sleep(0.6)  # silent before the ClientHello: the handshake ends about 0.6 s after the accept
    with context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"GET / HTTP/1.1\r\n")  # and the head never ends
        try:
            while tls.recv(4096):
                pass
        except (ConnectionError, ssl.SSLError):
            pass
    closed_after = time.monotonic() - started
    # From the accept: about 1 s. Counted again from the handshake it would be 1.6 s.
    assert 0.9 < closed_after < 1.45, closed_after
