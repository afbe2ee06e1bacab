"""Issue 18, item 4: the WSGI details a real deployment meets, against the real server.

The reason phrase as the app wrote it, ``SERVER_SOFTWARE``,
``wsgi.multiprocess`` with workers, ``wsgi.input_terminated``, hop-by-hop
response headers dropped (PEP 3333), ``wsgi.file_wrapper`` sent with
``sendfile`` (counted: the server makes a handful of read calls for a file of
32 MiB, against one per block when the app iterates the file itself), and
``--root`` files under ``--static-path`` in front of the app.
"""

from __future__ import annotations

import json

import pytest
import requests
from support.raw_http import exchange, split_response

import evloop

APP = '''
import json

def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/custom":
        start_response("299 Very Custom", [("Content-Type", "text/plain")])
        return [b"custom"]
    if path == "/custom-stream":
        start_response("200 Fine Thanks", [("Content-Type", "text/plain")])
        return iter([b"a", b"b"])
    if path == "/bad-reason":
        start_response("200 OK\\r\\nX-Injected: 1", [])
        return [b"never"]
    if path == "/hop":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Keep-Alive", "timeout=99"),
                                  ("Transfer-Encoding", "chunked"), ("Upgrade", "h2c"), ("X-Kept", "yes")])
        return [b"hop"]
    if path == "/file":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](open("big.bin", "rb"))
    if path == "/file-iter":
        f = open("big.bin", "rb")
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return iter(lambda: f.read(65536), b"")
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/json")])
    keys = ("SERVER_SOFTWARE", "wsgi.multiprocess", "wsgi.multithread", "wsgi.input_terminated", "CONTENT_LENGTH")
    info = {key: environ.get(key) for key in keys}
    info["body"] = body.decode()
    return [json.dumps(info).encode()]
'''



@pytest.fixture
def folder(tmp_path):
    (tmp_path / "details.py").write_text(APP)
    return tmp_path


def raw_get(server, path):
    return exchange(server.host, server.port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())


def test_the_reason_phrase_is_the_apps(serve_wsgi, folder):
    server = serve_wsgi(folder, "--wsgi", "details:app")
    assert raw_get(server, "/custom").startswith(b"HTTP/1.1 299 Very Custom\r\n")
    assert raw_get(server, "/custom-stream").startswith(b"HTTP/1.1 200 Fine Thanks\r\n")
    assert raw_get(server, "/").startswith(b"HTTP/1.1 200 OK\r\n")
    data = raw_get(server, "/bad-reason")
    assert data.startswith(b"HTTP/1.1 500 ") and b"X-Injected" not in data
    server.stop()
    assert "invalid reason phrase" in server.log()


def test_environ_software_multiprocess_and_terminated_input(serve_wsgi, folder):
    one = serve_wsgi(folder, "--wsgi", "details:app")
    info = requests.post(one.url, data=iter([b"chunked ", b"body"]), timeout=5).json()  # sent chunked
    assert info == {"SERVER_SOFTWARE": f"evloop/{evloop.__version__}", "wsgi.multiprocess": False, "wsgi.multithread": False,
                    "wsgi.input_terminated": True, "CONTENT_LENGTH": "12", "body": "chunked body"}
    two = serve_wsgi(folder, "--wsgi", "details:app", "--workers", "2")
    assert requests.get(two.url, timeout=5).json()["wsgi.multiprocess"] is True


def test_hop_by_hop_headers_from_the_app_are_dropped_and_logged_once(serve_wsgi, folder):
    server = serve_wsgi(folder, "--wsgi", "details:app")
    for _ in range(2):
        status, headers, body = split_response(raw_get(server, "/hop"))
        assert (status, body, headers["x-kept"]) == (200, b"hop", "yes")
        assert "keep-alive" not in headers and "upgrade" not in headers
        assert headers["content-length"] == "3" and "transfer-encoding" not in headers
    server.stop()
    log = server.log()
    for name in ("Keep-Alive", "Transfer-Encoding", "Upgrade"):
        assert log.count(f"dropping the hop-by-hop response header {name}:") == 1, log


def read_calls(pid):
    with open(f"/proc/{pid}/io") as f:
        return int(dict(line.split(": ") for line in f.read().splitlines())["syscr"])


def test_file_wrapper_is_sent_with_sendfile(serve_wsgi, folder):
    size = 32 << 20
    (folder / "big.bin").write_bytes(b"\x5a" * size)
    server = serve_wsgi(folder, "--wsgi", "details:app", "--no-access-log")
    pid = server.proc.pid
    counts = {}
    for path in ("/file", "/file-iter"):
        before = read_calls(pid)
        response = requests.get(server.url.rstrip("/") + path, timeout=20)
        assert response.status_code == 200 and len(response.content) == size
        counts[path] = read_calls(pid) - before
    # sendfile: a few calls for the whole file; the app's own loop: one read per 64 KiB block.
    assert counts["/file"] < 64, counts
    assert counts["/file-iter"] >= size // 65536, counts
    print(f"read calls for {size >> 20} MiB: wsgi.file_wrapper {counts['/file']}, the app's loop {counts['/file-iter']}")


def test_root_files_under_the_static_path_in_front_of_the_app(serve_wsgi, folder):
    (folder / "public" / "css").mkdir(parents=True)
    (folder / "public" / "css" / "site.css").write_text("body { color: red }\n")
    server = serve_wsgi(folder, "--wsgi", "details:app", "--root", "public", "--static-path", "/assets")
    base = server.url.rstrip("/")
    css = requests.get(base + "/assets/css/site.css", timeout=5)
    assert css.status_code == 200 and css.text == "body { color: red }\n"
    assert css.headers["content-type"].startswith("text/css") and css.headers["etag"]
    again = requests.get(base + "/assets/css/site.css", headers={"If-None-Match": css.headers["etag"]}, timeout=5)
    assert again.status_code == 304
    assert requests.get(base + "/assets/css/none.css", timeout=5).status_code == 404
    assert requests.post(base + "/assets/css/site.css", timeout=5).status_code == 405
    escape = raw_get(server, "/assets/../details.py")
    assert escape.startswith(b"HTTP/1.1 404 ") and b"environ" not in escape
    assert json.loads(requests.get(base + "/assets", timeout=5).text)["SERVER_SOFTWARE"]  # the app's
    assert json.loads(requests.get(base + "/other", timeout=5).text)["SERVER_SOFTWARE"]
