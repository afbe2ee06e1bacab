"""Issue 18, item 2: large uploads under ``evloop-demo --wsgi``, spooled to a file, in bounded memory.

A raw WSGI app reads ``wsgi.input`` in blocks as Werkzeug and Django do, a
Flask app takes a multipart file from ``request.files``; both get the exact
bytes of bodies past the spool threshold, sent with a Content-Length or
chunked, and the server's descriptors and ``--tmp-dir`` are checked from
``/proc`` afterwards.  The memory bound is checked by a short run of
``load/upload_memory.py`` (its full 1 GiB run is in ``load/BENCHMARKS.md``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from support.clients import connect, fd_count, files_open_in, reset, wait_until

APPS = Path(__file__).parent / "apps"
LOAD = Path(__file__).resolve().parents[2] / "load"

RAW_APP = '''
import hashlib, json

def app(environ, start_response):
    stream = environ["wsgi.input"]
    digest, size = hashlib.sha256(), 0
    while True:
        block = stream.read(65536)
        if not block:
            break
        digest.update(block)
        size += len(block)
    stream.seek(0)
    body = json.dumps({
        "size": size, "sha256": digest.hexdigest(), "first": stream.read(16).hex(),
        "content_length": environ.get("CONTENT_LENGTH"), "terminated": environ["wsgi.input_terminated"],
        "seekable": stream.seekable(),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
'''

BODY = os.urandom(8 * 1024 * 1024 + 77)


def raw_app(tmp_path: Path) -> tuple[Path, Path]:
    """A folder holding ``rawapp.py``, and an empty one for spooled bodies."""
    folder, spool = tmp_path / "raw", tmp_path / "spool"
    folder.mkdir()
    spool.mkdir()
    (folder / "rawapp.py").write_text(RAW_APP)
    return folder, spool


@pytest.fixture
def raw_server(serve_wsgi, tmp_path):
    folder, spool = raw_app(tmp_path)
    server = serve_wsgi(folder, "--wsgi", "rawapp:app", "--tmp-dir", str(spool), "--no-access-log")
    server.spool = spool
    return server


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_wsgi_app_reads_a_spooled_body_exactly_and_can_seek(raw_server, framing):
    if framing == "chunked":
        data = (BODY[i:i + 300_000] for i in range(0, len(BODY), 300_000))  # requests sends a generator chunked
    else:
        data = BODY
    got = requests.post(raw_server.url.rstrip("/") + "/upload", data=data, timeout=30).json()
    assert got == {"size": len(BODY), "sha256": hashlib.sha256(BODY).hexdigest(), "first": BODY[:16].hex(),
                   "content_length": str(len(BODY)), "terminated": True, "seekable": True}
    assert files_open_in(raw_server.proc.pid, raw_server.spool) == []  # closed with the response
    assert os.listdir(raw_server.spool) == []  # and never named


def test_a_short_body_is_read_the_same_way(raw_server):
    got = requests.post(raw_server.url.rstrip("/") + "/upload", data=b"short", timeout=10).json()
    assert (got["size"], got["first"], got["content_length"], got["seekable"]) == (5, b"short".hex(), "5", True)


def test_a_client_reset_mid_upload_leaves_no_descriptor_and_no_file(raw_server):
    pid = raw_server.proc.pid
    baseline = fd_count(pid)  # no connection yet
    sock = connect(raw_server.port)
    sock.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY[:3 << 20])
    wait_until(lambda: files_open_in(pid, raw_server.spool), 10, what="the body to be spooled")
    reset(sock)
    wait_until(lambda: fd_count(pid) == baseline, 10, what="the server to release the connection and its file")
    assert files_open_in(pid, raw_server.spool) == [] and os.listdir(raw_server.spool) == []


def test_flask_request_files_gets_a_spooled_upload_exactly(serve_wsgi, tmp_path):
    folder = tmp_path / "flask_site"
    shutil.copytree(APPS / "flask_site", folder)
    server = serve_wsgi(folder, "--wsgi", "app:create_app()", "--no-access-log")
    payload = os.urandom(5 * 1024 * 1024)
    reply = requests.post(server.url.rstrip("/") + "/upload", files={"file": ("big.bin", payload)}, data={"note": "spooled"},
                          timeout=30)
    assert reply.status_code == 200
    assert reply.json() == {"name": "big.bin", "size": len(payload), "sha256": hashlib.sha256(payload).hexdigest(),
                            "note": "spooled"}


def test_a_64_mib_upload_raises_peak_memory_by_at_most_16_mib():
    out = subprocess.run([sys.executable, str(LOAD / "upload_memory.py"), "--size", "64M", "--servers", "evloop",
                          "--max-rise-mib", "16"], capture_output=True, text=True, timeout=240)
    print(out.stdout)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    rise = float(out.stdout.split("\nevloop")[1].split()[0])
    assert 0 <= rise <= 16


NATIVE_APP = '''
import os
from evloop import App, BodyReceiver, Response

app = App()

@app.stream_request_body("/files/{name}", methods=["PUT"])
class Store(BodyReceiver):
    def body_started(self):
        self.path = os.path.join(os.environ["STORE_DIR"], self.request.path_params["name"])
        self.file = open(self.path, "wb")

    def data_received(self, data):
        self.file.write(data)

    def body_received(self):
        self.file.close()
        return Response(201, body=b"%d" % os.path.getsize(self.path))

    def body_failed(self, reason):
        self.file.close()
        os.unlink(self.path)
'''


def test_a_streamed_body_route_under_evloop_demo_app_with_static_files_in_front(serve_wsgi, tmp_path):
    folder = tmp_path / "native"
    (folder / "static").mkdir(parents=True)
    (folder / "static" / "a.txt").write_text("static")
    (folder / "native_app.py").write_text(NATIVE_APP)
    store = tmp_path / "store"
    store.mkdir()
    server = serve_wsgi(folder, "--app", "native_app:app", "--root", "static", "--no-access-log",
                        env={"STORE_DIR": str(store)})
    base = server.url.rstrip("/")
    data = (BODY[i:i + 250_000] for i in range(0, len(BODY), 250_000))
    reply = requests.put(base + "/files/up.bin", data=data, timeout=30)
    assert (reply.status_code, reply.text) == (201, str(len(BODY)))
    assert (store / "up.bin").read_bytes() == BODY
    assert requests.get(base + "/static/a.txt", timeout=10).text == "static"


def test_a_full_disk_mid_upload_is_a_500_and_the_server_goes_on(tmp_path):
    # RLIMIT_FSIZE stands in for a full disk: a write past 2 MiB fails (EFBIG), as one past the
    # free space does (ENOSPC).  SIGXFSZ ignored, so the write fails instead of killing the server.
    import resource
    import signal

    from support.demo import DemoServer
    from support.wsgi_servers import app_env

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2 << 20, 2 << 20))

    folder, spool = raw_app(tmp_path)
    server = DemoServer(["--wsgi", "rawapp:app", "--tmp-dir", str(spool), "--no-access-log"],
                        tmp_path / "fsize.log", env=app_env(), cwd=folder, preexec_fn=small_files)
    try:
        baseline = fd_count(server.proc.pid)
        reply = requests.post(server.url.rstrip("/") + "/upload", data=BODY, timeout=30)
        assert reply.status_code == 500 and reply.text.endswith("the request body could not be stored\n")
        assert "could not be written to a temporary file" in server.log()
        wait_until(lambda: fd_count(server.proc.pid) == baseline, 10, what="the connection and its file to go")
        assert requests.post(server.url.rstrip("/") + "/upload", data=b"small", timeout=10).json()["size"] == 5
    finally:
        server.stop()
