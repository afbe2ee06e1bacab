"""Locust scenarios for the evloop-demo contract (see the demo issue).

Every task checks content, not only the status: a 200 with the wrong bytes is a
failure. Run it through ``load/run_load.py``, which starts the demo, or by hand::

    locust -f load/locustfile.py --headless -u 20 -r 10 -t 30s \\
        --host http://127.0.0.1:8080 [--static-root DIR]

``--static-root DIR`` (or ``EVLOOP_LOAD_STATIC_ROOT``) names the folder the
server was started with (``evloop-demo --root DIR``): the static tasks then
fetch every regular file in it and compare the bytes with the local copy.
Without it, ``/static/index.html`` is fetched once at test start and every
later fetch must return the same bytes.

User classes and weights (a mostly-browsing mix with some API traffic):

- ``BrowserUser`` (5): hello, static file + revalidation, healthz
- ``ApiUser`` (3): echo (POST/PUT, 0..64 KiB random bodies), inspect, stream
- ``SlowEndpointUser`` (1): ``/delay/MS``, latency must be at least MS
- ``NewConnectionUser`` (1): every request with ``Connection: close``
"""

import hashlib
import json
import os
import random
import time
import urllib.parse
import urllib.request

from locust import FastHttpUser, events, task

HELLO = b"Hello, World!"
MAX_ECHO_BYTES = 64 * 1024
DELAYS_MS = (10, 25, 50, 100, 250)
MAX_STREAM_CHUNKS = 100

# Filled at test start: request path -> expected bytes.
_static_files = {}


@events.init_command_line_parser.add_listener
def _add_arguments(parser):
    parser.add_argument(
        "--static-root",
        default=os.environ.get("EVLOOP_LOAD_STATIC_ROOT", ""),
        help="Folder the server serves under /static/ (its files are compared byte for byte)",
    )
    parser.add_argument(
        "--request-timeout-s",
        type=float,
        default=float(os.environ.get("EVLOOP_LOAD_REQUEST_TIMEOUT_S", "5")),
        help="A request with no complete response after this many seconds is a failure",
    )
    parser.add_argument(
        "--wait-min-s",
        type=float,
        default=float(os.environ.get("EVLOOP_LOAD_WAIT_MIN_S", "0.05")),
        help="Shortest think time between two tasks of one user, in seconds",
    )
    parser.add_argument(
        "--wait-max-s",
        type=float,
        default=float(os.environ.get("EVLOOP_LOAD_WAIT_MAX_S", "0.25")),
        help="Longest think time between two tasks of one user, in seconds",
    )


@events.test_start.add_listener
def _load_static_expectations(environment, **_kwargs):
    """Learn which static files exist and what their bytes must be."""
    _static_files.clear()
    root = environment.parsed_options.static_root if environment.parsed_options else ""
    if root:
        for dirpath, _dirnames, filenames in os.walk(root):
            for name in sorted(filenames):
                full = os.path.join(dirpath, name)
                if not os.path.isfile(full) or os.path.islink(full):
                    continue
                rel = os.path.relpath(full, root).replace(os.sep, "/")
                with open(full, "rb") as f:
                    _static_files["/static/" + urllib.parse.quote(rel)] = f.read()
        if not _static_files:
            raise RuntimeError(f"--static-root {root!r} holds no files")
        return
    # No local copy: the bundled root has an index.html; take its bytes as the
    # reference, so every later response must match the first one.
    url = environment.host.rstrip("/") + "/static/index.html"
    with urllib.request.urlopen(url, timeout=10) as resp:
        _static_files["/static/index.html"] = resp.read()


def _think_time(user):
    opts = user.environment.parsed_options
    if opts is None:
        return random.uniform(0.05, 0.25)
    return random.uniform(opts.wait_min_s, opts.wait_max_s)


def _random_body_size():
    """0..64 KiB, weighted towards small bodies as real traffic is."""
    if random.random() < 0.1:
        return 0
    return min(MAX_ECHO_BYTES, int(2 ** random.uniform(0, 16.0001)))


