"""HTTPS against the real evloop-demo in a subprocess, with real clients (curl, openssl s_client, requests)."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest
from support.clients import MIB, error_lines, fd_count, reset, rss_bytes, wait_until
from support.demo import wait_for_log
from support.tls_wire import ALERT, PROTOCOL_VERSION_ALERT, read_record, tls11_client_hello

requests = pytest.importorskip("requests")

TIMEOUT_S = 20.0
TESTS_DIR = os.path.dirname(__file__)


def tls_args(certs, *extra: str) -> list[str]:
    return ["--certfile", str(certs.cert_file), "--keyfile", str(certs.key_file), *extra]


def https(server, certs, *, context: ssl.SSLContext | None = None) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection("localhost", server.port, timeout=TIMEOUT_S,
                                       context=context or certs.client_context())


def get_json(server, certs, path: str, **kwargs) -> dict:
    conn = https(server, certs, **kwargs)
    conn.request("GET", path)
    response = conn.getresponse()
    assert response.status == 200
    body = json.loads(response.read())
    conn.close()
    return body


@pytest.fixture(scope="module")
def server(start_module_demo, certs):
    """One HTTPS demo server shared by the module; big bodies allowed for the upload test."""
    extra = ["--cert", f"other.test={certs.other_cert_file},{certs.other_key_file}", "--max-body-bytes", str(21 * MIB),
             "--header-timeout", "2"]
    return start_module_demo(*tls_args(certs, *extra))


def test_url_and_inspect_say_https(server, certs):
    assert server.url.startswith("https://127.0.0.1:")
    body = get_json(server, certs, "/inspect")
    assert body["scheme"] == "https"
    assert body["method"] == "GET" and body["path"] == "/inspect"


def test_plain_http_to_the_tls_port_gets_a_readable_400(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT_S) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        reply = b""
        while chunk := raw.recv(4096):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"HTTPS port" in reply and b"Connection: close" in reply


def test_curl_keep_alive(server, certs):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    url = f"https://localhost:{server.port}"
    result = subprocess.run(["curl", "-sv", "--cacert", str(certs.ca_file), f"{url}/", f"{url}/healthz"],
                            capture_output=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"Hello, World!ok"
    assert b"Re-using existing connection" in result.stderr or b"Reusing existing connection" in result.stderr


def test_requests_with_verification(server, certs):
    response = requests.get(f"https://localhost:{server.port}/inspect", verify=str(certs.ca_file), timeout=TIMEOUT_S)
    assert response.json()["scheme"] == "https"
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"https://localhost:{server.port}/", timeout=TIMEOUT_S)  # not trusted without the test CA


def test_pipelining_over_tls(server, certs):
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT_S)
    with certs.client_context().wrap_socket(raw, server_hostname="localhost") as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 3 + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.count(b"HTTP/1.1 200 OK") == 4
    assert data.endswith(b"ok")


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_bad_request_over_tls_gets_its_400(server, certs, version):
    context = certs.client_context()
    context.maximum_version = version
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT_S)
    with context.wrap_socket(raw, server_hostname="localhost") as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n")
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ssl.SSLEOFError:
            pass
    assert data.startswith(b"HTTP/1.1 400 ")
    assert error_lines(server.log()) == []


def openssl(port: int, certs, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(certs.ca_file),
                           *args], input=stdin, capture_output=True, timeout=TIMEOUT_S)


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_openssl_versions_and_alpn(server, certs, version):
    result = openssl(server.port, certs, version, "-ign_eof", "-alpn", "h2,http/1.1", "-servername", "localhost",
                     stdin=b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    out = result.stdout
    assert b"ALPN protocol: http/1.1" in out
    assert b"Verify return code: 0 (ok)" in out
    assert (b"TLSv1.3" if version == "-tls1_3" else b"TLSv1.2") in out
    assert b"\r\n\r\nok" in out


def test_a_full_tls13_handshake_gets_one_session_ticket_that_resumes(server, certs):
    # One ticket where OpenSSL sends two by default (server_context's session_tickets): each costs
    # the server as much as 5% of the handshake.  openssl -msg lists the handshake messages it got.
    result = openssl(server.port, certs, "-tls1_3", "-msg", "-ign_eof",
                     stdin=b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    received = [line for line in result.stdout.splitlines() if line.startswith(b"<<< ")]
    assert sum(b"NewSessionTicket" in line for line in received) == 1, received
    context = certs.client_context()
    sessions = []
    for _ in range(2):
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT_S)
        with context.wrap_socket(raw, server_hostname="localhost",
                                 session=sessions[-1] if sessions else None) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")  # the ticket came before the answer
            sessions.append(sock.session)
            reused = sock.session_reused
    assert reused


def test_tls11_hello_is_refused_with_a_protocol_version_alert(server):
    # A hand-built TLS 1.1 ClientHello: an OpenSSL 3 client would refuse to send one itself.
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT_S) as raw:
        raw.sendall(tls11_client_hello())
        content_type, payload = read_record(raw)
        assert (content_type, payload) == (ALERT, bytes((2, PROTOCOL_VERSION_ALERT)))  # fatal protocol_version
        assert raw.recv(100) == b""  # then closed


def test_sni_chooses_the_certificate(server, certs):
    # openssl checks the name it asked for against the certificate it got.
    for name in ("other.test", "localhost"):
        result = openssl(server.port, certs, "-servername", name, "-verify_hostname", name)
        assert b"Verify return code: 0 (ok)" in result.stdout, (name, result.stdout[-500:])
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT_S)
    with certs.client_context().wrap_socket(raw, server_hostname="other.test") as sock:
        assert ("DNS", "other.test") in sock.getpeercert()["subjectAltName"]


def test_download_100_mib_intact(server, certs):
    size = 100 * MIB
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT_S)
    with certs.client_context().wrap_socket(raw, server_hostname="localhost") as sock:
        sock.sendall(f"GET /bytes/{size} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = bytearray()
        while chunk := sock.recv(1 << 20):
            data += chunk
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert len(body) == size
    assert hashlib.sha256(body).digest() == hashlib.sha256(b"x" * size).digest()


def test_upload_20_mib_intact(server, certs):
    body = os.urandom(20 * MIB)
    conn = https(server, certs)
    conn.request("POST", "/inspect", body=body)
    reply = json.loads(conn.getresponse().read())
    conn.close()
    assert reply["body_length"] == len(body)
    assert reply["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_static_files_over_tls(server, certs):
    conn = https(server, certs)
    conn.request("GET", "/static/index.html")
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 200
    with open(os.path.join(os.path.dirname(__import__("evloop").__file__), "demo_root", "index.html"), "rb") as f:
        assert body == f.read()


def partial_client_hello(certs) -> bytes:
    """The first bytes of a real ClientHello."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = certs.client_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = outgoing.read()
    return hello[: len(hello) // 2]


def test_resets_and_silent_clients_leave_no_descriptor(start_demo, certs):
    server = start_demo(*tls_args(certs, "--header-timeout", "1", "--no-access-log"))
    pid = server.proc.pid
    get_json(server, certs, "/inspect")  # everything a first request opens is open now
    baseline = fd_count(pid)
    # Hundreds of clients that never send a ClientHello, and some that send half of one ...
    silent = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(200)]
    halves = []
    for _ in range(20):
        raw = socket.create_connection(("127.0.0.1", server.port))
        raw.sendall(partial_client_hello(certs))
        halves.append(raw)
    # ... do not stop the others.
    started = time.monotonic()
    assert get_json(server, certs, "/inspect")["scheme"] == "https"
    assert time.monotonic() - started < 1.0
    # Resets mid-handshake and mid-response.
    for raw in halves[:10]:
        reset(raw)
    for _ in range(5):
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT_S)
        sock = certs.client_context().wrap_socket(raw, server_hostname="localhost")
        sock.sendall(b"GET /bytes/50000000 HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.recv(65536)
        reset(sock)
    # The header timeout (1 s) ends the silent and the half-done handshakes.
    wait_until(lambda: fd_count(pid) <= baseline, TIMEOUT_S, interval_s=0.1, what="descriptors back to the baseline")
    for raw in silent + halves[10:]:
        raw.close()
    assert error_lines(server.log()) == []


def test_a_client_that_never_reads_costs_bounded_memory(start_demo, certs):
    server = start_demo(*tls_args(certs, "--no-access-log"))
    pid = server.proc.pid
    get_json(server, certs, "/inspect")
    before = rss_bytes(pid)
    clients = []
    for _ in range(20):
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT_S)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock = certs.client_context().wrap_socket(raw, server_hostname="localhost")
        sock.sendall(b"GET /bytes/104857600 HTTP/1.1\r\nHost: x\r\n\r\n")
        clients.append(sock)
    sock.recv(100)  # the last one's answer has started: the others' too
    get_json(server, certs, "/inspect")  # the loop has gone round since
    grown = rss_bytes(pid) - before
    for sock in clients:
        sock.close()
    assert grown < 16 * MIB, f"resident memory grew by {grown / MIB:.1f} MiB for 20 clients that do not read"


