"""Issue 15, item 4: a hung worker must not keep receiving connections, and must be replaced.

The app is a WSGI app of the test's own: ``/hold/S`` blocks its worker in
``time.sleep(S)`` and first writes ``holding in pid P`` to stderr (the
server's log), so the test waits for that line rather than for a guessed
time; every other path answers at once with the worker's pid.
"""

from __future__ import annotations

import http.client
import os
import re
import threading
import time
from pathlib import Path

import pytest
from support.demo import DemoServer, wait_for_log

pytestmark = pytest.mark.timeout(60)

_APP = '''
import os, sys, time

def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path.startswith("/hold/"):
        sys.stderr.write("holding in pid %d\\n" % os.getpid())
        sys.stderr.flush()
        time.sleep(float(path[len("/hold/"):]))
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''


def _start(start_demo, tmp_path: Path, *args: str) -> DemoServer:
    (tmp_path / "holdapp.py").write_text(_APP)
    pythonpath = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    return start_demo("--wsgi", "holdapp:app", "--no-access-log", *args, env={"PYTHONPATH": pythonpath})


def get(server: DemoServer, path: str, timeout_s: float) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=timeout_s)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class Held:
    """Requests to ``/hold/S`` in threads of their own; each outcome is kept."""

    def __init__(self, server: DemoServer) -> None:
        self.server = server
        self.results: list[object] = []
        self.threads: list[threading.Thread] = []

    def start(self, seconds: float, timeout_s: float) -> None:
        def run() -> None:
            try:
                self.results.append(get(self.server, f"/hold/{seconds}", timeout_s))
            except Exception as exc:  # the worker may be killed under it
                self.results.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.threads.append(thread)

    def join(self, timeout_s: float) -> None:
        for thread in self.threads:
            thread.join(timeout=timeout_s)


def test_idle_workers_take_new_connections_while_three_of_four_are_held(start_demo, tmp_path):
    server = _start(start_demo, tmp_path, "--workers", "4")
    held = Held(server)
    for n in range(1, 4):
        held.start(5, timeout_s=15)
        # One at a time: each held request is in the app (its worker blocked)
        # before the next is sent, so the three block three different workers.
        wait_for_log(server, r"holding in pid \d+", count=n)
    holders = set(re.findall(r"holding in pid (\d+)", server.log()))
    assert len(holders) == 3, server.log()

    answers: list[tuple[float, object]] = []

    def one() -> None:
        started = time.monotonic()
        try:
            result: object = get(server, "/", timeout_s=2.0)
        except Exception as exc:
            result = exc
        answers.append((time.monotonic() - started, result))

    threads = [threading.Thread(target=one) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert len(answers) == 20
    slow = [(round(elapsed, 3), result) for elapsed, result in answers
            if elapsed > 0.5 or not (isinstance(result, tuple) and result[0] == 200)]
    assert not slow, slow
    # Answered by the one worker that was free, never by a held one.
    assert {result[1].decode() for _, result in answers}.isdisjoint(holders)  # type: ignore[index]
    held.join(timeout_s=15)
    assert [r[0] for r in held.results] == [200, 200, 200], held.results  # type: ignore[index]


def test_a_worker_silent_past_worker_timeout_is_dumped_killed_and_replaced(start_demo, tmp_path):
    server = _start(start_demo, tmp_path, "--workers", "2", "--worker-timeout", "1")
    held = Held(server)
    for n in (1, 2):
        held.start(30, timeout_s=20)
        wait_for_log(server, r"holding in pid \d+", count=n)  # both workers blocked, one each
    hung = {int(pid) for pid in re.findall(r"holding in pid (\d+)", server.log())}
    assert len(hung) == 2
    # Sent while both workers hang: it waits in the shared backlog for a replacement.
    started = time.monotonic()
    status, body = get(server, "/", timeout_s=15)
    assert status == 200 and int(body) not in hung
    assert time.monotonic() - started < 10
    for pid in hung:
        wait_for_log(server, rf"ERROR evloop\.workers: worker \d \(pid {pid}\) silent for [\d.]+ s "
                             r"\(--worker-timeout 1\.0 s\)")
        wait_for_log(server, rf"worker \d \(pid {pid}\) exited \(killed by SIG(KILL|USR2)\)")
        wait_for_log(server, rf"started worker \d \(pid \d+\) to replace pid {pid}")
    log = server.log()
    # faulthandler's dump of each hung worker, down to the app's own frame.
    assert len(re.findall(r'File ".*holdapp\.py", line \d+ in app', log)) == 2, log
    held.join(timeout_s=5)
    assert all(isinstance(r, Exception) for r in held.results), held.results
    for _ in range(5):
        status, body = get(server, "/", timeout_s=5)
        assert status == 200 and int(body) not in hung