def _bad_status(resp):
    if resp.status_code == 0:  # no response at all: say why (timeout, reset, ...)
        return f"no response: {resp.error!r:.120}"
    return f"status {resp.status_code}"


def _header(resp, name):
    value = resp.headers.get(name)
    return value if value is not None else ""


class _CheckedUser(FastHttpUser):
    abstract = True
    wait_time = _think_time

    def __init__(self, environment):
        # A hung response must show up as a failure within the run, not as a
        # request still in flight when locust stops (which it does not count).
        opts = environment.parsed_options
        timeout_s = opts.request_timeout_s if opts is not None else 5.0
        self.network_timeout = timeout_s
        self.connection_timeout = timeout_s
        super().__init__(environment)

    def check_hello(self, headers=None, name="/"):
        with self.client.get("/", headers=headers, name=name, catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(_bad_status(resp))
            elif resp.content != HELLO:
                resp.failure(f"body {resp.content[:60]!r}")
            elif not _header(resp, "Content-Type").startswith("text/plain"):
                resp.failure(f"content-type {_header(resp, 'Content-Type')!r}")
            elif headers and "close" not in _header(resp, "Connection").lower():
                resp.failure("Connection: close was sent but the response keeps the connection")

    def check_healthz(self, headers=None, name="/healthz"):
        with self.client.get("/healthz", headers=headers, name=name, catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(_bad_status(resp))
            elif resp.content != b"ok":
                resp.failure(f"body {resp.content[:60]!r}")

    def check_inspect(self, headers=None, name=None):
        method = random.choice(("GET", "GET", "POST", "PUT", "DELETE", "PATCH"))
        token = os.urandom(8).hex()
        query = urllib.parse.urlencode({"q": token, "sp": "a b", "n": random.randint(0, 999)})
        body = os.urandom(random.randint(1, 4096)) if method in ("POST", "PUT", "PATCH") else b""
        sent_headers = {"X-Load-Token": token, "Accept": "application/json"}
        if headers:
            sent_headers.update(headers)
        with self.client.request(
            method,
            "/inspect?" + query,
            data=body or None,
            headers=sent_headers,
            name=name or f"/inspect [{method}]",
            catch_response=True,
        ) as resp:
            if resp.status_code != 200:
                resp.failure(_bad_status(resp))
                return
            if not _header(resp, "Content-Type").startswith("application/json"):
                resp.failure(f"content-type {_header(resp, 'Content-Type')!r}")
                return
            try:
                doc = json.loads(resp.content)
            except ValueError as exc:
                resp.failure(f"not JSON: {exc}")
                return
            problem = _inspect_problem(doc, method, query, token, body)
            if problem:
                resp.failure(problem)


def _inspect_problem(doc, method, query, token, body):
    """Return what is wrong with an /inspect document, or None."""
    if not isinstance(doc, dict):
        return f"not an object: {type(doc).__name__}"
    if doc.get("method") != method:
        return f"method {doc.get('method')!r} != {method!r}"
    if doc.get("path") != "/inspect":
        return f"path {doc.get('path')!r}"
    if doc.get("query") not in (query, "?" + query):
        return "query differs from the query sent"
    if doc.get("version") not in ("HTTP/1.1", "1.1"):
        return f"version {doc.get('version')!r}"
    headers = doc.get("headers")
    if not isinstance(headers, list) or not all(
        isinstance(h, list) and len(h) == 2 for h in headers
    ):
        return f"headers is not a list of pairs: {headers!r:.80}"
    # Names as sent: the client sends "X-Load-Token" in this exact case.
    if ["X-Load-Token", token] not in headers:
        return "the X-Load-Token header is missing or renamed in 'headers'"
    if doc.get("body_length") != len(body):
        return "body_length differs from the body sent"
    if doc.get("body_sha256") != hashlib.sha256(body).hexdigest():
        return "body_sha256 differs from the body sent"
    return None


class BrowserUser(_CheckedUser):
    """A visitor: hello pages and static files, revalidated from cache."""

    weight = 5

    @task(10)
    def hello(self):
        self.check_hello()

    @task(6)
    def static_then_revalidate(self):
        path = random.choice(sorted(_static_files))
        expected = _static_files[path]
        etag = None
        with self.client.get(path, name="/static/[file]", catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"{path}: {_bad_status(resp)}")
                return
            if resp.content != expected:
                resp.failure(f"{path}: content differs from the file")
                return
            etag = resp.headers.get("ETag")
            if not etag:
                resp.failure(f"{path}: no ETag")
                return
            if path.endswith(".html") and not _header(resp, "Content-Type").startswith("text/html"):
                resp.failure(f"{path}: content-type {_header(resp, 'Content-Type')!r}")
                return
        with self.client.get(
            path,
            headers={"If-None-Match": etag},
            name="/static/[file] If-None-Match",
            catch_response=True,
        ) as resp:
            if resp.status_code != 304:
                resp.failure(f"{path}: revalidation {_bad_status(resp)}, expected 304")
            elif resp.content:
                resp.failure(f"{path}: 304 with a {len(resp.content)}-byte body")

    @task(1)
    def healthz(self):
        self.check_healthz()


class ApiUser(_CheckedUser):
    """A client of the API endpoints: echo, inspect, stream."""

    weight = 3

    @task(5)
    def echo(self):
        method = random.choice(("POST", "PUT"))
        body = os.urandom(_random_body_size())
        content_type = random.choice((None, "application/octet-stream", "text/plain; charset=utf-8"))
        headers = {"Content-Type": content_type} if content_type else {}
        with self.client.request(
            method, "/echo", data=body, headers=headers, name=f"/echo [{method}]", catch_response=True
        ) as resp:
            if resp.status_code != 200:
                resp.failure(_bad_status(resp))
            elif resp.content != body:
                resp.failure("echo body differs from the body sent")
            elif _header(resp, "Content-Type") != (content_type or "application/octet-stream"):
                resp.failure(f"content-type {_header(resp, 'Content-Type')!r} for sent {content_type!r}")

    @task(3)
    def inspect(self):
        self.check_inspect()

    @task(2)
    def stream(self):
        n = random.randint(0, MAX_STREAM_CHUNKS)
        expected = b"".join(b"chunk %d\n" % i for i in range(n))
        with self.client.get(f"/stream/{n}", name="/stream/[n]", catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(_bad_status(resp))
            elif resp.content != expected:
                resp.failure("stream content differs from chunk 0..N-1")
            elif "chunked" not in _header(resp, "Transfer-Encoding").lower():
                resp.failure(f"not chunked: Transfer-Encoding {_header(resp, 'Transfer-Encoding')!r}")


class SlowEndpointUser(_CheckedUser):
    """Waits on /delay/MS: the response must not come before MS have passed."""

    weight = 1

    @task
    def delay(self):
        ms = random.choice(DELAYS_MS)
        started = time.perf_counter()
        with self.client.get(f"/delay/{ms}", name="/delay/[ms]", catch_response=True) as resp:
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            if resp.status_code != 200:
                resp.failure(_bad_status(resp))
            elif resp.content != b"delayed":
                resp.failure(f"body {resp.content[:60]!r}")
            elif elapsed_ms < ms:
                resp.failure(f"/delay/{ms} answered before {ms} ms")


class NewConnectionUser(_CheckedUser):
    """Sends ``Connection: close`` on every request, so each one opens a new connection."""

    weight = 1
    CLOSE = {"Connection": "close"}

    @task(3)
    def hello(self):
        self.check_hello(headers=self.CLOSE, name="/ [close]")

    @task(1)
    def inspect(self):
        self.check_inspect(headers=self.CLOSE, name="/inspect [close]")

    @task(1)
    def healthz(self):
        self.check_healthz(headers=self.CLOSE, name="/healthz [close]")
