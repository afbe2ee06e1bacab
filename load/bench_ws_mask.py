"""WebSocket microbenchmarks: unmasking choices, and the cost of one small message.

Run: .venv/bin/python load/bench_ws_mask.py [--quick]

1. Unmasking (RFC 6455 5.3, every received byte XORed with a 4-byte key):
   each candidate on 16 B, 4 KiB and 1 MiB payloads, checked against a plain
   byte-by-byte XOR first; then the small sizes where the ints and the tables
   cross over.  ``evloop.ws.frames.mask_payload`` is the one the package
   uses (ints below 256 bytes, tables above).
2. Per message: a server-side ``WebSocketConnection`` reading one masked
   text frame (``receive_data`` + ``next_event``: parse, unmask, UTF-8) and
   framing the answer (``send_text``), for 16 B and 4 KiB messages; the same
   for a client reading the server's frame; and, as the baseline ratio,
   websockets' sans-I/O ``ServerProtocol`` doing the same work
   (``receive_data`` + ``events_received`` + ``send_text`` +
   ``data_to_send``; with its C extension for masking when installed).

Figures are the best of several runs of CPU time per operation.
"""

import itertools
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_parser import best_of as best_per_op  # noqa: E402  (best per-iteration CPU seconds)

from evloop.ws import Role, TextMessage, WebSocketConnection  # noqa: E402
from evloop.ws.frames import encode_frame, mask_payload  # noqa: E402

TABLES = tuple(bytes(b ^ k for b in range(256)) for k in range(256))


def plain(mask, data):
    """Byte by byte: the reference."""
    return bytes(b ^ m for b, m in zip(data, itertools.cycle(mask)))


def int_little(mask, data):
    """XOR of two big ints, little-endian (websockets' pure-Python fallback)."""
    n = len(data)
    m = mask * (n >> 2) + mask[: n & 3]
    return (int.from_bytes(data, "little") ^ int.from_bytes(m, "little")).to_bytes(n, "little")


def int_big(mask, data):
    """The same, big-endian."""
    n = len(data)
    m = mask * (n >> 2) + mask[: n & 3]
    return (int.from_bytes(data, "big") ^ int.from_bytes(m, "big")).to_bytes(n, "big")


def int_chunked(mask, data, chunk=65536):
    """Ints over 64 KiB pieces, the mask's int computed once."""
    n = len(data)
    if n <= chunk:
        return int_big(mask, data)
    mask_int = int.from_bytes(mask * (chunk >> 2), "big")
    view = memoryview(data)
    parts = [(int.from_bytes(view[i:i + chunk], "big") ^ mask_int).to_bytes(chunk, "big")
             for i in range(0, n - n % chunk, chunk)]
    if n % chunk:
        parts.append(int_big(mask, data[n - n % chunk:]))
    return b"".join(parts)


def translate_slices(mask, data):
    """Four translate tables on the strided slices of the input, assigned into a copy."""
    out = bytearray(data)
    out[0::4] = data[0::4].translate(TABLES[mask[0]])
    out[1::4] = data[1::4].translate(TABLES[mask[1]])
    out[2::4] = data[2::4].translate(TABLES[mask[2]])
    out[3::4] = data[3::4].translate(TABLES[mask[3]])
    return bytes(out)


def translate_in_place(mask, data):
    """The same on the copy's own slices, returning the bytearray (no final copy)."""
    out = bytearray(data)
    out[0::4] = out[0::4].translate(TABLES[mask[0]])
    out[1::4] = out[1::4].translate(TABLES[mask[1]])
    out[2::4] = out[2::4].translate(TABLES[mask[2]])
    out[3::4] = out[3::4].translate(TABLES[mask[3]])
    return out


def map_xor(mask, data):
    """bytes(map(xor, ...)): a C loop, but one Python int per byte."""
    import operator
    return bytes(map(operator.xor, data, itertools.cycle(mask)))


CANDIDATES = [plain, map_xor, int_little, int_big, int_chunked, translate_slices, translate_in_place, mask_payload]


