"""The configuration model: precedence, validation, the file, --print-config, --help (no sockets)."""

from __future__ import annotations

import tomllib

import pytest

from evloop import cli
from evloop.binds import Bind, BindKind, parse_bind
from evloop.demo import build_parser, config_from_settings
from evloop.options import OPTIONS


def load(argv=(), environ=None):
    return cli.load(OPTIONS, build_parser(), list(argv), environ or {})


def test_defaults_come_from_the_server_config():
    settings, warnings = load()
    assert warnings == []
    config = config_from_settings(settings)
    assert (config.host, config.port, config.limits.max_body_bytes, config.header_timeout_s) == ("127.0.0.1", 8080,
                                                                                                 1048576, 10.0)
    assert config.listen_binds() == (Bind.tcp("127.0.0.1", 8080),)
    assert all(source == "default" for source in settings.source_of.values())


def test_command_line_beats_environment_beats_file_beats_default(tmp_path):
    path = tmp_path / "evloop.toml"
    path.write_text('port = 7001\nbacklog = 50\nheader-timeout = 3.5\nserver_header = "from-file"\n')
    settings, _ = load(["--config", str(path), "--port", "7003"],
                       {"EVLOOP_PORT": "7002", "EVLOOP_BACKLOG": "60"})
    assert (settings.port, settings.source_of["port"]) == (7003, "command line")
    assert (settings.backlog, settings.source_of["backlog"]) == (60, "environment EVLOOP_BACKLOG")
    assert (settings.header_timeout, settings.source_of["header_timeout"]) == (3.5, f"file {path}")
    assert settings.server_header == "from-file"
    assert (settings.keepalive_timeout, settings.source_of["keepalive_timeout"]) == (5.0, "default")


def test_the_config_file_may_be_named_by_the_environment(tmp_path):
    path = tmp_path / "evloop.toml"
    path.write_text("workers = 3\n")
    settings, _ = load(environ={"EVLOOP_CONFIG": str(path)})
    assert settings.workers == 3


@pytest.mark.parametrize(("argv", "environ", "message"), [
    (["--port", "70000"], {}, "--port: must be a port number, 0-65535"),
    (["--port", "-1"], {}, "--port: must be a port number"),
    (["--port", "http"], {}, "--port: expected a whole number, got 'http'"),
    (["--max-body-bytes", "-5"], {}, "--max-body-bytes: must be above 0, got -5"),
    (["--header-timeout", "-1"], {}, "--header-timeout: must be above 0"),
    (["--header-timeout", "0"], {}, "--header-timeout: must be above 0"),
    (["--header-timeout", "nan"], {}, "--header-timeout: expected a finite number of seconds"),
    (["--handler-timeout", "-1"], {}, "--handler-timeout: must be 0 (off) or above"),
    (["--workers", "0"], {}, "--workers: must be at least 1"),
    (["--host", "127.0.0.1:21111"], {}, "--host: '127.0.0.1:21111' is not a host: give the port with --port, "
                                        "or use --bind 127.0.0.1:21111"),
    (["--bind", "[::1:8080"], {}, "--bind: bind '[::1:8080': an IPv6 address is written [ADDRESS]:PORT"),
    (["--bind", "::1:8080"], {}, "write an IPv6 address in brackets"),
    (["--bind", "127.0.0.1:99999"], {}, "the port must be 0-65535"),
    (["--uds-mode", "0999"], {}, "--uds-mode: expected octal permissions such as 0660"),
    (["--log-level", "loud"], {}, "--log-level: expected one of critical, error, warning, info, debug"),
    ([], {"EVLOOP_PORT": "70000"}, "EVLOOP_PORT: must be a port number"),
    (["--server-header", "x\r\nSet-Cookie: a=1"], {}, "--server-header: must not contain CR, LF or other control"),
    (["--server-header", "evloop\u2713"], {}, "--server-header: must be Latin-1 text"),
    (["--proxy-protocol", "--forwarded-allow-ips", "bogus"], {}, "--forwarded-allow-ips: 'bogus' is not an address"),
    (["--backlog", "99999999999999999999"], {}, "--backlog: must be below 2**31"),
    ([], {"EVLOOP_HEADER_TIMEOUT": "1e400"}, "EVLOOP_HEADER_TIMEOUT: expected a finite number of seconds"),
    ([], {"EVLOOP_PROXY_HEADERS": "maybe"}, "EVLOOP_PROXY_HEADERS: expected true or false, got 'maybe'"),
    ([], {"EVLOOP_ACCESS_LOG": " "}, "EVLOOP_ACCESS_LOG: expected true, false, '-' (stderr) or a file name"),
    (["--access-log-format", "%(h)s %(x)s"], {}, "--access-log-format: %(x)s is not an atom"),
    (["--access-log-format", "%h"], {}, "--access-log-format: '%h' is not an atom such as %(h)s"),
    (["--log-format", "xml"], {}, "--log-format: expected one of text, json"),
])
def test_bad_values_are_named_with_their_source(argv, environ, message):
    with pytest.raises(cli.UsageError) as caught:
        load(argv, environ)
    assert message in str(caught.value)


