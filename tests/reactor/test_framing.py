"""LineProtocol and LengthPrefixedProtocol over socketpairs, for every selector class.

Streams are fed three ways (whole, one byte per read, and split in two at every
offset) and must give the same events.  A chunk is sent only once the one
before it has been read, so each chunk arrives in a read of its own.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import time
import tracemalloc

import pytest

from evloop import Reactor, SocketTransport
from evloop.framing import LengthPrefixedProtocol, LineProtocol


# ------------------------------------------------------------------ helpers
class Peer:
    """The plain-socket side of a pair, driven by the same reactor."""

    def __init__(self, reactor: Reactor, sock: socket.socket) -> None:
        self.reactor = reactor
        self.sock = sock
        sock.setblocking(False)
        self.data = bytearray()
        self.eof = False
        self.reading = False
        self._outgoing: memoryview | None = None
        self._eof_after = False
        self.blocked = False  # the last push found the socket full

    def start_reading(self) -> None:
        if not self.reading:
            self.reading = True
            self.reactor.add_reader(self.sock, self._on_readable)

    def _on_readable(self) -> None:
        try:
            chunk = self.sock.recv(1 << 20)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if chunk:
            self.data += chunk
        else:
            self.eof = True
            self.reading = False
            self.reactor.remove_reader(self.sock)

    def push(self, data: bytes, eof: bool = False) -> None:
        """Send ``data`` (then shut down writing if ``eof``) as fast as the socket takes it."""
        self._outgoing = memoryview(data)
        self._eof_after = eof
        self.reactor.add_writer(self.sock, self._on_writable)

    @property
    def pushed_all(self) -> bool:
        return self._outgoing is None

    def _on_writable(self) -> None:
        out = self._outgoing
        try:
            sent = self.sock.send(out[:256 * 1024])
        except BlockingIOError:
            self.blocked = True
            return
        except OSError:
            sent = len(out)
        self.blocked = sent < min(len(out), 256 * 1024)
        out = out[sent:]
        if out:
            self._outgoing = out
            return
        self._outgoing = None
        self.reactor.remove_writer(self.sock)
        if self._eof_after:
            self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.reactor.remove_reader(self.sock)
        self.reactor.remove_writer(self.sock)
        self.sock.close()


class Lines(LineProtocol):
    """Records what it gets; does not close on an over-long line unless told to."""

    close_on_too_long = False
    keep_open_at_end = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.events: list[tuple] = []
        self.received = 0  # bytes given to data_received

    def data_received(self, data):
        self.received += len(data)
        super().data_received(data)

    def line_received(self, line):
        assert type(line) is bytes
        self.events.append(("line", line))

    def line_too_long(self, size):
        self.events.append(("too_long", size))
        if self.close_on_too_long:
            super().line_too_long(size)

    def input_ended(self, tail):
        self.events.append(("end", tail))
        return self.keep_open_at_end

    def connection_lost(self, exc):
        self.events.append(("lost", exc))

    @property
    def lines(self) -> list[bytes]:
        return [e[1] for e in self.events if e[0] == "line"]

    @property
    def lost(self) -> bool:
        return any(e[0] == "lost" for e in self.events)


class Frames(LengthPrefixedProtocol):
    close_on_too_long = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.events: list[tuple] = []
        self.received = 0

    def data_received(self, data):
        self.received += len(data)
        super().data_received(data)

    def frame_received(self, payload):
        assert type(payload) is bytes
        self.events.append(("frame", payload))

    def frame_too_long(self, size):
        self.events.append(("too_long", size))
        if self.close_on_too_long:
            super().frame_too_long(size)

    def input_ended(self, tail):
        self.events.append(("end", tail))
        return None

    def connection_lost(self, exc):
        self.events.append(("lost", exc))

    @property
    def frames(self) -> list[bytes]:
        return [e[1] for e in self.events if e[0] == "frame"]

    @property
    def lost(self) -> bool:
        return any(e[0] == "lost" for e in self.events)


@pytest.fixture
def pair(reactor):
    """make(protocol, **transport_kwargs) -> (transport, peer) over a Unix socketpair."""
    made = []

    def make(protocol, **kwargs):
        a, b = socket.socketpair()
        transport = SocketTransport(reactor, a, protocol, **kwargs)
        transport.start()
        peer = Peer(reactor, b)
        made.append((transport, peer))
        return transport, peer

    yield make
    for transport, peer in made:
        transport.abort()
        peer.close()
    reactor.run_once(0)


def feed_chunks(run_until, reactor: Reactor, protocol, peer: Peer, chunks) -> None:
    """Send each chunk once the previous one has been read, so each is one read."""
    target = protocol.received
    for chunk in chunks:
        if not chunk:
            continue
        peer.sock.send(chunk)
        target += len(chunk)
        run_until(reactor, lambda target=target: protocol.received >= target)
    assert protocol.received == target


@pytest.fixture
def feed(reactor, run_until):
    """feed(protocol, peer, chunks): ``feed_chunks`` on the test's reactor."""
    return lambda protocol, peer, chunks: feed_chunks(run_until, reactor, protocol, peer, chunks)


