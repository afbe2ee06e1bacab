"""Tornado peer: ``python tornado_app.py --port 0`` (prints the URL it serves)."""

import argparse
import asyncio
import logging
import sys

import tornado.httpserver
import tornado.netutil
import tornado.web
from common import HELLO, MAX_BYTES, MAX_DELAY_MS, byte_chunks, parse_count


class Hello(tornado.web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "text/plain")
        self.write(HELLO)


class Echo(tornado.web.RequestHandler):
    def post(self):
        self.set_header(
            "Content-Type", self.request.headers.get("Content-Type", "application/octet-stream")
        )
        self.write(self.request.body)

    put = post


class Bytes(tornado.web.RequestHandler):
    async def get(self, count):
        n = parse_count(count, MAX_BYTES)
        if n is None:
            self.set_status(400)
            self.write(b"bad byte count")
            return
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Length", str(n))
        for chunk in byte_chunks(n):
            self.write(chunk)
            await self.flush()


class Delay(tornado.web.RequestHandler):
    async def get(self, ms_text):
        ms = parse_count(ms_text, MAX_DELAY_MS)
        if ms is None:
            self.set_status(400)
            self.write(b"bad delay")
            return
        await asyncio.sleep(ms / 1000.0)
        self.set_header("Content-Type", "text/plain")
        self.write(b"delayed")


class Item(tornado.web.RequestHandler):
    def get(self, item):
        self.set_header("Content-Type", "text/plain")
        self.write(b"item " + item.encode())


class Health(tornado.web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "text/plain")
        self.write(b"ok")


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--backlog", type=int, default=2048)
    parser.add_argument("--access-log", action="store_true",
                        help="tornado's access log (the tornado.access logger) to stdout")
    args = parser.parse_args()
    if args.access_log:
        logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(message)s")
    app = tornado.web.Application(
        [
            (r"/", Hello),
            (r"/echo", Echo),
            (r"/bytes/([^/]*)", Bytes),
            (r"/delay/([^/]*)", Delay),
            (r"/healthz", Health),
            (r"/items/([^/]+)", Item),
        ],
        # No access log unless asked for (tornado's default log_function writes it).
        **({} if args.access_log else {"log_function": lambda handler: None}),
    )
    sockets = tornado.netutil.bind_sockets(args.port, args.host, backlog=args.backlog)
    server = tornado.httpserver.HTTPServer(app, max_body_size=1 << 30)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    print(f"tornado serving on http://{args.host}:{port}", file=sys.stderr, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
