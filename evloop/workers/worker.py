"""One serving process: a ``Server`` on a reactor, stopped by signals.

Theory of operation.  A ``Worker`` is what every evloop server process runs:
the single process of ``serve(workers=1)`` and each process a ``Supervisor``
forks.  It opens the listening socket(s), serves until a stop signal, drains
and returns an exit status.  Its life is one small machine (``WorkerPhase``,
every transition in ``_TRANSITIONS``):

    STARTING          --listening-->  SERVING
    SERVING           --stop------->  DRAINING   SIGTERM, SIGQUIT, a first SIGINT; orphaned
    SERVING, DRAINING --abort------>  ABORTING   a second SIGINT
    any other phase   --stopped---->  STOPPED    run() returns

A forked worker (one with a ``SupervisorLink``) differs in five ways.  It
writes ``READY`` on its pipe to the supervisor once it listens.  Every tick
it checks that its supervisor is still its parent (if not it drains: an
orphan would serve on forever) and whether it has served its
``max_requests``, then writes ``QUOTA_REACHED`` once; the supervisor starts
its successor.  A timer of its own writes a ``HEARTBEAT`` byte every
``heartbeat_interval_s``, draining included: a timer runs only when the loop
turns, so the bytes prove the loop is not stuck in a handler, and the
supervisor kills a worker that falls silent (``--worker-timeout``).  Before
that it sends ``STACK_DUMP_SIGNAL``, on which ``faulthandler`` writes every
thread's stack to stderr from C, even while Python code is blocked.  It
ignores the supervisor's signals (SIGHUP, SIGTTIN, SIGTTOU) and prefixes its
log lines with its slot and pid.  And its drain
does not drop what is queued: on its own ``SO_REUSEPORT`` socket it accepts
everything already in the accept queue, closes the socket at once (the
kernel routes new connections to the other workers' sockets), and gives the
connections it just accepted a moment to deliver their first request before
the graceful shutdown closes the idle ones.  Kernel caveat: a connection that
completes its handshake into the closing socket's queue after the last
``accept()`` and before ``close()`` is reset, unless
``net.ipv4.tcp_migrate_req = 1`` (Linux 5.14+) moves it to another listener
of the group; the drain makes that window a few microseconds wide.
"""

from __future__ import annotations

import dataclasses
import enum
import faulthandler
import gc
import logging
import os
import random
import signal
import sys
from collections.abc import Callable, Iterable
from typing import Any

from ..reactor import Reactor
from ..server import Server, ServerConfig
from ..timers import PeriodicHandle
from .metrics_table import MetricsTable

__all__ = ["Worker", "WorkerPhase", "SupervisorLink", "current_worker", "READY", "QUOTA_REACHED", "HEARTBEAT",
           "STACK_DUMP_SIGNAL"]

logger = logging.getLogger("evloop.workers")

READY = b"R"          # worker -> supervisor: listening
QUOTA_REACHED = b"Q"  # worker -> supervisor: max_requests served, start my successor
HEARTBEAT = b"H"      # worker -> supervisor: my loop turns

# On this signal a forked worker writes every thread's stack to stderr and
# serves on; the supervisor sends it to a silent worker before SIGKILL, and
# an operator can send it to see where a live worker spends its time.
STACK_DUMP_SIGNAL = signal.SIGUSR2

EXIT_OK = 0
EXIT_CANNOT_LISTEN = 3
EXIT_APP_LOAD_FAILED = 4  # a forked worker could not import its application (it logged why)

FIRST_REQUEST_GRACE_S = 0.5  # on drain: time for just-accepted connections to send their request
_TICK_S = 0.1                 # max-requests check; the orphan check alone runs every _IDLE_TICK_S
_IDLE_TICK_S = 1.0

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)

# This process's identity in a group of workers; set once, right after fork().
_current: dict[str, int] | None = None


def current_worker() -> dict[str, int] | None:
    """In a worker process, ``{"id": slot, "pid": pid}``; None outside a supervisor."""
    return _current


def handler_name(signum: int) -> str:
    """The method that handles ``signum``: ``handle_term`` for SIGTERM, ``handle_chld`` for SIGCHLD."""
    return "handle_" + signal.Signals(signum).name.removeprefix("SIG").lower()


class WorkerPhase(enum.Enum):
    STARTING = "starting"   # the listening sockets are not open yet
    SERVING = "serving"     # accepting and serving
    DRAINING = "draining"   # told to stop: no new connections, requests in flight finish
    ABORTING = "aborting"   # told to stop at once: every connection aborted
    STOPPED = "stopped"     # run() is returning


