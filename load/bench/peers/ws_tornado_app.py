"""Tornado WebSocket echo: ``python ws_tornado_app.py --port 0`` (prints the URL it serves); ``/ws/echo``."""

import argparse
import asyncio
import sys

import tornado.httpserver
import tornado.netutil
import tornado.web
import tornado.websocket


class Echo(tornado.websocket.WebSocketHandler):
    def on_message(self, message):
        self.write_message(message, binary=isinstance(message, bytes))


async def main(port):
    app = tornado.web.Application([(r"/ws/echo", Echo)])
    sockets = tornado.netutil.bind_sockets(port, "127.0.0.1", backlog=2048)
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    print(f"serving on http://127.0.0.1:{sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    sys.exit(asyncio.run(main(parser.parse_args().port)))
