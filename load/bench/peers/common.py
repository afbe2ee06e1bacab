"""What every peer serves, so all servers answer with the same bytes.

- ``GET /``            200 text/plain ``Hello, World!``
- ``POST|PUT /echo``   200, the request body unchanged, the request's Content-Type
- ``GET /bytes/N``     200, N bytes with a Content-Length, sent in 64 KiB chunks
- ``GET /delay/MS``    200 ``delayed`` after MS milliseconds (the server's own way to wait)
- ``GET /healthz``     200 ``ok``
- anything else        404 ``not found``
"""

HELLO = b"Hello, World!"
CHUNK = b"x" * 65536
MAX_BYTES = 1 << 30
MAX_DELAY_MS = 60_000


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