# (phase, event) -> next phase.  A pair that maps a phase to itself is a
# repeated command with nothing left to do; a pair missing here is a bug.
_TRANSITIONS: dict[tuple[WorkerPhase, str], WorkerPhase] = {
    (WorkerPhase.STARTING, "listening"): WorkerPhase.SERVING,
    (WorkerPhase.SERVING, "stop"): WorkerPhase.DRAINING,
    (WorkerPhase.DRAINING, "stop"): WorkerPhase.DRAINING,
    (WorkerPhase.ABORTING, "stop"): WorkerPhase.ABORTING,
    (WorkerPhase.SERVING, "abort"): WorkerPhase.ABORTING,
    (WorkerPhase.DRAINING, "abort"): WorkerPhase.ABORTING,
    (WorkerPhase.ABORTING, "abort"): WorkerPhase.ABORTING,
    **{(phase, "stopped"): WorkerPhase.STOPPED for phase in WorkerPhase if phase is not WorkerPhase.STOPPED},
}


# The cyclic GC collects its youngest generation each time allocations of
# container objects outnumber deallocations by the threshold (700 by
# default).  A connection's objects (protocol, transport, state machine,
# buffers, timer) are freed by their reference counts when it closes, but
# 50 concurrent connections keep ~1,000 of them alive at once: at 700 the GC
# ran every few passes and traversed them all for nothing, ~12,000
# instructions a Connection: close request (callgrind of evloop-demo under 50
# concurrent clients).  Cyclic garbage is still collected, a little later.
GC_YOUNG_THRESHOLD = 50_000


def tune_gc_for_serving() -> None:
    """Freeze what start-up allocated (never collectable garbage; shared copy-on-write after a fork)
    and raise the youngest generation's threshold to ``GC_YOUNG_THRESHOLD``."""
    gc.freeze()
    young, middle, old = gc.get_threshold()
    if young:  # 0: the application turned the GC off; leave it so
        gc.set_threshold(max(young, GC_YOUNG_THRESHOLD), middle, old)


@dataclasses.dataclass(frozen=True)
class SupervisorLink:
    """What a forked worker knows of its supervisor.

    ``pipe`` is the write end of the worker's pipe to the supervisor
    (``READY``, ``QUOTA_REACHED``, ``HEARTBEAT`` every ``heartbeat_interval_s``,
    0: none).  ``signal_mask`` is the mask to restore once
    the worker's own handlers are in: the supervisor forks with every signal
    blocked.  ``own_socket``: the worker listens on its own ``SO_REUSEPORT``
    socket (and accepts what is queued there before closing it), rather than
    on one socket the whole group shares.  The worker asks for a successor
    after ``max_requests + randint(0, max_requests_jitter)`` requests (0:
    never).
    """

    slot: int
    pipe: int
    supervisor_pid: int
    signal_mask: Iterable[int]
    own_socket: bool
    max_requests: int = 0
    max_requests_jitter: int = 0
    heartbeat_interval_s: float = 0.0
    # --metrics-path, --status-path: the group's shared figures, and this worker's region of them.
    metrics_table: MetricsTable | None = None
    metrics_region: int = 0


