"""SendQueue and FileRegion: no sockets, just the bookkeeping."""

from __future__ import annotations

import random
import time

import pytest

from evloop.buffers import FileRegion, SendQueue


def drain_bytes(q: SendQueue, step: int | None = None) -> bytes:
    """Consume all leading byte chunks as a socket taking ``step`` bytes per send would."""
    out = bytearray()
    while q and q.head_file() is None:
        bufs = q.buffers()
        joined = b"".join(bytes(b) for b in bufs)
        n = len(joined) if step is None else min(step, len(joined))
        out += joined[:n]
        q.consume(n)
    return bytes(out)


def test_empty_queue():
    q = SendQueue()
    assert not q
    assert q.size == 0
    assert q.buffers() == []
    assert q.head_file() is None
    q.append(b"")
    assert not q and q.size == 0


def test_small_writes_are_coalesced():
    q = SendQueue()
    for i in range(100):
        q.append(b"x%d," % i)
    assert q.size == sum(len(b"x%d," % i) for i in range(100))
    assert len(q.buffers()) == 1
    assert drain_bytes(q) == b"".join(b"x%d," % i for i in range(100))
    assert q.size == 0 and not q


def test_coalescing_is_bounded_and_big_writes_kept_separate():
    q = SendQueue()
    small = b"a" * 1000
    for _ in range(200):  # 200 KB of small writes: several coalesced chunks
        q.append(small)
    big = b"B" * 100_000
    q.append(big)
    bufs = q.buffers()
    assert len(bufs) >= 3
    assert bufs[-1] is big  # large bytes are queued without a copy
    assert all(len(b) <= 80_000 for b in bufs[:-1])
    assert q.size == 300_000
    assert drain_bytes(q) == small * 200 + big


def test_mutable_input_is_copied():
    q = SendQueue()
    data = bytearray(b"hello")
    q.append(data)
    data[:] = b"XXXXX"
    big = bytearray(b"y" * 50_000)
    q.append(big)
    big[:] = b"z" * 50_000
    assert drain_bytes(q) == b"hello" + b"y" * 50_000


def test_memoryview_input():
    q = SendQueue()
    src = b"0123456789" * 5000
    q.append(memoryview(src)[10:])
    q.append(memoryview(src)[:5])
    assert q.size == len(src) - 10 + 5
    assert drain_bytes(q) == src[10:] + src[:5]


def test_consume_across_chunks_and_partial_advance():
    q = SendQueue()
    parts = [b"a" * 20_000, b"b" * 30_000, b"c" * 10, b"d" * 40_000]
    for p in parts:
        q.append(p)
    total = b"".join(parts)
    assert q.size == len(total)
    q.consume(25_000)  # all of the first chunk, part of the second
    assert q.size == len(total) - 25_000
    head = q.buffers()[0]
    assert isinstance(head, memoryview)  # advanced without slicing a new bytes
    assert bytes(head) == b"b" * 25_000
    assert drain_bytes(q, step=777) == total[25_000:]
    assert q.size == 0


def test_consume_one_byte_at_a_time():
    q = SendQueue()
    data = bytes(range(256)) * 4
    for i in range(0, len(data), 100):
        q.append(data[i:i + 100])
    assert drain_bytes(q, step=1) == data


def test_append_after_partial_consume_keeps_order():
    q = SendQueue()
    q.append(b"hello ")
    q.consume(2)
    q.append(b"world")
    assert q.size == len(b"llo world")
    assert drain_bytes(q) == b"llo world"


