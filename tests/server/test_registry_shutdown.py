"""A connection made after graceful shutdown began (a TLS handshake finishing during the drain)."""

from __future__ import annotations

from evloop.app import App
from evloop.reactor import Reactor
from evloop.server import Server, ServerConfig


class Connection:
    def __init__(self) -> None:
        self.told_to_close = False

    def close_when_idle(self) -> None:
        self.told_to_close = True

    def abort(self) -> None:
        pass


def test_a_connection_opened_during_the_drain_is_told_its_next_response_is_its_last():
    with Reactor() as reactor:
        server = Server(App(), reactor, ServerConfig(port=0, access_log=False))
        early = Connection()
        server.connection_opened(early)  # type: ignore[arg-type]
        server.shutdown()
        assert early.told_to_close
        late = Connection()
        server.connection_opened(late)  # type: ignore[arg-type]
        assert late.told_to_close
        server.close()
