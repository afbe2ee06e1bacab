"""send_complete_response: the same bytes and states as send_response (the
plain path), whether its head comes from the framed-response cache or not."""

import itertools

import pytest
from _http_helpers import DATE

from evloop.http import NEED_DATA, PAUSED, ConnectionClosed, RecvState, RequestHead, SendState, ServerConnection
from evloop.http.caches import HTTP1Caches

REQUESTS = {
    "1.1": b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
    "1.1-close": b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    "1.0": b"GET / HTTP/1.0\r\n\r\n",
    "1.0-keep-alive": b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "head": b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n",
}
FIELDS = {
    "none": None,
    "empty": [],
    "str": [("Content-Type", "text/plain")],
    "bytes": [(b"X-A", b"1"), (b"X-B", b"2")],
    "lists": [["X-List", "v"]],  # unhashable pairs
    "connection-close": [("Connection", "close")],
    "content-length": [("Content-Length", "2")],
    "date-and-server": [("Date", "yesterday"), ("Server", "other")],
}
STATUSES = [200, 201, 204, 304, 404, 599]


def ready(
    request: bytes, implicit_end: bool, caches: HTTP1Caches | None = None, implicit_next_cycle: bool = False
) -> ServerConnection:
    """A connection with ``request`` received whole, waiting for its response."""
    conn = ServerConnection(implicit_end=implicit_end, implicit_next_cycle=implicit_next_cycle, caches=caches)
    conn.receive_data(request)
    conn.next_event()
    if not implicit_end:
        conn.next_event()  # EndOfMessage
    return conn


def state(conn: ServerConnection):
    return conn.our_state, conn.their_state, conn.keep_alive, conn.awaits_next_request


@pytest.mark.parametrize("implicit_next_cycle", [False, True])
@pytest.mark.parametrize("implicit_end", [True, False])
@pytest.mark.parametrize("request_name", sorted(REQUESTS))
def test_same_bytes_and_states_as_send_response(request_name, implicit_end, implicit_next_cycle):
    """With ``implicit_next_cycle`` the states are those of the plain path
    followed by ``start_next_cycle`` when the response completed with keep-alive."""
    caches = HTTP1Caches()
    for status, fields_name, body in itertools.product(STATUSES, sorted(FIELDS), [b"", b"ok"]):
        fields = FIELDS[fields_name]
        general = ready(REQUESTS[request_name], implicit_end, HTTP1Caches.disabled())
        expected = general.send_response(status, fields, content_length=len(body), date=DATE, body=body)
        if implicit_next_cycle and general.our_state is SendState.DONE:
            general.start_next_cycle()
        for attempt in range(3):  # the first frames, the others may come from the cache
            conn = ready(REQUESTS[request_name], implicit_end, caches, implicit_next_cycle)
            got = conn.send_complete_response(status, fields, body, DATE)
            assert got == expected, (status, fields_name, body, attempt)
            assert state(conn) == state(general), (status, fields_name, body, attempt)
            uncached = ready(REQUESTS[request_name], implicit_end, HTTP1Caches.disabled(), implicit_next_cycle)
            assert uncached.send_complete_response(status, fields, body, DATE) == expected
            assert state(uncached) == state(general)
    # The plain HTTP/1.1 requests frame from the cache (one miss per distinct
    # response, the later attempts hit), a Connection: close one's last
    # response too (the cached head with Connection: close); the others never look.
    assert bool(caches.framed.misses) is (request_name in ("1.1", "1.1-close"))
    assert len(caches.framed) <= caches.framed.misses


def test_each_date_server_length_and_field_value_frames_anew():
    fields = [("X-Counter", "1")]
    first = ready(REQUESTS["1.1"], True).send_complete_response(200, fields, b"ok", DATE)
    fields[0] = ("X-Counter", "2")  # the same list, changed in place
    second = ready(REQUESTS["1.1"], True).send_complete_response(200, fields, b"ok", DATE)
    assert b"X-Counter: 1\r\n" in first and b"X-Counter: 2\r\n" in second
    later = ready(REQUESTS["1.1"], True).send_complete_response(200, fields, b"ok", b"Fri, 02 Jan 2026 00:00:00 GMT")
    assert b"\r\nDate: Fri, 02 Jan 2026 00:00:00 GMT\r\n" in later
    other = ready(REQUESTS["1.1"], True).send_complete_response(200, fields, b"ok", DATE, b"custom")
    assert b"\r\nServer: custom\r\n" in other
    longer = ready(REQUESTS["1.1"], True).send_complete_response(200, fields, b"okay", DATE)
    assert longer.endswith(b"Content-Length: 4\r\n\r\nokay")


