"""Parser microbenchmark: requests parsed per second for a browser-sized head.

Run: .venv/bin/python load/bench_parser.py [ITERATIONS]

Measures ServerConnection end to end for one keep-alive GET cycle:
receive_data, next_event (RequestHead, EndOfMessage, PAUSED), send_complete_response
with a small body, start_next_cycle; and the head parse alone.  Each is
measured twice: with the same head every time (served from the parser's
bounded cache of heads it has validated, as for a client that repeats its
request) and with a head never seen before (a distinct X-Request-Id each
time, so every head is parsed in full).  Prints the figures and, as a
baseline ratio, the cost of the stdlib's ``http.client.parse_headers``
(email-based, permissive) on the same head.
"""

import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evloop.http import PAUSED, ServerConnection  # noqa: E402
from evloop.http.caches import HTTP1Caches  # noqa: E402
from evloop.http.parser import HeadReader, Limits, ReceiveBuffer  # noqa: E402

# A typical Chrome navigation request, about 600 bytes.
BROWSER_HEAD = (
    b"GET /articles/2024/evloop?utm_source=news&page=2 HTTP/1.1\r\n"
    b"Host: www.example.com\r\n"
    b"Connection: keep-alive\r\n"
    b'sec-ch-ua: "Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"\r\n'
    b"sec-ch-ua-mobile: ?0\r\n"
    b'sec-ch-ua-platform: "Linux"\r\n'
    b"Upgrade-Insecure-Requests: 1\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    b"Chrome/124.0.0.0 Safari/537.36\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    b"image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7\r\n"
    b"Sec-Fetch-Site: same-origin\r\n"
    b"Sec-Fetch-Mode: navigate\r\n"
    b"Sec-Fetch-User: ?1\r\n"
    b"Sec-Fetch-Dest: document\r\n"
    b"Referer: https://www.example.com/articles/2024\r\n"
    b"Accept-Encoding: gzip, deflate, br, zstd\r\n"
    b"Accept-Language: en-US,en;q=0.9\r\n"
    b"Cookie: session=4f2a9c1e8b7d6a5f; theme=dark\r\n"
    b"\r\n"
)
HELLO_HEAD = b"GET / HTTP/1.1\r\nHost: localhost:8080\r\n\r\n"


def best_of(fn, n: int, repeat: int = 5) -> float:
    """Best per-iteration CPU seconds over ``repeat`` runs of ``n`` iterations."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn(n)
        best = min(best, (time.process_time() - t0) / n)
    return best


def unique_heads(head: bytes, n: int) -> list[bytes]:
    """``n`` variants of ``head``, each with its own X-Request-Id: none repeats."""
    return [head[:-2] + b"X-Request-Id: %016x\r\n\r\n" % i for i in range(n)]


def head_only(head: bytes, unique: bool = False):
    limits = Limits()
    caches = HTTP1Caches()

    def run(n: int) -> None:
        heads = unique_heads(head, n) if unique else [head] * n
        for h in heads:
            buf = ReceiveBuffer()
            buf.feed(h)
            # A new reader each time: the head comes from the shared cache (the last-head memo is the connection's).
            HeadReader(limits, caches).read(buf)

    return run


def full_cycle(head: bytes, unique: bool = False):
    def run(n: int) -> None:
        heads = unique_heads(head, n) if unique else [head] * n
        conn = ServerConnection()
        for h in heads:
            conn.receive_data(h)
            conn.next_event()
            conn.next_event()
            assert conn.next_event() is PAUSED
            conn.send_complete_response(
                200, [("Content-Type", "text/plain")], b"Hello, world!", b"Tue, 25 Nov 2025 21:30:00 GMT"
            )
            conn.start_next_cycle()

    return run


def stdlib_baseline(head: bytes):
    import http.client

    body = head.split(b"\r\n", 1)[1]

    def run(n: int) -> None:
        for _ in range(n):
            http.client.parse_headers(io.BytesIO(body))

    return run


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    print(f"python {sys.version.split()[0]}, {n} iterations, best of 5 (CPU time)")
    base = best_of(stdlib_baseline(BROWSER_HEAD), n // 4)
    for name, fn in [
        (f"browser head parse only ({len(BROWSER_HEAD)} B), repeated", head_only(BROWSER_HEAD)),
        ("browser head parse only, never seen before", head_only(BROWSER_HEAD, unique=True)),
        ("browser head, full keep-alive cycle, repeated", full_cycle(BROWSER_HEAD)),
        ("browser head, full cycle, never seen before", full_cycle(BROWSER_HEAD, unique=True)),
        (f"hello head parse only ({len(HELLO_HEAD)} B), repeated", head_only(HELLO_HEAD)),
        ("hello head parse only, never seen before", head_only(HELLO_HEAD, unique=True)),
        ("hello head, full keep-alive cycle, repeated", full_cycle(HELLO_HEAD)),
        ("hello head, full cycle, never seen before", full_cycle(HELLO_HEAD, unique=True)),
    ]:
        t = best_of(fn, n)
        print(f"{name:50s} {t * 1e6:6.2f} us  {1 / t:10,.0f} req/s")
    print(f"{'baseline: http.client.parse_headers (browser)':50s} {base * 1e6:6.2f} us  "
          f"{1 / base:10,.0f} req/s")
    first_seen = best_of(head_only(BROWSER_HEAD, unique=True), n)
    print(f"browser head parse, never seen before, vs baseline: {base / first_seen:.1f}x faster")


if __name__ == "__main__":
    main()