def test_client_certificates_reach_the_app(start_demo, certs):
    server = start_demo(*tls_args(certs, "--ca-certs", str(certs.ca_file), "--cert-reqs", "required",
                                  "--app", "tls_apps:app"), env={"PYTHONPATH": TESTS_DIR + os.pathsep +
                                                                   os.environ.get("PYTHONPATH", "")})
    context = certs.client_context(with_client_cert=True)
    body = get_json(server, certs, "/tls", context=context)
    assert body["scheme"] == "https" and body["client_cert"] is True
    assert "CN=alice" in body["client_subject"] and "O=Example" in body["client_subject"]
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
        get_json(server, certs, "/tls")  # required, and none sent


def test_a_connections_tls_facts_are_its_own_when_its_protocol_is_reused(start_demo, certs):
    """Closed connections' protocols serve the next ones (HTTPProtocol.for_connection): each sees its own TLS."""
    server = start_demo(*tls_args(certs, "--ca-certs", str(certs.ca_file), "--cert-reqs", "optional",
                                  "--app", "tls_apps:app"), env={"PYTHONPATH": TESTS_DIR + os.pathsep +
                                                                   os.environ.get("PYTHONPATH", "")})
    with_cert = certs.client_context(with_client_cert=True)
    for context, has_cert in ((None, False), (with_cert, True), (None, False), (with_cert, True)):
        body = get_json(server, certs, "/tls", context=context)
        assert body["scheme"] == "https" and body["client_cert"] is has_cert


