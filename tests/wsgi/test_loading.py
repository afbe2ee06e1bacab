"""Issue 18, item 1: ``--wsgi`` and ``--app`` find the application as gunicorn and uvicorn do.

Each server runs in the app's own folder with ``PYTHONSAFEPATH`` set, so only
evloop's loading can put that folder on ``sys.path``.
"""

from __future__ import annotations

import requests
from support.wsgi_servers import run_demo

APP = '''
def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ.get("evloop.test.name", "plain").encode()]


def named(name):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [name.encode()]
    return app


def create_app(name="factory", times=1, *, suffix=""):
    return named(name * times + suffix)


class api:
    app = staticmethod(named("nested"))


application = named("application")
'''

ONLY_APP = '''
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"app"]
'''

NATIVE = '''
from evloop import App, Response

def create(greeting):
    app = App()
    app.add_route("/", lambda request: Response(200, body=greeting))
    return app
'''


def body(server, path="/"):
    return requests.get(server.url.rstrip("/") + path, timeout=5).text


def test_specs_from_the_current_directory(serve_wsgi, tmp_path):
    (tmp_path / "myapp.py").write_text(APP)
    (tmp_path / "onlyapp.py").write_text(ONLY_APP)
    cases = {
        "myapp:named('direct')": "direct",
        "myapp:create_app()": "factory",
        "myapp:create_app('ab', 2, suffix='!')": "abab!",
        "myapp:api.app": "nested",
        "myapp": "application",
        "onlyapp": "app",
    }
    for spec, expected in cases.items():
        server = serve_wsgi(tmp_path, "--wsgi", spec, "--no-access-log")
        assert body(server) == expected, spec
        server.stop()


def test_chdir_and_a_native_app_factory(serve_wsgi, tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "native.py").write_text(NATIVE)
    server = serve_wsgi(tmp_path, "--chdir", "site", "--app", "native:create('hi there')", "--workers", "2")
    assert body(server) == "hi there"


def test_a_missing_module_is_one_line_and_exit_status_1(tmp_path):
    done = run_demo(tmp_path, "--wsgi", "nosuchmodule:app")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, done.stderr
    assert "no module named 'nosuchmodule'" in errors[0] and str(tmp_path) in errors[0], errors[0]


def test_broken_code_names_the_file_and_line_and_the_traceback_is_for_debug(tmp_path):
    (tmp_path / "broken.py").write_text("import os\n\ndef app(:\n    pass\n")
    (tmp_path / "needs.py").write_text("import not_installed_anywhere\napp = None\n")
    done = run_demo(tmp_path, "--wsgi", "broken:app", "--workers", "3")
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if " ERROR " in line and "SyntaxError" in line]
    assert len(errors) == 1, done.stderr  # the first worker tried alone: one error, not three
    assert f"{tmp_path / 'broken.py'} line 3" in errors[0]
    assert "Traceback" not in done.stderr

    done = run_demo(tmp_path, "--wsgi", "needs:app")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "No module named 'not_installed_anywhere'" in done.stderr and "needs.py line 1" in done.stderr

    done = run_demo(tmp_path, "--wsgi", "needs:app", "--log-level", "debug")
    assert done.returncode == 1 and "Traceback" in done.stderr


def test_bad_specs_are_refused_without_running_anything(tmp_path):
    (tmp_path / "myapp.py").write_text(APP)
    for spec, words in {
        "myapp:create_app(__import__('os'))": "literals",
        "myapp:create_app(*x)": "*args",
        "myapp:nothing": "has no attribute 'nothing'",
        "myapp:create_app(times=None)": "the factory raised",
        "my-app:app": "is not MODULE",
    }.items():
        done = run_demo(tmp_path, "--wsgi", spec)
        assert done.returncode == 1, spec
        assert words in done.stderr, (spec, done.stderr)
