"""Request bodies taken as they arrive: the handler object, the App route kind, and its answer to the server.

For proxies and uploads straight to disk, a route declared with
``App.stream_request_body`` gets the body in parts as the server reads them,
instead of one ``request.body`` at the end (tornado's
``@stream_request_body``, without coroutines)::

    @app.stream_request_body("/upload/{name}", methods=["PUT"])
    class Upload(BodyReceiver):
        def body_started(self):
            self.file = open(self.request.path_params["name"], "wb")

        def data_received(self, data):
            self.file.write(data)

        def body_received(self):
            self.file.close()
            return Response(201, body=b"stored\\n")

        def body_failed(self, reason):
            self.file.close()

One receiver per request, made when the request's head arrives.  Call
grammar of the methods the server calls (override any)::

    body_started -> data_received* -> (body_received | body_failed)

Exactly one of ``body_received`` and ``body_failed`` comes.
``body_received`` returns the ``Response``, or None and the handler calls
``self.request.respond(response)`` later.  ``body_failed(reason)`` means the
body will not be complete: the client left or reset, the body passed
``max_body_bytes`` (413) or stalled (408), a method raised, the server shut
down, or the handler answered before the end.

Backpressure: ``pause()`` stops delivery and stops reading from the socket
(the client's TCP window fills, so the client waits); ``resume()``
delivers what was read meanwhile and reads again.  A proxy pauses while
its upstream's write buffer is over its high water mark and resumes from
``resume_writing``.  While paused the body timeout (``--body-timeout``)
runs: a handler must resume within it, or the client gets 408.

Answering early (``self.request.respond(...)`` before the end, say 403 after
looking at the first part) is allowed: the rest of the body is not read,
``body_failed`` follows, and the connection closes after the response, as
nginx does when it answers before reading the whole body.

This module imports no ``socket``, ``selectors`` or ``time``; the server's
side is ``evloop.server.bodies``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from .app import Request, Response

__all__ = ["BodyReceiver", "ReceiveBody", "StreamedBodyRoute"]


class BodyFlow(Protocol):
    """What a receiver needs of the server side driving it (``evloop.server.bodies.StreamedBody``)."""

    def pause(self) -> None: ...

    def resume(self) -> None: ...


class BodyReceiver:
    """One request body taken as it arrives; see the module docstring.

    ``request``: the request (method, path, ``path_params``, headers,
    client); its ``body`` is empty.  Declare ``__slots__`` in a subclass to
    keep it small.
    """

    __slots__ = ("request", "_flow")

    def __init__(self, request: Request) -> None:
        self.request = request
        self._flow: BodyFlow | None = None  # set by the server before body_started

    # ------------------------------------------------ called by the server
    def body_started(self) -> None:
        """The head is in and the body will follow: open a file, connect upstream, or ``pause()``."""

    def data_received(self, data: bytes) -> None:
        """The next part of the body (never empty), in order."""

    def body_received(self) -> Response | None:
        """The whole body has been delivered: the response, or None to ``request.respond()`` later."""
        return None

    def body_failed(self, reason: str) -> None:
        """The body will not be complete (``reason`` says why): release what ``body_started`` took."""

    # ------------------------------------------------------------ commands
    def pause(self) -> None:
        """Stop delivery and reading from the client until ``resume()``."""
        if self._flow is not None:
            self._flow.pause()

    def resume(self) -> None:
        """Deliver what was read meanwhile, then read again."""
        if self._flow is not None:
            self._flow.resume()


ReceiverFactory = Callable[[Request], BodyReceiver]


class ReceiveBody(Response):
    """What a streamed-body route answers at the head: the server hands the body to ``receiver`` from here."""

    __slots__ = ("receiver",)

    def __init__(self, receiver: BodyReceiver) -> None:
        super().__init__(100, None, ())
        self.receiver = receiver


class StreamedBodyRoute:
    """The handler ``App.stream_request_body`` registers: ``factory(request)`` makes the receiver.

    Called when the request's head arrives (the server asks the app's
    ``streams_body(method, target)`` first, so only these routes are called
    before their body).
    """

    __slots__ = ("factory",)

    streams_body = True  # the App's mark for the routes whose bodies stream

    def __init__(self, factory: ReceiverFactory) -> None:
        self.factory = factory

    def __call__(self, request: Request, **_params: Any) -> Response:
        return ReceiveBody(self.factory(request))