def test_invalid_fields_raise_every_time():
    for _ in range(3):
        with pytest.raises(ValueError):
            ready(REQUESTS["1.1"], True).send_complete_response(200, [("X-A", "1\r\nInjected: yes")], b"", DATE)


def test_framed_cache_is_bounded():
    caches = HTTP1Caches(max_framed=16)
    for length in range(16 * 3):
        conn = ready(REQUESTS["1.1"], True, caches)
        # Two field lists in turn: each miss is framed by the plain path and held (last_framed_fields never matches).
        content_type = "text/plain" if length % 2 else "text/html"
        conn.send_complete_response(200, [("Content-Type", content_type)], b"x" * length, DATE)
        assert len(caches.framed) <= 16
    assert caches.framed.clears == 2 and caches.framed.misses == 48
    assert caches.fields.misses == 2 and len(caches.fields) == 2  # each field list encoded once


@pytest.mark.parametrize("fields_name", ["none", "str", "bytes", "lists", "content-length", "date-and-server"])
def test_a_new_length_with_the_last_heads_fields_gives_the_plain_paths_bytes(fields_name):
    """``last_framed_fields``: a framed miss with the fields, status, Date and Server of the head made last is that
    head with a new Content-Length; anything else that differs is framed anew."""
    caches = HTTP1Caches()
    fields = FIELDS[fields_name]
    later = b"Fri, 02 Jan 2026 00:00:00 GMT"
    steps = [(200, fields, n, DATE, b"evloop") for n in (0, 1, 9, 10, 100, 4096, 70000)]
    # Each step changes one thing from the step before: the status, the Date, the Server, the fields.
    steps += [(404, fields, 3, DATE, b"evloop"), (404, fields, 4, DATE, b"evloop"), (404, fields, 5, later, b"evloop"),
              (404, fields, 6, later, b"other"), (404, fields, 7, later, None), (404, [("X-A", "1")], 8, later, None),
              (404, [("X-A", "2")], 9, later, None), (204, fields, 0, DATE, b"evloop"), (200, fields, 11, DATE, b"e")]
    for status, step_fields, length, date, server in steps * 2:  # the second time, the framed cache holds some
        body = b"x" * length
        plain = ready(REQUESTS["1.1"], True, HTTP1Caches.disabled())
        expected = plain.send_complete_response(status, step_fields, body, date, server)
        conn = ready(REQUESTS["1.1"], True, caches)
        assert conn.send_complete_response(status, step_fields, body, date, server) == expected, (status, length)
        assert state(conn) == state(plain)
    if fields_name not in ("lists", "content-length", "date-and-server"):  # framed at all (hashable, unmanaged)
        assert len(caches.framed) < caches.framed.misses  # some were framed from last_framed_fields, not held


def test_connections_share_the_caches_they_are_given():
    caches = HTTP1Caches()
    for _ in range(3):
        ready(REQUESTS["1.1"], True, caches).send_complete_response(200, [("X-A", "1")], b"ok", DATE)
    assert caches.framed.misses == 1  # framed once, then twice from the cache
    # Without caches, a connection has its own: nothing is shared.
    first, second = ready(REQUESTS["1.1"], True), ready(REQUESTS["1.1"], True)
    assert first.caches is not second.caches
    first.send_complete_response(200, [("X-A", "1")], b"ok", DATE)
    second.send_complete_response(200, [("X-A", "1")], b"ok", DATE)
    assert second.caches.framed.misses == 1  # its own cache: framed anew


def test_next_cycle_after_a_memoised_response():
    conn = ServerConnection(implicit_end=True)
    conn.receive_data(REQUESTS["1.1"] * 3)
    outputs = []
    for _ in range(3):
        conn.next_event()
        outputs.append(conn.send_complete_response(200, [], b"hi", DATE))
        conn.start_next_cycle()
    assert conn.next_event() is NEED_DATA
    assert len(set(outputs)) == 1 and outputs[0].endswith(b"Content-Length: 2\r\n\r\nhi")


