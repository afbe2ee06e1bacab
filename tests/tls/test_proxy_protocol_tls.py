"""The PROXY protocol on an HTTPS port: the header comes first, in the clear, then the TLS ClientHello.

A raw client (the header, then ``ssl.wrap_socket`` on the same socket) and
HAProxy (``ssl send-proxy-v2`` to the backend) in front of evloop-demo.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import struct

import pytest
from support.demo import wait_for_log
from support.haproxy import HAProxy, front_config

from evloop.net.proxy_header import V2_SIGNATURE

pytestmark = pytest.mark.timeout(90)

WSGI_APP = '''
import json
def app(environ, start_response):
    body = json.dumps({"remote_addr": environ["REMOTE_ADDR"], "remote_port": environ.get("REMOTE_PORT"),
                       "scheme": environ["wsgi.url_scheme"], "https": environ.get("HTTPS")}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
'''


@pytest.fixture
def https_demo(start_demo, certs, tmp_path):
    (tmp_path / "ppapp.py").write_text(WSGI_APP)

    def start(*extra: str):
        return start_demo("--wsgi", "ppapp:app", "--certfile", str(certs.cert_file), "--keyfile",
                          str(certs.key_file), "--proxy-protocol", *extra, env={"PYTHONPATH": str(tmp_path)})

    return start


def _https_get(sock: socket.socket, context) -> tuple[int, bytes]:
    tls = context.wrap_socket(sock, server_hostname="localhost")
    tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    data = b"".join(iter(lambda: tls.recv(65536), b""))
    tls.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def test_header_then_tls(https_demo, certs):
    server = https_demo()
    v1 = b"PROXY TCP6 2001:db8::7 2001:db8::1 4711 443\r\n"
    addresses = bytes(15) + b"\x01" + bytes(15) + b"\x02" + struct.pack("!HH", 50000, 443)
    v2 = V2_SIGNATURE + b"\x21\x21" + struct.pack("!H", len(addresses)) + addresses
    for header, client in ((v1, "2001:db8::7"), (v2, "::1")):
        sock = socket.create_connection((server.host, server.port), timeout=10)
        sock.sendall(header)
        status, body = _https_get(sock, certs.client_context())
        assert status == 200
        assert json.loads(body) == {"remote_addr": client, "remote_port": "4711" if header is v1 else "50000",
                                    "scheme": "https", "https": "on"}
    wait_for_log(server, r'2001:db8::7 - - \[[^]]+\] "GET / HTTP/1.1" 200')


def test_tls_without_the_header_from_a_trusted_peer_is_refused(https_demo, certs):
    server = https_demo()
    sock = socket.create_connection((server.host, server.port), timeout=10)
    with pytest.raises((ConnectionError, OSError)):
        _https_get(sock, certs.client_context())
    # The first bytes as repr() shows them: in double quotes when the ClientHello's random bytes hold a "'".
    wait_for_log(server, r"PROXY protocol: peer 127\.0\.0\.1:\d+: bad header \(not a PROXY protocol header: b['\"]\\x16\\x03")


def test_haproxy_ssl_send_proxy_v2(https_demo, tmp_path):
    server = https_demo()
    config = front_config(f"{server.host}:{server.port} ssl verify none send-proxy-v2 check-ssl")
    with HAProxy(config, tmp_path, front_host="::1") as proxy:
        for _ in range(3):
            sock = socket.create_connection((proxy.host, proxy.port), timeout=10)
            port = sock.getsockname()[1]
            conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=10)
            conn.sock = sock
            conn.request("GET", "/", headers={"Connection": "close"})
            seen = json.loads(conn.getresponse().read())
            conn.close()
            # The client spoke plain HTTP to HAProxy, HAProxy TLS to evloop: evloop's scheme is its own.
            assert seen == {"remote_addr": "::1", "remote_port": str(port), "scheme": "https", "https": "on"}
    wait_for_log(server, re.escape("::1") + r' - - \[[^]]+\] "GET / HTTP/1.1" 200', count=3)
    assert "PROXY protocol" not in server.log()


def test_haproxy_terminating_tls_says_so_with_send_proxy_v2_ssl(start_demo, certs, tmp_path):
    # The client speaks TLS to HAProxy, HAProxy plain HTTP to evloop with the
    # PP2_TYPE_SSL TLV: the app sees the scheme the client used.
    (tmp_path / "ppapp.py").write_text(WSGI_APP)
    server = start_demo("--wsgi", "ppapp:app", "--proxy-protocol", env={"PYTHONPATH": str(tmp_path)})
    bundle = tmp_path / "haproxy.pem"
    bundle.write_bytes(certs.cert_file.read_bytes() + certs.key_file.read_bytes())
    config = front_config(f"{server.host}:{server.port} send-proxy-v2-ssl", bind_options=f"ssl crt {bundle}")
    with HAProxy(config, tmp_path) as proxy:
        sock = socket.create_connection((proxy.host, proxy.port), timeout=10)
        port = sock.getsockname()[1]
        status, body = _https_get(sock, certs.client_context())
        assert status == 200
        assert json.loads(body) == {"remote_addr": "127.0.0.1", "remote_port": str(port), "scheme": "https",
                                    "https": None}
