"""The demo endpoints (the fixed contract), over real sockets with real clients."""

from __future__ import annotations

import hashlib
import http.client
import json
import shutil
import socket
import subprocess
import time

import pytest
import requests


def test_hello(demo):
    r = requests.get(demo.url + "/", timeout=5)
    assert r.status_code == 200
    assert r.content == b"Hello, World!"
    assert r.headers["Content-Type"].startswith("text/plain")
    assert r.headers["Content-Length"] == "13"
    assert "Date" in r.headers and r.headers["Server"].startswith("evloop")


def test_healthz(demo):
    r = requests.get(demo.url + "/healthz", timeout=5)
    assert (r.status_code, r.content) == (200, b"ok")


@pytest.mark.parametrize("method", ["POST", "PUT"])
@pytest.mark.parametrize("size", [0, 1, 4096, 300_000])
def test_echo(demo, method, size):
    body = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
    r = requests.request(method, demo.url + "/echo", data=body, headers={"Content-Type": "application/x-test"}, timeout=5)
    assert r.status_code == 200
    assert r.content == body
    assert r.headers["Content-Type"] == "application/x-test"


def test_echo_default_content_type(demo):
    conn = http.client.HTTPConnection(demo.host, demo.port, timeout=5)
    conn.request("POST", "/echo", body=b"abc")
    r = conn.getresponse()
    assert r.status == 200 and r.read() == b"abc"
    assert r.getheader("Content-Type") == "application/octet-stream"
    conn.close()


def test_echo_chunked_request(demo):
    def gen():
        yield b"hello "
        yield b"chunked "
        yield b"world"
    r = requests.post(demo.url + "/echo", data=gen(), timeout=5)
    assert r.status_code == 200 and r.content == b"hello chunked world"


def test_echo_wrong_method(demo):
    r = requests.get(demo.url + "/echo", timeout=5)
    assert r.status_code == 405
    assert set(m.strip() for m in r.headers["Allow"].split(",")) >= {"POST", "PUT"}


def test_inspect(demo):
    body = b"some body"
    conn = http.client.HTTPConnection(demo.host, demo.port, timeout=5)
    conn.putrequest("PATCH", "/inspect?a=1&b=%20x", skip_accept_encoding=True)
    conn.putheader("X-First", "one")
    conn.putheader("x-MiXeD", "two")
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    r = conn.getresponse()
    assert r.status == 200
    assert r.getheader("Content-Type").startswith("application/json")
    data = json.loads(r.read())
    conn.close()
    assert data["method"] == "PATCH"
    assert data["path"] == "/inspect"
    assert data["query"] == "a=1&b=%20x"
    assert data["version"] == "HTTP/1.1"
    names = [name for name, _ in data["headers"]]
    assert names.index("X-First") < names.index("x-MiXeD")  # received order, names as sent
    assert ["x-MiXeD", "two"] in data["headers"]
    assert data["body_length"] == len(body)
    assert data["body_sha256"] == hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize("n", [0, 1, 65535, 65536, 65537, 5_000_000])
def test_bytes(demo, n):
    r = requests.get(f"{demo.url}/bytes/{n}", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Length"] == str(n)
    assert "Transfer-Encoding" not in r.headers
    assert len(r.content) == n


@pytest.mark.parametrize("bad", ["abc", "-1", "1e3", "%2D1", "%20", str((1 << 30) + 1), "99999999999999999999"])
def test_bytes_bad_number(demo, bad):
    r = requests.get(f"{demo.url}/bytes/{bad}", timeout=5)
    assert r.status_code == 400
    assert r.text  # a reason, not a traceback
    assert "Traceback" not in r.text


def test_stream(demo):
    r = requests.get(demo.url + "/stream/5", timeout=5)
    assert r.status_code == 200
    assert r.headers["Transfer-Encoding"] == "chunked"
    assert r.content == b"".join(b"chunk %d\n" % i for i in range(5))


def test_stream_http10_is_close_delimited(demo):
    with socket.create_connection((demo.host, demo.port), timeout=5) as s:
        s.sendall(b"GET /stream/3 HTTP/1.0\r\n\r\n")
        data = _read_all(s)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") or head.startswith(b"HTTP/1.0 200")
    assert b"chunked" not in head.lower()
    assert body == b"chunk 0\nchunk 1\nchunk 2\n"


@pytest.mark.parametrize("bad", ["-1", "x", str(60_001)])
def test_delay_bad_number(demo, bad):
    assert requests.get(f"{demo.url}/delay/{bad}", timeout=5).status_code == 400


def test_delay(demo):
    start = time.monotonic()
    r = requests.get(demo.url + "/delay/200", timeout=5)
    took = time.monotonic() - start
    assert (r.status_code, r.content) == (200, b"delayed")
    assert took >= 0.2


@pytest.mark.parametrize(("target", "body"), [
    ("/items/42", b"item 42"),
    ("/items/3f2a?page=7&sort=price", b"item 3f2a"),  # the query is not part of the id
    ("/items/caf%C3%A9", "item café".encode()),          # the decoded segment
    ("/items/%FF", b"item \xff"),                        # not UTF-8: the bytes sent
])
def test_items(demo, target, body):
    r = requests.get(demo.url + target, timeout=5)
    assert (r.status_code, r.content) == (200, body)
    assert r.headers["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize("target", ["/items/", "/items/a/b", "/items/a%2Fb"])
def test_items_needs_one_segment(demo, target):
    assert requests.get(demo.url + target, timeout=5).status_code == 404


def test_unknown_path(demo):
    assert requests.get(demo.url + "/nope", timeout=5).status_code == 404


def test_head_of_hello(demo):
    r = requests.head(demo.url + "/", timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Length"] == "13"
    assert r.content == b""


def test_static_index(demo):
    r = requests.get(demo.url + "/static/", timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    assert b"evloop" in r.content
    assert requests.get(demo.url + "/static/index.html", timeout=5).content == r.content


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed (.ci/run installs it)")
def test_curl_hello_and_echo(demo):
    out = subprocess.run(["curl", "-sS", "--max-time", "5", demo.url + "/"], capture_output=True, timeout=10)
    assert out.returncode == 0 and out.stdout == b"Hello, World!"
    out = subprocess.run(
        ["curl", "-sS", "--max-time", "5", "-X", "POST", "--data-binary", "@-", demo.url + "/echo"],
        input=b"from curl\n", capture_output=True, timeout=10,
    )
    assert out.returncode == 0 and out.stdout == b"from curl\n"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed (.ci/run installs it)")
def test_curl_keepalive_reuses_connection(demo):
    out = subprocess.run(["curl", "-sS", "-v", "--max-time", "5", demo.url + "/", demo.url + "/healthz"],
                         capture_output=True, timeout=10)
    assert out.returncode == 0
    assert out.stdout == b"Hello, World!ok"
    assert b"Re-using existing connection" in out.stderr or b"Reusing existing" in out.stderr


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)