@pytest.mark.parametrize("how", ["complete", "response", "streamed", "file"])
def test_implicit_next_cycle_reads_the_next_request_at_once(how):
    """Each way a keep-alive response can complete leaves both sides IDLE
    with ``implicit_next_cycle``, as ``start_next_cycle`` would; a response
    that closes does not."""
    conn = ServerConnection(implicit_end=True, implicit_next_cycle=True)
    conn.receive_data(REQUESTS["1.1"] * 2 + REQUESTS["1.1-close"])
    for request in range(3):
        assert type(conn.next_event()) is RequestHead
        assert conn.next_event() is PAUSED  # later requests wait for the response
        if how == "complete":
            conn.send_complete_response(200, [], b"hi", DATE)
        elif how == "response":
            conn.send_response(200, [], content_length=2, date=DATE, body=b"hi")
        elif how == "streamed":
            conn.send_response(200, [], content_length=None, date=DATE)
            conn.send_data(b"hi")
            conn.send_end()
        else:
            conn.send_response(200, [], content_length=2, date=DATE)
            conn.file_data_sent(2)
            conn.send_end()
        if request < 2:
            assert (conn.our_state, conn.their_state) == (SendState.IDLE, RecvState.IDLE)
    assert (conn.our_state, conn.their_state, conn.keep_alive) == (SendState.MUST_CLOSE, RecvState.DONE, False)


@pytest.mark.parametrize("how", ["complete", "response", "explicit"])
@pytest.mark.parametrize("after", ["nothing", "next request", "part of one", "eof", "next request and eof"])
def test_awaits_next_request_exactly_when_next_event_would_need_data(how, after):
    """``awaits_next_request`` (the server's reason to skip next_event after a keep-alive response) is True only
    when that call would return NEED_DATA with nothing buffered, however the next cycle started; any bytes or
    an EOF received end it."""
    more = {"nothing": b"", "next request": REQUESTS["1.1"], "part of one": b"GE", "eof": b"",
            "next request and eof": REQUESTS["1.1"]}[after]
    conn = ServerConnection(implicit_end=True, implicit_next_cycle=how != "explicit")
    conn.receive_data(REQUESTS["1.1"] + more)
    if after.endswith("eof"):
        conn.receive_data(b"")
    assert type(conn.next_event()) is RequestHead and not conn.awaits_next_request
    if how == "complete":
        conn.send_complete_response(200, [], b"hi", DATE)
    else:
        conn.send_response(200, [], content_length=2, date=DATE, body=b"hi")
        if how == "explicit":
            conn.start_next_cycle()
    assert (conn.their_state, conn.our_state) == (RecvState.IDLE, SendState.IDLE)
    expected = after == "nothing"
    assert conn.awaits_next_request is expected
    event = conn.next_event()
    assert (event is NEED_DATA and conn.buffered_bytes == 0) is expected
    assert type(event) is {"next request": RequestHead, "eof": ConnectionClosed, "next request and eof": RequestHead,
                           "part of one": type(NEED_DATA), "nothing": type(NEED_DATA)}[after]
    if expected:
        conn.receive_data(b"GET")
        assert not conn.awaits_next_request and conn.next_event() is NEED_DATA and conn.buffered_bytes == 3


def test_an_eof_between_requests_ends_awaits_next_request():
    conn = ready(REQUESTS["1.1"], True, implicit_next_cycle=True)
    conn.send_complete_response(200, [], b"hi", DATE)
    assert conn.awaits_next_request
    conn.receive_data(b"")  # the peer leaves between requests
    assert not conn.awaits_next_request and type(conn.next_event()) is ConnectionClosed


def test_fields_from_an_iterator_are_read_once():
    conn = ready(REQUESTS["1.1"], True)
    got = conn.send_complete_response(200, iter([("X-A", "1"), ("Connection", "close")]), b"ok", DATE)
    assert b"X-A: 1\r\n" in got and b"Connection: close\r\n" in got and not conn.keep_alive
    conn = ready(REQUESTS["1.1"], True)
    got = conn.send_complete_response(200, iter([("X-A", "1")]), b"ok", DATE)
    assert b"X-A: 1\r\n" in got and conn.keep_alive


@pytest.mark.parametrize("request_name", sorted(REQUESTS))
def test_fields_from_an_iterator_work_on_every_path(request_name):
    for pairs in ([("X-Iter", "1")], [["X-Iter", "1"]], [(b"X-Iter", b"1")]):  # tuples, lists, bytes
        expected = ready(REQUESTS[request_name], True).send_complete_response(200, list(pairs), b"ok", DATE)
        got = ready(REQUESTS[request_name], True).send_complete_response(200, iter(pairs), b"ok", DATE)
        assert got == expected and b"X-Iter: 1\r\n" in got


