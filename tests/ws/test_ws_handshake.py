"""The opening handshake (RFC 6455 section 4) and permessage-deflate negotiation (RFC 7692 section 7)."""

import pytest
from _ws_helpers import parse_request

from evloop.ws import (
    Accept,
    ClientHandshake,
    DeflateConfig,
    DeflateParams,
    HandshakeError,
    Refuse,
    accept_handshake,
    accept_key,
    wants_websocket,
)
from evloop.ws.deflate import negotiate_client, negotiate_server, parse_extensions

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
GOOD = [
    ("Host", "server.example.com"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", KEY),
    ("Sec-WebSocket-Version", "13"),
]


def without(name):
    return [(n, v) for n, v in GOOD if n != name]


def replaced(name, value):
    return without(name) + [(name, value)]


def test_accept_key_rfc_example():
    assert accept_key(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 1.3


def test_accept():
    decision = accept_handshake("GET", "HTTP/1.1", GOOD)
    assert decision == Accept(
        [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")],
        None, None)


@pytest.mark.parametrize("headers", [
    replaced("Upgrade", "WebSocket"),
    replaced("Upgrade", "h2c, websocket"),
    replaced("Connection", "keep-alive, Upgrade"),
    replaced("Connection", "UPGRADE"),
    without("Connection") + [("Connection", "keep-alive"), ("connection", "upgrade")],
    [(n.lower(), v) for n, v in GOOD],
])
def test_tokens_in_lists_any_case(headers):
    assert isinstance(accept_handshake("GET", "HTTP/1.1", headers), Accept)


@pytest.mark.parametrize(("method", "version", "headers", "status"), [
    ("POST", "HTTP/1.1", GOOD, 405),
    ("GET", "HTTP/1.0", GOOD, 400),
    ("GET", "HTTP/1.1", without("Host"), 400),
    ("GET", "HTTP/1.1", without("Upgrade"), 400),
    ("GET", "HTTP/1.1", replaced("Upgrade", "websockets"), 400),
    ("GET", "HTTP/1.1", without("Connection"), 400),
    ("GET", "HTTP/1.1", replaced("Connection", "keep-alive"), 400),
    ("GET", "HTTP/1.1", without("Sec-WebSocket-Key"), 400),
    ("GET", "HTTP/1.1", replaced("Sec-WebSocket-Key", "c2hvcnQ="), 400),  # 5 bytes
    ("GET", "HTTP/1.1", replaced("Sec-WebSocket-Key", "not base64 at all!!!!!=="), 400),
    ("GET", "HTTP/1.1", GOOD + [("Sec-WebSocket-Key", KEY)], 400),
    ("GET", "HTTP/1.1", replaced("Sec-WebSocket-Version", "8"), 426),
    ("GET", "HTTP/1.1", without("Sec-WebSocket-Version"), 426),
    ("GET", "HTTP/1.1", GOOD + [("Sec-WebSocket-Extensions", "permessage-deflate; =x")], 400),
])
def test_refusals(method, version, headers, status):
    decision = accept_handshake(method, version, headers)
    assert isinstance(decision, Refuse)
    assert decision.status == status
    assert decision.body == (decision.reason + "\n").encode()
    if status == 426:
        assert ("Sec-WebSocket-Version", "13") in decision.headers
        assert ("Upgrade", "websocket") in decision.headers
    if status == 405:
        assert ("Allow", "GET") in decision.headers


def test_wants_websocket():
    assert wants_websocket(GOOD)
    assert wants_websocket([("upgrade", "foo, WebSocket")])
    assert not wants_websocket(without("Upgrade"))


def test_subprotocols():
    offered = GOOD + [("Sec-WebSocket-Protocol", "chat.v1, chat.v2"), ("Sec-WebSocket-Protocol", "chat.v3")]
    decision = accept_handshake("GET", "HTTP/1.1", offered, subprotocols=["chat.v3", "chat.v2"])
    assert isinstance(decision, Accept) and decision.subprotocol == "chat.v3"
    assert ("Sec-WebSocket-Protocol", "chat.v3") in decision.headers
    decision = accept_handshake("GET", "HTTP/1.1", offered, subprotocols=["other"])
    assert isinstance(decision, Accept) and decision.subprotocol is None
    assert all(n != "Sec-WebSocket-Protocol" for n, _ in decision.headers)
    with pytest.raises(ValueError):
        accept_handshake("GET", "HTTP/1.1", offered, subprotocols=["bad value"])


def test_deflate_accepted_and_declined():
    offer = GOOD + [("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")]
    decision = accept_handshake("GET", "HTTP/1.1", offer)
    assert isinstance(decision, Accept) and decision.deflate == DeflateParams()
    assert ("Sec-WebSocket-Extensions", "permessage-deflate") in decision.headers
    decision = accept_handshake("GET", "HTTP/1.1", offer, deflate=None)
    assert isinstance(decision, Accept) and decision.deflate is None
    assert all(n != "Sec-WebSocket-Extensions" for n, _ in decision.headers)


# -- negotiation, server side (RFC 7692 7.1) ---------------------------------

@pytest.mark.parametrize(("offer", "config", "expected"), [
    ("permessage-deflate", DeflateConfig(), "permessage-deflate"),
    ("x-webkit-deflate-frame, permessage-deflate", DeflateConfig(), "permessage-deflate"),
    ("permessage-deflate; server_no_context_takeover", DeflateConfig(),
     "permessage-deflate; server_no_context_takeover"),
    ("permessage-deflate", DeflateConfig(server_no_context_takeover=True, client_no_context_takeover=True),
     "permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
    ("permessage-deflate; server_max_window_bits=10", DeflateConfig(), "permessage-deflate; server_max_window_bits=10"),
    # An offered limit is answered even when it is the default: leaving it out declines it (RFC 7692 7.1.2.1).
    ("permessage-deflate; server_max_window_bits=15", DeflateConfig(), "permessage-deflate; server_max_window_bits=15"),
    ("permessage-deflate; server_max_window_bits=12", DeflateConfig(server_max_window_bits=10),
     "permessage-deflate; server_max_window_bits=10"),
    ("permessage-deflate", DeflateConfig(server_max_window_bits=11), "permessage-deflate; server_max_window_bits=11"),
    ("permessage-deflate; client_max_window_bits", DeflateConfig(client_max_window_bits=9),
     "permessage-deflate; client_max_window_bits=9"),
    ("permessage-deflate; client_max_window_bits=12", DeflateConfig(client_max_window_bits=10),
     "permessage-deflate; client_max_window_bits=10"),
    ("permessage-deflate; client_max_window_bits=\"12\"", DeflateConfig(),
     "permessage-deflate; client_max_window_bits=12"),
    # The client did not say it can limit its window: we may not ask.
    ("permessage-deflate", DeflateConfig(client_max_window_bits=9), "permessage-deflate"),
    # Declined offers fall through to the next one.
    ("permessage-deflate; foo, permessage-deflate", DeflateConfig(), "permessage-deflate"),
    ("permessage-deflate; server_no_context_takeover; server_no_context_takeover, permessage-deflate",
     DeflateConfig(), "permessage-deflate"),
    ("permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=9",
     DeflateConfig(), "permessage-deflate; server_max_window_bits=9"),
    ("permessage-deflate; server_max_window_bits=16", DeflateConfig(), None),
    ("permessage-deflate; server_max_window_bits=010", DeflateConfig(), None),
    ("permessage-deflate; server_max_window_bits", DeflateConfig(), None),
    ("permessage-deflate; server_no_context_takeover=1", DeflateConfig(), None),
    ("permessage-deflate; server_max_window_bits=8", DeflateConfig(), None),
    ("x-other", DeflateConfig(), None),
])
def test_negotiate_server(offer, config, expected):
    params = negotiate_server([offer], config)
    assert (params.response_value() if params else None) == expected


def test_extension_syntax():
    assert parse_extensions(["a; b=1; c, d", " , e ;f=\"x\""]) == [
        ("a", [("b", "1"), ("c", None)]), ("d", []), ("e", [("f", "x")])]
    for bad in ["a;", "a b", "a; b=", "a; b=\"x y\"", ";b"]:
        with pytest.raises(ValueError):
            parse_extensions([bad])


# -- negotiation, client side -------------------------------------------------

@pytest.mark.parametrize(("config", "answer", "expected"), [
    (DeflateConfig(), [], None),
    (DeflateConfig(), ["permessage-deflate"], DeflateParams()),
    (DeflateConfig(), ["permessage-deflate; client_max_window_bits=10"], DeflateParams(client_max_window_bits=10)),
    (DeflateConfig(client_max_window_bits=10), ["permessage-deflate"], DeflateParams(client_max_window_bits=10)),
    (DeflateConfig(client_no_context_takeover=True), ["permessage-deflate"],
     DeflateParams(client_no_context_takeover=True)),
    (DeflateConfig(), ["permessage-deflate; server_no_context_takeover; server_max_window_bits=9"],
     DeflateParams(server_no_context_takeover=True, server_max_window_bits=9)),
])
def test_negotiate_client(config, answer, expected):
    assert negotiate_client(answer, config) == expected


@pytest.mark.parametrize(("config", "answer"), [
    (None, ["permessage-deflate"]),
    (DeflateConfig(), ["x-other"]),
    (DeflateConfig(), ["permessage-deflate, permessage-deflate"]),
    (DeflateConfig(), ["permessage-deflate; foo"]),
    (DeflateConfig(), ["permessage-deflate; client_max_window_bits"]),  # a value is required in an answer
    (DeflateConfig(), ["permessage-deflate; client_max_window_bits=8"]),
    (DeflateConfig(client_max_window_bits=10), ["permessage-deflate; client_max_window_bits=11"]),
    (DeflateConfig(server_no_context_takeover=True), ["permessage-deflate"]),
    (DeflateConfig(server_max_window_bits=10), ["permessage-deflate"]),
    (DeflateConfig(server_max_window_bits=10), ["permessage-deflate; server_max_window_bits=11"]),
    (DeflateConfig(), ["permessage-deflate;"]),
])
def test_negotiate_client_refuses(config, answer):
    with pytest.raises(HandshakeError):
        negotiate_client(answer, config)


def test_config_refuses_window_bits_8():
    with pytest.raises(ValueError):
        DeflateConfig(server_max_window_bits=8)


# -- the client's handshake ---------------------------------------------------

def test_client_request_is_accepted_by_our_server():
    hs = ClientHandshake("example.com:8080", "/chat?room=1", subprotocols=["v2", "v1"],
                         headers=[("Origin", "http://example.com")], key=KEY)
    head = parse_request(hs.request())
    assert head.target == "/chat?room=1" and ("Origin", "http://example.com") in head.headers
    decision = accept_handshake(head.method, head.version, head.headers, subprotocols=["v1"])
    assert isinstance(decision, Accept)
    negotiated = hs.check_response(101, decision.headers)
    assert negotiated.subprotocol == "v1" and negotiated.deflate == DeflateParams()


def test_client_random_key():
    a, b = ClientHandshake("h"), ClientHandshake("h")
    assert a.key != b.key and len(a.key) == 24


@pytest.mark.parametrize(("status", "headers"), [
    (200, [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept_key(KEY))]),
    (101, [("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept_key(KEY))]),
    (101, [("Upgrade", "websocket"), ("Sec-WebSocket-Accept", accept_key(KEY))]),
    (101, [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", "wrong")]),
    (101, [("Upgrade", "websocket"), ("Connection", "Upgrade")]),
    (101, [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept_key(KEY)),
           ("Sec-WebSocket-Protocol", "v9")]),
])
def test_client_refuses_bad_answers(status, headers):
    with pytest.raises(HandshakeError):
        ClientHandshake("h", key=KEY, subprotocols=["v1"]).check_response(status, headers)


def test_client_refuses_bad_fields():
    with pytest.raises(ValueError):
        ClientHandshake("h", headers=[("X-Bad", "a\r\nb")]).request()
    with pytest.raises(ValueError):
        ClientHandshake("h", "/a b").request()