def three_ways(stream: bytes):
    """The same stream as chunk lists: whole, a byte per read, and split at every offset."""
    yield "whole", [stream]
    yield "bytes", [stream[i:i + 1] for i in range(len(stream))]
    yield "splits", [part for i in range(1, len(stream)) for part in (stream[:i], stream[i:])]


def kinds(events):
    """Events without the size of an over-long unit (it depends on how the bytes arrived)."""
    return [("too_long",) if e[0] == "too_long" else e for e in events]


def spin(reactor: Reactor, passes: int = 5) -> None:
    for _ in range(passes):
        reactor.run_once(0)


# -------------------------------------------------------------------- lines
LF_STREAM = (
    b"one\r\ntwo\n\nthree\r\r\n12345678\r\n1234567\r\r\n123456789\nafter\n"
    + b"x" * 20 + b"\r\n\r\nlast\n"
)
LF_EXPECTED = [
    ("line", b"one"), ("line", b"two"), ("line", b""), ("line", b"three\r"), ("line", b"12345678"),
    ("line", b"1234567\r"), ("too_long",), ("line", b"after"), ("too_long",), ("line", b""), ("line", b"last"),
]
CRLF_STREAM = (
    b"one\r\ntw\nst\r\n\r\n12345678\r\n1234567\r\r\nab\r\rcd\r\n123456789\r\nafter\r\n"
    + b"x" * 20 + b"\n\r\r\r\n" + b"y\r" * 5 + b"\r\nlast\r\n"
)
CRLF_EXPECTED = [
    ("line", b"one"), ("line", b"tw\nst"), ("line", b""), ("line", b"12345678"), ("line", b"1234567\r"),
    ("line", b"ab\r\rcd"), ("too_long",), ("line", b"after"), ("too_long",), ("too_long",), ("line", b"last"),
]


@pytest.mark.parametrize(
    "delimiter, stream, expected",
    [(b"\n", LF_STREAM, LF_EXPECTED), (b"\r\n", CRLF_STREAM, CRLF_EXPECTED)],
    ids=["lf", "strict-crlf"],
)
def test_lines_any_split_gives_the_same_lines(reactor, pair, delimiter, stream, expected, feed):
    for how, chunks in three_ways(stream):
        protocol = Lines(max_line_bytes=8, delimiter=delimiter)
        transport, peer = pair(protocol)
        feed(protocol, peer, chunks)
        repeats = 1 if how != "splits" else len(stream) - 1
        assert kinds(protocol.events) == expected * repeats, how
        assert not transport.is_closing()


def test_lf_mode_accepts_crlf_and_lf_and_strips_one_cr(reactor, pair, feed):
    protocol = Lines()
    _, peer = pair(protocol)
    feed(protocol, peer, [b"a\r\nb\nc\r\r\n\rd\n"])
    assert protocol.lines == [b"a", b"b", b"c\r", b"\rd"]


