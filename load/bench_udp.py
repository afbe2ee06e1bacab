#!/usr/bin/env python3
"""UDP echo side by side: datagrams echoed per CPU-second of the server, for evloop, asyncio and uvloop.

Run: .venv/bin/python load/bench_udp.py [--quick] [--rounds N] [--loops evloop,asyncio,uvloop]
                                        [--results-dir DIR]

The server (a datagram protocol whose ``datagram_received`` sends the
datagram back to its sender: evloop's ``listen_datagram``, asyncio's and
uvloop's ``create_datagram_endpoint``) runs in a child process of this script
pinned to one CPU, with the child machinery of ``load/bench_reactor.py`` (the
server reports its own CPU time, user + system, when asked over its stdin,
and stops at EOF), and with its echo scenario: this process, pinned to another
CPU, is a blocking-socket client with K connected UDP sockets doing M
ping-pong rounds of a 64-byte datagram: each round sends on every socket,
then reads every answer, so each socket has one datagram in flight, which
loopback never drops at that depth (a lost one fails the run by its socket
timeout rather than skew it).  The
figure is datagrams echoed per CPU-second of the server, which does not
depend on how fast the Python client is; per wall-second is reported too,
but the client bounds it.  Loops run in an order rotated each round; the
table gives the median over ``--rounds`` and the ratios of evloop to each
peer (above 1.00 means evloop is better).  It reports, never asserts; the
result is also written as JSON to ``load/results/`` (or ``--results-dir``).
"""

from __future__ import annotations

import asyncio
import platform
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import bench_reactor  # noqa: E402

from evloop import DatagramProtocol, listen_datagram  # noqa: E402

ALL_LOOPS = ("evloop", "asyncio", "uvloop")
SIZES = {
    "full": {"sockets": 16, "rounds": 5_000, "warmup_rounds": 200},
    "quick": {"sockets": 4, "rounds": 300, "warmup_rounds": 30},
}
SOCKET_TIMEOUT_S = 5.0


class EvloopUDPEcho(DatagramProtocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(data, addr)


class AsyncioUDPEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(data, addr)


def start_udp_echo(name: str, loop: Any) -> tuple[int, Any]:
    """The UDP echo server on ``loop``: its port, and what closes it."""
    if name == "evloop":
        transport = listen_datagram(loop, EvloopUDPEcho, "127.0.0.1", 0)
    else:
        transport, _ = loop.run_until_complete(
            loop.create_datagram_endpoint(AsyncioUDPEcho, local_addr=("127.0.0.1", 0)))
    return transport.get_extra_info("sockname")[1], transport.close


class UDPEchoServer(bench_reactor.EchoServer):
    script = Path(__file__).resolve()


def open_udp_client(port: int) -> socket.socket:
    """A UDP socket connected to the server (``bench_reactor.ping_pong``'s ``sendall`` sends one datagram)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(SOCKET_TIMEOUT_S)
    sock.connect(("127.0.0.1", port))
    return sock


def main() -> None:
    parser, args = bench_reactor.parse_arguments(__doc__.split("\n\n")[0])
    if args.serve_echo:
        bench_reactor.serve_echo(args.serve_echo, args.cpu, start_udp_echo)
        return
    notes: list[str] = []
    loops, uvloop_version = bench_reactor.chosen_loops(parser, args, notes)
    server_cpu, pinning = bench_reactor.pin_cpus(notes)

    mode = "quick" if args.quick else "full"
    sizes = SIZES[mode]
    per_round: dict[str, dict[str, list[float]]] = {}
    started = time.monotonic()
    for round_no in range(args.rounds):
        order = loops[round_no % len(loops):] + loops[:round_no % len(loops)]
        for name in order:
            result = bench_reactor.bench_echo(name, sizes["sockets"], sizes["rounds"], sizes["warmup_rounds"],
                                              server_cpu, server_class=UDPEchoServer, open_client=open_udp_client)
            for key, value in result.items():
                per_round.setdefault(key, {}).setdefault(name, []).append(value)
    elapsed = time.monotonic() - started
    medians = {key: {name: statistics.median(values) for name, values in by_loop.items()}
               for key, by_loop in per_round.items()}
    peers = [peer for peer in ("asyncio", "uvloop") if peer in loops and "evloop" in loops]
    ratios = {key: {peer: bench_reactor.ratio(key, "higher", medians[key]["evloop"], medians[key][peer])
                    for peer in peers} for key in ("echo_per_cpu_s", "echo_per_s")}

    print(f"UDP echo ({mode} sizes, median of {args.rounds} round(s), {elapsed:.1f} s)")
    print(f"python {platform.python_version()}, uvloop {uvloop_version or '-'}; {pinning}")
    print(f"{sizes['sockets']} sockets x {sizes['rounds']:,} round-trips of {len(bench_reactor.ECHO_MESSAGE)} bytes, one in flight each")
    print()
    header = f"{'':36s}" + "".join(f"{name:>12s}" for name in loops) + "".join(f"{'evloop/' + p:>16s}" for p in peers)
    print(header)
    print("-" * len(header))
    for key, label in (("echo_per_cpu_s", "datagrams echoed per server CPU-s"),
                       ("echo_per_s", "datagrams per s (client-bound)")):
        row = f"{label:36s}" + "".join(f"{medians[key][name]:>12,.0f}" for name in loops)
        row += "".join(f"{ratios[key][peer]:>15.2f}x" for peer in peers)
        print(row)
    print()
    print("ratios: above 1.00x means evloop is better")
    for note in notes:
        print(f"note: {note}")

    bench_reactor.save_result(args.results_dir, "bench_udp", {
        "uvloop": uvloop_version,
        "pinning": pinning,
        "mode": mode,
        "sizes": sizes,
        "rounds": args.rounds,
        "loops": loops,
        "elapsed_s": round(elapsed, 2),
        "per_round": per_round,
        "medians": medians,
        "ratios": ratios,
        "notes": notes,
    })


if __name__ == "__main__":
    main()
