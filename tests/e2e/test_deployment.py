"""Issue 19, item 10: the README's "Deployment" snippets, checked by the tools they are written for.

The systemd units by ``systemd-analyze verify``, and socket activation by
systemd's own ``systemd-socket-activate`` starting evloop on a first
connection; the nginx site by ``nginx -t`` and by a request through nginx to
evloop (its ``$request_id`` reaching the app and both access logs); the
HAProxy configuration by ``haproxy -c``; the Prometheus scrape by ``promtool
check config``.  Each test is skipped when its tool is not installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support.clients import read_response, wait_until
from support.demo import stop_process

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(90)


def readme_block(language: str, name: str) -> str:
    """The README's ```language block that starts with ``# example: name``."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"```{language}\n# example: {re.escape(name)}\b[^\n]*\n(.*?)```", text, re.S)
    assert match, f"README has no {language} block '# example: {name}'"
    return match.group(1)


def tool(name: str) -> str:
    path = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)),
                                      None)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def _unix_get(path: str, target: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    fields = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(20)
        sock.connect(path)
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{fields}\r\n".encode())
        status, _, body = read_response(sock)
    return status, body


# ---------------------------------------------------------------- systemd
def test_systemd_units_verify(tmp_path):
    analyze = tool("systemd-analyze")
    demo = Path(sys.executable).with_name("evloop-demo")
    (tmp_path / "evloop.socket").write_text(readme_block("ini", "evloop.socket"))
    service = readme_block("ini", "evloop.service")
    assert "/srv/app/.venv/bin/evloop-demo" in service
    # The program must exist for verify to pass: this environment's evloop-demo.
    (tmp_path / "evloop.service").write_text(service.replace("/srv/app/.venv/bin/evloop-demo", str(demo)))
    result = _run(analyze, "verify", str(tmp_path / "evloop.socket"), str(tmp_path / "evloop.service"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_systemd_socket_activation_starts_evloop_on_the_first_connection(tmp_path):
    """``systemd-socket-activate`` holds the socket and starts evloop (with workers) when a client connects."""
    activate = tool("systemd-socket-activate")
    path = str(tmp_path / "evloop.sock")
    log_path = tmp_path / "activated.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([activate, "-l", path, sys.executable, "-m", "evloop.demo", "--workers", "2"],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: os.path.exists(path) or proc.poll() is not None, 20, what="the activation socket")
        assert proc.poll() is None, log_path.read_text()
        # The first connection waits in the socket's backlog while evloop starts, then is served.
        assert _unix_get(path, "/healthz") == (200, b"ok")
        assert _unix_get(path, "/healthz") == (200, b"ok")
        # The supervisor says so once every worker listens (a worker may serve before that).
        wait_until(lambda: "serving on unix:" in log_path.read_text(), 20, what="serving on")
        assert "workers share one listening socket" in log_path.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        stop_process(proc)


# ------------------------------------------------------------------ nginx
_ECHO_APP = '''
import json
def application(environ, start_response):
    body = json.dumps({"remote_addr": environ["REMOTE_ADDR"], "scheme": environ["wsgi.url_scheme"],
                       "request_id": environ["HTTP_X_REQUEST_ID"]}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
'''

_NGINX_MAIN = """
{user}
worker_processes 1;
daemon off;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    log_format with_id '$remote_addr "$request" $status $request_id';
    access_log {dir}/access.log with_id;
    client_body_temp_path {dir}/tmp;
    proxy_temp_path {dir}/tmp;
    fastcgi_temp_path {dir}/tmp;
    uwsgi_temp_path {dir}/tmp;
    scgi_temp_path {dir}/tmp;
{site}
}}
"""


def _nginx_conf(directory: Path, site: str) -> Path:
    (directory / "tmp").mkdir(exist_ok=True)
    user = "user root;" if os.geteuid() == 0 else ""  # its worker must reach the test's private socket
    conf = directory / "nginx.conf"
    conf.write_text(_NGINX_MAIN.format(user=user, dir=directory, site=site))
    return conf


def test_nginx_site_is_valid(tmp_path):
    nginx = tool("nginx")
    conf = _nginx_conf(tmp_path, readme_block("nginx", "evloop.nginx").replace("listen 80;", "listen 127.0.0.1:1;"))
    result = _run(nginx, "-t", "-p", str(tmp_path), "-c", str(conf))
    assert result.returncode == 0, result.stderr


def test_nginx_in_front_passes_the_client_scheme_and_its_request_id(start_demo, tmp_path):
    nginx = tool("nginx")
    (tmp_path / "echoapp.py").write_text(_ECHO_APP)
    upstream = str(tmp_path / "evloop.sock")
    # The README's evloop command, on this test's socket.
    server = start_demo("--uds", upstream, "--proxy-headers", "--forwarded-allow-ips", "unix:",
                        "--keepalive-timeout", "75", "--wsgi", "echoapp:application",
                        "--access-log-format", "%(h)s %(s)s id=%({x-request-id}i)s", env={"PYTHONPATH": str(tmp_path)})
    # nginx cannot listen on port 0: it inherits a socket bound here, as across its binary upgrades.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    site = (readme_block("nginx", "evloop.nginx")
            .replace("unix:/run/evloop/evloop.sock", f"unix:{upstream}")
            .replace("listen 80;", f"listen 127.0.0.1:{port};"))
    conf = _nginx_conf(tmp_path, site)
    with open(tmp_path / "nginx.out", "wb") as out:
        proc = subprocess.Popen([nginx, "-p", str(tmp_path), "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "NGINX": f"{listener.fileno()};"}, pass_fds=(listener.fileno(),))
    listener.close()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall(b"GET /anything HTTP/1.1\r\nHost: example.com\r\nX-Request-ID: forged\r\n"
                         b"Connection: close\r\n\r\n")
            status, _, body = read_response(sock)
        assert status == 200, body
        seen = json.loads(body)
        assert seen["remote_addr"] == "127.0.0.1" and seen["scheme"] == "http"
        request_id = seen["request_id"]
        assert re.fullmatch(r"[0-9a-f]{32}", request_id)  # nginx's $request_id, not the client's
        wait_until(lambda: (tmp_path / "access.log").exists() and request_id in (tmp_path / "access.log").read_text(),
                   10, what="nginx's access line")
        wait_until(lambda: f"127.0.0.1 200 id={request_id}\n" in server.log(), 10, what="evloop's access line")
        # /metrics is kept from the public: nginx refuses it to a client outside the allowed range.
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
            assert read_response(sock)[0] == 403
    finally:
        proc.send_signal(signal.SIGQUIT)  # nginx's graceful stop
        try:
            proc.wait(timeout=20)
        finally:
            stop_process(proc)


# ------------------------------------------------------ HAProxy, Prometheus
@pytest.mark.parametrize("language, name, check", [
    # A check binds nothing (port 80 is fine) and the servers' addresses need not answer.
    ("haproxy", "evloop.haproxy", ("haproxy", "-c", "-f")),
    ("yaml", "prometheus.yml", ("promtool", "check", "config")),
])
def test_configuration_is_valid(tmp_path, language, name, check):
    program = tool(check[0])
    path = tmp_path / name
    path.write_text(readme_block(language, name))
    result = _run(program, *check[1:], str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_haproxy_sends_the_proxy_protocol_to_servers_and_checks():
    assert "send-proxy-v2 check-send-proxy" in readme_block("haproxy", "evloop.haproxy")
