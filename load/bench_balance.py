#!/usr/bin/env python3
"""``--balance shared`` against ``--balance reuseport``: the native API's hello with ``--workers``, side by side.

    python load/bench_balance.py                       # 2 workers, 5 pairs of 3 s runs per scenario
    python load/bench_balance.py --workers 2 --pairs 9 --duration 5

``load/bench/run.py`` compares servers; this compares two settings of one,
with its machinery (``Server``, ``measure_wrk``: the servers on CPU 0, wrk on
CPU 1, CPU time of the whole process tree from ``/proc``).  The two modes run
in pairs, in alternating order, each on a fresh server, and the report gives
the median of each mode and the median of the per-pair ratios: on a machine
others share, a pair's two runs see about the same background load, so the
ratio is steadier than either figure.  Both workers share CPU 0, so this
measures what each mode costs per request (the wake-ups of a shared socket),
not how well it spreads load over cores; ``spread`` shows that instead: 50
keep-alive connections opened at once, and how many each worker took.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "bench"))
import run as bench  # noqa: E402  (load/bench/run.py)

MODES = ("reuseport", "shared")
SCENARIOS = ("hello", "hello-close")


def spread(port: int, conns: int = 50) -> list[int]:
    """Open ``conns`` keep-alive connections at once; how many each worker took, most first."""
    clients = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(conns)]
    for client in clients:
        client.connect()
    taken: collections.Counter[int] = collections.Counter()
    for client in clients:
        client.request("GET", "/inspect")
        taken[json.loads(client.getresponse().read())["worker"]["id"]] += 1
    for client in clients:
        client.close()
    return sorted(taken.values(), reverse=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--duration", type=int, default=3, help="seconds per measured wrk run")
    parser.add_argument("--python", default=sys.executable, help="interpreter that runs evloop-demo")
    args = parser.parse_args(argv)
    bench.PIN = (os.cpu_count() or 1) >= 2
    if bench.PIN:
        os.sched_setaffinity(0, {int(bench.CLIENT_CPU)})
    env = dict(os.environ, PYTHONPATH=str(bench.REPO))
    workdir = Path(tempfile.mkdtemp(prefix="evloop-balance-"))
    results: dict[tuple[str, str], list[dict]] = collections.defaultdict(list)
    spreads: dict[str, list[list[int]]] = collections.defaultdict(list)
    with open(workdir / "servers.log", "ab") as log:
        for pair in range(args.pairs):
            for scen in SCENARIOS:
                order = MODES if pair % 2 == 0 else MODES[::-1]
                for mode in order:
                    argv = [args.python, "-m", "evloop.demo", "--port", "0", "--backlog", "2048",
                            "--workers", str(args.workers), "--balance", mode]
                    server = bench.Server(mode, argv, env, log)
                    try:
                        server.wait_ready()
                        results[(scen, mode)].append(
                            bench.measure_wrk(server, bench.SCENARIOS[scen][2], args.duration, 1, workdir))
                        if scen == "hello":
                            spreads[mode].append(spread(server.port))
                    finally:
                        server.stop()
    print(f"{args.workers} workers, {args.pairs} pairs of {args.duration} s runs, servers on CPU "
          f"{bench.SERVER_CPU if bench.PIN else 'any'}; access log on (the default), to {workdir}/servers.log\n")
    print("| scenario | mode | req/s | req/CPU-s | shared/reuseport req/CPU-s (median of pairs) | "
          "CPU 0 taken by others | errors |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for scen in SCENARIOS:
        ratios = [s["per_cpu"] / r["per_cpu"] for r, s in zip(results[(scen, "reuseport")],
                                                              results[(scen, "shared")], strict=True)]
        for mode in MODES:
            runs = results[(scen, mode)]
            others = [r["cpu0_others"] for r in runs if r["cpu0_others"] is not None]
            print(f"| {scen} | {mode} | {statistics.median(r['rate'] for r in runs):,.0f} | "
                  f"{statistics.median(r['per_cpu'] for r in runs):,.0f} | "
                  f"{f'{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})' if mode == 'shared' else ''}"
                  f" | {f'{statistics.median(others):.0%}' if others else '-'} | {sum(r['errors'] for r in runs)} |")
    print("\n50 keep-alive connections opened at once, taken per worker (each pair's run):")
    for mode in MODES:
        print(f"- {mode}: {', '.join('/'.join(map(str, s)) for s in spreads[mode])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
