"""Issue 19, item 3: the logging flags of the real ``evloop-demo``, over real sockets.

``--log-format json`` (every line parses with ``json.loads``), ``--log-config``
(JSON and INI files take over), ``--access-log FILE``, ``--access-log-format``
(gunicorn's atoms), and the request id: a trusted proxy's ``X-Request-ID``
believed, an untrusted client's replaced, the same id in the app and the log.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from support.clients import connect, read_response, wait_until
from support.demo import stop_process, wait_for_log

_APPS = '''
import json
from evloop import Response

def wsgi(environ, start_response):
    body = json.dumps({"environ": environ["HTTP_X_REQUEST_ID"],
                       "request": environ["evloop.request"].request_id}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]

def native(request):
    return Response.json({"request_id": request.request_id, "again": request.request_id})
'''

_HEX_ID = re.compile(r"[0-9a-f]{32}")


def _get(port: int, path: str = "/", headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    fields = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    with connect(port, 10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{fields}\r\n".encode())
        status, _, body = read_response(sock)
    return status, body


def _apps(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "logapps.py").write_text(_APPS)
    return {"PYTHONPATH": str(tmp_path)}


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_log_format_json_makes_every_server_and_access_line_a_json_object(start_demo):
    server = start_demo("--log-format", "json")
    status, _ = _get(server.port, "/healthz?probe=1", {"User-Agent": 'curl/8 "quoted"', "Referer": "http://r/x"})
    assert status == 200
    _get(server.port, "/no-such-page")
    wait_for_log(server, r'"logger":"evloop.access".*"status":404')
    records = _json_lines(server.log())  # every line, not just some, parses
    serving = [r for r in records if "serving on" in r.get("message", "")]
    assert serving and serving[0]["level"] == "INFO" and serving[0]["logger"].startswith("evloop")
    access = [r for r in records if r["logger"] == "evloop.access"]
    ok = next(r for r in access if r["status"] == 200)
    assert ok["remote_addr"] == "127.0.0.1"
    assert ok["request"] == "GET /healthz?probe=1 HTTP/1.1"
    assert (ok["method"], ok["path"], ok["query"], ok["protocol"]) == ("GET", "/healthz", "probe=1", "HTTP/1.1")
    assert ok["bytes"] == 2 and 0 <= ok["duration_s"] < 5
    assert ok["user_agent"] == 'curl/8 "quoted"' and ok["referer"] == "http://r/x"
    assert _HEX_ID.fullmatch(ok["request_id"])
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$", ok["time"])
    assert next(r for r in access if r["status"] == 404)["path"] == "/no-such-page"


def test_log_config_json_file_redirects_the_logs(tmp_path):
    out = tmp_path / "from-config.log"
    config = {
        "version": 1,
        "formatters": {"tagged": {"format": "CONFIGURED %(name)s %(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(out), "formatter": "tagged"}},
        "loggers": {"evloop": {"handlers": ["file"], "level": "INFO", "propagate": False}},
    }
    path = tmp_path / "logging.json"
    path.write_text(json.dumps(config))
    demo = _StartedInFile(tmp_path, ["--log-config", str(path)], out)
    try:
        assert _get(demo.port, "/healthz")[0] == 200
        wait_until(lambda: "CONFIGURED evloop.access 127.0.0.1 - - [" in out.read_text(), 10, what="the access line")
        text = out.read_text()
        assert re.search(r"CONFIGURED evloop\.\S+ evloop serving on http://", text)
        assert '"GET /healthz HTTP/1.1" 200 2 ' in text
        assert "serving on" not in demo.stderr() and "GET /healthz" not in demo.stderr()
    finally:
        demo.stop()


def test_log_config_may_keep_the_batched_access_handler(tmp_path):
    """The README's advice: ``BufferedAccessHandler`` in a dictConfig file keeps the access log's batched writes."""
    out = tmp_path / "server.log"
    config = {
        "version": 1,
        "handlers": {
            "file": {"class": "logging.FileHandler", "filename": str(out)},
            "access": {"class": "evloop.server.access_log.BufferedAccessHandler", "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "evloop": {"handlers": ["file"], "level": "INFO"},
            "evloop.access": {"handlers": ["access"], "propagate": False},
        },
    }
    path = tmp_path / "logging.json"
    path.write_text(json.dumps(config))
    demo = _StartedInFile(tmp_path, ["--log-config", str(path)], out)
    try:
        assert _get(demo.port, "/healthz")[0] == 200
        wait_until(lambda: '"GET /healthz HTTP/1.1" 200 2 ' in demo.stderr(), 10, what="the access line on stdout")
        assert re.search(r'^127\.0\.0\.1 - - \[[^]]+\] "GET /healthz HTTP/1\.1" 200 2 \d+\.\d{6}$', demo.stderr(), re.M)
        assert "GET /healthz" not in out.read_text()
    finally:
        demo.stop()


def test_log_config_ini_file_redirects_the_logs(tmp_path):
    out = tmp_path / "from-ini.log"
    path = tmp_path / "logging.ini"
    path.write_text(f"""\