def test_strict_crlf_mode_keeps_bare_lf_in_the_line(reactor, pair, feed):
    protocol = Lines(delimiter=b"\r\n")
    _, peer = pair(protocol)
    feed(protocol, peer, [b"a\nb\r\nc\r", b"\n\n\r\n"])
    assert protocol.lines == [b"a\nb", b"c", b"\n"]


def test_line_over_the_limit_is_reported_and_closes_by_default(reactor, pair, caplog, run_until):
    protocol = Lines(max_line_bytes=16)
    protocol.close_on_too_long = True
    transport, peer = pair(protocol)
    peer.start_reading()
    with caplog.at_level(logging.WARNING, logger="evloop"):
        peer.sock.send(b"ok\n" + b"z" * 17)  # no terminator: over the limit anyway
        run_until(reactor, lambda: protocol.lost and peer.eof)
    assert protocol.events[:2] == [("line", b"ok"), ("too_long", 17)]
    assert protocol.events[-1] == ("lost", None)
    assert "max_line_bytes" in caplog.text


def test_complete_line_over_the_limit_reports_its_length(reactor, pair, feed):
    protocol = Lines(max_line_bytes=16)
    _, peer = pair(protocol)
    feed(protocol, peer, [b"a" * 40 + b"\r\nnext\n"])
    assert protocol.events == [("too_long", 40), ("line", b"next")]


def test_line_of_exactly_the_limit_waits_for_its_terminator(reactor, pair, feed):
    for delimiter in (b"\n", b"\r\n"):
        protocol = Lines(max_line_bytes=5, delimiter=delimiter)
        _, peer = pair(protocol)
        feed(protocol, peer, [b"abcde", b"\r", b"\n"])
        assert protocol.events == [("line", b"abcde")]


