"""Big messages: 16 MiB fragmented and compressed round trips, in time linear in their size."""

import os
import time

import pytest

from evloop.ws import BinaryMessage, DeflateParams, Role, TextMessage, WebSocketConnection

MIB = 1 << 20


def round_trip(size: int, params: DeflateParams | None, fragment: int, read: int) -> float:
    """Client -> server -> client of one ``size``-byte message sent in ``fragment``-byte
    frames and read ``read`` bytes at a time; returns the CPU seconds it took."""
    block = os.urandom(4096) + bytes(4096)  # half noise, half zeros: compresses, but not to nothing
    payload = (block * (size // len(block) + 1))[:size]
    client = WebSocketConnection(Role.CLIENT, deflate=params, max_message_bytes=size)
    server = WebSocketConnection(Role.SERVER, deflate=params, max_message_bytes=size)
    t0 = time.process_time()
    frames = [client.send_bytes(payload[i:i + fragment], final=i + fragment >= size) for i in range(0, size, fragment)]
    wire = b"".join(frames)
    events = []
    for i in range(0, len(wire), read):
        server.receive_data(wire[i:i + read])
        events.extend(server.events())
    assert events == [BinaryMessage(payload)]
    echo = server.send_bytes(events[0].data)
    for i in range(0, len(echo), read):
        client.receive_data(echo[i:i + read])
        events.extend(client.events())
    elapsed = time.process_time() - t0
    assert events[1] == BinaryMessage(payload)
    return elapsed


@pytest.mark.parametrize("params", [None, DeflateParams(), DeflateParams(client_no_context_takeover=True,
                                                                          server_max_window_bits=10)],
                         ids=["plain", "deflate", "deflate-no-takeover"])
def test_16_mib_fragmented_round_trip(params):
    round_trip(16 * MIB, params, fragment=1 * MIB + 3, read=65536)


def test_time_linear_in_size():
    # 4x the bytes must cost well under 16x the time (quadratic would be 16x);
    # the bound is loose for a shared machine: linear is 4x.
    for params in (None, DeflateParams()):
        small = min(round_trip(4 * MIB, params, fragment=64 * 1024, read=65536) for _ in range(2))
        large = min(round_trip(16 * MIB, params, fragment=64 * 1024, read=65536) for _ in range(2))
        assert large / small < 8, (params, small, large)


def test_text_message_16_mib_in_small_reads():
    text = ("WebSocket ✓ " * (16 * MIB // 14))
    data = text.encode()
    client = WebSocketConnection(Role.CLIENT, deflate=DeflateParams())
    server = WebSocketConnection(Role.SERVER, deflate=DeflateParams())
    wire = b"".join(client.send_text(text[i:i + 999_999], final=i + 999_999 >= len(text))
                    for i in range(0, len(text), 999_999))
    events = []
    for i in range(0, len(wire), 16384):
        server.receive_data(wire[i:i + 16384])
        events.extend(server.events())
    assert events == [TextMessage(text)] and len(data) <= 16 * MIB
