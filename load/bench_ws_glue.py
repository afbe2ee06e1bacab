"""The server's WebSocket glue per message, without sockets: ``server/ws.py`` around the sans-I/O connection.

Run: .venv/bin/python load/bench_ws_glue.py

An echo handler on a ``WebSocketProtocol`` over a transport that takes every
write: ``data_received`` of one masked text frame (the handler called, the
answer framed and written) against the sans-I/O work alone
(``receive_data`` + ``next_event`` + ``send_text`` + ``next_event`` +
``data_to_send``), for 16 B and 4 KiB messages.  The difference is what the
glue adds to each message.  Best of several runs of CPU time.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_parser import best_of  # noqa: E402
from bench_ws import masked_text_frame  # noqa: E402

from evloop.reactor import Reactor  # noqa: E402
from evloop.server.ws import WebSocketProtocol, WebSocketSettings  # noqa: E402
from evloop.websocket import WebSocketHandler  # noqa: E402
from evloop.ws import Role, WebSocketConnection  # noqa: E402


class Sink:
    """A transport whose socket takes everything at once."""

    def write(self, data):
        pass

    def get_write_buffer_size(self):
        return 0


class Echo(WebSocketHandler):
    __slots__ = ()

    def message_received(self, message):
        self.send(message)


def main() -> None:
    n = 20_000 if "--quick" in sys.argv else 200_000
    with Reactor() as reactor:
        for size in (16, 4096):
            frame = masked_text_frame(size)
            protocol = WebSocketProtocol(reactor, WebSocketSettings(), WebSocketConnection(Role.SERVER), Echo())
            protocol.start(Sink())  # type: ignore[arg-type]

            def glue(count, protocol=protocol, frame=frame):
                for _ in range(count):
                    protocol.data_received(frame)

            conn = WebSocketConnection(Role.SERVER)

            def sans_io(count, conn=conn, frame=frame):
                for _ in range(count):
                    conn.receive_data(frame)
                    conn.send_text(conn.next_event().data)
                    conn.next_event()
                    conn.data_to_send()

            with_glue, alone = best_of(glue, n) * 1e6, best_of(sans_io, n) * 1e6
            print(f"{size:>5} B: glue + sans-I/O {with_glue:.2f} us, sans-I/O alone {alone:.2f} us, "
                  f"glue {with_glue - alone:.2f} us a message")


if __name__ == "__main__":
    main()