[loggers]
keys=root,evloop

[handlers]
keys=file

[formatters]
keys=plain

[logger_root]
level=WARNING
handlers=

[logger_evloop]
level=INFO
handlers=file
qualname=evloop
propagate=0

[handler_file]
class=FileHandler
formatter=plain
args=({str(out)!r},)

[formatter_plain]
format=INI %(levelname)s %(name)s %(message)s
""")
    demo = _StartedInFile(tmp_path, ["--log-config", str(path)], out)
    try:
        assert _get(demo.port, "/healthz")[0] == 200
        wait_until(lambda: "INI INFO evloop.access 127.0.0.1 - - [" in out.read_text(), 10, what="the access line")
        assert "serving on" not in demo.stderr()
    finally:
        demo.stop()


def test_bad_log_config_is_one_line_and_status_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 1, "handlers": {"h": {"class": "no.such.Handler"}}}')
    for path in (str(bad), str(tmp_path / "missing.ini")):
        result = subprocess.run([sys.executable, "-m", "evloop.demo", "--port", "0", "--log-config", path],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 2
        assert f"--log-config {path}: " in result.stderr and "Traceback" not in result.stderr


def test_access_log_file_takes_the_access_lines_and_stderr_keeps_the_rest(start_demo, tmp_path):
    access = tmp_path / "access.log"
    server = start_demo("--access-log", str(access))
    assert _get(server.port, "/healthz")[0] == 200
    wait_until(lambda: access.exists() and '"GET /healthz HTTP/1.1" 200 2 ' in access.read_text(), 10,
               what="the access line in the file")
    assert re.fullmatch(r'127\.0\.0\.1 - - \[[^]]+\] "GET /healthz HTTP/1\.1" 200 2 \d+\.\d{6}\n', access.read_text())
    assert "GET /healthz" not in server.log() and "serving on" in server.log()


def test_access_log_format_atoms(start_demo):
    fmt = ('%(h)s|%(l)s|%(u)s|%(t)s|"%(r)s"|%(m)s|%(U)s|%(q)s|%(H)s|%(s)s|%(b)s|%(B)s|"%(f)s"|"%(a)s"|'
           '%(T)s|%(M)s|%(D)s|%(L)s|%(p)s|%({x-custom}i)s|%({x-request-id}i)s|100%%')
    server = start_demo("--access-log-format", fmt)
    _get(server.port, "/healthz?x=1", {"User-Agent": 'evil"agent\\', "X-Custom": "custom value"})
    _get(server.port, "/healthz")
    (line,) = [m.group(0) for m in wait_for_log(server, r"127\.0\.0\.1\|-\|-\|\[.*x=1.*")]
    fields = line.split("|")
    assert fields[3].startswith("[") and fields[3].endswith("]")
    assert fields[4:14] == ['"GET /healthz?x=1 HTTP/1.1"', "GET", "/healthz", "x=1", "HTTP/1.1", "200", "2", "2",
                            '"-"', '"evil\\x22agent\\x5C"']
    seconds, ms, us, decimal = fields[14:18]
    assert int(seconds) == int(us) // 1_000_000 and int(ms) == int(us) // 1000
    assert re.fullmatch(r"\d+\.\d{6}", decimal)
    assert int(fields[18]) == server.proc.pid
    assert fields[19] == "custom value"
    assert _HEX_ID.fullmatch(fields[20])
    assert fields[21] == "100%"
    # Without the field: '-'.
    wait_for_log(server, r"\|/healthz\|-\|HTTP/1\.1\|200\|2\|2\|\"-\"\|\"-\"\|")


def test_request_id_from_a_trusted_proxy_reaches_the_app_and_the_log(start_demo, tmp_path):
    for app in ("--wsgi", "--app"):
        server = start_demo(app, "logapps:wsgi" if app == "--wsgi" else "logapps:native", "--proxy-headers",
                            "--forwarded-allow-ips", "127.0.0.1", "--access-log-format", "%(r)s id=%({x-request-id}i)s",
                            env=_apps(tmp_path))
        status, body = _get(server.port, "/", {"X-Request-ID": "proxy-id-42"})
        assert status == 200
        assert set(json.loads(body).values()) == {"proxy-id-42"}
        wait_for_log(server, r"GET / HTTP/1\.1 id=proxy-id-42\n")
        # A proxy's value that cannot be an id (too long) is replaced by a made one.
        status, body = _get(server.port, "/long", {"X-Request-ID": "x" * 201})
        made = set(json.loads(body).values())
        assert len(made) == 1 and _HEX_ID.fullmatch(made.pop())


def test_each_request_of_a_kept_alive_connection_has_its_own_id(start_demo, tmp_path):
    """The server reuses a request object nobody kept for the connection's next request: not its id."""
    server = start_demo("--app", "logapps:native", env=_apps(tmp_path))
    ids = []
    with connect(server.port, 10) as sock:
        for _ in range(3):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            status, _, body = read_response(sock)
            data = json.loads(body)
            assert status == 200 and data["request_id"] == data["again"]  # made once, then kept
            ids.append(data["request_id"])
    assert len(set(ids)) == 3 and all(_HEX_ID.fullmatch(i) for i in ids)


