"""Servers that flood their WebSocket peers, served by ``evloop-demo --app ws_flood_app:app``.

``/polite`` sends while less than 1 MiB waits and goes on at ``drained``, as
an app should; ``/rude`` ignores backpressure and sends from a timer until
the queue bound cuts it off.
"""

from evloop.app import App
from evloop.websocket import WebSocketHandler

CHUNK = b"f" * 65536
POLITE_QUEUE_BYTES = 1024 * 1024

app = App()


@app.websocket("/polite")
class Polite(WebSocketHandler):
    def opened(self):
        self.fill()

    def drained(self):
        self.fill()

    def fill(self):
        while self.is_open and self.buffered_amount < POLITE_QUEUE_BYTES:
            self.send_bytes(CHUNK)


@app.websocket("/rude")
class Rude(WebSocketHandler):
    def opened(self):
        self.flood()

    def flood(self):
        if self.is_open:
            for _ in range(16):
                self.send_bytes(CHUNK)
            self.request.reactor.call_later(0.001, self.flood)