def append_random(rng: random.Random, q: SendQueue) -> bytes:
    """Append a chunk of a random size (either side of the coalescing bounds) and kind; return its bytes."""
    n = rng.choice([0, 1, 10, 1000, 16 * 1024, 16 * 1024 + 1, 70_000])
    chunk = (bytes(rng.getrandbits(8) for _ in range(min(n, 50))) * (n // 50 + 1))[:n]
    q.append(rng.choice([bytes, bytearray, memoryview])(chunk))
    return chunk


def test_random_appends_and_consumes_match_model():
    rng = random.Random(42)
    q = SendQueue()
    expected = bytearray()
    sent = bytearray()
    for _ in range(3000):
        if rng.random() < 0.6:
            expected += append_random(rng, q)
        elif q:
            bufs = q.buffers(max_count=rng.choice([1, 2, 64]))
            avail = sum(len(b) for b in bufs)
            n = rng.randint(0, avail)
            sent += b"".join(bytes(b) for b in bufs)[:n]
            q.consume(n)
        assert q.size == len(expected) - len(sent)
    sent += drain_bytes(q)
    assert bytes(sent) == bytes(expected)


def test_random_appends_and_takes_match_model():
    # take(limit) against the same model: what buffers() + consume() would have given.
    rng = random.Random(7)
    q = SendQueue()
    expected = bytearray()
    taken = bytearray()
    for _ in range(3000):
        if rng.random() < 0.6:
            expected += append_random(rng, q)
        else:
            limit = rng.choice([1, 100, 16 * 1024, 65536, 1 << 20])
            head = bytes(q.buffers(1)[0]) if q else b""
            piece = q.take(limit)
            if not head:
                assert piece is None
            else:
                assert piece is not None and bytes(piece) == head[:limit]
                taken += piece
        assert q.size == len(expected) - len(taken)
    taken += drain_bytes(q)
    assert bytes(taken) == bytes(expected)


def test_take_stops_at_a_file_region_and_keeps_appending_after_a_cut():
    q = SendQueue()
    q.append(b"ab")
    region = FileRegion(5, 0, 10, None)
    q.append_file(region)
    assert bytes(q.take(1) or b"") == b"a"
    assert bytes(q.take(100) or b"") == b"b"
    assert q.take(100) is None and q.head_file() is region
    q.file_progress(region, 10)
    assert not q and q.take(1) is None
    q.append(bytearray(b"xyz"))  # a coalescing bytearray, cut by take: later appends must not change the cut
    assert bytes(q.take(2) or b"") == b"xy"
    q.append(b"!")
    assert drain_bytes(q) == b"z!"


def test_buffers_max_count():
    q = SendQueue()
    for _ in range(10):
        q.append(b"x" * 20_000)
    assert len(q.buffers(max_count=3)) == 3
    assert len(q.buffers()) == 10


def test_running_size_is_not_resummed():
    # Work proportional to bytes: many appends + consumes stay linear.
    def cost(n: int) -> float:
        q = SendQueue()
        start = time.process_time()
        for _ in range(n):
            q.append(b"x" * 100)
            q.append(b"y" * 20_000)
            _ = q.size
        while q:
            q.consume(len(q.buffers(1)[0]) // 2 or 1)
        return time.process_time() - start

    cost(500)
    small = min(cost(2_000) for _ in range(2))
    large = min(cost(8_000) for _ in range(2))
    assert large <= 8 * small + 0.05, (small, large)


# ------------------------------------------------------------ file regions
def test_file_region_sits_between_bytes():
    q = SendQueue()
    done = []
    q.append(b"head")
    region = FileRegion(5, 100, 1000, done.append)
    q.append_file(region)
    q.append(b"tail")
    assert q.size == 4 + 1000 + 4
    assert q.buffers() == [b"head"]  # stops at the file region
    assert q.head_file() is None
    q.consume(4)
    assert q.head_file() is region
    assert q.buffers() == []
    q.file_progress(region, 400)
    assert (region.offset, region.remaining) == (500, 600)
    assert q.size == 600 + 4
    assert done == []
    q.file_progress(region, 600)
    assert done == [None]
    assert q.head_file() is None
    assert drain_bytes(q) == b"tail"
    assert q.size == 0


def test_file_head_read_fallback_keeps_size_and_order():
    q = SendQueue()
    done = []
    region = FileRegion(3, 0, 10, done.append)
    q.append_file(region)
    q.append(b"!")
    q.file_head_read(region, b"abcd")
    assert q.size == 11
    assert bytes(q.buffers()[0]) == b"abcd"
    q.consume(4)
    assert q.head_file() is region
    q.file_head_read(region, b"efghij")
    assert done == [None]  # all its bytes were read: the file may close now
    assert q.size == 7
    assert drain_bytes(q) == b"efghij!"


def test_clear_tells_file_regions_and_empties():
    q = SendQueue()
    a_done, b_done = [], []
    q.append(b"x" * 100)
    q.append_file(FileRegion(3, 0, 10, a_done.append))
    q.append_file(FileRegion(4, 0, 10, b_done.append))
    err = ConnectionResetError()
    q.clear(err)
    assert a_done == [err] and b_done == [err]
    assert not q and q.size == 0
    q.clear(None)  # nothing left to tell
    assert a_done == [err]


def test_on_done_called_once():
    q = SendQueue()
    calls = []
    region = FileRegion(3, 0, 10, calls.append)
    q.append_file(region)
    q.file_progress(region, 10)
    q.clear(RuntimeError())
    region.finish(None)
    assert calls == [None]


def test_region_without_callback():
    q = SendQueue()
    region = FileRegion(3, 0, 10, None)
    q.append_file(region)
    q.file_progress(region, 10)
    assert not q


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_large_write_then_small(kind):
    q = SendQueue()
    q.append(kind(b"L" * 40_000))
    q.append(kind(b"s"))
    q.consume(39_999)
    assert drain_bytes(q) == b"Ls"


def test_a_drained_queue_holds_no_deque():
    """An idle connection's queue costs no deque (~700 bytes): made by the first item, dropped when empty."""
    q = SendQueue()
    assert q._items is None and not q and q.buffers() == []
    q.append(b"x" * 10)
    q.append(b"y" * 100_000)
    q.consume(5)
    assert q._items is not None
    q.consume(100_005)
    assert q._items is None and q.size == 0 and not q
    q.append(b"again")
    assert bytes(q.buffers()[0]) == b"again"
    q.clear()
    assert q._items is None
