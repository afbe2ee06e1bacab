#!/usr/bin/env python3
"""Run the locust scenarios against a freshly started evloop-demo, and judge the result.

    python load/run_load.py [-u USERS] [-r RATE] [-t TIME] [--max-p95-ms MS] [--min-rps N]
                            [-- EXTRA EVLOOP-DEMO OPTIONS, e.g. --workers 2]

Steps: create a static root with known files; start ``evloop-demo --port 0 --root DIR``
(plus the extra options) and read the URL it logs on start; wait for ``/healthz``;
run locust headless and bounded in a subprocess, writing ``--csv`` and ``--html``
reports under ``load/results/``; stop the server by its pid (SIGTERM, then SIGKILL
after ``--stop-timeout``); read the stats CSV and print a short summary.

Exit status 0 when every request succeeded, the 95th percentile of every endpoint
(except ``/delay``, whose latency is chosen by the client) is within ``--max-p95-ms``,
the aggregate request rate is at least ``--min-rps``, and the server exited with
status 0 on SIGTERM; 1 otherwise; 2 when the run itself could not be made.

Standard library only: locust runs in its own process, with its own gevent.
"""

import argparse
import csv
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
URL_RE = re.compile(r"(http://(?:\[[0-9A-Fa-f:.]+\]|[^\s/:\[\]]+):\d+)")


def parse_args(argv):
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    else:
        extra = []
    p = argparse.ArgumentParser(
        description="Load-test evloop-demo with locust.",
        epilog="Options after -- go to evloop-demo unchanged.",
    )
    p.add_argument("-u", "--users", type=int, default=50, help="peak number of locust users")
    p.add_argument("-r", "--spawn-rate", type=float, default=10, help="users started per second")
    p.add_argument("-t", "--run-time", default="30s", help="locust run time, e.g. 30s, 2m")
    p.add_argument("--max-p95-ms", type=float, default=500.0,
                   help="fail when an endpoint's 95th percentile exceeds this (default: %(default)s)")
    p.add_argument("--min-rps", type=float, default=0.0,
                   help="fail when the aggregate requests/s is below this (default: %(default)s)")
    p.add_argument("--results-dir", type=Path, default=HERE / "results",
                   help="where the CSV/HTML reports go (default: load/results)")
    p.add_argument("--server-cmd", default=os.environ.get("EVLOOP_LOAD_SERVER_CMD"),
                   help="command that starts the server (default: $EVLOOP_LOAD_SERVER_CMD, else "
                        "evloop-demo next to this Python, else python -m evloop.demo)")
    p.add_argument("--default-root", action="store_true",
                   help="serve the bundled static folder instead of a generated one")
    p.add_argument("--startup-timeout", type=float, default=20.0, help="seconds to wait for the server")
    p.add_argument("--stop-timeout", type=float, default=10.0,
                   help="seconds between SIGTERM and SIGKILL when stopping the server")
    p.add_argument("--summary-json", type=Path, default=None,
                   help="also write the summary as JSON to this file")
    args = p.parse_args(argv)
    args.extra = extra
    return args


def run_time_seconds(text):
    """Locust's run-time syntax (``1h2m3s`` or plain seconds) in seconds."""
    if text.isdigit():
        return int(text)
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    if not match or not any(match.groups()):
        raise SystemExit(f"bad --run-time {text!r}")
    h, m, s = (int(g or 0) for g in match.groups())
    return h * 3600 + m * 60 + s


def server_command(args):
    if args.server_cmd:
        return args.server_cmd.split()
    script = Path(sys.executable).parent / "evloop-demo"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "evloop.demo"]


def make_static_root(parent):
    """Create a static root with known files of a few kinds and sizes."""
    root = parent / "static-root"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(
        "<!doctype html>\n<title>evloop load test</title>\n<p>Hello from the load test.</p>\n"
    )
    (root / "assets" / "style.css").write_text("body { font-family: sans-serif; }\n" * 40)
    (root / "assets" / "data.bin").write_bytes(os.urandom(200 * 1024))
    (root / "assets" / "empty.txt").write_bytes(b"")
    return root


def start_server(cmd, log_path, timeout_s):
    """Start the server; return (process, base URL) once its URL is logged."""
    log = open(log_path, "wb")
    env = dict(os.environ)
    # python -m evloop.demo from a checkout works without installing it.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
    log.close()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        match = URL_RE.search(text)
        if match:
            return proc, match.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    stop_server(proc, 2.0)
    tail = log_path.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"the server logged no URL within {timeout_s} s "
                       f"(exit status {proc.returncode}); its log ends:\n{tail}")


def wait_healthy(url, proc, timeout_s):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"{url}/healthz not ready within {timeout_s} s: {last}")


def _children(pid):
    """Direct and indirect children of ``pid`` as (pid, start time) pairs."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            with open(f"/proc/{parent}/task/{parent}/children") as f:
                kids = [int(k) for k in f.read().split()]
        except OSError:
            kids = []
        for kid in kids:
            found.append((kid, _start_time(kid)))
            todo.append(kid)
    return found


def _start_time(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return None if fields[0] == "Z" else int(fields[19])  # a zombie is gone already
    except (OSError, IndexError, ValueError):
        return None


def stop_server(proc, timeout_s):
    """SIGTERM, then SIGKILL after ``timeout_s``; return the exit status (None if killed).

    Worker processes still alive after their parent is gone are killed too, by pid
    (checked against their start time, so a reused pid is never signalled).
    """
    if proc.poll() is not None:
        return proc.returncode
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGTERM)
    try:
        status = proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout_s)
        status = None
    deadline = time.monotonic() + 2.0
    for pid, started in workers:
        while _start_time(pid) == started and time.monotonic() < deadline:
            time.sleep(0.05)
        if started is not None and _start_time(pid) == started:
            os.kill(pid, signal.SIGKILL)
            status = None if status == 0 else status
    return status


def read_stats(csv_prefix):
    """Return the rows of locust's ``<prefix>_stats.csv`` as dicts."""
    with open(f"{csv_prefix}_stats.csv", newline="") as f:
        return list(csv.DictReader(f))


