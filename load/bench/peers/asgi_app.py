"""ASGI peer for uvicorn and granian: ``uvicorn asgi_app:app``, ``granian --interface asgi asgi_app:app``."""

import asyncio
import os

from common import HELLO, MAX_BYTES, MAX_DELAY_MS, byte_chunks, item_id, parse_count


def _static_files():
    """Starlette's ``StaticFiles`` on ``BENCH_STATIC_ROOT`` mounted at ``/static``, as a Starlette app
    serves files; None when the variable is not set (Starlette is then not imported)."""
    root = os.environ.get("BENCH_STATIC_ROOT")
    if not root:
        return None
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    return Starlette(routes=[Mount("/static", StaticFiles(directory=root))])


STATIC = _static_files()


async def _send(send, status, body, content_type=b"text/plain"):
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive):
    parts = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    method = scope["method"]
    if path == "/" and method == "GET":
        await _send(send, 200, HELLO)
    elif path == "/echo" and method in ("POST", "PUT"):
        body = await _read_body(receive)
        ctype = b"application/octet-stream"
        for name, value in scope["headers"]:
            if name == b"content-type":
                ctype = value
        await _send(send, 200, body, ctype)
    elif path.startswith("/bytes/") and method == "GET":
        n = parse_count(path[7:], MAX_BYTES)
        if n is None:
            await _send(send, 400, b"bad byte count")
            return
        headers = [(b"content-type", b"application/octet-stream"), (b"content-length", b"%d" % n)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for chunk in byte_chunks(n):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path.startswith("/delay/") and method == "GET":
        ms = parse_count(path[7:], MAX_DELAY_MS)
        if ms is None:
            await _send(send, 400, b"bad delay")
            return
        await asyncio.sleep(ms / 1000.0)
        await _send(send, 200, b"delayed")
    elif path == "/healthz":
        await _send(send, 200, b"ok")
    elif (item := item_id(path)) is not None and method == "GET":
        await _send(send, 200, b"item " + item.encode("utf-8", "surrogateescape"))
    elif STATIC is not None and path.startswith("/static/"):
        await STATIC(scope, receive, send)
    else:
        await _send(send, 404, b"not found")
