"""``evloop-demo``'s command line, environment and file, run as real processes over real sockets."""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from support.clients import wait_until
from support.demo import DemoServer
from support.raw_http import read_until_close, split_response

import evloop

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run_cli(*args: str, env: dict[str, str] | None = None, module: str = "evloop") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


def urls(server: DemoServer) -> list[str]:
    return re.findall(r"serving on (\S+)", server.log())


def request_once(sock: socket.socket, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``raw`` (one request, which the server answers and then closes) and split the response."""
    sock.sendall(raw)
    return split_response(read_until_close(sock, 10.0))


def get(host: str, port: int, target: str = "/", family: int = socket.AF_INET) -> tuple[int, dict[str, str], bytes]:
    """One GET over a fresh connection: status, fields (lowercase names), body."""
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect((host, port))
        return request_once(sock, f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--port", "70000"], {}, "error: --port: must be a port number, 0-65535 (0: any free port), got 70000"),
    (["--max-body-bytes", "-5"], {}, "error: --max-body-bytes: must be above 0, got -5"),
    (["--header-timeout", "-1"], {}, "error: --header-timeout: must be above 0, got -1.0"),
    (["--host", "127.0.0.1:21111"], {}, "error: --host: '127.0.0.1:21111' is not a host: give the port with --port, "
                                        "or use --bind 127.0.0.1:21111"),
    ([], {"EVLOOP_WORKERS": "0"}, "error: EVLOOP_WORKERS: must be at least 1, got 0"),
    (["--static-cache-control", "max-age=60\r\nSet-Cookie: a=b"], {},
     "error: --static-cache-control: invalid header value for Cache-Control"),
])
def test_bad_values_exit_2_with_one_clear_message(args, env, message):
    result = run_cli(*args, env=env)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("usage: python -m evloop [OPTIONS]\n")


def test_a_port_in_use_is_one_line_naming_the_address_and_the_holder():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for extra in ([], ["--workers", "2"]):
            result = run_cli("--port", str(port), "--log-level", "WARNING", *extra)
            assert result.returncode == 1, result.stderr
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1, result.stderr
            # The holder is this process (pytest): /proc names it with its command line.
            assert re.search(rf"ERROR evloop.demo: cannot listen on 127\.0\.0\.1:{port}: address already in use, "
                             rf"held by pid {os.getpid()} \(.*python.*\)$", lines[0]), lines[0]


def test_python_m_evloop_names_itself_and_tells_its_version():
    assert run_cli("--help").stdout.startswith("usage: python -m evloop [OPTIONS]")
    assert run_cli("--version").stdout == f"python -m evloop {evloop.__version__}\n"
    assert run_cli("--version", module="evloop.demo").stdout == f"python -m evloop.demo {evloop.__version__}\n"
    script = subprocess.run([BIN / "evloop-demo", "-V"], capture_output=True, text=True, timeout=30)
    assert script.stdout == f"evloop-demo {evloop.__version__}\n"


def test_print_config_shows_each_value_and_its_source(tmp_path):
    config = tmp_path / "evloop.toml"
    config.write_text('port = 9100\nworkers = 3\nlog-level = "WARNING"\n')
    result = run_cli("--config", str(config), "--port", "9101", "--print-config", env={"EVLOOP_WORKERS": "2"})
    assert result.returncode == 0, result.stderr
    assert "port = 9101  # command line\n" in result.stdout
    assert "workers = 2  # environment EVLOOP_WORKERS\n" in result.stdout
    assert f'log-level = "warning"  # file {config}\n' in result.stdout
    assert 'host = "127.0.0.1"  # default\n' in result.stdout


def test_environment_and_file_configure_a_running_server(tmp_path):
    config = tmp_path / "evloop.toml"
    config.write_text('server-header = "from-file"\nstatic-cache-control = "public, max-age=60"\n')
    server = DemoServer(["--config", str(config)], tmp_path / "env.log", env={"EVLOOP_SERVER_HEADER": "from-env"})
    try:
        status, fields, _ = get(server.host, server.port, "/static/style.css")
        assert (status, fields["server"], fields["cache-control"]) == (200, "from-env", "public, max-age=60")
    finally:
        server.stop()


def test_server_and_date_fields_can_be_turned_off_or_renamed(tmp_path):
    plain = DemoServer([], tmp_path / "plain.log")
    bare = DemoServer(["--no-server-header", "--no-date-header"], tmp_path / "bare.log")
    named = DemoServer(["--server-header", "Acme/1.0"], tmp_path / "named.log")
    try:
        status, fields, body = get(plain.host, plain.port)
        assert (status, body, fields["server"]) == (200, b"Hello, World!", "evloop") and "date" in fields
        for target in ("/", "/stream/2", "/static/index.html", "/nope", "/%zz"):
            status, fields, _ = get(bare.host, bare.port, target)
            assert "server" not in fields and "date" not in fields, (target, status, fields)
        with socket.create_connection((bare.host, bare.port), timeout=10) as sock:  # the parser's own 400
            status, fields, _ = request_once(sock, b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n")
            assert status == 400 and "server" not in fields and "date" not in fields
        status, fields, _ = get(named.host, named.port)
        assert fields["server"] == "Acme/1.0" and "date" in fields
    finally:
        for server in (plain, bare, named):
            server.stop()


def test_the_demo_serves_a_favicon(tmp_path):
    server = DemoServer([], tmp_path / "favicon.log")
    try:
        status, fields, body = get(server.host, server.port, "/favicon.ico")
        assert status == 200
        assert fields["content-type"] in ("image/vnd.microsoft.icon", "image/x-icon")
        assert body == (ROOT / "evloop" / "demo_root" / "favicon.ico").read_bytes()
        assert body[:4] == b"\0\0\1\0"  # an ICO header
    finally:
        server.stop()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback")
@pytest.mark.parametrize("balance", ["reuseport", "shared"])
def test_ipv4_and_ipv6_together_with_workers(tmp_path, balance):
    uds = tmp_path / "evloop.sock"
    server = DemoServer(["--bind", "127.0.0.1:0", "--bind", "[::1]:0", "--bind", f"unix:{uds}", "--workers", "2",
                         "--balance", balance, "--no-access-log"], tmp_path / "binds.log")
    try:
        # The supervisor logs one line per address, one after the other: DemoServer returned at the first.
        seen: list[str] = wait_until(lambda: len(found := urls(server)) >= 3 and found, 10,  # type: ignore[assignment]
                                     what="a 'serving on' line for each of the three addresses")
        v4 = next(u for u in seen if u.startswith("http://127.0.0.1:"))
        v6 = next(u for u in seen if u.startswith("http://[::1]:"))
        assert f"unix:{uds}" in seen
        assert get("127.0.0.1", int(v4.rpartition(":")[2]))[2] == b"Hello, World!"
        assert get("::1", int(v6.rpartition(":")[2]), family=socket.AF_INET6)[2] == b"Hello, World!"
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(str(uds))
            assert request_once(sock, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[2] == b"ok"
        assert "--host and --port are not used" in server.log()  # DemoServer passes --port 0
    finally:
        assert server.stop() == 0
    assert not uds.exists()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_unix_socket_mode_and_group(tmp_path, workers):
    uds = tmp_path / "mode.sock"
    gid = os.getgid()
    server = DemoServer(["--uds", str(uds), "--uds-mode", "0660", "--uds-group", str(gid), "--workers", workers],
                        tmp_path / "uds.log")
    try:
        info = os.stat(uds)
        assert stat.S_ISSOCK(info.st_mode)
        assert stat.S_IMODE(info.st_mode) == 0o660
        assert info.st_gid == gid
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(str(uds))
            assert request_once(sock, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[0] == 200
    finally:
        server.stop()


def test_an_unknown_uds_group_is_one_line(tmp_path):
    result = run_cli("--uds", str(tmp_path / "g.sock"), "--uds-group", "no-such-group-here", "--log-level", "error")
    assert result.returncode == 1
    assert result.stderr.strip().endswith(f"cannot listen on unix:{tmp_path / 'g.sock'}: no group named "
                                          "'no-such-group-here'"), result.stderr


def test_an_inherited_descriptor_that_is_not_a_stream_socket_is_one_line_naming_it():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        fd = udp.fileno()
        for extra in ([], ["--workers", "2"]):
            result = subprocess.run([sys.executable, "-m", "evloop", "--fd", str(fd), "--log-level", "error", *extra],
                                    capture_output=True, text=True, timeout=30, pass_fds=[fd], stdin=subprocess.DEVNULL)
            assert result.returncode == 1, result.stderr
            assert result.stderr.strip().endswith(f"cannot listen on fd://{fd}: a SOCK_DGRAM socket: HTTP needs a "
                                                  "stream socket (SOCK_STREAM)"), result.stderr
            assert "Traceback" not in result.stderr


def test_the_readme_toml_example_loads(tmp_path):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```toml\n(# example: evloop\.toml\n.*?)```", text, re.S)
    assert example, "README has no TOML block starting with '# example: evloop.toml'"
    path = tmp_path / "evloop.toml"
    path.write_text(example.group(1))
    result = run_cli("--config", str(path), "--log-level", "info", "--print-config", env={"EVLOOP_WORKERS": "8"})
    assert result.returncode == 0, result.stderr
    printed = result.stdout
    assert f'bind = ["0.0.0.0:8080", "[::]:8080", "unix:/run/evloop/evloop.sock"]  # file {path}\n' in printed
    assert f"uds-mode = 0o660  # file {path}\n" in printed
    assert f"max-body-bytes = 10485760  # file {path}\n" in printed
    assert f"access-log = false  # file {path}\n" in printed
    assert "workers = 8  # environment EVLOOP_WORKERS\n" in printed
    assert 'log-level = "info"  # command line\n' in printed


def test_serve_sets_up_logging_when_the_program_has_none(tmp_path):
    script = tmp_path / "hello.py"
    script.write_text("from evloop import App, Response, serve\n"
                      "app = App()\n"
                      "app.route('/')(lambda request: Response(200, body=b'hi'))\n"
                      "raise SystemExit(serve(app, '127.0.0.1', 0))\n")
    log = tmp_path / "hello.log"
    server = DemoServer([], log, command=[sys.executable, str(script)], cwd=tmp_path)
    try:
        assert get(server.host, server.port)[2] == b"hi"
    finally:
        assert server.stop() == 0
    assert re.search(r"INFO evloop\.\w+: evloop serving on http://127\.0\.0\.1:\d+", server.log())
    assert '"GET / HTTP/1.1" 200 2' in server.log()  # the access log too
