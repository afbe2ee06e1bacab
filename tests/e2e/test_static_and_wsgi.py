"""Static files (sendfile, ranges, conditionals, traversal) and WSGI apps through evloop-demo."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import textwrap

import pytest
import requests


@pytest.fixture(scope="module")
def static_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("root")
    (root / "hello.txt").write_bytes(b"hello static\n")
    (root / "sub").mkdir()
    (root / "sub" / "index.html").write_bytes(b"<p>sub index</p>")
    (root / "data.bin").write_bytes(os.urandom(1 << 20))
    big = root / "big.bin"
    block = os.urandom(1 << 20)
    with open(big, "wb") as f:
        for i in range(100):
            f.write(block[i:] + block[:i])
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.txt").write_bytes(b"secret")
    os.symlink(outside / "secret.txt", root / "leak.txt")
    os.symlink(root / "hello.txt", root / "alias.txt")
    return root


@pytest.fixture(scope="module")
def static_demo(static_root, start_module_demo):
    return start_module_demo("--no-access-log", "--root", str(static_root))


def test_text_file_with_validators(static_demo):
    r = requests.get(static_demo.url + "/static/hello.txt", timeout=5)
    assert r.status_code == 200 and r.content == b"hello static\n"
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert r.headers["ETag"].startswith('"') and "Last-Modified" in r.headers
    assert r.headers["Accept-Ranges"] == "bytes"


def test_100_mib_file_checked_by_hash(static_demo, static_root):
    expected = hashlib.sha256((static_root / "big.bin").read_bytes()).hexdigest()
    digest = hashlib.sha256()
    with requests.get(static_demo.url + "/static/big.bin", stream=True, timeout=30) as r:
        assert r.status_code == 200
        assert int(r.headers["Content-Length"]) == 100 << 20
        for chunk in r.iter_content(1 << 20):
            digest.update(chunk)
    assert digest.hexdigest() == expected


def test_server_memory_stays_flat_while_sending_big_file(static_demo):
    pid = static_demo.proc.pid

    def rss_kib() -> int:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    before = rss_kib()
    with requests.get(static_demo.url + "/static/big.bin", stream=True, timeout=30) as r:
        for _ in r.iter_content(1 << 20):
            pass
    assert rss_kib() - before < 20 * 1024  # 100 MiB sent, far less than that held


def test_conditional_requests(static_demo):
    r = requests.get(static_demo.url + "/static/hello.txt", timeout=5)
    etag, last_modified = r.headers["ETag"], r.headers["Last-Modified"]
    r2 = requests.get(static_demo.url + "/static/hello.txt", headers={"If-None-Match": etag}, timeout=5)
    assert r2.status_code == 304 and r2.content == b""
    r3 = requests.get(static_demo.url + "/static/hello.txt", headers={"If-Modified-Since": last_modified}, timeout=5)
    assert r3.status_code == 304
    r4 = requests.get(static_demo.url + "/static/hello.txt", headers={"If-None-Match": '"other"'}, timeout=5)
    assert r4.status_code == 200


def test_ranges(static_demo, static_root):
    data = (static_root / "data.bin").read_bytes()
    url = static_demo.url + "/static/data.bin"
    r = requests.get(url, headers={"Range": "bytes=100-199"}, timeout=5)
    assert r.status_code == 206 and r.content == data[100:200]
    assert r.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    r = requests.get(url, headers={"Range": "bytes=-10"}, timeout=5)
    assert r.status_code == 206 and r.content == data[-10:]
    r = requests.get(url, headers={"Range": f"bytes={len(data)}-"}, timeout=5)
    assert r.status_code == 416 and r.headers["Content-Range"] == f"bytes */{len(data)}"
    etag = requests.head(url, timeout=5).headers["ETag"]
    r = requests.get(url, headers={"Range": "bytes=0-9", "If-Range": etag}, timeout=5)
    assert r.status_code == 206 and r.content == data[:10]
    r = requests.get(url, headers={"Range": "bytes=0-9", "If-Range": '"stale"'}, timeout=5)
    assert r.status_code == 200 and r.content == data


def test_head_and_directory_index(static_demo):
    r = requests.head(static_demo.url + "/static/hello.txt", timeout=5)
    assert r.status_code == 200 and r.headers["Content-Length"] == "13" and r.content == b""
    r = requests.get(static_demo.url + "/static/sub/", timeout=5)
    assert r.status_code == 200 and r.content == b"<p>sub index</p>"
    r = requests.get(static_demo.url + "/static/sub", timeout=5, allow_redirects=False)
    assert r.status_code in (301, 308) and r.headers["Location"].endswith("/static/sub/")


@pytest.mark.parametrize(
    "target",
    [
        "/static/../pyproject.toml",
        "/static/%2e%2e/%2e%2e/etc/passwd",
        "/static/sub/..%2f..%2fhello.txt",
        "/static/..%5c..%5cetc%5cpasswd",
        "/static/hello.txt%00.png",
        "/static/leak.txt",
        "/static//etc/passwd",
    ],
)
def test_traversal_attempts_never_leave_root(static_demo, target):
    with socket.create_connection((static_demo.host, static_demo.port), timeout=5) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 404") or data.startswith(b"HTTP/1.1 400"), data[:100]
    assert b"secret" not in data and b"root:" not in data


def test_keep_alive_continues_after_sendfile_responses(static_demo, static_root):
    data = (static_root / "data.bin").read_bytes()
    with socket.create_connection((static_demo.host, static_demo.port), timeout=10) as s:
        s.sendall(b"GET /static/data.bin HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /static/hello.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-4\r\n\r\n"
                  b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        expected_tail = b"\r\n\r\nok"
        while not received.endswith(expected_tail):
            chunk = s.recv(1 << 20)
            assert chunk, "server closed the connection"
            received += chunk
    assert data in received
    assert received.count(b"HTTP/1.1 2") == 3
    assert b"\r\n\r\nhello" in received
    assert b"connection: close" not in received.lower()


def test_symlink_inside_root_is_followed(static_demo):
    assert requests.get(static_demo.url + "/static/alias.txt", timeout=5).content == b"hello static\n"


def test_no_directory_listing(static_demo, static_root):
    (static_root / "empty").mkdir(exist_ok=True)
    assert requests.get(static_demo.url + "/static/empty/", timeout=5).status_code == 404


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed (.ci/run installs it)")
def test_curl_range(static_demo, static_root):
    out = subprocess.run(["curl", "-sS", "--max-time", "5", "-r", "0-4", static_demo.url + "/static/hello.txt"],
                         capture_output=True, timeout=10)
    assert out.stdout == b"hello"


FLASK_APP = textwrap.dedent('''
    from flask import Flask, jsonify, request, abort, Response, stream_with_context

    app = Flask(__name__)

    @app.get("/")
    def index():
        return "flask says hi"

    @app.get("/items/<int:item_id>")
    def item(item_id):
        if item_id == 0:
            abort(404)
        return jsonify(id=item_id, q=request.args.get("q"))

    @app.post("/form")
    def form():
        return jsonify(name=request.form["name"], n=len(request.form))

    @app.post("/json")
    def echo_json():
        return jsonify(got=request.get_json())

    @app.get("/stream")
    def stream():
        def gen():
            for i in range(3):
                yield f"part {i}\\n"
        return Response(stream_with_context(gen()), mimetype="text/plain")

    @app.get("/error")
    def error():
        raise ValueError("flask failure")
''')


@pytest.fixture(scope="module")
def flask_demo(tmp_path_factory, start_module_demo):
    pytest.importorskip("flask")
    path = tmp_path_factory.mktemp("flask")
    (path / "flask_demo_app.py").write_text(FLASK_APP)
    return start_module_demo("--wsgi", "flask_demo_app:app", env={"PYTHONPATH": str(path)})


def test_flask_routing_json_forms_streaming_errors(flask_demo):
    url = flask_demo.url
    assert requests.get(url + "/", timeout=5).text == "flask says hi"
    assert requests.get(url + "/items/7?q=x", timeout=5).json() == {"id": 7, "q": "x"}
    assert requests.get(url + "/items/0", timeout=5).status_code == 404
    assert requests.post(url + "/form", data={"name": "ada"}, timeout=5).json() == {"name": "ada", "n": 1}
    assert requests.post(url + "/json", json={"a": [1, 2]}, timeout=5).json() == {"got": {"a": [1, 2]}}
    r = requests.get(url + "/stream", timeout=5)
    assert r.text == "part 0\npart 1\npart 2\n"
    assert requests.get(url + "/error", timeout=5).status_code == 500
    assert requests.get(url + "/", timeout=5).status_code == 200  # still serving after the error


def test_unix_domain_socket(start_demo, tmp_path):
    path = str(tmp_path / "demo.sock")
    server = start_demo("--uds", path, "--no-access-log")
    assert server.url == f"unix:{path}"
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"Hello, World!")


def test_debug_log_level_logs_request_heads(start_demo):
    server = start_demo("--log-level", "debug")
    requests.get(server.url + "/inspect", headers={"X-Debug-Marker": "seen"}, timeout=5)
    server.stop()
    assert "X-Debug-Marker" in server.log()


def test_access_log_line(start_demo):
    server = start_demo()
    requests.get(server.url + "/healthz", timeout=5)
    server.stop()
    assert '"GET /healthz HTTP/1.1" 200' in server.log()