def test_endless_line_keeps_memory_bounded(reactor, pair, run_until):
    protocol = Lines(max_line_bytes=1000)
    transport, peer = pair(protocol)
    payload = b"q" * (8 * 1024 * 1024) + b"\nafter\n"
    tracemalloc.start()
    try:
        peer.push(payload)
        run_until(reactor, lambda: protocol.received == len(payload), 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The limit plus a read or two in flight, nowhere near the 8 MiB sent.
    assert peak < 1024 * 1024, peak
    assert kinds(protocol.events) == [("too_long",), ("line", b"after")]


def test_unterminated_last_line_goes_to_input_ended(reactor, pair, run_until):
    protocol = Lines()
    transport, peer = pair(protocol)
    peer.start_reading()
    peer.push(b"a\nb\r\nunfinished", eof=True)
    run_until(reactor, lambda: protocol.lost and peer.eof)
    assert protocol.events == [("line", b"a"), ("line", b"b"), ("end", b"unfinished"), ("lost", None)]


def test_input_ended_true_keeps_our_side_open(reactor, pair, run_until):
    protocol = Lines()
    protocol.keep_open_at_end = True
    transport, peer = pair(protocol)
    peer.start_reading()
    peer.push(b"question\n", eof=True)
    run_until(reactor, lambda: protocol.events[-1:] == [("end", b"")])
    spin(reactor)
    assert not transport.is_closing()
    protocol.send_line(b"answer")
    transport.close()
    run_until(reactor, lambda: peer.eof and protocol.lost)
    assert peer.data == b"answer\r\n"


def test_send_line_appends_newline_and_refuses_lf(reactor, pair):
    protocol = Lines(newline=b"\n")
    transport, peer = pair(protocol)
    protocol.send_line(b"one")
    protocol.send_line(b"two\r")
    with pytest.raises(ValueError):
        protocol.send_line(b"three\nfour")
    assert peer.sock.recv(100) == b"one\ntwo\r\n"


def test_send_line_defaults_to_crlf(reactor, pair):
    protocol = Lines()
    _, peer = pair(protocol)
    protocol.send_line(b"hi")
    assert peer.sock.recv(100) == b"hi\r\n"


def test_line_protocol_validates_configuration():
    with pytest.raises(ValueError):
        LineProtocol(delimiter=b"\r")
    with pytest.raises(ValueError):
        LineProtocol(newline=b";")
    with pytest.raises(ValueError):
        LineProtocol(max_line_bytes=0)

    class Short(LineProtocol):
        max_line_bytes = 10
        delimiter = b"\r\n"

    assert Short().max_line_bytes == 10 and Short().delimiter == b"\r\n"
    assert Short(max_line_bytes=20).max_line_bytes == 20


# --------------------------------------------------------- linear work
def _elapsed(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def test_ten_megabyte_stream_of_lines_in_linear_time(run_until):
    # One selector is enough here: this measures the framing, not the loop.
    import random

    rng = random.Random(7)
    lines = [b"%d:" % i + b"w" * rng.randrange(0, 400) for i in range(60_000)]
    stream = b"\r\n".join(lines) + b"\r\n"  # ~12 MB

    def run(n_lines: int) -> None:
        data = b"\r\n".join(lines[:n_lines]) + b"\r\n"
        with Reactor() as reactor:
            protocol = Lines()
            a, b = socket.socketpair()
            transport = SocketTransport(reactor, a, protocol)
            transport.start()
            peer = Peer(reactor, b)
            peer.push(data)
            run_until(reactor, lambda: protocol.received == len(data), 30)
            assert len(protocol.events) == n_lines
            assert protocol.events[-1] == ("line", lines[n_lines - 1])
            transport.abort()
            peer.close()
            reactor.run_once(0)

    assert len(stream) > 10_000_000
    run(len(lines))  # 10+ MB, every line checked
    half = _elapsed(lambda: run(len(lines) // 2))
    full = _elapsed(lambda: run(len(lines)))
    assert full < 3 * half + 0.05, (half, full)


def test_long_line_in_small_reads_is_not_rescanned(run_until):
    # A line arriving a little at a time: a search that restarted at the
    # line's beginning on every read would make doubling the line quadruple
    # the time.
    def run(size: int) -> None:
        with Reactor() as reactor:
            protocol = Lines(max_line_bytes=16 * 1024 * 1024, delimiter=b"\r\n")
            a, b = socket.socketpair()
            transport = SocketTransport(reactor, a, protocol)
            transport.start()
            peer = Peer(reactor, b)
            line = b"r" * size
            chunks = [line[i:i + 2048] for i in range(0, size, 2048)] + [b"\r\n"]
            feed_chunks(run_until, reactor, protocol, peer, chunks)
            assert protocol.events == [("line", line)]
            transport.abort()
            peer.close()
            reactor.run_once(0)

    run(256 * 1024)  # warm up
    half = _elapsed(lambda: run(3 * 1024 * 1024))
    full = _elapsed(lambda: run(6 * 1024 * 1024))
    assert full < 3 * half + 0.05, (half, full)


# ------------------------------------------------------------------- frames
def frame(payload: bytes, prefix_bytes: int = 4) -> bytes:
    return len(payload).to_bytes(prefix_bytes, "big") + payload


@pytest.mark.parametrize("prefix_bytes", [1, 2, 4, 8])
def test_frames_any_split_give_the_same_frames(reactor, pair, prefix_bytes, feed):
    payloads = [b"hello", b"", b"\x00" * 3, bytes(range(40)), b"x"]
    oversize = b"o" * 50  # over max_frame_bytes=40: skipped, not buffered
    stream = b"".join(frame(p, prefix_bytes) for p in payloads[:2]) + frame(oversize, prefix_bytes)
    stream += b"".join(frame(p, prefix_bytes) for p in payloads[2:])
    expected = [("frame", p) for p in payloads[:2]] + [("too_long", 50)] + [("frame", p) for p in payloads[2:]]
    for how, chunks in three_ways(stream):
        protocol = Frames(prefix_bytes=prefix_bytes, max_frame_bytes=40)
        transport, peer = pair(protocol)
        feed(protocol, peer, chunks)
        repeats = 1 if how != "splits" else len(stream) - 1
        assert protocol.events == expected * repeats, how
        assert not transport.is_closing()


def test_oversize_frame_closes_by_default_before_its_payload_arrives(reactor, pair, caplog, run_until):
    protocol = Frames(max_frame_bytes=100)
    protocol.close_on_too_long = True
    transport, peer = pair(protocol)
    peer.start_reading()
    with caplog.at_level(logging.WARNING, logger="evloop"):
        peer.sock.send(frame(b"fine") + struct.pack(">I", 0xFFFFFFFF) + b"only the start")
        run_until(reactor, lambda: protocol.lost and peer.eof)
    assert protocol.events == [("frame", b"fine"), ("too_long", 0xFFFFFFFF), ("lost", None)]
    assert "max_frame_bytes" in caplog.text


def test_frame_of_exactly_the_limit_is_accepted(reactor, pair, feed):
    protocol = Frames(prefix_bytes=2, max_frame_bytes=100)
    _, peer = pair(protocol)
    feed(protocol, peer, [frame(b"m" * 100, 2) + frame(b"m" * 101, 2)])
    assert protocol.events == [("frame", b"m" * 100), ("too_long", 101)]


@pytest.mark.parametrize("prefix_bytes", [1, 2, 4, 8])
def test_send_frame_round_trip(reactor, prefix_bytes, run_until):
    limit = min(2 ** (8 * prefix_bytes) - 1, 2 * 1024 * 1024)  # the most the prefix holds, or 2 MiB
    payloads = [b"", b"a", os.urandom(200), bytearray(b"mutable"), memoryview(b"a view"), os.urandom(limit)]
    if prefix_bytes > 2:
        payloads.insert(3, os.urandom(70_000))
    a, b = socket.socketpair()
    sender, receiver = Frames(prefix_bytes=prefix_bytes), Frames(prefix_bytes=prefix_bytes, max_frame_bytes=limit)
    ta = SocketTransport(reactor, a, sender)
    tb = SocketTransport(reactor, b, receiver)
    ta.start()
    tb.start()
    try:
        for p in payloads:
            sender.send_frame(p)
        run_until(reactor, lambda: len(receiver.frames) == len(payloads), 10)
        assert receiver.frames == [bytes(p) for p in payloads]
    finally:
        ta.abort()
        tb.abort()
        reactor.run_once(0)


def test_send_frame_refuses_a_length_the_prefix_cannot_hold(reactor, pair, run_until):
    protocol = Frames(prefix_bytes=1)
    _, peer = pair(protocol)
    protocol.send_frame(b"y" * 255)
    with pytest.raises(ValueError):
        protocol.send_frame(b"y" * 256)
    run_until(reactor, lambda: True)
    assert peer.sock.recv(1000) == frame(b"y" * 255, 1)


def test_truncated_frame_at_eof_goes_to_input_ended(reactor, pair, run_until):
    protocol = Frames()
    _, peer = pair(protocol)
    peer.start_reading()
    peer.push(frame(b"whole") + frame(b"cut short")[:7], eof=True)
    run_until(reactor, lambda: protocol.lost and peer.eof)
    assert protocol.events == [("frame", b"whole"), ("end", frame(b"cut short")[:7]), ("lost", None)]


def test_length_prefixed_validates_configuration():
    with pytest.raises(ValueError):
        LengthPrefixedProtocol(prefix_bytes=3)
    with pytest.raises(ValueError):
        LengthPrefixedProtocol(max_frame_bytes=-1)


# -------------------------------------------------------------- backpressure
class EchoLines(Lines):
    def line_received(self, line):
        super().line_received(line)
        self.send_line(line)

    def pause_writing(self):
        self.events.append(("pause_writing",))
        super().pause_writing()

    def resume_writing(self):
        self.events.append(("resume_writing",))
        super().resume_writing()


def test_write_backpressure_pauses_reading_until_the_peer_drains(reactor, pair, run_until):
    protocol = EchoLines()
    transport, peer = pair(protocol, high_water=16 * 1024)
    lines = [b"%06d " % i + b"e" * 90 for i in range(40_000)]  # ~4 MB, far beyond the socket buffers
    payload = b"\n".join(lines) + b"\n"
    peer.push(payload)
    # The peer sends and does not read: the echoes fill our write buffer.
    run_until(reactor, lambda: protocol.is_paused(), 10)
    assert not transport.is_reading()
    delivered = len(protocol.lines)
    spin(reactor, 20)
    assert len(protocol.lines) == delivered  # buffered lines are held too
    assert not transport.is_reading()
    assert peer.blocked and not peer.pushed_all  # the peer's sending is held back in turn
    peer.start_reading()
    echoed = b"\r\n".join(lines) + b"\r\n"
    run_until(reactor, lambda: len(peer.data) == len(echoed), 20)
    assert bytes(peer.data) == echoed
    assert protocol.lines == lines
    assert transport.is_reading()
    assert protocol.events.count(("pause_writing",)) == protocol.events.count(("resume_writing",)) >= 1


def test_frame_write_backpressure_pauses_reading(reactor, pair, run_until):
    class EchoFrames(Frames):
        def frame_received(self, payload):
            super().frame_received(payload)
            self.send_frame(payload)

    protocol = EchoFrames()
    transport, peer = pair(protocol, high_water=16 * 1024)
    payloads = [os.urandom(1000) for _ in range(3000)]
    stream = b"".join(frame(p) for p in payloads)
    peer.push(stream)
    run_until(reactor, lambda: protocol.is_paused(), 10)
    assert not transport.is_reading()
    delivered = len(protocol.frames)
    spin(reactor, 20)
    assert len(protocol.frames) == delivered
    peer.start_reading()
    run_until(reactor, lambda: len(peer.data) == len(stream), 20)
    assert bytes(peer.data) == stream
    assert transport.is_reading()


class Waiter(Lines):
    """Pauses after every line named "wait", as if waiting on something slow."""

    def line_received(self, line):
        super().line_received(line)
        if line == b"wait":
            self.pause()


def test_app_pause_holds_delivery_and_resume_delivers_later(reactor, pair, feed, run_until):
    protocol = Waiter()
    transport, peer = pair(protocol)
    feed(protocol, peer, [b"a\nwait\nb\nc\n"])
    assert protocol.lines == [b"a", b"wait"]
    assert protocol.is_paused() and not transport.is_reading()
    peer.sock.send(b"d\n")
    spin(reactor, 10)
    assert protocol.lines == [b"a", b"wait"]
    protocol.resume()
    # Nothing is delivered inside resume(): the caller finishes first.
    assert protocol.lines == [b"a", b"wait"]
    assert not protocol.is_paused()
    run_until(reactor, lambda: len(protocol.lines) == 5)
    assert protocol.lines == [b"a", b"wait", b"b", b"c", b"d"]
    assert transport.is_reading()


def test_pause_and_resume_are_idempotent(reactor, pair, run_until):
    protocol = Lines()
    transport, peer = pair(protocol)
    protocol.pause()
    protocol.pause()
    assert not transport.is_reading()
    peer.sock.send(b"x\n")
    spin(reactor)
    assert protocol.lines == []
    protocol.resume()
    protocol.resume()
    run_until(reactor, lambda: protocol.lines == [b"x"])
    transport.pause_reading()
    protocol.resume()  # not paused: does not undo the transport's own pause
    spin(reactor)
    assert not transport.is_reading()


def test_app_pause_resume_across_many_lines_keeps_order(reactor, pair, run_until):
    protocol = Waiter()
    _, peer = pair(protocol)
    lines = [b"wait" if i % 7 == 0 else b"line %d" % i for i in range(2000)]
    peer.push(b"\n".join(lines) + b"\n")

    def resume_when_paused():
        if protocol.is_paused():
            protocol.resume()
        return len(protocol.lines) == len(lines)

    run_until(reactor, resume_when_paused, 10)
    assert protocol.lines == lines


def test_paused_input_stays_bounded(reactor, pair, run_until):
    protocol = Waiter()
    transport, peer = pair(protocol)
    lines = [b"wait"] + [b"%07d" % i + b"p" * 56 for i in range(64 * 1024)]  # 4 MiB
    payload = b"\n".join(lines) + b"\n"
    tracemalloc.start()
    try:
        peer.push(payload)
        run_until(reactor, lambda: protocol.is_paused() and peer.blocked, 10)
        spin(reactor, 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert protocol.lines == [b"wait"]
    assert not transport.is_reading()
    # What was read before reading paused (one read, at most 256 KiB), not the 4 MiB sent.
    assert peak < 1024 * 1024, peak
    protocol.resume()
    run_until(reactor, lambda: len(protocol.lines) == len(lines), 20)
    assert protocol.lines == lines


def test_eof_after_held_lines_comes_after_them(reactor, pair, run_until):
    protocol = Waiter()
    transport, peer = pair(protocol)
    peer.start_reading()
    peer.push(b"wait\nb\nc", eof=True)
    run_until(reactor, lambda: protocol.is_paused() and peer.pushed_all)
    spin(reactor)
    assert protocol.lines == [b"wait"] and not protocol.lost
    protocol.resume()
    run_until(reactor, lambda: protocol.lost and peer.eof)
    assert protocol.events == [
        ("line", b"wait"), ("line", b"b"), ("end", b"c"), ("lost", None),
    ]


def test_data_and_eof_read_while_paused_are_delivered_in_order(reactor, pair, feed, run_until):
    # Someone resumes reading on the transport behind the protocol's back:
    # what arrives is buffered (and reading paused again), the EOF held back.
    protocol = Waiter()
    protocol.keep_open_at_end = True
    transport, peer = pair(protocol)
    feed(protocol, peer, [b"wait\nb\n"])
    peer.sock.send(b"c\nd")
    transport.resume_reading()
    run_until(reactor, lambda: protocol.received == 10)
    assert not transport.is_reading()
    peer.sock.shutdown(socket.SHUT_WR)
    transport.resume_reading()
    spin(reactor)
    assert protocol.lines == [b"wait"]
    protocol.resume()
    run_until(reactor, lambda: ("end", b"d") in protocol.events)
    assert protocol.events == [("line", b"wait"), ("line", b"b"), ("line", b"c"), ("end", b"d")]
    assert not transport.is_closing()  # input_ended returned true


def test_closing_while_paused_drops_held_lines(reactor, pair, feed, run_until):
    protocol = Waiter()
    transport, peer = pair(protocol)
    feed(protocol, peer, [b"wait\nb\n"])
    protocol.resume()
    transport.close()
    run_until(reactor, lambda: protocol.lost)
    assert protocol.lines == [b"wait"]


def test_exception_during_resumed_delivery_aborts_the_connection(reactor, pair, caplog, feed, run_until):
    class Boom(Waiter):
        def line_received(self, line):
            super().line_received(line)
            if line == b"boom":
                raise RuntimeError("boom")

    protocol = Boom()
    transport, peer = pair(protocol)
    feed(protocol, peer, [b"wait\nboom\nnever\n"])
    with caplog.at_level(logging.ERROR, logger="evloop"):
        protocol.resume()
        run_until(reactor, lambda: protocol.lost)
    assert protocol.lines == [b"wait", b"boom"]
    assert "boom" in caplog.text


def test_send_frame_of_a_wide_item_buffer_counts_bytes(reactor, run_until):
    import array

    from evloop import LengthPrefixedProtocol, SocketTransport

    a, b = socket.socketpair()
    with b:
        protocol = LengthPrefixedProtocol()
        transport = SocketTransport(reactor, a, protocol)
        transport.start()
        payload = array.array("i", range(1000))  # 4,000 bytes, 1,000 items
        protocol.send_frame(payload)
        got = b""
        b.settimeout(5)
        while len(got) < 4 + 4000:
            got += b.recv(65536)
        assert got[:4] == (4000).to_bytes(4, "big") and got[4:] == payload.tobytes()
        transport.abort()
        reactor.run_once(0)
