#!/usr/bin/env python3
"""Several evloop-demo instances behind a real HAProxy, load-tested with locust.

    python load/run_haproxy.py [-n INSTANCES] [-u USERS] [-r RATE] [-t TIME] [--kill-one]
                               [--kill-after S] [-- EXTRA EVLOOP-DEMO OPTIONS, e.g. --workers 2]

Steps: start INSTANCES ``evloop-demo --port 0`` processes (as they would run on
separate hosts; each logs the URL it got); bind the front socket on port 0 and
hand it to HAProxy (``bind fd@N``) with ``load/haproxy/haproxy.cfg`` filled in;
wait until HAProxy's health checks on ``/healthz`` pass for every instance
(read from its stats socket); run ``load/locustfile.py`` through HAProxy,
headless and bounded.  With ``--kill-one``, one instance is SIGKILLed after
``--kill-after`` seconds: HAProxy retries the requests that instance refused
or dropped on the others, marks it DOWN within about a second, and the run
goes on.  After locust, 200 more requests through HAProxy must all succeed.

Prints the locust summary, HAProxy's view of each instance (state, sessions)
and how many requests each instance logged.  Exit 0 when the run passed (no
failures without --kill-one; with it, failures at most one per user, i.e. the
requests in flight on the killed instance, and the run recovered); 1 when it
failed; 2 when it could not be made.  Loopback only; stops everything it
started, by pid.  HAProxy comes from Debian's packages (apt-get) when missing.
"""

import argparse
import datetime
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run_load  # noqa: E402  (the load engineer's runner: server start/stop, locust stats)

TEMPLATE = HERE / "haproxy" / "haproxy.cfg"


def front_socket(host="127.0.0.1"):
    """A listening socket on port 0 for HAProxy to inherit (inheritable, so pass_fds can hand it on)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def render_config(bind, servers, stats_socket, template=TEMPLATE):
    """The HAProxy configuration: ``bind`` an int fd or "host:port"; ``servers`` [(host, port)]."""
    text = Path(template).read_text()
    lines = "\n".join(f"    server evloop{i} {host}:{port}" for i, (host, port) in enumerate(servers))
    return (text.replace("@@BIND@@", f"fd@{bind}" if isinstance(bind, int) else bind)
                .replace("@@STATS_SOCKET@@", stats_socket)
                .replace("@@SERVERS@@", lines))


def haproxy_stats(stats_socket):
    """``show stat`` from the stats socket as a list of dicts (one per proxy/server line)."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(2)
        s.connect(stats_socket)
        s.sendall(b"show stat\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    lines = data.decode().splitlines()
    if not lines or not lines[0].startswith("# "):
        return []
    header = lines[0][2:].split(",")
    return [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]


def servers_of(stats):
    return [row for row in stats if row.get("pxname") == "evloop" and row.get("svname") not in ("BACKEND", "FRONTEND")]


def wait_backends_up(stats_socket, count, timeout_s=20.0, proc=None):
    """Wait until ``count`` servers passed a health check (``check_status`` L7OK)."""
    deadline = time.monotonic() + timeout_s
    rows = []
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"haproxy exited with status {proc.returncode}")
        try:
            rows = servers_of(haproxy_stats(stats_socket))
        except OSError:
            rows = []
        if sum(1 for r in rows if r.get("check_status") == "L7OK" and r.get("status", "").startswith("UP")) >= count:
            return rows
        time.sleep(0.1)  # HAProxy's checks run on its own schedule: poll its stats
    raise RuntimeError(f"HAProxy did not report {count} healthy instances in {timeout_s} s: "
                       f"{[(r.get('svname'), r.get('status'), r.get('check_status')) for r in rows]}")


def find_haproxy(install=True):
    path = shutil.which("haproxy") or next((p for p in ("/usr/sbin/haproxy",) if os.path.exists(p)), None)
    if path or not install:
        return path
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    print("haproxy is missing: apt-get install -y haproxy", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True, env=env, timeout=300)
        subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "haproxy"], check=True, env=env, timeout=300)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"could not install haproxy: {exc}", file=sys.stderr)
        return None
    return shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)


def parse_args(argv):
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    else:
        extra = []
    p = argparse.ArgumentParser(description="Load-test several evloop-demo instances behind HAProxy.",
                                epilog="Options after -- go to every evloop-demo unchanged.")
    p.add_argument("-n", "--instances", type=int, default=3)
    p.add_argument("-u", "--users", type=int, default=30)
    p.add_argument("-r", "--spawn-rate", type=float, default=10)
    p.add_argument("-t", "--run-time", default="20s")
    p.add_argument("--kill-one", action="store_true", help="SIGKILL one instance in the middle of the run")
    p.add_argument("--kill-after", type=float, default=None, metavar="S",
                   help="seconds into the run to kill it (default: half the run time)")
    p.add_argument("--keepalive-timeout", type=float, default=30.0,
                   help="evloop's idle timeout, longer than HAProxy's (default: %(default)s)")
    p.add_argument("--results-dir", type=Path, default=HERE / "results")
    p.add_argument("--startup-timeout", type=float, default=20.0)
    p.add_argument("--no-install", action="store_true", help="do not apt-get install haproxy when missing")
    args = p.parse_args(argv)
    args.extra = extra
    return args


def count_requests(log_path):
    """Requests an instance logged (access log lines)."""
    try:
        return sum(1 for line in Path(log_path).read_text(errors="replace").splitlines() if '" 2' in line
                   or '" 3' in line or '" 4' in line or '" 5' in line)
    except OSError:
        return 0


