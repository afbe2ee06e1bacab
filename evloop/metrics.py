"""Metrics without I/O: the per-request counts, snapshots of them, and the Prometheus text exposition.

Theory of operation.  A server process counts into one ``RequestCounts``
(plain ints and lists: a request is a few additions, see ``response_done``)
and, once a second and at each scrape, takes a *snapshot*: a JSON-able dict
of every figure it has (counters, gauges, the recent history the status page
draws).  Everything that reads metrics reads snapshots: ``exposition``
renders one or several of them as Prometheus text (format 0.0.4), each
snapshot of a worker adding a ``worker="N"`` label to its series.  A
snapshot is what a worker publishes for the others (``evloop.workers.
metrics_table``), so one process and a group of workers share one
rendering.

Counters of the workers a slot had before (replaced by SIGHUP or
``--max-requests``) are folded into a *retired* snapshot of that slot
(``fold``): the slot's series never go backwards while its worker changes.

No HTTP and no clock here: the caller gives the times.
"""

from __future__ import annotations

import math
from bisect import bisect_left as _bisect_left
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "RequestCounts", "DURATION_BUCKETS_S", "METHODS", "STATUS_CLASSES", "TIMEOUT_KINDS", "BACKOFF_KINDS",
    "exposition", "fold", "CONTENT_TYPE",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# The request-duration histogram's upper bounds, in seconds (Prometheus's
# default buckets, with 0.5 ms and 1 ms added: most responses of an event
# loop take well under 5 ms).
DURATION_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Methods counted by name; any other token is "other", so that a client
# sending random methods cannot grow the number of series.
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE")
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
# A connection's deadlines (evloop.server.phases, and a WebSocket's: server/ws.py): which expired.
TIMEOUT_KINDS = ("header", "body", "keepalive", "send", "handler", "linger", "ws_idle", "ws_ping", "ws_send",
                 "ws_close")
# Why accepting paused: descriptors ran out (EMFILE, ENFILE), or --max-connections.
BACKOFF_KINDS = ("descriptors", "max_connections")


