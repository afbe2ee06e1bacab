"""HAProxy's send-proxy and send-proxy-v2 in front of evloop-demo --proxy-protocol: real processes on loopback.

The app reports REMOTE_ADDR and REMOTE_PORT: through an L4 (tcp mode)
HAProxy they must be the test client's own address and port, not HAProxy's;
the access log must name the same client.  HAProxy's health checks go
through the PROXY protocol too (a LOCAL header for version 2), so a backend
marked UP is itself a check that they are accepted.
"""

from __future__ import annotations

import http.client
import json
import re
import socket

import pytest
from support.demo import wait_for_log
from support.haproxy import HAProxy, front_config

pytestmark = pytest.mark.timeout(90)

WSGI_APP = '''
import json
def app(environ, start_response):
    body = json.dumps({"remote_addr": environ["REMOTE_ADDR"], "remote_port": environ.get("REMOTE_PORT"),
                       "scheme": environ["wsgi.url_scheme"]}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
'''

def config(server, send_proxy: str, *, mode: str = "tcp", front_extra: str = "") -> str:
    return front_config(f"{server.host}:{server.port} {send_proxy}", mode=mode, front_extra=front_extra)


def get_through(proxy: HAProxy, path: str = "/", headers: dict[str, str] | None = None) -> tuple[dict, int]:
    """GET through HAProxy from a socket whose port we know; returns the app's JSON and that port."""
    family = socket.AF_INET6 if ":" in proxy.host else socket.AF_INET
    sock = socket.socket(family)
    sock.settimeout(10)
    sock.connect((proxy.host, proxy.port))
    local_port = sock.getsockname()[1]
    conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=10)
    conn.sock = sock
    try:
        conn.request("GET", path, headers={"Connection": "close", **(headers or {})})
        response = conn.getresponse()
        assert response.status == 200, response.status
        return json.loads(response.read()), local_port
    finally:
        conn.close()


@pytest.fixture
def demo_app(tmp_path):
    (tmp_path / "ppapp.py").write_text(WSGI_APP)
    return {"PYTHONPATH": str(tmp_path)}


@pytest.mark.parametrize("send_proxy", ["send-proxy", "send-proxy-v2", "send-proxy-v2 proxy-v2-options crc32c"])
@pytest.mark.parametrize("front_host", ["127.0.0.1", "::1"])
def test_haproxy_tells_evloop_who_the_client_is(start_demo, demo_app, tmp_path, send_proxy, front_host):
    server = start_demo("--wsgi", "ppapp:app", "--proxy-protocol", env=demo_app)
    with HAProxy(config(server, send_proxy), tmp_path, front_host=front_host) as proxy:
        for _ in range(3):
            seen, port = get_through(proxy)
            assert seen == {"remote_addr": front_host, "remote_port": str(port), "scheme": "http"}
        # The access log names the client too (the line is written when the loop goes idle).
        wait_for_log(server, re.escape(front_host) + r' - - \[[^]]+\] "GET / HTTP/1.1" 200', count=3)
    assert "PROXY protocol" not in server.log()  # no header refused: the checks' and the clients'


def test_workers_each_read_the_header(start_demo, demo_app, tmp_path):
    server = start_demo("--wsgi", "ppapp:app", "--proxy-protocol", "--workers", "2", env=demo_app)
    with HAProxy(config(server, "send-proxy-v2"), tmp_path, front_host="::1") as proxy:
        for _ in range(10):
            seen, port = get_through(proxy)
            assert (seen["remote_addr"], seen["remote_port"]) == ("::1", str(port))


def test_x_forwarded_for_from_an_http_mode_haproxy_agrees(start_demo, demo_app, tmp_path):
    # HAProxy in http mode sends both: the PROXY header (the client's
    # connection) and X-Forwarded-For.  The header's client is the peer the
    # proxy headers' walk starts from, and is not a trusted proxy, so a
    # forged X-Forwarded-For from the client changes nothing.
    server = start_demo("--wsgi", "ppapp:app", "--proxy-protocol", "--proxy-headers", env=demo_app)
    with HAProxy(config(server, "send-proxy-v2", mode="http", front_extra="    option forwardfor"),
                 tmp_path, front_host="::1") as proxy:
        seen, port = get_through(proxy, headers={"X-Forwarded-For": "192.0.2.66"})
        assert (seen["remote_addr"], seen["remote_port"]) == ("::1", str(port))


def test_haproxy_without_send_proxy_is_refused_and_logged(start_demo, demo_app, tmp_path):
    # The operator forgot send-proxy: every connection from the trusted proxy
    # lacks its header, is closed without an answer, and says why in the log.
    server = start_demo("--wsgi", "ppapp:app", "--proxy-protocol", env=demo_app)
    with HAProxy(config(server, ""), tmp_path, backends_up=0) as proxy:
        sock = socket.create_connection((proxy.host, proxy.port), timeout=10)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
        sock.close()
        assert b"200 OK" not in answer  # HAProxy's own 502/503, or nothing: never the app
    wait_for_log(server, r"WARNING evloop: PROXY protocol: peer 127\.0\.0\.1:\d+: bad header \(not a PROXY protocol header: b'GET ")


def test_a_direct_client_that_is_not_a_proxy_is_served_as_it_is(start_demo, demo_app):
    # Only --forwarded-allow-ips peers must send a header; 127.0.0.1 is trusted by
    # default, so trust another range and connect directly.
    server = start_demo("--wsgi", "ppapp:app", "--proxy-protocol", "--forwarded-allow-ips", "10.0.0.0/8",
                        env=demo_app)
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    conn.request("GET", "/")
    assert json.loads(conn.getresponse().read())["remote_addr"] == "127.0.0.1"
    conn.close()
