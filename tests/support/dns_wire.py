"""A DNS responder for tests, written apart from evloop's codec so that it checks it.

``Responder`` listens on UDP and TCP on one loopback port, on the test's own
reactor (no thread): each query goes to ``handler(query, transport)``, which
returns the replies to send (a list: several datagrams, one of them bogus, or
none at all for a server that never answers).  The helpers below build those
replies byte by byte.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

A, CNAME, SOA, AAAA = 1, 5, 6, 28


def wire_name(text: str) -> bytes:
    return b"".join(bytes([len(label)]) + label for label in text.encode().split(b".") if label) + b"\0"


@dataclass
class Query:
    id: int
    flags: int
    name: bytes   # as on the wire
    qtype: int
    raw: bytes

    @property
    def text(self) -> str:
        labels, i = [], 0
        while self.name[i]:
            labels.append(self.name[i + 1:i + 1 + self.name[i]].decode())
            i += 1 + self.name[i]
        return ".".join(labels)

    @property
    def question(self) -> bytes:
        return self.name + struct.pack("!HH", self.qtype, 1)


def parse_query(data: bytes) -> Query:
    qid, flags, qd = struct.unpack_from("!HHH", data)
    assert qd == 1, "evloop asks one question per query"
    end = 12
    while data[end]:
        end += 1 + data[end]
    end += 1
    qtype, qclass = struct.unpack_from("!HH", data, end)
    assert qclass == 1
    assert end + 4 == len(data), "nothing after the question"
    return Query(qid, flags, data[12:end], qtype, data)


def rr(owner: bytes, rtype: int, ttl: int, rdata: bytes) -> bytes:
    """A resource record; ``owner`` is wire bytes (a name or a pointer such as ``b"\\xc0\\x0c"``)."""
    return owner + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata


def a(address: str) -> bytes:
    return socket.inet_pton(socket.AF_INET, address)


def aaaa(address: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, address)


def soa(ttl: int, minimum: int) -> bytes:
    rdata = wire_name("ns.test") + wire_name("admin.test") + struct.pack("!IIIII", 1, 3600, 600, 86400, minimum)
    return rr(wire_name("test"), SOA, ttl, rdata)


def reply(query: Query, answers: list[bytes] = (), *, rcode: int = 0, tc: bool = False,  # type: ignore[assignment]
          authority: list[bytes] = (), qid: int | None = None, question: bytes | None = None,  # type: ignore[assignment]
          extra: bytes = b"") -> bytes:
    """A response to ``query`` echoing its question (or ``question``), with its id (or ``qid``)."""
    flags = 0x8000 | 0x0100 | 0x0080 | (0x0200 if tc else 0) | rcode
    header = struct.pack("!HHHHHH", query.id if qid is None else qid, flags, 1, len(answers), len(authority), 0)
    return header + (query.question if question is None else question) + b"".join(answers) + b"".join(authority) + extra


Handler = Callable[[Query, str], list[bytes]]


@dataclass
class Responder:
    """UDP and TCP on 127.0.0.1, one port, served from ``reactor``; records every query."""

    reactor: object
    handler: Handler
    queries: list[tuple[str, Query]] = field(default_factory=list)
    udp: socket.socket = field(init=False)
    tcp: socket.socket = field(init=False)
    _conns: list[socket.socket] = field(default_factory=list)

    def __post_init__(self) -> None:
        for _ in range(20):  # the UDP port's number may be taken for TCP: take another pair
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", 0))
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                tcp.bind(udp.getsockname())
            except OSError:
                udp.close()
                tcp.close()
                continue
            break
        else:
            raise RuntimeError("no port free for both UDP and TCP")
        tcp.listen(8)
        udp.setblocking(False)
        tcp.setblocking(False)
        self.udp, self.tcp = udp, tcp
        self.reactor.add_reader(udp, self._on_udp)
        self.reactor.add_reader(tcp, self._on_accept)

    @property
    def address(self) -> tuple[str, int]:
        return self.udp.getsockname()

    def _on_udp(self) -> None:
        data, peer = self.udp.recvfrom(65535)
        query = parse_query(data)
        self.queries.append(("udp", query))
        for out in self.handler(query, "udp"):
            self.udp.sendto(out, peer)

    def _on_accept(self) -> None:
        conn, _ = self.tcp.accept()
        conn.setblocking(False)
        self._conns.append(conn)
        self.reactor.add_reader(conn, self._on_tcp, conn, bytearray())

    def _on_tcp(self, conn: socket.socket, buffer: bytearray) -> None:
        # Non-blocking: the resolver sends its query from the same loop.
        chunk = conn.recv(65537)
        buffer += chunk
        if len(buffer) >= 2 and len(buffer) >= 2 + struct.unpack_from("!H", buffer)[0]:
            query = parse_query(bytes(buffer[2:]))
        elif chunk:
            return
        else:
            query = None
        self.reactor.remove_reader(conn)
        if query is not None:
            self.queries.append(("tcp", query))
            conn.setblocking(True)
            conn.settimeout(5)
            for out in self.handler(query, "tcp"):
                conn.sendall(struct.pack("!H", len(out)) + out)
        conn.close()

    def close(self) -> None:
        for sock in (self.udp, self.tcp, *self._conns):
            self.reactor.remove_reader(sock)
            sock.close()