def test_the_last_response_remembered_whole_gives_the_plain_paths_bytes():
    """``HTTP1Caches.last_framed``: a response with the same body object is its remembered bytes only while
    status, fields (compared, not by identity: a list changed in place), Date and Server are equal."""
    caches = HTTP1Caches()
    body = b"Hello, World!"
    fields = [("Content-Type", "text/plain")]
    later = b"Fri, 02 Jan 2026 00:00:00 GMT"
    steps = [(200, DATE, b"evloop"), (200, DATE, b"evloop"), (404, DATE, b"evloop"), (200, later, b"evloop"),
             (200, later, None), (200, later, None)]
    for i, (status, date, server) in enumerate(steps * 2):
        if i == len(steps):
            fields.append(("X-Added", "1"))  # the same list, changed in place: the remembered bytes are stale
        plain = ready(REQUESTS["1.1"], True, HTTP1Caches.disabled())
        expected = plain.send_response(status, list(fields), content_length=len(body), date=date, server=server,
                                       body=body)
        conn = ready(REQUESTS["1.1"], True, caches, implicit_next_cycle=True)
        assert conn.send_complete_response(status, fields, body, date, server) == expected, i
        assert conn.our_state is SendState.IDLE and conn.their_state is RecvState.IDLE
    assert caches.last_framed is not None and caches.last_framed[0] is body
    caches.clear()
    assert caches.last_framed is None
    # Nothing remembered whole: a long body, a new body object each time, or caches that hold nothing.  (An
    # iterator of fields is read into a tuple first, remembered as any tuple is: a later iterator never equals it.)
    for _ in range(2):
        ready(REQUESTS["1.1"], True, caches).send_complete_response(200, fields, b"x" * 2048, DATE)
    assert caches.last_framed is None
    for n in range(3):
        ready(REQUESTS["1.1"], True, caches).send_complete_response(200, fields, b"item %d" % n, DATE)
        assert caches.last_framed is not None and caches.last_framed[1] is None
    disabled = HTTP1Caches.disabled()
    ready(REQUESTS["1.1"], True, disabled).send_complete_response(200, fields, body, DATE)
    assert disabled.last_framed is None


def test_a_short_body_that_comes_again_is_remembered_whole_also_after_the_last_heads_hits():
    """``send_complete_response`` compares ``last_head`` itself for a new body object, and leaves a short body's
    second coming to ``frame_remembered``, which remembers that response whole (``last_framed``): the same bytes
    as the plain path all along."""
    caches = HTTP1Caches()
    fields = [("Content-Type", "text/plain")]
    body = b"0123456789"
    for n, given in enumerate([bytes(10), bytes(10), bytes(10), body, body, body, bytes(10), body, body]):
        plain = ready(REQUESTS["1.1"], True, HTTP1Caches.disabled())
        expected = plain.send_response(200, list(fields), content_length=10, date=DATE, body=given)
        conn = ready(REQUESTS["1.1"], True, caches, implicit_next_cycle=True)
        assert conn.send_complete_response(200, fields, given, DATE) == expected, n
        assert conn.our_state is SendState.IDLE and conn.their_state is RecvState.IDLE
        if n == 2:
            assert caches.last_head is not None and caches.last_head[2] == 10  # new bodies: the last head's hits
        if n in (5, 8):
            assert caches.last_framed is not None and caches.last_framed[0] is body and caches.last_framed[1] == 200


