"""``ServerConnection.drained()``, the keep-alive server's shortcut, against the ``next_event()`` it stands for."""

import pytest
from _http_helpers import DATE

from evloop.http import NEED_DATA, ServerConnection
from evloop.http.parser import Limits

GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
POST = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n"


def answered(conn: ServerConnection) -> None:
    """Take the next request and answer it whole (the server's keep-alive path: implicit end and next cycle)."""
    conn.next_event()
    conn.send_complete_response(200, [], b"ok", DATE)


# Each scenario: the steps that bring a connection where the server would ask drained().
SCENARIOS = {
    "new connection": [],
    "answered, nothing after": [GET, answered],
    "answered twice in two reads": [GET, answered, GET, answered],
    "answered, part of a head after": [GET + b"GET / HT", answered],
    "answered, a whole request after": [GET * 2, answered],
    "answered, then EOF": [GET, answered, b""],
    "EOF with the request": [GET, b"", answered],
    "EOF on a new connection": [b""],
    "request not answered": [GET, lambda conn: conn.next_event()],
    "inside a body": [POST + b"ab", lambda conn: conn.next_event()],
    "body done, answered": [POST + b"abcd", lambda conn: (conn.next_event(), conn.next_event()),
                            lambda conn: conn.send_complete_response(200, [], b"ok", DATE)],
}


def made(steps) -> ServerConnection:
    conn = ServerConnection(Limits(), True, True)
    for step in steps:
        if isinstance(step, bytes):
            conn.receive_data(step)
        else:
            step(conn)
    return conn


@pytest.mark.parametrize("name", SCENARIOS)
def test_drained_only_where_next_event_would_wait_with_nothing_buffered(name):
    shortcut, plain = made(SCENARIOS[name]), made(SCENARIOS[name])
    event = plain.next_event()
    waits_empty = event is NEED_DATA and plain.buffered_bytes == 0
    assert shortcut.drained() is waits_empty
    # Nothing else changed: the connection goes on as the one that took next_event() (the parsed bytes dropped).
    if waits_empty:
        assert shortcut.next_event() is NEED_DATA
    else:
        assert type(shortcut.next_event()) is type(event)
    assert (shortcut.their_state, shortcut.our_state, shortcut.buffered_bytes, shortcut.keep_alive) == (
        plain.their_state, plain.our_state, plain.buffered_bytes, plain.keep_alive)
    assert repr(shortcut) == repr(plain)


def test_drained_drops_the_parsed_bytes_as_next_event_does():
    conn = made([GET, answered])
    assert conn.drained()
    conn.receive_data(GET)  # the next request parses from the start of an empty buffer
    assert conn.next_event().target == "/"


@pytest.mark.parametrize("name", ["answered, nothing after", "new connection"])
def test_expected_scenarios_are_drained(name):
    """The table holds cases of both answers (so the comparison above is not vacuous)."""
    assert made(SCENARIOS[name]).drained()
