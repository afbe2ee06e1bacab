"""WSGI peer for waitress, gunicorn and granian (``--interface wsgi``): ``wsgi_app:app``."""

import time

from common import HELLO, MAX_BYTES, MAX_DELAY_MS, byte_chunks, item_id, parse_count


def _reply(start_response, status, body, content_type="text/plain"):
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    method = environ["REQUEST_METHOD"]
    if path == "/" and method == "GET":
        return _reply(start_response, "200 OK", HELLO)
    if path == "/echo" and method in ("POST", "PUT"):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        ctype = environ.get("CONTENT_TYPE") or "application/octet-stream"
        return _reply(start_response, "200 OK", body, ctype)
    if path.startswith("/bytes/") and method == "GET":
        n = parse_count(path[7:], MAX_BYTES)
        if n is None:
            return _reply(start_response, "400 Bad Request", b"bad byte count")
        start_response(
            "200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(n))]
        )
        return byte_chunks(n)
    if path.startswith("/delay/") and method == "GET":
        ms = parse_count(path[7:], MAX_DELAY_MS)
        if ms is None:
            return _reply(start_response, "400 Bad Request", b"bad delay")
        time.sleep(ms / 1000.0)
        return _reply(start_response, "200 OK", b"delayed")
    if path == "/healthz":
        return _reply(start_response, "200 OK", b"ok")
    item = item_id(path)
    if item is not None and method == "GET":
        return _reply(start_response, "200 OK", b"item " + item.encode("latin-1"))  # PEP 3333: bytes as latin-1
    return _reply(start_response, "404 Not Found", b"not found")