def test_request_id_from_an_untrusted_peer_is_replaced(start_demo, tmp_path):
    for app, name in (("--wsgi", "logapps:wsgi"), ("--app", "logapps:native")):
        server = start_demo(app, name, "--proxy-headers", "--forwarded-allow-ips", "10.0.0.0/8",
                            "--access-log-format", "%(r)s id=%({x-request-id}i)s", env=_apps(tmp_path))
        ids = []
        for _ in range(2):
            status, body = _get(server.port, "/", {"X-Request-ID": "forged-by-client"})
            values = set(json.loads(body).values())
            assert len(values) == 1  # the environ, the request and a second access agree
            ids.append(values.pop())
        assert all(_HEX_ID.fullmatch(i) for i in ids) and ids[0] != ids[1]
        for request_id in ids:  # the app's id is the logged one
            wait_for_log(server, rf"GET / HTTP/1\.1 id={request_id}\n")
        assert "forged-by-client" not in server.log()


class _StartedInFile:
    """``evloop-demo`` whose own log goes where a ``--log-config`` sends it: its URL is read from that file."""

    def __init__(self, tmp_path: Path, args: list[str], log_file: Path) -> None:
        self._stderr_path = tmp_path / "stderr.log"
        self._stderr = open(self._stderr_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "evloop.demo", "--port", "0", *args],
                                     stdout=self._stderr, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        found = wait_until(lambda: log_file.exists() and re.search(r"serving on http://127\.0\.0\.1:(\d+)",
                                                                   log_file.read_text()), 20, what="serving on")
        self.port = int(found.group(1))  # type: ignore[union-attr]

    def stderr(self) -> str:
        return self._stderr_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.proc)
        self._stderr.close()