def test_every_error_is_reported_at_once(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('port = 70000\nmax-body-bytes = "lots"\nheader_timeuot = 3\n')
    with pytest.raises(cli.UsageError) as caught:
        load(["--config", str(path), "--backlog", "0"])
    lines = str(caught.value).splitlines()
    assert f"{path}: header_timeuot: no such option (did you mean header-timeout?)" in lines
    assert f"{path}: port: must be a port number, 0-65535 (0: any free port), got 70000" in lines
    assert f"{path}: max-body-bytes: expected a whole number, got 'lots'" in lines
    assert "--backlog: must be above 0, got 0" in lines


def test_a_file_that_is_not_toml_or_missing_is_a_usage_error(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("port = \n")
    with pytest.raises(cli.UsageError, match="not valid TOML"):
        load(["--config", str(path)])
    with pytest.raises(cli.UsageError, match="No such file"):
        load(["--config", str(tmp_path / "absent.toml")])


def test_zero_means_off_only_where_documented():
    settings, _ = load(["--handler-timeout", "0", "--ws-ping-interval", "0", "--worker-timeout", "0",
                        "--max-requests", "0", "--port", "0"])
    config = config_from_settings(settings)
    assert (config.handler_timeout_s, config.ws_ping_interval_s, config.port) == (0.0, 0.0, 0)
    for option in OPTIONS:
        if option.check is cli.off_or_positive and option.name not in ("fd", "max-requests-jitter"):
            assert "0:" in option.help, f"--{option.name} accepts 0 but its help does not say what it means"


def test_log_level_is_case_insensitive():
    settings, _ = load(["--log-level", "DEBUG"])
    assert settings.log_level == "debug"
    assert config_from_settings(settings).debug_log_heads


def test_unknown_evloop_variables_are_warned_about():
    _, warnings = load(environ={"EVLOOP_WORKRES": "2", "EVLOOP_LOAD_SERVER_CMD": "x"})
    assert warnings == [
        "ignoring the environment variable EVLOOP_WORKRES: no such option (did you mean EVLOOP_WORKERS?)"]


def test_forwarded_allow_ips_also_reads_uvicorns_variable():
    settings, _ = load(environ={"FORWARDED_ALLOW_IPS": "10.0.0.0/8"})
    assert settings.forwarded_allow_ips == "10.0.0.0/8"
    settings, _ = load(environ={"FORWARDED_ALLOW_IPS": "10.0.0.0/8", "EVLOOP_FORWARDED_ALLOW_IPS": "*"})
    assert settings.forwarded_allow_ips == "*"


def test_switches_from_every_source():
    settings, _ = load(["--no-access-log", "--no-server-header", "--no-date-header", "--proxy-headers"])
    config = config_from_settings(settings)
    assert (config.access_log, config.server_header, config.date_header, config.proxy_headers) == (False, "", False,
                                                                                                   True)
    settings, _ = load(environ={"EVLOOP_ACCESS_LOG": "off", "EVLOOP_DATE_HEADER": "False", "EVLOOP_SERVER_HEADER": "x"})
    assert (settings.access_log, settings.date_header, settings.server_header) == (False, False, "x")


def test_binds_replace_host_and_port():
    settings, _ = load(["--bind", "0.0.0.0:8081", "--bind", "[::]:8081", "--uds", "/run/x.sock", "--fd", "3"])
    assert config_from_settings(settings).listen_binds() == (
        Bind.tcp("0.0.0.0", 8081), Bind.tcp("::", 8081), Bind.unix("/run/x.sock"), Bind(BindKind.FD, fd=3))
    settings, _ = load(environ={"EVLOOP_BIND": "127.0.0.1:1 unix:/tmp/a.sock"})
    assert [str(b) for b in settings.bind] == ["127.0.0.1:1", "unix:/tmp/a.sock"]


@pytest.mark.parametrize(("spec", "expected"), [
    ("127.0.0.1:8080", Bind.tcp("127.0.0.1", 8080)),
    ("localhost:0", Bind.tcp("localhost", 0)),
    (":9000", Bind.tcp(None, 9000)),
    ("example.org", Bind.tcp("example.org", 8000)),
    ("[::1]:8080", Bind.tcp("::1", 8080)),
    ("[::]", Bind.tcp("::", 8000)),
    ("unix:/run/evloop.sock", Bind.unix("/run/evloop.sock")),
    ("unix:\0abstract", Bind.unix("\0abstract")),
    ("fd://3", Bind(BindKind.FD, fd=3)),
])
def test_bind_forms(spec, expected):
    bind = parse_bind(spec)
    assert bind == expected
    assert parse_bind(str(bind)) == bind  # str() gives a form parse_bind reads back


@pytest.mark.parametrize("spec", ["", "unix:", "fd://", "fd://x", "[::1]x", "[nope]:80", "a b:80", "h:-1"])
def test_bad_binds(spec):
    with pytest.raises(ValueError, match="bind"):
        parse_bind(spec)


def test_print_config_loads_back_as_the_same_settings(tmp_path):
    settings, _ = load(["--port", "9001", "--bind", "[::1]:9002", "--uds-mode", "0660", "--keyfile-password", "s3",
                        "--no-date-header", "--cert", "a.example=a.pem"], {"EVLOOP_WORKERS": "2"})
    text = cli.render_settings(OPTIONS, settings)
    assert "port = 9001  # command line" in text
    assert "workers = 2  # environment EVLOOP_WORKERS" in text
    assert "uds-mode = 0o660  # command line" in text
    assert "s3" not in text and "# keyfile-password is set, not shown  (command line)" in text
    assert "# certfile is not set  (default)" in text
    document = tomllib.loads(text)
    assert "keyfile-password" not in document
    path = tmp_path / "printed.toml"
    path.write_text(text)
    again, _ = load(["--config", str(path)])
    for option in OPTIONS:
        if option.dest not in ("config", "print_config", "keyfile_password"):
            assert getattr(again, option.dest) == getattr(settings, option.dest), option.name


def test_help_groups_every_option_with_its_default():
    text = build_parser("python -m evloop").format_help()
    assert text.startswith("usage: python -m evloop [OPTIONS]")
    for group in ("binding:", "TLS", "HTTP limits and headers:", "timeouts (seconds):", "workers:", "logging:",
                  "proxy:", "static files:", "application (WSGI and evloop apps):"):
        assert f"\n{group}" in text
    for option in OPTIONS:
        entry = " ".join(text.split(f"\n  --{option.name}", 1)[1].split("\n  -", 1)[0].split())
        assert option.help and (option.cli_only or "(default: " in entry), option.name


def test_a_huge_toml_integer_is_a_usage_error(tmp_path):
    path = tmp_path / "huge.toml"
    path.write_text("header-timeout = 1" + "0" * 400 + "\n")
    with pytest.raises(cli.UsageError, match="header-timeout: expected a finite number of seconds"):
        load(["--config", str(path)])
