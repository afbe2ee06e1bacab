"""Issue 18, item 2: routes that take the request body as it arrives (``App.stream_request_body``).

A real ``Server`` on real sockets in this process (``support.live``): the
receiver's calls are recorded, the client is a raw socket, and
backpressure is seen where it acts: the server stops reading, so the
client's sends stop being taken.
"""

from __future__ import annotations

import hashlib
import os
import time

import pytest
from support.clients import reset
from support.live import LiveServer
from test_request_bodies import FRAMINGS, chunked_request, content_length_request, response_of, send

from evloop import ManualClock
from evloop.app import App, Request, Response
from evloop.http import Limits
from evloop.streamed_body import BodyReceiver

MIB = 1 << 20
BODY = os.urandom(2 * MIB + 333)


class Recorder(BodyReceiver):
    """Hashes what it gets and records its calls in ``calls``; the class attributes steer the cases."""

    calls: list = []
    made: list = []  # the receivers, for the test to resume
    pause_after_first = False
    pause_at_start = False
    answer_early = False
    raise_in_part = False
    answer_later = False

    def body_started(self) -> None:
        self.made.append(self)
        self.digest = hashlib.sha256()
        self.calls.append(("started", self.request.method, self.request.path_params.get("name")))
        if self.pause_at_start:
            self.pause()  # as a proxy does until its upstream connects

    def data_received(self, data: bytes) -> None:
        self.calls.append(("part", len(data)))
        self.digest.update(data)
        if self.raise_in_part:
            raise ValueError("the receiver's mistake")
        if self.answer_early:
            self.request.respond(Response(403, body=b"refused after a look at the first part"))
        elif self.pause_after_first and sum(1 for call in self.calls if call[0] == "part") == 1:
            self.pause()

    def body_received(self) -> Response | None:
        self.calls.append(("received",))
        body = self.digest.hexdigest().encode()
        if self.answer_later:
            self.request.reactor.call_soon(self.request.respond, Response(201, body=body))
            return None
        return Response(200, body=body)

    def body_failed(self, reason: str) -> None:
        self.calls.append(("failed", reason))


def make_app(receiver_class) -> App:
    app = App()
    app.stream_request_body("/upload/{name}", methods=["PUT", "POST"])(receiver_class)

    @app.route("/echo", methods=["POST"])
    def echo(request: Request) -> Response:
        return Response(200, body=request.body)

    return app


@pytest.fixture
def receiver():
    class Receiver(Recorder):
        calls: list = []
        made: list = []
    return Receiver


@pytest.fixture
def live(receiver):
    server = LiveServer(make_app(receiver), clock=ManualClock())
    yield server
    server.close()


def last(receiver) -> str | None:
    return receiver.calls[-1][0] if receiver.calls else None


def parts(calls) -> int:
    return sum(call[1] for call in calls if call[0] == "part")


@pytest.mark.parametrize("framing", FRAMINGS)
def test_the_receiver_gets_the_body_in_parts_then_answers(live, receiver, framing):
    sock = live.connect()
    send(live, sock, FRAMINGS[framing]("/upload/a.bin", BODY))
    reply = response_of(live, sock)
    assert reply.startswith(b"HTTP/1.1 200 ") and reply.endswith(hashlib.sha256(BODY).hexdigest().encode())
    calls = receiver.calls
    assert calls[0] == ("started", "POST", "a.bin") and calls[-1] == ("received",)
    assert parts(calls) == len(BODY) and len(calls) > 3  # in parts, as read
    # The connection goes on: an ordinary route's body is read whole, as before.
    send(live, sock, content_length_request("/echo", b"small"))
    assert response_of(live, sock).endswith(b"\r\n\r\nsmall")
    sock.close()


def test_a_small_body_that_came_with_its_head_still_goes_to_the_receiver(live, receiver):
    """A body whole in its head's read is taken at once only for a route that does not stream it (``_process``
    asks no route: an app with streamed routes takes the plain path, ``_head_with_body``, which asks)."""
    sock = live.connect()
    send(live, sock, content_length_request("/upload/s", b"small") + content_length_request("/echo", b"whole"))
    reply = live.read_until(sock, lambda data: data.endswith(b"\r\n\r\nwhole"))
    assert reply.startswith(b"HTTP/1.1 200 ") and hashlib.sha256(b"small").hexdigest().encode() in reply
    assert receiver.calls == [("started", "POST", "s"), ("part", 5), ("received",)]
    sock.close()


def test_expect_100_continue_is_answered_before_the_body(live, receiver):
    sock = live.connect()
    head, _, body = content_length_request("/upload/x", b"12345", b"Expect: 100-continue\r\n").partition(b"\r\n\r\n")
    send(live, sock, head + b"\r\n\r\n")
    assert live.read_until(sock, lambda data: data.endswith(b"\r\n\r\n")).startswith(b"HTTP/1.1 100 Continue")
    assert receiver.calls == [("started", "POST", "x")]
    send(live, sock, body)
    assert response_of(live, sock).startswith(b"HTTP/1.1 200 ")
    sock.close()


