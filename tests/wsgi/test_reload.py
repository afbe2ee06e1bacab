"""Issue 18, item 3: SIGHUP and ``--reload`` bring in new code; code that does not load leaves the old serving.

Each worker imports the application after the fork (gunicorn without
``--preload``), so a new worker runs the code on disk now.  The edits keep
each file's size (``version 1`` -> ``version 2``): Python's bytecode cache
would take such an edit, within the second of the last compile, for the old
source if the reloader did not drop the cached bytecode.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import requests
from support.clients import wait_until
from support.demo import stop_process, wait_for_log
from support.wsgi_servers import app_env

APP = '''
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"version %s"]
'''
BROKEN = "\ndef oops(:\n"


def write_version(folder, version, broken=False):
    (folder / "app.py").write_text(APP % version + (BROKEN if broken else ""))


def answers(server):
    return requests.get(server.url, timeout=5).text


def answers_only(server, text, tries=8):
    """Every one of ``tries`` requests (on new connections, so any worker may take each) gets ``text``."""
    return all(answers(server) == text for _ in range(tries))


EXITED = r"worker \d \(pid \d+\) exited"                 # an old worker drained
KEPT = r"goes on serving the code it loaded before"       # a new worker could not load the code


def two_workers(serve_wsgi, folder, *args):
    write_version(folder, 1)
    server = serve_wsgi(folder, "--wsgi", "app:app", "--workers", "2", "--no-access-log", *args)
    assert answers_only(server, "version 1")
    return server


def edit_and_hup(server, folder, version, broken=False):
    """Write the new version, SIGHUP, and wait until both old workers drained (or both were kept)."""
    write_version(folder, version, broken)
    before = len(re.findall(KEPT if broken else EXITED, server.log()))
    server.signal(signal.SIGHUP)
    wait_for_log(server, KEPT if broken else EXITED, count=before + 2)


def test_sighup_imports_the_new_code_in_new_workers(serve_wsgi, tmp_path):
    server = two_workers(serve_wsgi, tmp_path)
    edit_and_hup(server, tmp_path, 2)
    assert answers_only(server, "version 2")


def test_with_preload_sighup_keeps_the_code_loaded_at_start(serve_wsgi, tmp_path):
    server = two_workers(serve_wsgi, tmp_path, "--preload")
    edit_and_hup(server, tmp_path, 2)
    assert answers_only(server, "version 1")


def test_sighup_with_broken_code_keeps_the_old_workers_serving(serve_wsgi, tmp_path):
    server = two_workers(serve_wsgi, tmp_path)
    edit_and_hup(server, tmp_path, 2, broken=True)
    assert "SyntaxError" in server.log()
    assert answers_only(server, "version 1")
    edit_and_hup(server, tmp_path, 3)
    assert answers_only(server, "version 3")


def test_reload_watches_the_sources_and_survives_a_syntax_error(serve_wsgi, tmp_path):
    write_version(tmp_path, 1)
    server = serve_wsgi(tmp_path, "--wsgi", "app:app", "--reload", "--no-access-log")
    assert answers(server) == "version 1"
    write_version(tmp_path, 2)
    wait_until(lambda: answers(server) == "version 2", 10, 0.05, "the reload to version 2")
    write_version(tmp_path, 3, broken=True)
    wait_for_log(server, r"SyntaxError")
    wait_for_log(server, KEPT)
    assert answers_only(server, "version 2", tries=3)
    write_version(tmp_path, 4)
    wait_until(lambda: answers(server) == "version 4", 10, 0.05, "the reload to version 4")


def test_reload_dirs_and_includes(serve_wsgi, tmp_path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "page.txt").write_text("first")
    (tmp_path / "app.py").write_text('''
import pathlib
PAGE = pathlib.Path("templates/page.txt").read_text()

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [PAGE.encode()]
''')
    server = serve_wsgi(tmp_path, "--wsgi", "app:app", "--reload", "--reload-dir", "templates",
                        "--reload-include", "*.txt", "--no-access-log")
    assert answers(server) == "first"
    (tmp_path / "templates" / "page.txt").write_text("again")
    wait_until(lambda: answers(server) == "again", 10, 0.05, "the reload on a template")
    assert "reload: templates/page.txt changed" in server.log()


def test_reload_started_on_broken_code_waits_for_a_good_version(tmp_path):
    write_version(tmp_path, 1, broken=True)
    log_path = tmp_path / "server.log"

    def text():
        return log_path.read_text(errors="replace")

    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "evloop.demo", "--port", "0", "--wsgi", "app:app", "--reload"],
                                cwd=tmp_path, env={**os.environ, **app_env()}, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        try:
            wait_until(lambda: "waiting for a change to the watched files" in text(), 15, 0.05, "the wait")
            assert proc.poll() is None and "serving on" not in text()
            write_version(tmp_path, 2)
            url = wait_until(lambda: re.search(r"serving on (http://\S+)", text()), 15, 0.05, "serving").group(1)
            assert requests.get(url, timeout=5).text == "version 2"
        finally:
            stop_process(proc)
