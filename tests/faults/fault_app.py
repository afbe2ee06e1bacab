"""An evloop application that makes the mistakes issue 15 lists, served by ``evloop-demo --app fault_app:app``.

Every route is a careless (or hostile) application author's handler; the
tests check that the server answers for it and stays up.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

from evloop.app import App, Request, Response

app = App()


@app.route("/")
def index(request: Request) -> Response:
    return Response(body=b"alive")


# -------------------------------------------------- SystemExit, KeyboardInterrupt
@app.route("/sysexit")
def sysexit(request: Request) -> Response:
    sys.exit(0)


@app.route("/kbint")
def kbint(request: Request) -> Response:
    raise KeyboardInterrupt


def _chunks_then_exit() -> Iterator[bytes]:
    yield b"first chunk\n"
    sys.exit(3)


@app.route("/body-sysexit")
def body_sysexit(request: Request) -> Response:
    return Response(body=_chunks_then_exit())


class _ExitOnClose:
    def __iter__(self) -> Iterator[bytes]:
        return iter([b"whole body\n"])

    def close(self) -> None:
        raise SystemExit(4)


@app.route("/close-sysexit")
def close_sysexit(request: Request) -> Response:
    return Response(body=_ExitOnClose())


@app.route("/timer-sysexit")
def timer_sysexit(request: Request) -> None:
    def later() -> None:
        sys.exit(5)  # before respond(): the request is never answered by the app

    request.reactor.call_later(0.0, later)


# --------------------------------------------------------- requests never answered
@app.route("/forget")
def forget(request: Request) -> None:
    return None  # and never calls request.respond()


@app.route("/timer-raises")
def timer_raises(request: Request) -> None:
    def later() -> None:
        raise ValueError("a bug before respond()")

    request.reactor.call_later(0.0, later)


# ----------------------------------------------------- deferred responses that cannot be framed
@app.route("/deferred-int-header")
def deferred_int_header(request: Request) -> None:
    def later() -> None:
        response = Response(body=b"fine so far")
        response.headers.append(("X-Count", 5))  # type: ignore[arg-type]  # after the checks at build time
        request.respond(response)

    request.reactor.call_later(0.0, later)


@app.route("/deferred-str-chunks")
def deferred_str_chunks(request: Request) -> None:
    def later() -> None:
        body: list[bytes] = ["not", "bytes"]  # type: ignore[list-item]
        request.respond(Response(body=iter(body), headers=[("Content-Length", "8")]))

    request.reactor.call_later(0.0, later)
