"""Flask peer: ``flask_app:app``, the endpoints of ``wsgi_app.py`` as a Flask app is written.

Served by evloop (``--wsgi``), granian (``--interface wsgi``), waitress and
gunicorn to compare the servers under a real framework's per-request work
(routing, the request and response objects).
"""

import time

from common import HELLO, MAX_BYTES, MAX_DELAY_MS, byte_chunks, parse_count
from flask import Flask, Response, request

app = Flask(__name__)


@app.get("/")
def hello():
    return HELLO, 200, {"Content-Type": "text/plain"}


@app.route("/echo", methods=["POST", "PUT"])
def echo():
    ctype = request.content_type or "application/octet-stream"
    return request.get_data(), 200, {"Content-Type": ctype}


@app.get("/bytes/<count>")
def some_bytes(count):
    n = parse_count(count, MAX_BYTES)
    if n is None:
        return b"bad byte count", 400, {"Content-Type": "text/plain"}
    return Response(byte_chunks(n), headers={"Content-Type": "application/octet-stream", "Content-Length": str(n)})


@app.get("/delay/<ms>")
def delay(ms):
    n = parse_count(ms, MAX_DELAY_MS)
    if n is None:
        return b"bad delay", 400, {"Content-Type": "text/plain"}
    time.sleep(n / 1000.0)
    return b"delayed", 200, {"Content-Type": "text/plain"}


@app.get("/items/<item>")
def items(item):
    return b"item " + item.encode(), 200, {"Content-Type": "text/plain"}


@app.get("/healthz")
def healthz():
    return b"ok", 200, {"Content-Type": "text/plain"}