def bench_masking(repeat: int) -> None:
    mask = os.urandom(4)
    print("## Unmasking: microseconds per payload (MiB/s)\n")
    sizes = [16, 4096, 1 << 20]
    print("| candidate | " + " | ".join(f"{s} B" for s in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    datas = {s: os.urandom(s) for s in sizes}
    for fn in CANDIDATES:
        cells = []
        for size in sizes:
            data = datas[size]
            if fn in (plain, map_xor) and size > 4096:
                cells.append("—")
                continue
            assert bytes(fn(mask, data)) == plain(mask, data), fn.__name__
            n = max(3, int(3e6 // (size + 300)))
            t = best_per_op(lambda k, fn=fn, data=data: [fn(mask, data) for _ in range(k)], n, repeat)
            cells.append(f"{t * 1e6:.2f} ({size / t / 2**20:.0f})")
        print(f"| `{fn.__name__}` | " + " | ".join(cells) + " |")
    print("\n## Crossover: microseconds per payload, ints against tables\n")
    print("| bytes | int_big | translate_in_place |")
    print("|---:|---:|---:|")
    for size in (16, 64, 128, 192, 256, 384, 512):
        data = os.urandom(size)
        cells = [best_per_op(lambda k, fn=fn, data=data: [fn(mask, data) for _ in range(k)], 20000, repeat)
                 for fn in (int_big, translate_in_place)]
        print(f"| {size} | {cells[0] * 1e6:.2f} | {cells[1] * 1e6:.2f} |")


def bench_messages(repeat: int) -> None:
    print("\n## Per message: microseconds (messages per CPU-second)\n")
    print("| path | 16 B | 4 KiB |")
    print("|---|---:|---:|")
    rows: dict[str, list[float]] = {}
    mask = os.urandom(4)
    for size in (16, 4096):
        text = "x" * size
        client_frame = encode_frame(0x81, text.encode(), mask)
        server_frame = encode_frame(0x81, text.encode())

        def ours_server(k, frame=client_frame, text=text):
            conn = WebSocketConnection(Role.SERVER)
            for _ in range(k):
                conn.receive_data(frame)
                event = conn.next_event()
                conn.send_text(event.data)  # type: ignore[union-attr]
            assert event == TextMessage(text)

        def ours_client_read(k, frame=server_frame, text=text):
            conn = WebSocketConnection(Role.CLIENT)
            for _ in range(k):
                conn.receive_data(frame)
                event = conn.next_event()
            assert event == TextMessage(text)

        rows.setdefault("evloop.ws server: receive_data + next_event + send_text", []).append(
            best_per_op(ours_server, 50000 if size == 16 else 10000, repeat))
        rows.setdefault("evloop.ws client: receive_data + next_event (unmasked)", []).append(
            best_per_op(ours_client_read, 50000 if size == 16 else 10000, repeat))
        try:
            from websockets.protocol import Protocol, Side
        except ImportError:
            continue

        payload = text.encode()

        def theirs(k, frame=client_frame, payload=payload):
            proto = Protocol(Side.SERVER, max_size=None)
            for _ in range(k):
                proto.receive_data(frame)
                (f,) = proto.events_received()
                proto.send_text(f.data)
                proto.data_to_send()
            assert f.data == payload

        try:
            import websockets.speedups  # noqa: F401
            name = "websockets Protocol (C speedups): receive_data + events_received + send_text + data_to_send"
        except ImportError:
            name = "websockets Protocol (pure Python): receive_data + events_received + send_text + data_to_send"
        rows.setdefault(name, []).append(best_per_op(theirs, 20000 if size == 16 else 5000, repeat))
    for name, cells in rows.items():
        print(f"| {name} | " + " | ".join(f"{t * 1e6:.2f} ({1 / t:,.0f})" for t in cells) + " |")
    base = [v for k, v in rows.items() if k.startswith("websockets")]
    if base:
        ours = rows["evloop.ws server: receive_data + next_event + send_text"]
        print("\nRatio websockets / evloop.ws (server path): "
              + ", ".join(f"{b / o:.2f}x ({s})" for b, o, s in zip(base[0], ours, ("16 B", "4 KiB"), strict=True)))


def main() -> None:
    repeat = 3 if "--quick" in sys.argv else 7
    print(f"Python {sys.version.split()[0]}, best of {repeat} runs, CPU time\n")
    bench_masking(repeat)
    bench_messages(repeat)


if __name__ == "__main__":
    main()
