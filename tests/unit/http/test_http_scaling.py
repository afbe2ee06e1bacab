"""Doubling an input must not quadruple its CPU time (resumed searches)."""

import time

from _http_helpers import request

from evloop.http import Data, EndOfMessage, Limits, RequestHead, ServerConnection


def bytewise_cpu(raw: bytes, limits: Limits = Limits()) -> float:
    """Best of three: CPU seconds to feed ``raw`` one byte at a time."""
    best = float("inf")
    for _ in range(3):
        conn = ServerConnection(limits)
        events = []
        t0 = time.process_time()
        for i in range(len(raw)):
            conn.receive_data(raw[i : i + 1])
            event = conn.next_event()
            while isinstance(event, (RequestHead, Data, EndOfMessage)):
                events.append(event)
                event = conn.next_event()
        best = min(best, time.process_time() - t0)
        assert isinstance(events[0], RequestHead) and isinstance(events[-1], EndOfMessage)
    return best


def assert_linear(small: bytes, big: bytes, limits: Limits = Limits()) -> None:
    """Doubling the input must not quadruple the time: linear gives about 2,
    quadratic about 4.  On a loaded machine one measurement can be noisy, so
    a ratio under 3 in any of three attempts passes."""
    ratios = []
    for _ in range(3):
        ratios.append(bytewise_cpu(big, limits) / bytewise_cpu(small, limits))
        if ratios[-1] < 3.0:
            return
    raise AssertionError(f"CPU time ratios {ratios} for doubled input")


def head_of(size: int, path: str = "/") -> bytes:
    # 40 fields sharing ``size`` bytes between them.
    value = "v" * (size // 40 - 8)
    fields = "\n".join(f"X-{i:02d}: {value}" for i in range(40))
    return request(f"GET {path} HTTP/1.1\nHost: h\n" + fields)


def test_head_one_byte_at_a_time_is_linear():
    small, big = head_of(30 * 1024), head_of(60 * 1024)
    assert 60 * 1024 - 200 < len(big) <= 64 * 1024
    assert_linear(small, big)


def test_head_after_long_request_line_one_byte_at_a_time_is_linear():
    path = "/" + "p" * 8000
    assert_linear(head_of(24 * 1024, path), head_of(48 * 1024, path))


def trailers_of(size: int) -> bytes:
    value = "v" * (size // 40 - 8)
    trailers = "".join(f"X-{i:02d}: {value}\r\n" for i in range(40)).encode()
    return request("POST / HTTP/1.1\nHost: h\nTransfer-Encoding: chunked", b"0\r\n" + trailers + b"\r\n")


def test_trailers_one_byte_at_a_time_are_linear():
    assert_linear(trailers_of(30 * 1024), trailers_of(60 * 1024))


def chunk_ext_of(size: int) -> bytes:
    ext = b";a=" + b"b" * size
    return request("POST / HTTP/1.1\nHost: h\nTransfer-Encoding: chunked", b"1" + ext + b"\r\nx\r\n0\r\n\r\n")


def test_chunk_extension_one_byte_at_a_time_is_linear():
    limits = Limits(max_chunk_ext_bytes=64 * 1024, max_chunk_ext_total_bytes=64 * 1024)
    assert_linear(chunk_ext_of(20000), chunk_ext_of(40000), limits)