def test_the_last_closing_response_remembered_whole_gives_the_plain_paths_bytes():
    """``HTTP1Caches.last_closing``: a connection's last response with the same body object is its remembered
    bytes only while status, fields (compared: a list changed in place), Date and Server are equal; the states
    are the plain path's."""
    caches = HTTP1Caches()
    body = b"Hello, World!"
    fields = [("Content-Type", "text/plain")]
    later = b"Fri, 02 Jan 2026 00:00:00 GMT"
    steps = [(200, DATE, b"evloop", fields), (200, DATE, b"evloop", fields), (404, DATE, b"evloop", fields),
             (200, later, b"evloop", fields), (200, later, None, fields), (200, later, None, fields),
             (200, later, None, tuple(fields)), (200, later, None, tuple(fields)), (200, later, None, None),
             (200, later, None, None)]
    for i, (status, date, server, given) in enumerate(steps * 2):
        if i == len(steps):
            fields.append(("X-Added", "1"))  # the same list, changed in place: the remembered bytes are stale
        plain = ready(REQUESTS["1.1-close"], True, HTTP1Caches.disabled())
        expected = plain.send_response(status, list(given or ()), content_length=len(body), date=date,
                                       server=server, body=body)
        conn = ready(REQUESTS["1.1-close"], True, caches, implicit_next_cycle=True)
        assert conn.send_complete_response(status, given, body, date, server) == expected, i
        assert b"Connection: close\r\n\r\n" in expected and state(conn) == state(plain), i
        assert ready(REQUESTS["1.1-close"], True, HTTP1Caches.disabled()).send_complete_response(
            status, given, body, date, server) == expected, i
    assert caches.last_closing is not None and caches.last_closing[0] is body and caches.last_closing[1] == 200
    caches.clear()
    assert caches.last_closing is None
    # Nothing remembered whole: a long body, a new body object each time, or caches that hold nothing.
    for _ in range(2):
        ready(REQUESTS["1.1-close"], True, caches).send_complete_response(200, fields, b"x" * 2048, DATE)
    assert caches.last_closing is None
    for n in range(3):
        ready(REQUESTS["1.1-close"], True, caches).send_complete_response(200, fields, b"item %d" % n, DATE)
        assert caches.last_closing is not None and caches.last_closing[1] is None
    disabled = HTTP1Caches.disabled()
    for _ in range(2):
        ready(REQUESTS["1.1-close"], True, disabled).send_complete_response(200, fields, body, DATE)
    assert disabled.last_closing is None


def test_a_new_length_is_held_in_the_framed_cache_when_it_comes_twice_running():
    caches = HTTP1Caches()
    fields = [("Content-Type", "text/plain")]

    def send(length: int) -> bytes:
        return ready(REQUESTS["1.1"], True, caches).send_complete_response(200, fields, b"x" * length, DATE)

    send(1)  # framed by the plain path and held
    assert (len(caches.framed), caches.framed.misses, caches.fields.misses) == (1, 1, 1)
    assert send(2).endswith(b"\r\nContent-Length: 2\r\n\r\nxx")  # the last head's fields: not held
    assert (len(caches.framed), caches.framed.misses, caches.fields.misses) == (1, 2, 1)
    send(2)  # twice running: held
    assert (len(caches.framed), caches.framed.misses) == (2, 3)
    assert send(2) == send(2) and caches.framed.misses == 3  # hits


@pytest.mark.parametrize("fields_name", ["none", "empty", "str", "bytes", "lists", "date-and-server"])
def test_the_last_head_remembered_gives_the_plain_paths_bytes(fields_name):
    """``last_head``: a response whose status, fields (compared: a list changed in place), length, Date and Server
    are those of the last head ``framed`` held is that head and the new body; anything that differs is looked up."""
    caches = HTTP1Caches()
    fields = list(FIELDS[fields_name] or [])
    later = b"Fri, 02 Jan 2026 00:00:00 GMT"
    # Each step changes one thing from the one before; each comes three times (held, then remembered, then its
    # head is the remembered one), each time with a new body object.
    steps = [(200, 4096, DATE, b"evloop"), (404, 4096, DATE, b"evloop"), (404, 4097, DATE, b"evloop"),
             (404, 4097, later, b"evloop"), (404, 4097, later, b"other"), (404, 4097, later, None),
             (404, 10, later, None), (200, 10, later, None)]
    for changed_in_place in (False, True):
        if changed_in_place:
            # The same list, changed in place: the remembered head is stale.
            fields.append((b"X-Added", b"1") if fields_name == "bytes" else ("X-Added", "1"))
        for status, length, date, server in steps:
            for given in (fields, fields, tuple(fields), fields):
                body = bytes(length)
                plain = ready(REQUESTS["1.1"], True, HTTP1Caches.disabled())
                expected = plain.send_complete_response(status, list(given), body, date, server)
                conn = ready(REQUESTS["1.1"], True, caches)
                assert conn.send_complete_response(status, given, body, date, server) == expected, (status, length)
                assert state(conn) == state(plain)
    if fields_name not in ("lists", "date-and-server"):  # framed here (hashable, unmanaged): held, then remembered
        assert caches.last_head is not None and caches.last_head[:5] == (200, fields, 10, later, None)
        misses = caches.framed.misses
        ready(REQUESTS["1.1"], True, caches).send_complete_response(200, list(fields), bytes(10), later, None)
        assert caches.framed.misses == misses  # the remembered head: not even a miss
    else:
        assert caches.last_head is None
    caches.clear()
    assert caches.last_head is None