def verify(url, n=200):
    failures = 0
    for _ in range(n):
        try:
            with urllib.request.urlopen(url + "/", timeout=5) as resp:
                if resp.status != 200 or resp.read() != b"Hello, World!":
                    failures += 1
        except OSError:
            failures += 1
    return failures


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    run_s = run_load.run_time_seconds(args.run_time)
    haproxy = find_haproxy(install=not args.no_install)
    if haproxy is None:
        print("error: haproxy is not available", file=sys.stderr)
        return 2
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    prefix = args.results_dir / f"haproxy-{stamp}"
    workdir = Path(tempfile.mkdtemp(prefix="evloop-haproxy-"))
    root = run_load.make_static_root(workdir)
    instances = []   # (process, url, log path)
    haproxy_proc = None
    kill_timer = None
    killed = {}
    try:
        for i in range(args.instances):
            cmd = [sys.executable, "-m", "evloop.demo", "--port", "0", "--root", str(root),
                   "--keepalive-timeout", str(args.keepalive_timeout), "--proxy-headers", *args.extra]
            log_path = Path(f"{prefix}-instance{i}.log")
            proc, url = run_load.start_server(cmd, log_path, args.startup_timeout)
            instances.append((proc, url, log_path))
            run_load.wait_healthy(url, proc, args.startup_timeout)
            print(f"instance {i}: pid {proc.pid} at {url}", flush=True)

        front = front_socket()
        front_url = f"http://127.0.0.1:{front.getsockname()[1]}"
        stats_socket = str(workdir / "haproxy.sock")
        servers = [(u.split("//")[1].rsplit(":", 1)[0], int(u.rsplit(":", 1)[1])) for _, u, _ in instances]
        cfg = workdir / "haproxy.cfg"
        cfg.write_text(render_config(front.fileno(), servers, stats_socket))
        shutil.copy(cfg, f"{prefix}-haproxy.cfg")
        with open(f"{prefix}-haproxy.log", "wb") as hlog:
            haproxy_proc = subprocess.Popen([haproxy, "-db", "-f", str(cfg)], stdout=hlog, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, pass_fds=[front.fileno()])
        front.close()
        wait_backends_up(stats_socket, len(instances), args.startup_timeout, haproxy_proc)
        print(f"haproxy pid {haproxy_proc.pid} at {front_url}: {len(instances)} instances healthy; "
              f"locust: {args.users} users, {args.run_time}", flush=True)

        if args.kill_one:
            victim_proc, victim_url, _ = instances[0]
            kill_after = args.kill_after if args.kill_after is not None else run_s / 2

            def kill_victim():
                killed["at"] = time.monotonic()
                os.kill(victim_proc.pid, signal.SIGKILL)  # our own child
                print(f"killed instance 0 (pid {victim_proc.pid}, {victim_url}) at t+{kill_after:g} s", flush=True)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    try:
                        row = servers_of(haproxy_stats(stats_socket))[0]
                    except (OSError, IndexError):
                        break
                    if row.get("status", "").startswith("DOWN"):
                        killed["down_after_s"] = time.monotonic() - killed["at"]
                        print(f"haproxy marked it DOWN after {killed['down_after_s']:.2f} s", flush=True)
                        return
                    time.sleep(0.05)

            # Locust's spawn takes users/rate seconds; count from its start.
            kill_timer = threading.Timer(kill_after, kill_victim)

        locust_cmd = [
            sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--headless",
            "-u", str(args.users), "-r", str(args.spawn_rate), "-t", args.run_time, "--host", front_url,
            "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING", "--static-root", str(root),
        ]
        if kill_timer is not None:
            kill_timer.start()
        locust = subprocess.run(locust_cmd, cwd=HERE.parent, stdin=subprocess.DEVNULL, timeout=run_s + 60)
        if kill_timer is not None:
            kill_timer.join(timeout=15)
        after = verify(front_url)
        stats = servers_of(haproxy_stats(stats_socket))
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if kill_timer is not None:
            kill_timer.cancel()
        if haproxy_proc is not None:
            run_load.stop_server(haproxy_proc, 5.0)
        statuses = [run_load.stop_server(proc, 10.0) for proc, _, _ in instances]
        shutil.rmtree(workdir, ignore_errors=True)

    if not Path(f"{prefix}_stats.csv").exists():
        print(f"locust exited with status {locust.returncode} and wrote no stats", file=sys.stderr)
        return 2
    rows = run_load.read_stats(prefix)
    total = next((r for r in rows if r["Name"] == "Aggregated"), None)
    requests = int(total["Request Count"]) if total else 0
    failures = int(total["Failure Count"]) if total else 0
    rps = float(total["Requests/s"]) if total else 0.0
    print()
    print(f"through haproxy: {requests} requests, {failures} failures, {rps:.1f} req/s")
    for row in stats:
        print(f"  {row['svname']}: {row['status']}, {row['stot']} sessions, check {row.get('check_status')}, "
              f"{row.get('wretr', '0')} retries, {row.get('wredis', '0')} redispatches")
    for i, (_, url, log_path) in enumerate(instances):
        print(f"  instance {i} ({url}): {count_requests(log_path)} requests logged, exit status {statuses[i]}")
    for line in run_load.read_failures(prefix):
        print(f"  failure: {line}")
    print(f"after the run: {after} of 200 requests through haproxy failed")
    reasons = []
    if requests == 0:
        reasons.append("no request was made")
    allowed = args.users if args.kill_one else 0
    if failures > allowed:
        reasons.append(f"{failures} failures > {allowed} allowed")
    if after:
        reasons.append(f"{after} requests failed after the run: not recovered")
    if args.kill_one and "down_after_s" not in killed:
        reasons.append("haproxy never marked the killed instance DOWN")
    if reasons:
        print("FAIL: " + "; ".join(reasons))
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
