"""Flask peer: the hello-world of every Flask tutorial, ``flask_app:app``.

Served by evloop (``--wsgi``), granian (``--interface wsgi``), waitress and
gunicorn to compare the servers under a real framework's per-request work.
Only ``GET /`` and ``/healthz`` (the readiness check); other scenarios use
``wsgi_app.py``.
"""

from common import HELLO
from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello():
    return HELLO, 200, {"Content-Type": "text/plain"}


@app.get("/healthz")
def healthz():
    return b"ok", 200, {"Content-Type": "text/plain"}