def read_failures(csv_prefix, limit=5):
    path = Path(f"{csv_prefix}_failures.csv")
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    rows.sort(key=lambda r: -int(r.get("Occurrences") or 0))
    return [f"{r['Occurrences']}x {r['Method']} {r['Name']}: {r['Error']}" for r in rows[:limit]]


def _num(row, key):
    value = row.get(key, "")
    try:
        return float(value)
    except ValueError:
        return None


def judge(rows, args, server_status):
    """Return (summary dict, list of reasons the run failed)."""
    total = next((r for r in rows if r["Name"] == "Aggregated"), None)
    reasons = []
    if total is None:
        return {}, ["locust wrote no Aggregated row"]
    requests = int(total["Request Count"])
    failures = int(total["Failure Count"])
    rps = _num(total, "Requests/s") or 0.0
    endpoints = []
    worst = (0.0, "")
    for row in rows:
        if row["Name"] == "Aggregated":
            continue
        p95 = _num(row, "95%")
        endpoints.append({
            "method": row["Type"], "name": row["Name"], "requests": int(row["Request Count"]),
            "failures": int(row["Failure Count"]), "p50_ms": _num(row, "50%"), "p95_ms": p95,
            "p99_ms": _num(row, "99%"),
        })
        if p95 is not None and not row["Name"].startswith("/delay") and p95 > worst[0]:
            worst = (p95, f"{row['Type']} {row['Name']}")
    if requests == 0:
        reasons.append("no request was made")
    if failures:
        reasons.append(f"{failures} of {requests} requests failed")
    if worst[0] > args.max_p95_ms:
        reasons.append(f"p95 of {worst[1]} is {worst[0]:.0f} ms > {args.max_p95_ms:g} ms")
    if rps < args.min_rps:
        reasons.append(f"{rps:.1f} requests/s < {args.min_rps:g}")
    if server_status != 0:
        reasons.append(f"the server exited with status {server_status} on SIGTERM"
                       if server_status is not None else "the server had to be killed")
    summary = {
        "requests": requests, "failures": failures, "rps": rps,
        "p50_ms": _num(total, "50%"), "p95_ms": _num(total, "95%"), "p99_ms": _num(total, "99%"),
        "worst_p95_ms": worst[0], "worst_p95_endpoint": worst[1],
        "server_exit_status": server_status, "endpoints": endpoints,
    }
    return summary, reasons


def _option_value(argv, name):
    """The value of ``name VALUE`` or ``name=VALUE`` in ``argv``, else None."""
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg[len(name) + 1:]
    return None


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    run_s = run_time_seconds(args.run_time)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    prefix = args.results_dir / stamp
    workdir = Path(tempfile.mkdtemp(prefix="evloop-load-"))
    cmd = server_command(args) + ["--port", "0"]
    given_root = _option_value(args.extra, "--root")
    locust_root = []
    if given_root:
        locust_root = ["--static-root", given_root]
    elif not args.default_root:
        root = make_static_root(workdir)
        cmd += ["--root", str(root)]
        locust_root = ["--static-root", str(root)]
    cmd += args.extra

    print(f"starting: {' '.join(cmd)}", flush=True)
    proc = None
    try:
        proc, url = start_server(cmd, Path(f"{prefix}-server.log"), args.startup_timeout)
        wait_healthy(url, proc, args.startup_timeout)
        print(f"server pid {proc.pid} at {url}; locust: {args.users} users, "
              f"{args.spawn_rate:g}/s, {args.run_time}", flush=True)
        locust_cmd = [
            sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"),
            "--headless", "-u", str(args.users), "-r", str(args.spawn_rate),
            "-t", args.run_time, "--host", url,
            "--csv", str(prefix), "--html", f"{prefix}.html", "--only-summary",
            "--loglevel", "WARNING", *locust_root,
        ]
        try:
            locust = subprocess.run(locust_cmd, cwd=REPO, stdin=subprocess.DEVNULL,
                                    timeout=run_s + 60)
        except subprocess.TimeoutExpired:
            print("locust did not finish in time", file=sys.stderr)
            return 2
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        status = stop_server(proc, args.stop_timeout) if proc is not None else None
        shutil.rmtree(workdir, ignore_errors=True)

    if not Path(f"{prefix}_stats.csv").exists():
        print(f"locust exited with status {locust.returncode} and wrote no stats", file=sys.stderr)
        return 2
    summary, reasons = judge(read_stats(prefix), args, status)
    summary["reports"] = {"csv": f"{prefix}_stats.csv", "html": f"{prefix}.html",
                          "server_log": f"{prefix}-server.log"}
    summary["ok"] = not reasons
    summary["reasons"] = reasons
    if args.summary_json:
        args.summary_json.write_text(json.dumps(summary, indent=1))

    print()
    print(f"requests {summary['requests']}, failures {summary['failures']}, "
          f"{summary['rps']:.1f} req/s, p50 {summary['p50_ms']:g} ms, p95 {summary['p95_ms']:g} ms, "
          f"worst endpoint p95 {summary['worst_p95_ms']:g} ms ({summary['worst_p95_endpoint']}, "
          f"/delay excluded)")
    print(f"reports: {prefix}_stats.csv, {prefix}.html; server log: {prefix}-server.log")
    for line in read_failures(prefix):
        print(f"  failure: {line}")
    if reasons:
        print("FAIL: " + "; ".join(reasons))
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
