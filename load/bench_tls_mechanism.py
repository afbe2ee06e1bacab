"""TLS in a non-blocking server: ``ssl.SSLObject`` over ``MemoryBIO`` against a non-blocking ``SSLSocket``.

Both mechanisms drive the same OpenSSL; what differs is the Python around
it.  Over MemoryBIO every received byte goes socket -> Python bytes ->
incoming BIO -> ``SSLObject.read``, and every sent byte ``SSLObject.write``
-> outgoing BIO -> Python bytes -> socket: three or four calls and two
copies where a non-blocking ``SSLSocket`` makes one ``recv_into``/``send``
that OpenSSL turns into the system call itself.

A minimal server loop for each (selectors, no evloop code) serves a client
in another process (blocking ``ssl``, so its work is not counted), and the
server's own CPU time is measured (``time.process_time``):

- ``small``: 20,000 exchanges of a 200-byte request and a 300-byte answer
  on one connection (keep-alive traffic);
- ``download``: 256 MiB written in 64 KiB writes, flow-controlled;
- ``upload``: 128 MiB received and discarded.

Run: ``python load/bench_tls_mechanism.py [--rounds 3]``.  The figures in
``load/BENCHMARKS.md`` ("TLS: the mechanism") come from it; the TLS
transport (``evloop/net/tls.py``) uses what it shows to be cheaper.
"""

from __future__ import annotations

import argparse
import os
import selectors
import socket
import ssl
import subprocess
import sys
import tempfile
import time

SMALL_ROUNDS = 20_000
REQUEST = b"q" * 200
ANSWER = b"a" * 300
DOWNLOAD_BYTES = 256 * 1024 * 1024
UPLOAD_BYTES = 128 * 1024 * 1024
BLOCK = b"x" * 65536

CLIENT = r"""
import socket, ssl, sys
mode, port, cafile, rounds, total = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
ctx = ssl.create_default_context(cafile=cafile)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
if mode == "small":
    for _ in range(rounds):
        s.sendall(b"q" * 200)
        got = 0
        while got < 300:
            got += len(s.recv(65536))
elif mode == "download":
    s.sendall(b"go")
    got = 0
    while got < total:
        got += len(s.recv(1 << 20))
else:
    block = b"u" * 65536
    for _ in range(total // len(block)):
        s.sendall(block)
    s.recv(1)
s.close()
"""


class SocketServer:
    """A non-blocking ``SSLSocket``: OpenSSL reads and writes the descriptor itself."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext) -> None:
        self.sock = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        self.buffer = memoryview(bytearray(256 * 1024))

    def handshake(self, sel: selectors.BaseSelector) -> None:
        while True:
            try:
                self.sock.do_handshake()
                return
            except ssl.SSLWantReadError:
                _wait(sel, self.sock, selectors.EVENT_READ)
            except ssl.SSLWantWriteError:
                _wait(sel, self.sock, selectors.EVENT_WRITE)

    def read(self) -> int:
        """What one readable event gives: read until OpenSSL wants more input."""
        total = 0
        while True:
            try:
                n = self.sock.recv_into(self.buffer)
            except ssl.SSLWantReadError:
                return total
            if not n:
                return total
            bytes(self.buffer[:n])  # what a protocol would get
            total += n
            if not self.sock.pending():
                return total  # the rest, if any, is still in the kernel: the selector says when

    def write(self, data: bytes) -> int:
        try:
            return self.sock.send(data)
        except ssl.SSLWantWriteError:
            return 0


class BIOServer:
    """``SSLObject`` over two ``MemoryBIO``: the loop moves the bytes (asyncio's and uvloop's way)."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext) -> None:
        self.sock = sock
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = context.wrap_bio(self.incoming, self.outgoing, server_side=True)
        self.buffer = memoryview(bytearray(256 * 1024))
        self.pending = b""

    def handshake(self, sel: selectors.BaseSelector) -> None:
        while True:
            try:
                self.obj.do_handshake()
                self.flush()
                return
            except ssl.SSLWantReadError:
                self.flush()
                _wait(sel, self.sock, selectors.EVENT_READ)
                n = self.sock.recv_into(self.buffer)
                self.incoming.write(self.buffer[:n])

    def flush(self) -> bool:
        data = self.pending + self.outgoing.read()
        while data:
            try:
                sent = self.sock.send(data)
            except BlockingIOError:
                break
            data = data[sent:]
        self.pending = data
        return not data

    def read(self) -> int:
        total = 0
        try:
            n = self.sock.recv_into(self.buffer)
        except BlockingIOError:
            return 0
        self.incoming.write(self.buffer[:n])
        while True:
            try:
                data = self.obj.read(256 * 1024)
            except ssl.SSLWantReadError:
                return total
            if not data:
                return total
            total += len(data)
            if not self.incoming.pending and not self.obj.pending():
                return total

    def write(self, data: bytes) -> int:
        # Encrypt only what the socket can take next: never a whole response up front.
        if not self.flush():
            return 0
        self.obj.write(data)
        self.flush()
        return len(data)


def _wait(sel: selectors.BaseSelector, sock: socket.socket, event: int) -> None:
    sel.register(sock, event)
    sel.select()
    sel.unregister(sock)


def run(kind: type[SocketServer] | type[BIOServer], mode: str, context: ssl.SSLContext, cafile: str) -> float:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    total = DOWNLOAD_BYTES if mode == "download" else UPLOAD_BYTES
    client = subprocess.Popen([sys.executable, "-c", CLIENT, mode, str(port), cafile, str(SMALL_ROUNDS), str(total)])
    conn, _ = listener.accept()
    listener.close()
    conn.setblocking(False)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sel = selectors.DefaultSelector()
    server = kind(conn, context)
    server.handshake(sel)
    wire = server.sock
    start = time.process_time()
    if mode == "small":
        got = 0
        sel.register(wire, selectors.EVENT_READ)
        for _ in range(SMALL_ROUNDS):
            while got < len(REQUEST):
                sel.select()
                got += server.read()
            got -= len(REQUEST)
            server.write(ANSWER)
    elif mode == "download":
        sel.register(wire, selectors.EVENT_READ)
        while not server.read():
            sel.select()
        sel.modify(wire, selectors.EVENT_WRITE)
        sent = 0
        while sent < total:
            n = server.write(BLOCK)
            if n:
                sent += n
            else:
                sel.select()
        if isinstance(server, BIOServer):
            while not server.flush():
                sel.select()
    else:
        sel.register(wire, selectors.EVENT_READ)
        got = 0
        while got < total:
            sel.select()
            got += server.read()
        server.write(b"k")
    elapsed = time.process_time() - start
    client.wait()
    sel.close()
    wire.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    with tempfile.TemporaryDirectory() as tmp:
        cafile = os.path.join(tmp, "ca.pem")
        ca.cert_pem.write_to_path(cafile)
        print(f"{ssl.OPENSSL_VERSION}, Python {sys.version.split()[0]}; server CPU seconds, best of {args.rounds}")
        for mode in ("small", "download", "upload"):
            best = {}
            for kind in (SocketServer, BIOServer):
                best[kind.__name__] = min(run(kind, mode, context, cafile) for _ in range(args.rounds))
            ratio = best["BIOServer"] / best["SocketServer"]
            print(f"{mode:9} SSLSocket {best['SocketServer']:.3f} s  MemoryBIO {best['BIOServer']:.3f} s  "
                  f"MemoryBIO/SSLSocket {ratio:.2f}x")


if __name__ == "__main__":
    main()