class _WorkerLogFilter(logging.Filter):
    """Prefixes every log message of a worker with its id and pid."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "_evloop_worker", False):
            record._evloop_worker = True
            record.msg = f"{self.prefix}{record.msg}"
        return True


class Worker:
    """Serves ``app`` with ``config`` in this process until a stop signal; ``run()`` once.

    ``reactor``: run on this reactor (left open afterwards); by default the
    worker makes its own (with ``slow_callback_s``) and closes it.
    ``on_started(server)`` is called once the server listens (a lone process
    only).  ``supervisor`` makes this a forked worker of a ``Supervisor``
    (see the module docstring); it must then be built in the forked child.
    Call ``run()`` from the main thread: it installs handlers for SIGTERM,
    SIGINT and SIGQUIT and removes them before it returns.
    """

    def __init__(
        self,
        app: Callable[..., Any],
        config: ServerConfig | None = None,
        *,
        reactor: Reactor | None = None,
        slow_callback_s: float | None = None,
        on_started: Callable[[Server], Any] | None = None,
        supervisor: SupervisorLink | None = None,
    ) -> None:
        self.config = config or ServerConfig()
        self.supervisor = supervisor
        self.on_started = on_started
        self._own_reactor = reactor is None
        self.reactor = Reactor(slow_callback_s=slow_callback_s) if reactor is None else reactor
        # Stop signals reach this worker through the reactor, never as an
        # exception: a SystemExit or KeyboardInterrupt from a callback is the
        # application's (a deferred callback's sys.exit()), logged, not fatal.
        self.reactor.contain_exits = True
        self.server = Server(app, self.reactor, self.config)
        self.phase = WorkerPhase.STARTING
        self.request_limit = 0  # ask for a successor after this many requests (0: never)
        if supervisor is not None and supervisor.max_requests:
            # A fresh generator: the forked children of one supervisor must not share a sequence.
            jitter = random.Random().randint(0, supervisor.max_requests_jitter)
            self.request_limit = supervisor.max_requests + jitter
        self._successor_asked = False
        self._publish_metrics: Callable[[], None] | None = None
        self._ticker: PeriodicHandle | None = None
        self._heartbeat: PeriodicHandle | None = None
        if supervisor is not None:
            self._join_group_metrics(supervisor)

    def _join_group_metrics(self, link: SupervisorLink) -> None:
        """A forked worker shows its group's figures and publishes its own (see metrics_table.py);
        the supervisor serves ``--metrics-bind``."""
        metrics, table = self.server.metrics, link.metrics_table
        self.server.serves_metrics_bind = False
        if metrics is None or table is None:
            return
        metrics.worker = link.slot
        region = link.metrics_region

        def publish() -> None:
            table.write(region, metrics.snapshot())

        def group_snapshots() -> list[dict[str, Any]]:
            publish()  # this worker's own figures are live; the others' at most a second old
            return table.snapshots()

        metrics.source = group_snapshots
        metrics.on_sample.append(publish)
        self._publish_metrics = publish

    # ----------------------------------------------------------------- run
    def run(self) -> int:
        """Listen, serve until stopped and drained, clean up; returns the exit status.

        0 after an orderly stop.  When the listening socket cannot be opened a
        lone process raises the ``OSError``; a forked worker logs it and
        returns 3.  Raises ``RuntimeError`` when called a second time.
        """
        if self.phase is not WorkerPhase.STARTING:
            raise RuntimeError(f"Worker.run() called in phase {self.phase.name}: a worker runs once")
        try:
            self._install_signal_handlers()
            try:
                self.server.start()
            except OSError as exc:
                if self.supervisor is None:
                    raise
                logger.error("cannot listen: %s", exc)
                return EXIT_CANNOT_LISTEN
            self._advance("listening")
            self._announce()
            tune_gc_for_serving()
            self.reactor.run()
        finally:
            self._advance("stopped")
            self._close()
        logger.info("exiting after %d requests", self.server.requests_served)
        return EXIT_OK

    def _install_signal_handlers(self) -> None:
        link = self.supervisor
        if link is not None:
            self._become_worker_of(link)
        for signum in self._signals():
            self.reactor.add_signal_handler(signum, self._signal_received, signum)
        if link is not None:
            # Blocked since before fork(): a signal arriving earlier would
            # have run the supervisor's handler in this process.
            signal.pthread_sigmask(signal.SIG_SETMASK, link.signal_mask)

    def _become_worker_of(self, link: SupervisorLink) -> None:
        """Take a forked worker's identity: signals, ``current_worker()``, log prefix."""
        global _current
        for signum in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU):
            signal.signal(signum, signal.SIG_IGN)  # meant for the supervisor (sent to the process group)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        pid = os.getpid()
        _current = {"id": link.slot, "pid": pid}
        log_filter = _WorkerLogFilter(f"[worker {link.slot} pid {pid}] ")
        for handler in logging.getLogger().handlers:
            handler.addFilter(log_filter)
        try:
            faulthandler.register(STACK_DUMP_SIGNAL, file=sys.stderr, all_threads=True, chain=False)
        except (AttributeError, ValueError, OSError, RuntimeError) as exc:  # stderr closed or not a file
            logger.warning("no stack dump on %s: %s", STACK_DUMP_SIGNAL.name, exc)

    def _announce(self) -> None:
        """Tell whoever waits that the server listens."""
        link = self.supervisor
        if link is None:
            for url in self.server.urls:
                logger.info("evloop serving on %s", url)
            if self.on_started is not None:
                self.on_started(self.server)
            return
        os.write(link.pipe, READY)
        self._ticker = self.reactor.call_every(_TICK_S if self.request_limit else _IDLE_TICK_S, self._tick)
        if link.heartbeat_interval_s > 0:
            # A heartbeat must never block the loop it vouches for: when the
            # pipe is full the supervisor has unread bytes of ours already.
            os.set_blocking(link.pipe, False)
            self._heartbeat = self.reactor.call_every(link.heartbeat_interval_s, self._beat, link.pipe)

    def _close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        self.server.close()
        self.reactor.run_once(0)  # run the connection_lost callbacks: they close the sockets
        if self._publish_metrics is not None:
            self._publish_metrics()  # the last figures, which the supervisor keeps for this slot
        for signum in self._signals():
            self.reactor.remove_signal_handler(signum)
        if self._own_reactor:
            self.reactor.close()

    # ------------------------------------------------------------- signals
    def _signals(self) -> tuple[int, ...]:
        """The signals this worker handles: SIGHUP too in a lone process with certificate files to reload."""
        if self.supervisor is None and self.config.certfile is not None and self.config.ssl_context is None:
            return (*STOP_SIGNALS, signal.SIGHUP)
        return STOP_SIGNALS

    def handle_hup(self) -> None:
        """SIGHUP (a lone process serving HTTPS): reload the certificates; open connections are kept."""
        self.server.reload_tls()

    def _signal_received(self, signum: int) -> None:
        getattr(self, handler_name(signum))()

    def handle_term(self) -> None:
        """SIGTERM: stop gracefully."""
        self.stop("SIGTERM")

    def handle_quit(self) -> None:
        """SIGQUIT: stop gracefully, as SIGTERM does."""
        self.stop("SIGQUIT")

    def handle_int(self) -> None:
        """SIGINT: stop gracefully the first time, abort every connection the next."""
        if self.phase is WorkerPhase.SERVING:
            self.stop("SIGINT")
            return
        logger.warning("second SIGINT: closing every connection now")
        self.abort()

    # ------------------------------------------------------------ commands
    def stop(self, reason: str = "stop") -> None:
        """Stop gracefully: refuse new connections, let requests in flight finish, then ``run()`` returns.

        The rest are aborted after ``graceful_timeout_s``.  A repeated call
        does nothing.  Call it from the worker's loop; ``reason`` is logged.
        """
        if not self._advance("stop"):
            return
        if self._ticker is not None:
            self._ticker.cancel()
        logger.info("%s: draining (%d connections open)", reason, len(self.server.connections))
        link = self.supervisor
        if link is None:
            # Alone on the port: the listeners and the idle connections close
            # at once (the README's shutdown contract).
            self.server.shutdown(self.reactor.stop)
            return
        if link.own_socket:
            # What is in our own SO_REUSEPORT sockets' accept queues dies
            # with them, so take it all, then close at once (see the module
            # doc).  A socket shared with the other workers (a Unix socket,
            # an inherited one) keeps its queue for them: not drained here.
            for listener in self.server.own_listeners:
                listener.accept_pending()
        for listener in self.server.listeners:
            listener.close()
        # A connection accepted a moment ago has usually sent its request
        # already; closing it as "idle" now would reset it.
        self.reactor.call_later(FIRST_REQUEST_GRACE_S, self.server.shutdown, self.reactor.stop)

    def abort(self) -> None:
        """Abort every connection now; ``run()`` returns on the next pass.  From the worker's loop."""
        if self._advance("abort"):
            if self._ticker is not None:
                self._ticker.cancel()
            self.server.shutdown(self.reactor.stop, graceful=False)

    def _advance(self, event: str) -> bool:
        """Move to the phase ``event`` leads to; returns whether the phase changed."""
        try:
            phase = _TRANSITIONS[(self.phase, event)]
        except KeyError:
            raise RuntimeError(f"worker: event {event!r} in phase {self.phase.name}") from None
        changed = phase is not self.phase
        self.phase = phase
        return changed

    # ---------------------------------------------------------------- tick
    def _tick(self) -> None:
        """A forked worker, while serving: drain when orphaned, ask for a successor at max_requests."""
        link = self.supervisor
        if link is None or self.phase is not WorkerPhase.SERVING:
            return
        if os.getppid() != link.supervisor_pid:
            self.stop("the supervisor is gone")
            return
        served = self.server.requests_served
        if self.request_limit and not self._successor_asked and served >= self.request_limit:
            self._successor_asked = True
            logger.info("served %d requests (limit %d): asking for a replacement", served, self.request_limit)
            try:
                os.write(link.pipe, QUOTA_REACHED)
            except OSError:
                pass  # the supervisor is gone: the next tick sees it

    def _beat(self, pipe: int) -> None:
        """Tell the supervisor the loop turns (a forked worker with a ``--worker-timeout``)."""
        try:
            os.write(pipe, HEARTBEAT)
        except OSError:
            pass  # full: the supervisor is behind, not us; gone: the next tick sees it