def test_wsgi_environ_has_mod_ssl_variables(start_demo, certs):
    server = start_demo(*tls_args(certs, "--ca-certs", str(certs.ca_file), "--cert-reqs", "optional",
                                  "--wsgi", "tls_apps:wsgi_app"), env={"PYTHONPATH": TESTS_DIR + os.pathsep +
                                                                         os.environ.get("PYTHONPATH", "")})
    environ = get_json(server, certs, "/", context=certs.client_context(with_client_cert=True))
    assert environ["wsgi.url_scheme"] == "https" and environ["HTTPS"] == "on"
    assert environ["SSL_CLIENT_VERIFY"] == "SUCCESS"
    assert environ["SSL_CLIENT_S_DN"].startswith("CN=alice") and environ["SSL_CLIENT_S_DN_CN"] == "alice"
    assert environ["SSL_CLIENT_CERT"].startswith("-----BEGIN CERTIFICATE-----")
    assert environ["SSL_PROTOCOL"].startswith("TLSv1.")
    anonymous = get_json(server, certs, "/")  # optional: no certificate is fine
    assert anonymous["SSL_CLIENT_VERIFY"] == "NONE" and "SSL_CLIENT_S_DN" not in anonymous


def test_workers_resume_sessions_across_processes(start_demo, certs):
    server = start_demo(*tls_args(certs, "--workers", "2", "--no-access-log"))
    context = certs.client_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    session = None
    reused = []
    workers = set()
    for _ in range(8):
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT_S)
        with context.wrap_socket(raw, server_hostname="localhost", session=session) as sock:
            sock.sendall(b"GET /inspect HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
            workers.add(json.loads(data.partition(b"\r\n\r\n")[2])["worker"]["id"])
            reused.append(sock.session_reused)
            session = sock.session
    assert reused[0] is False and all(reused[1:]), reused


@pytest.mark.parametrize("balance", ["reuseport", "shared"])
def test_workers_announce_an_https_url(start_demo, certs, balance):
    # The supervisor names the URL of its workers' sockets: https, as a single process says it.
    server = start_demo(*tls_args(certs, "--workers", "2", "--balance", balance, "--no-access-log"))
    assert server.url == f"https://127.0.0.1:{server.port}", server.log()


def test_unix_socket_with_tls(start_demo, certs, tmp_path):
    path = str(tmp_path / "evloop.sock")
    start_demo(*tls_args(certs, "--uds", path))
    raw = socket.socket(socket.AF_UNIX)
    raw.settimeout(TIMEOUT_S)
    raw.connect(path)
    with certs.client_context().wrap_socket(raw, server_hostname="localhost") as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.endswith(b"ok")


def test_sighup_reloads_certificates_and_keeps_connections(start_demo, certs, tmp_path):
    cert_file, key_file = tmp_path / "server.pem", tmp_path / "server.key"
    shutil.copy(certs.cert_file, cert_file)
    shutil.copy(certs.key_file, key_file)
    server = start_demo("--certfile", str(cert_file), "--keyfile", str(key_file))

    def serial() -> str:
        conn = https(server, certs)
        conn.connect()
        der = conn.sock.getpeercert(binary_form=True)
        conn.close()
        return hashlib.sha256(der).hexdigest()

    first = serial()
    kept = https(server, certs)
    kept.request("GET", "/healthz")
    assert kept.getresponse().read() == b"ok"
    renewed = certs.ca.issue_cert("localhost", "127.0.0.1", "::1")
    cert_file.write_bytes(b"".join(blob.bytes() for blob in renewed.cert_chain_pems))
    key_file.write_bytes(renewed.private_key_pem.bytes())
    server.signal(signal.SIGHUP)
    wait_for_log(server, "certificates reloaded")
    second = serial()
    assert second != first
    kept.request("GET", "/healthz")  # the connection open across the reload still works
    assert kept.getresponse().read() == b"ok"
    cert_file.write_bytes(b"not a certificate")
    server.signal(signal.SIGHUP)
    wait_for_log(server, "could not be reloaded")
    assert serial() == second  # the bad one was not taken
    kept.close()
    assert [line for line in error_lines(server.log()) if "could not be reloaded" not in line] == []