def test_pause_stops_reading_so_the_client_waits_and_resume_delivers_the_rest(live, receiver):
    receiver.pause_after_first = True
    sock = live.connect()
    raw = chunked_request("/upload/slow", BODY * 4)
    sent = send(live, sock, raw, until=lambda: last(receiver) == "part")
    # Paused after its first part: the server reads no more, the kernel's buffers fill, the client blocks.
    stalled_since = time.monotonic()
    while time.monotonic() - stalled_since < 0.3:  # sends still taken within 0.3 s keep the wait going
        try:
            sent += sock.send(raw[sent:sent + 65536])
            stalled_since = time.monotonic()
        except BlockingIOError:
            pass
        live.reactor.run_once(0.01)
    assert sent < len(raw), "the client sent everything while the receiver was paused"
    assert [call[0] for call in receiver.calls] == ["started", "part"]
    receiver.made[0].resume()
    send(live, sock, raw[sent:])
    reply = response_of(live, sock)
    assert reply.endswith(hashlib.sha256(BODY * 4).hexdigest().encode())
    assert parts(receiver.calls) == len(BODY) * 4
    sock.close()


def test_a_receiver_paused_at_the_start_gets_the_body_when_it_resumes(live, receiver):
    receiver.pause_at_start = True
    sock = live.connect()
    send(live, sock, content_length_request("/upload/p", b"x" * 1000))
    for _ in range(20):
        live.reactor.run_once(0)
    assert receiver.calls == [("started", "POST", "p")]
    receiver.made[0].resume()
    assert response_of(live, sock).endswith(hashlib.sha256(b"x" * 1000).hexdigest().encode())
    assert receiver.calls[-1] == ("received",)
    sock.close()


def test_an_answer_after_the_body_may_come_later(live, receiver):
    receiver.answer_later = True
    sock = live.connect()
    send(live, sock, content_length_request("/upload/l", BODY))
    reply = response_of(live, sock)
    assert reply.startswith(b"HTTP/1.1 201 ") and reply.endswith(hashlib.sha256(BODY).hexdigest().encode())
    sock.close()


def test_an_early_answer_leaves_the_body_unread_and_closes(live, receiver):
    receiver.answer_early = True
    sock = live.connect()
    send(live, sock, content_length_request("/upload/e", BODY), until=lambda: last(receiver) == "failed")
    reply = live.read_until(sock, lambda data: False)  # until the server closes
    assert reply.startswith(b"HTTP/1.1 403 ") and b"connection: close" in reply.lower()
    assert receiver.calls[-1] == ("failed", "the handler answered before the end of the body")
    assert [call[0] for call in receiver.calls].count("part") == 1
    sock.close()


def test_a_receiver_that_raises_gets_500_and_is_told_its_body_failed(live, receiver):
    receiver.raise_in_part = True
    sock = live.connect()
    send(live, sock, content_length_request("/upload/r", BODY), until=lambda: last(receiver) == "failed")
    reply = live.read_until(sock, lambda data: False)
    assert reply.startswith(b"HTTP/1.1 500 ")
    assert receiver.calls[-1] == ("failed", "data_received() raised")
    sock.close()


def test_a_client_reset_mid_body_fails_the_body_and_abandons_the_request(live, receiver):
    sock = live.connect()
    send(live, sock, content_length_request("/upload/gone", BODY)[:MIB])
    live.run_until(lambda: parts(receiver.calls) > 0)
    request = receiver.made[0].request
    reset(sock)
    live.run_until(lambda: last(receiver) == "failed")
    assert receiver.calls[-1][1].startswith("the connection was lost")
    assert request.abandoned
    request.respond(Response(200, body=b"too late"))  # dropped quietly


def test_the_body_limit_holds_for_a_streamed_body(receiver):
    live = LiveServer(make_app(receiver), limits=Limits(max_body_bytes=MIB))
    try:
        sock = live.connect()
        send(live, sock, chunked_request("/upload/big", BODY), until=lambda: last(receiver) == "failed")
        reply = live.read_until(sock, lambda data: False)
        assert reply.startswith(b"HTTP/1.1 413 ")
        assert receiver.calls[-1] == ("failed", "413 request body too large")
        assert parts(receiver.calls) <= MIB
        sock.close()
    finally:
        live.close()


def test_a_stalled_streamed_body_times_out_with_408(live, receiver):
    sock = live.connect()
    send(live, sock, content_length_request("/upload/stall", BODY)[:MIB])
    live.run_until(lambda: parts(receiver.calls) > 0)
    live.reactor.clock.advance(31)
    reply = live.read_until(sock, lambda data: b"\r\n\r\n" in data)
    assert reply.startswith(b"HTTP/1.1 408 ")
    assert receiver.calls[-1] == ("failed", "408 request body made no progress")
    sock.close()


def test_an_app_without_streamed_routes_asks_nothing_at_the_head():
    app = App()
    assert app.streams_body is None  # the server skips the question for every request
    app.stream_request_body("/up")(BodyReceiver)
    assert app.streams_body is not None
    assert app.streams_body("POST", "/up") and not app.streams_body("GET", "/up")
    assert not app.streams_body("POST", "/elsewhere")
