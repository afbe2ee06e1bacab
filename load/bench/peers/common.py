"""What every peer serves, so all servers answer with the same bytes.

- ``GET /``            200 text/plain ``Hello, World!``
- ``POST|PUT /echo``   200, the request body unchanged, the request's Content-Type
- ``GET /bytes/N``     200, N bytes with a Content-Length, sent in 64 KiB chunks
- ``GET /delay/MS``    200 ``delayed`` after MS milliseconds (the server's own way to wait)
- ``GET /healthz``     200 ``ok``
- ``GET /items/ID``    200 text/plain ``item ID`` (ID: one path segment, as evloop-demo's ``/items/{item_id}``)
- ``GET /static/FILE`` the files of the run's static root, in the static scenarios (``BENCH_STATIC_ROOT``
                       for the ASGI app: Starlette's ``StaticFiles``)
- anything else        404 ``not found``
"""

HELLO = b"Hello, World!"
CHUNK = b"x" * 65536
MAX_BYTES = 1 << 30
MAX_DELAY_MS = 60_000


def item_id(path):
    """The ID of ``/items/ID`` (one non-empty segment), or None for any other path."""
    if not path.startswith("/items/"):
        return None
    rest = path[7:]
    return rest if rest and "/" not in rest else None


def parse_count(text, cap):
    """Return the non-negative int in ``text`` if it is at most ``cap``, else None."""
    if not text.isdigit() or len(text) > 12:
        return None
    value = int(text)
    return value if value <= cap else None


def byte_chunks(n):
    """Yield ``n`` bytes in CHUNK-sized pieces without building them in one buffer."""
    full, rest = divmod(n, len(CHUNK))
    for _ in range(full):
        yield CHUNK
    if rest:
        yield CHUNK[:rest]
