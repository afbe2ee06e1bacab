"""Standard-library peer: ``http.server.ThreadingHTTPServer`` with HTTP/1.1 keep-alive.

``python threading_server.py --port 0`` prints the URL it serves.
"""

import argparse
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from common import HELLO, MAX_BYTES, MAX_DELAY_MS, byte_chunks, item_id, parse_count


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; the default HTTP/1.0 closes every connection
    # Head and body go out in two writes; without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK stall every keep-alive response by about 40 ms.
    disable_nagle_algorithm = True
    access_log = False  # --access-log

    def log_message(self, format, *args):  # no access log unless --access-log
        if self.access_log:
            super().log_message(format, *args)  # one line a request to stderr

    def _reply(self, status, body, content_type="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:  # the request asked for it; say so, as other servers do
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/":
            self._reply(200, HELLO)
        elif path.startswith("/bytes/"):
            n = parse_count(path[7:], MAX_BYTES)
            if n is None:
                self._reply(400, b"bad byte count")
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            for chunk in byte_chunks(n):
                self.wfile.write(chunk)
        elif path.startswith("/delay/"):
            ms = parse_count(path[7:], MAX_DELAY_MS)
            if ms is None:
                self._reply(400, b"bad delay")
                return
            time.sleep(ms / 1000.0)
            self._reply(200, b"delayed")
        elif path == "/healthz":
            self._reply(200, b"ok")
        elif item_id(path) is not None:  # the raw path: the benchmark's IDs need no decoding
            self._reply(200, b"item " + item_id(path).encode())
        else:
            self._reply(404, b"not found")

    def do_POST(self):
        if self.path.split("?", 1)[0] != "/echo":
            self._reply(404, b"not found")
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self._reply(200, body, self.headers.get("Content-Type", "application/octet-stream"))

    do_PUT = do_POST


class Server(ThreadingHTTPServer):
    request_queue_size = 2048  # the default listen backlog of 5 drops SYNs under any load


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--access-log", action="store_true", help="http.server's log line for each request")
    args = parser.parse_args()
    Handler.access_log = args.access_log
    server = Server((args.host, args.port), Handler)
    host, port = server.server_address[:2]
    print(f"threading serving on http://{host}:{port}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
