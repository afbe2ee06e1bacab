"""Hypothesis: any split of a byte stream gives the same events; what our client sends our server reads."""

from _ws_helpers import MASK, collect, frame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evloop.ws import BinaryMessage, DeflateParams, Ping, Role, TextMessage, WebSocketConnection

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

messages = st.lists(
    st.one_of(
        st.tuples(st.just("text"), st.text(max_size=300), st.integers(1, 3)),
        st.tuples(st.just("bytes"), st.binary(max_size=700), st.integers(1, 3)),
        st.tuples(st.just("ping"), st.binary(max_size=125), st.just(1)),
    ),
    max_size=8,
)
deflate_params = st.one_of(
    st.none(),
    st.builds(
        DeflateParams,
        server_no_context_takeover=st.booleans(),
        client_no_context_takeover=st.booleans(),
        server_max_window_bits=st.integers(9, 15),
        client_max_window_bits=st.integers(9, 15),
    ),
)


def split_points(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for p in points + [len(data)]:
        pieces.append(data[last:p])
        last = p
    return [p for p in pieces if p]


def feed(conn: WebSocketConnection, pieces: list[bytes]) -> list:
    events = []
    for piece in pieces:
        conn.receive_data(piece)
        events.extend(conn.events())
    return events


def encode(sender: WebSocketConnection, items) -> tuple[bytes, list]:
    """Frames for ``items`` (messages cut into ``parts`` fragments, pings between) and the events they mean."""
    out, expected = b"", []
    for kind, value, parts in items:
        if kind == "ping":
            out += sender.ping(value)
            expected.append(Ping(value))
            continue
        step = max(1, len(value) // parts)
        pieces = [value[i:i + step] for i in range(0, len(value), step)] or [value]
        send = sender.send_text if kind == "text" else sender.send_bytes
        for i, piece in enumerate(pieces):
            out += send(piece, final=i == len(pieces) - 1)
        expected.append(TextMessage(value) if kind == "text" else BinaryMessage(value))
    return out, expected


@SETTINGS
@given(items=messages, params=deflate_params, cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_any_split_same_events(items, params, cuts):
    client = WebSocketConnection(Role.CLIENT, deflate=params)
    data, expected = encode(client, items)
    assert collect(WebSocketConnection(Role.SERVER, deflate=params), data) == expected
    assert feed(WebSocketConnection(Role.SERVER, deflate=params), split_points(data, cuts)) == expected


@SETTINGS
@given(items=messages, params=deflate_params, cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_server_to_client_any_split(items, params, cuts):
    server = WebSocketConnection(Role.SERVER, deflate=params)
    data, expected = encode(server, items)
    assert feed(WebSocketConnection(Role.CLIENT, deflate=params), split_points(data, cuts)) == expected


@SETTINGS
@given(garbage=st.binary(max_size=400), cuts=st.lists(st.integers(0, 1000), max_size=8))
def test_hostile_bytes_any_split_same_events(garbage, cuts):
    # Arbitrary bytes after a valid frame: events (including a failure) do not depend on the split.
    data = frame(0x1, b"ok") + garbage
    whole = collect(WebSocketConnection(Role.SERVER, deflate=DeflateParams()), data)
    split = feed(WebSocketConnection(Role.SERVER, deflate=DeflateParams()), split_points(data, cuts))
    assert whole == split
    assert whole[0] == TextMessage("ok")


@SETTINGS
@given(payload=st.binary(max_size=2000), fin_cut=st.integers(0, 2000), cuts=st.lists(st.integers(0, 5000), max_size=6))
def test_text_validity_independent_of_split(payload, fin_cut, cuts):
    # Random bytes as a two-frame text message: valid UTF-8 exactly when Python says so.
    cut = fin_cut % (len(payload) + 1)
    data = frame(0x1, payload[:cut], fin=False, mask=MASK) + frame(0x0, payload[cut:])
    events = feed(WebSocketConnection(Role.SERVER), split_points(data, cuts))
    try:
        expected = [TextMessage(payload.decode("utf-8"))]
    except UnicodeDecodeError:
        assert len(events) == 1 and events[0].code == 1007
    else:
        assert events == expected


def feed_until_needs_data(conn: WebSocketConnection, pieces: list[bytes]) -> list:
    """The server glue's loop: after a message, stop once ``needs_data`` says the next call would return None
    (that call is made anyway here, to check it)."""
    events = []
    for piece in pieces:
        conn.receive_data(piece)
        while (event := conn.next_event()) is not None:
            events.append(event)
            if conn.needs_data:
                assert conn.next_event() is None
                break
    return events


@SETTINGS
@given(items=messages, garbage=st.binary(max_size=60), params=deflate_params,
       cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_stopping_at_needs_data_same_events(items, garbage, params, cuts):
    # The shortcut against the plain loop to None, EOF included, after valid frames and then after garbage.
    data, _ = encode(WebSocketConnection(Role.CLIENT, deflate=params), items)
    for stream in (data, data + garbage):
        pieces = split_points(stream, cuts) + [b""]
        plain = feed(WebSocketConnection(Role.SERVER, deflate=params), pieces)
        assert feed_until_needs_data(WebSocketConnection(Role.SERVER, deflate=params), pieces) == plain
