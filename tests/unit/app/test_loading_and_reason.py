"""Issue 18: the app spec grammar (evloop.loading), the reason phrase from WSGI to the wire, the reload watcher.

No sockets: specs are parsed and loaded from a temporary folder, the reason
phrase goes through ``WSGIApp`` and ``ServerConnection``, the watcher walks a
temporary folder.
"""

from __future__ import annotations

import os
import sys

import pytest

from evloop.app import Request, Response
from evloop.http import Limits
from evloop.http.connection import ServerConnection
from evloop.loading import AppLoader, AppLoadError, AppSpec, load_object
from evloop.workers.reloader import SourceWatcher
from evloop.wsgi import WSGIApp

# ------------------------------------------------------------------- specs


@pytest.mark.parametrize("text, names, call, args, kwargs", [
    ("pkg.mod", (), False, (), ()),
    ("pkg.mod:", (), False, (), ()),
    ("m:app", ("app",), False, (), ()),
    ("m:api.v1.app", ("api", "v1", "app"), False, (), ()),
    ("m:create()", ("create",), True, (), ()),
    ("m:create('prod', 2, debug=True, opts={'a': [1, None]})", ("create",), True, ("prod", 2),
     (("debug", True), ("opts", {"a": [1, None]}))),
    ("m: factory.make( -1.5 ) ", ("factory", "make"), True, (-1.5,), ()),
])
def test_specs_parse(text, names, call, args, kwargs):
    spec = AppSpec.parse(text)
    assert (spec.names, spec.call, spec.args, spec.kwargs) == (names, call, args, kwargs)


@pytest.mark.parametrize("text, words", [
    ("", "not MODULE"),
    (":app", "not MODULE"),
    ("my-app:app", "not MODULE"),
    ("m:app[0]", "expected NAME"),
    ("m:create(x)", "literals"),
    ("m:create(__import__('os').system('true'))", "literals"),
    ("m:create(*a)", "*args"),
    ("m:create(**k)", "**kwargs"),
    ("m:create()()", "expected NAME"),
    ("m:lambda: 1", "expected NAME"),
    ("m:create(", "not a name or a call"),
])
def test_malformed_specs_are_refused_before_any_import(text, words):
    with pytest.raises(AppLoadError, match=words.replace("*", r"\*")):
        AppSpec.parse(text)


@pytest.fixture
def app_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", os.getcwd())])
    yield tmp_path
    for name in [n for n in sys.modules if n.startswith("issue18_")]:
        del sys.modules[name]


def test_load_from_the_current_directory_with_default_names_and_factories(app_dir):
    (app_dir / "issue18_a.py").write_text(
        "def app(e, s): pass\n"
        "def make(n, *, k=0):\n"
        "    def app(e, s): return n + k\n"
        "    return app\n"
        "nothing = None\n"
        "def none(): return None\n"
    )
    (app_dir / "issue18_b.py").write_text("def application(e, s): pass\ndef app(e, s): pass\n")
    assert load_object("issue18_a").__name__ == "app"
    assert sys.path[0] == str(app_dir)
    assert load_object("issue18_b") is sys.modules["issue18_b"].application
    assert load_object("issue18_a:make(2, k=3)")(None, None) == 5
    assert AppLoader("issue18_a:make(1)", wrap=lambda obj: ("wrapped", obj(None, None))).load() == ("wrapped", 1)
    with pytest.raises(AppLoadError, match="a NoneType, not a callable"):
        load_object("issue18_a:nothing")
    with pytest.raises(AppLoadError, match="returned None"):
        load_object("issue18_a:none()")
    with pytest.raises(AppLoadError, match="the factory raised.*TypeError"):
        load_object("issue18_a:make()")
    with pytest.raises(AppLoadError, match="has no attribute 'missing'"):
        load_object("issue18_a:missing")


def test_import_failures_say_which_module_and_where(app_dir):
    (app_dir / "issue18_raises.py").write_text("x = 1\nraise RuntimeError('at import')\n")
    (app_dir / "issue18_exits.py").write_text("import sys\nsys.exit(3)\n")
    (app_dir / "issue18_noattr.py").write_text("x = 1\n")
    with pytest.raises(AppLoadError, match=r"no module named 'issue18_none' in the current directory") as info:
        load_object("issue18_none:app")
    assert str(app_dir) in str(info.value) and isinstance(info.value.__cause__, ModuleNotFoundError)
    with pytest.raises(AppLoadError, match=r"issue18_raises.py line 2: RuntimeError: at import"):
        load_object("issue18_raises")
    with pytest.raises(AppLoadError, match=r"SystemExit"):
        load_object("issue18_exits")
    with pytest.raises(AppLoadError, match=r"neither 'application' nor 'app'"):
        load_object("issue18_noattr")