class RequestCounts:
    """What a server process counts per response; read by ``counters()``.

    ``by_method`` maps a method to six counts, indexed by ``status // 100``
    (index 0 unused: statuses are 100-599); ``other`` is the same for any
    other method.  ``durations`` counts responses per bucket of
    ``DURATION_BUCKETS_S`` (the last entry: above every bound).
    """

    __slots__ = ("by_method", "other", "durations", "duration_sum_s", "bytes_in", "bytes_out", "timeouts",
                 "websockets_opened")

    def __init__(self) -> None:
        self.by_method: dict[str, list[int]] = {method: [0] * 6 for method in METHODS}
        self.other = [0] * 6
        self.durations = [0] * (len(DURATION_BUCKETS_S) + 1)
        self.duration_sum_s = 0.0
        self.bytes_in = 0
        self.bytes_out = 0
        self.timeouts = dict.fromkeys(TIMEOUT_KINDS, 0)
        self.websockets_opened = 0

    def response_done(self, method: str, status: int, body_bytes: int, duration_s: float) -> None:
        """One response sent: its method, status, body bytes and duration (from its head's arrival)."""
        counts = self.by_method.get(method)
        if counts is None:
            counts = self.other
        counts[status // 100] += 1
        self.durations[_bisect_left(DURATION_BUCKETS_S, duration_s)] += 1
        self.duration_sum_s += duration_s
        self.bytes_out += body_bytes

    def counters(self) -> dict[str, Any]:
        """The counts as a snapshot's ``counters`` part (JSON-able; see ``exposition``)."""
        requests: dict[str, int] = {}
        for method, counts in (*self.by_method.items(), ("other", self.other)):
            for index, name in enumerate(STATUS_CLASSES, 1):
                if counts[index]:
                    requests[f"{method} {name}"] = counts[index]
        return {
            "requests": requests,
            "durations": list(self.durations),
            "duration_sum_s": self.duration_sum_s,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "timeouts": dict(self.timeouts),
            "websockets_opened": self.websockets_opened,
        }


def fold(into: dict[str, Any], counters: Mapping[str, Any]) -> None:
    """Add a snapshot's ``counters`` to ``into`` (a retired slot's totals): numbers, lists and maps alike."""
    for key, value in counters.items():
        if isinstance(value, dict):
            fold(into.setdefault(key, {}), value)
        elif isinstance(value, list):
            old = into.get(key)
            into[key] = [a + b for a, b in zip(old, value, strict=True)] if old else list(value)
        else:
            into[key] = into.get(key, 0) + value


# ------------------------------------------------------------------ exposition
# (name, type, help): the families, in the order they are written.
_FAMILIES = (
    ("evloop_http_requests_total", "counter", "HTTP responses sent, by request method and status class."),
    ("evloop_http_request_duration_seconds", "histogram",
     "From the read that completed a request's head to its last response byte queued."),
    ("evloop_http_received_bytes_total", "counter", "Bytes read from HTTP/1.1 clients (heads and bodies)."),
    ("evloop_http_sent_body_bytes_total", "counter", "Response body bytes sent (as the access log counts them)."),
    ("evloop_connections", "gauge", "Open connections, by phase (HTTP/1.1 phases, or websocket)."),
    ("evloop_connections_accepted_total", "counter", "Connections accepted."),
    ("evloop_websocket_connections_total", "counter", "WebSocket connections opened (101 sent)."),
    ("evloop_accept_backoffs_total", "counter",
     "Times accepting paused: descriptors ran out (EMFILE/ENFILE), or --max-connections was reached."),
    ("evloop_timeouts_total", "counter", "Connection deadlines that expired, by kind."),
    ("evloop_loop_lag_seconds", "gauge",
     "The worst delay between a timer's deadline and the loop pass that ran it, over the last second."),
    ("evloop_loop_passes_total", "counter", "Passes of the event loop."),
    ("evloop_loop_callbacks_total", "counter", "Callbacks and I/O events the event loop ran."),
    ("evloop_slow_callbacks_total", "counter",
     "Callbacks that held the loop longer than --slow-callback (counted only when it is set)."),
    ("evloop_process_start_time_seconds", "gauge", "When the process started its server, Unix time."),
)


def exposition(snapshots: Iterable[Mapping[str, Any]]) -> str:
    """Prometheus text (format 0.0.4) for ``snapshots``.

    A snapshot with a ``worker`` (not None) labels its series ``worker="N"``;
    one without is the lone process's.  Counters come from ``counters``,
    gauges from ``gauges`` (absent: the snapshot is a retired slot's
    totals, with no gauges).
    """
    samples: dict[str, list[str]] = {name: [] for name, _, _ in _FAMILIES}
    for snapshot in snapshots:
        worker = snapshot.get("worker")
        base = "" if worker is None else f'worker="{int(worker)}"'
        _add_samples(samples, snapshot, base)
    lines = []
    for name, kind, help_text in _FAMILIES:
        if not samples[name]:
            continue
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(samples[name])
    return "\n".join(lines) + "\n"


def _add_samples(samples: dict[str, list[str]], snapshot: Mapping[str, Any], base: str) -> None:
    counters = snapshot.get("counters") or {}
    for key, value in sorted((counters.get("requests") or {}).items()):
        method, _, status_class = key.partition(" ")
        samples["evloop_http_requests_total"].append(
            _sample("evloop_http_requests_total", base, value, method=method, status=status_class))
    durations = counters.get("durations")
    if durations:
        name = "evloop_http_request_duration_seconds"
        cumulative = 0
        for bound, count in zip((*DURATION_BUCKETS_S, math.inf), durations, strict=True):
            cumulative += count
            # A bound is written as a float ("10.0"), as the client libraries write it.
            samples[name].append(_sample(name + "_bucket", base, cumulative,
                                         le="+Inf" if bound == math.inf else repr(float(bound))))
        samples[name].append(_sample(name + "_sum", base, counters.get("duration_sum_s", 0.0)))
        samples[name].append(_sample(name + "_count", base, cumulative))
    for name, key in (("evloop_http_received_bytes_total", "bytes_in"),
                      ("evloop_http_sent_body_bytes_total", "bytes_out"),
                      ("evloop_connections_accepted_total", "accepted"),
                      ("evloop_websocket_connections_total", "websockets_opened"),
                      ("evloop_loop_passes_total", "loop_passes"),
                      ("evloop_loop_callbacks_total", "loop_callbacks"),
                      ("evloop_slow_callbacks_total", "slow_callbacks")):
        if key in counters:
            samples[name].append(_sample(name, base, counters[key]))
    for kind, value in (counters.get("timeouts") or {}).items():
        samples["evloop_timeouts_total"].append(_sample("evloop_timeouts_total", base, value, kind=kind))
    for kind, value in (counters.get("backoffs") or {}).items():
        samples["evloop_accept_backoffs_total"].append(
            _sample("evloop_accept_backoffs_total", base, value, reason=kind))
    gauges = snapshot.get("gauges")
    if gauges is None:
        return
    for state, value in sorted(gauges.get("connections", {}).items()):
        samples["evloop_connections"].append(_sample("evloop_connections", base, value, state=state))
    if "loop_lag_s" in gauges:
        samples["evloop_loop_lag_seconds"].append(_sample("evloop_loop_lag_seconds", base, gauges["loop_lag_s"]))
    if "started" in gauges:
        samples["evloop_process_start_time_seconds"].append(
            _sample("evloop_process_start_time_seconds", base, gauges["started"]))


def _sample(name: str, base: str, value: float, **labels: str) -> str:
    parts = [base] if base else []
    parts.extend(f'{key}="{_escape(text)}"' for key, text in labels.items())
    return f"{name}{{{','.join(parts)}}} {_number(value)}" if parts else f"{name} {_number(value)}"


def _escape(text: str) -> str:
    """A label value as the text format writes it: backslash, double quote and newline escaped."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    if isinstance(value, int) or float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))
