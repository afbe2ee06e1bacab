"""Drive a ServerConnection over byte streams, without sockets."""

from evloop.http import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Limits,
    ProtocolError,
    RequestHead,
    ServerConnection,
)

DATE = b"Thu, 01 Jan 2026 00:00:00 GMT"
# Bytes appended after a complete request: they must stay unparsed.
TRAILING = b"XYZ \x00\r\n garbage that is not parsed"


def drain(conn: ServerConnection, events: list, respond: bool) -> None:
    """Collect events until NEED_DATA (or PAUSED when not responding)."""
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            return
        if event is PAUSED:
            if not respond or not conn.keep_alive:
                return
            conn.send_response(200, [], content_length=0, date=DATE)
            if not conn.keep_alive:
                return
            conn.start_next_cycle()
            continue
        events.append(event)
        if isinstance(event, ConnectionClosed):
            return


def run(chunks, limits: Limits = Limits(), *, eof: bool = False, respond: bool = True, caches=None):
    """Feed ``chunks``; return (events, ProtocolError or None, connection).

    ``caches``: an ``HTTP1Caches`` to share with other runs (None: the
    connection's own)."""
    conn = ServerConnection(limits, caches=caches)
    events: list = []
    try:
        for chunk in chunks:
            conn.receive_data(chunk)
            drain(conn, events, respond)
        if eof:
            conn.receive_data(b"")
            drain(conn, events, respond)
    except ProtocolError as exc:
        return events, exc, conn
    return events, None, conn


def merge_data(events: list) -> list:
    """Join consecutive Data events (chunk boundaries are not preserved)."""
    out: list = []
    pieces: list = []
    for event in events:
        if isinstance(event, Data):
            pieces.append(event.data)
            continue
        if pieces:
            out.append(Data(b"".join(pieces)))
            pieces = []
        out.append(event)
    if pieces:
        out.append(Data(b"".join(pieces)))
    return out


def bytewise(raw: bytes) -> list[bytes]:
    return [raw[i : i + 1] for i in range(len(raw))]


WAYS = ("whole", "bytewise", "trailing")


def feed_way(way: str, raw: bytes, limits: Limits = Limits(), *, eof: bool = False):
    """Feed ``raw`` whole, one byte at a time, or whole plus TRAILING bytes.

    Returns (merged events, error, connection).  In the trailing way the
    connection does not respond, so the trailing bytes must stay buffered.
    """
    if way == "whole":
        events, error, conn = run([raw], limits, eof=eof)
    elif way == "bytewise":
        events, error, conn = run(bytewise(raw), limits, eof=eof)
    else:
        events, error, conn = run([raw + TRAILING], limits, respond=False)
    return merge_data(events), error, conn


def request(head: str | bytes, body: bytes = b"") -> bytes:
    """Build a raw request from a head whose lines are joined by "\\n"."""
    if isinstance(head, str):
        head = head.encode("latin-1")
    return head.replace(b"\n", b"\r\n") + b"\r\n\r\n" + body


def summary(events: list) -> list:
    """A compact, comparable description of events."""
    out = []
    for event in events:
        if isinstance(event, RequestHead):
            out.append(("head", event.method, event.target, event.version))
        elif isinstance(event, Data):
            out.append(("data", event.data))
        elif isinstance(event, EndOfMessage):
            out.append(("end", tuple(event.trailers)))
        else:
            out.append(("closed",))
    return out