# ------------------------------------------------------------------ reason


def wsgi_response(status: str) -> Response:
    def app(environ, start_response):
        start_response(status, [("Content-Type", "text/plain")])
        return [b"x"]
    return WSGIApp(app)(Request(method="GET", target="/", headers=[("Host", "x")], body=b""))


@pytest.mark.parametrize("status, reason", [
    ("299 Very Custom", "Very Custom"), ("200 OK", None), ("200", None), ("404 Nope\tnope", "Nope\tnope"),
    ("200 caf\xe9", "caf\xe9"),
])
def test_wsgi_status_keeps_its_reason(status, reason):
    assert wsgi_response(status).reason == reason


@pytest.mark.parametrize("status", ["200 OK\r\nX: 1", "200 A\x00B", "200 \u20ac"])
def test_a_reason_phrase_that_could_split_the_head_is_refused(status):
    with pytest.raises(ValueError, match="reason phrase"):
        wsgi_response(status)
    with pytest.raises(ValueError, match="reason phrase"):
        Response(200, reason=status[4:])


def head_of(reason, body=b"x", streamed=False):
    conn = ServerConnection(Limits())
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    conn.next_event()
    if streamed:
        return conn.send_response(200, [], content_length=None, date=b"D", reason=reason)
    return conn.send_complete_response(200, [], body, b"D", b"evloop", reason)


def test_the_connection_writes_the_reason_given_and_the_standard_one_otherwise():
    assert head_of("Fine Thanks").startswith(b"HTTP/1.1 200 Fine Thanks\r\n")
    assert head_of("Fine Thanks", streamed=True).startswith(b"HTTP/1.1 200 Fine Thanks\r\n")
    assert head_of("").startswith(b"HTTP/1.1 200 \r\n")
    assert head_of(None).startswith(b"HTTP/1.1 200 OK\r\n")


# ---------------------------------------------------------------- watcher


def test_the_watcher_sees_edits_additions_and_removals_of_included_files(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / ".git").mkdir()
    (tmp_path / "app.py").write_text("a = 1\n")
    (tmp_path / "pkg" / "mod.py").write_text("b = 1\n")
    (tmp_path / "notes.txt").write_text("ignored\n")
    (tmp_path / ".git" / "hook.py").write_text("ignored\n")
    watcher = SourceWatcher([str(tmp_path)])
    assert len(watcher) == 2 and watcher.changed() == []
    (tmp_path / "app.py").write_text("a = 22\n")
    (tmp_path / "pkg" / "new.py").write_text("")
    (tmp_path / "pkg" / "mod.py").unlink()
    (tmp_path / "notes.txt").write_text("still ignored\n")
    assert watcher.changed() == sorted(str(tmp_path / p) for p in ("app.py", "pkg/new.py", "pkg/mod.py"))
    assert watcher.changed() == []

    templates = SourceWatcher([str(tmp_path)], include=["*.txt", "pkg/*.py"])
    (tmp_path / "notes.txt").write_text("seen now\n")
    (tmp_path / "pkg" / "new.py").write_text("c = 3\n")
    (tmp_path / "app.py").write_text("a = 333\n")
    assert templates.changed() == [str(tmp_path / "notes.txt"), str(tmp_path / "pkg" / "new.py")]


def test_the_watcher_drops_the_cached_bytecode_of_a_changed_file(tmp_path):
    import importlib.util
    import py_compile

    source = tmp_path / "mod.py"
    source.write_text("v = 1\n")
    cached = py_compile.compile(str(source))
    assert cached == importlib.util.cache_from_source(str(source))
    watcher = SourceWatcher([str(tmp_path)])
    source.write_text("v = 2\n")  # the same size, maybe the same second: the .pyc would pass for fresh
    assert watcher.changed() == [str(source)]
    assert not os.path.exists(cached)


def test_the_watcher_refuses_a_missing_folder_and_a_bad_interval(tmp_path):
    with pytest.raises(ValueError, match="not a directory"):
        SourceWatcher([str(tmp_path / "none")])
    with pytest.raises(ValueError, match="interval"):
        SourceWatcher([str(tmp_path)], interval_s=0)
