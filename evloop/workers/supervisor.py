"""The supervisor: forks N workers, replaces them, stops them.

Theory of operation.  The supervisor owns no connections: only the listening
sockets (``sockets.py``), one pipe per worker and a reactor for its signals
and those pipes.  Its main loop (``run``) does three things, over and over:

1. wait for something to happen: a signal, a message on a worker's pipe
   (``READY``, ``QUOTA_REACHED``, ``HEARTBEAT``, EOF), or the next deadline (a
   back-off, a worker's heartbeat or kill deadline, the kill deadline of a
   stop);
2. handle the signals that arrived, in arrival order, each by its
   ``handle_<name>`` method (``handle_term``, ``handle_chld``, ...).  A handler
   only changes what is wanted (the number of workers, a worker marked for
   replacement, stopping) or records what happened (a worker exited);
3. reconcile (``_reconcile``): compare the wanted workers with the running
   ones and act on the difference: fork a worker for an empty slot, drain a
   worker that was replaced or whose slot is gone, and when stopping drain
   every worker and end the loop once all have exited.

Each worker has a slot (0 .. N-1) and a ``WorkerState``.  Replacing a worker
(SIGHUP, max-requests) marks it ``SUPERSEDED``: it keeps serving, the slot
wants a new worker, and the old one is drained only once its successor is
``RUNNING``, so the port never lacks a listener.

A worker silent for ``worker_timeout_s`` (no byte on its pipe: its loop has
stopped turning, see ``worker.py``) is ``TIMED_OUT``: the supervisor logs an
error, sends ``STACK_DUMP_SIGNAL`` (the worker's stack goes to its stderr),
starts its successor at once and SIGKILLs it ``_STACK_DUMP_GRACE_S`` later.
This holds in every state, draining included, as gunicorn's ``--timeout``.

Child exits arrive as SIGCHLD and are reaped with ``waitpid(WNOHANG)``.  A
worker that exits while not asked to is logged with its exit status or
signal; when its slot has no other worker, one is started: at once the first
time, then with exponential back-off (0.2 s doubling up to 30 s) while its
replacements keep dying within ``_HEALTHY_S`` of starting.

Given an ``AppLoader`` rather than an application, each worker imports the
application after the fork (gunicorn's default; an application object given
here is gunicorn's ``--preload``), so every new worker runs the code on disk
now.  A worker that cannot load it logs why and exits with
``EXIT_APP_LOAD_FAILED``.  When that worker was replacing one (SIGHUP,
``--reload``, max-requests), the old worker, which drains only once its
successor runs, goes back to ``RUNNING`` and keeps serving the old code.  At
start-up the first slot's worker starts alone, so that broken code is one
error and ``run()`` returns 1 rather than N workers failing the same way.
With a ``SourceWatcher`` (``--reload``) a reactor timer polls the source
files and a change replaces every worker, as SIGHUP does; a slot whose new
worker could not load the code then waits for the next change.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from ..loading import AppLoader, AppLoadError
from ..reactor import Reactor
from ..server import ServerConfig
from ..server.metrics import metrics_server
from ..server.registry import Server
from ..server.tls import ServerTLS
from .metrics_table import MetricsTable
from .reloader import SourceWatcher
from .sockets import ListeningSockets
from .worker import (
    EXIT_APP_LOAD_FAILED,
    FIRST_REQUEST_GRACE_S,
    QUOTA_REACHED,
    READY,
    STACK_DUMP_SIGNAL,
    STOP_SIGNALS,
    SupervisorLink,
    Worker,
    handler_name,
)

__all__ = ["Supervisor", "SupervisorPhase", "WorkerState"]

logger = logging.getLogger("evloop.workers")

_HEALTHY_S = 5.0            # a worker that lived this long was healthy: its death resets the back-off
_FIRST_BACKOFF_S = 0.2
_MAX_BACKOFF_S = 30.0
_KILL_AFTER_S = 5.0         # beyond a worker's own drain bound, before the stragglers are SIGKILLed
_STACK_DUMP_GRACE_S = 0.5   # from asking a silent worker for its stack to SIGKILL
_HEARTBEATS_PER_TIMEOUT = 4  # a worker writes a heartbeat every worker_timeout_s / 4

_SIGNALS = (*STOP_SIGNALS, signal.SIGCHLD, signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU)


class WorkerState(enum.Enum):
    """A worker process as the supervisor sees it."""

    STARTING = "starting"       # forked, not yet listening
    RUNNING = "running"         # listening and serving
    SUPERSEDED = "superseded"   # serving until its slot's new worker is running, then drained
    DRAINING = "draining"       # told to stop (SIGTERM sent); its exit is expected
    TIMED_OUT = "timed out"     # silent past worker_timeout_s: stack dump asked, SIGKILL due; exit expected


class SupervisorPhase(enum.Enum):
    STARTING = "starting"   # not every slot has had a worker listening yet
    SERVING = "serving"     # every slot has (announced once, in the log)
    STOPPING = "stopping"   # every worker drains; no new ones
    STOPPED = "stopped"     # every worker has exited: run() returns


@dataclasses.dataclass(eq=False)
class _Child:
    slot: int
    pid: int
    pipe: int          # read end of the worker's messages; -1 once closed
    started: float     # on the supervisor's reactor clock
    state: WorkerState = WorkerState.STARTING
    last_seen: float = 0.0          # when its last message arrived (the start, before any)
    kill_at: float | None = None    # TIMED_OUT: SIGKILL then (None once sent)
    ready: bool = False             # it has reported READY (it loaded the application and listens)
    metrics_region: int | None = None  # its region of the metrics table, if it has one


class Supervisor:
    """Runs ``app`` in ``workers`` forked processes until SIGTERM, SIGINT or SIGQUIT.

    ``app`` is the application, or an ``AppLoader`` that each worker loads
    after the fork (see the module docstring); ``watcher``: replace the
    workers whenever its files change (``--reload``).  ``config`` is the ``ServerConfig`` every worker serves with (its
    ``host``/``port``, ``uds`` or ``sock`` say where).  ``max_requests``:
    a worker is replaced after ``max_requests + randint(0, max_requests_jitter)``
    requests (0: never).  ``share_socket=True`` forces one shared listening
    socket even where ``SO_REUSEPORT`` exists (an idle worker takes each new
    connection; see ``sockets.py``).  ``worker_timeout_s``: a worker whose
    loop has not turned for this long is killed and replaced, its stack
    dumped first (0: never).  ``run()`` returns the exit status (0 after an
    orderly stop; 1 when the application could not be loaded at start-up).
    Call it once, from the main thread.

    Signals: SIGTERM, SIGINT, SIGQUIT drain every worker (a second SIGINT
    kills them); SIGHUP replaces every worker; SIGTTIN and SIGTTOU add and
    remove one (never fewer than one).
    """

    def __init__(
        self,
        app: Callable[..., Any] | AppLoader,
        config: ServerConfig | None = None,
        workers: int = 2,
        *,
        watcher: SourceWatcher | None = None,
        max_requests: int = 0,
        max_requests_jitter: int = 0,
        slow_callback_s: float | None = None,
        share_socket: bool = False,
        worker_timeout_s: float = 30.0,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if not 0 <= worker_timeout_s < float("inf"):
            raise ValueError(f"worker_timeout_s must be 0 (never) or a positive number, got {worker_timeout_s!r}")
        self.app = app
        self.watcher = watcher
        self.exit_status = 0
        self.config = config or ServerConfig()
        self.target = workers          # the wanted number of workers: slots 0 .. target-1
        self.max_requests = max(0, max_requests)
        self.max_requests_jitter = max(0, max_requests_jitter)
        self.slow_callback_s = slow_callback_s
        self.share_socket = share_socket
        self.worker_timeout_s = worker_timeout_s
        self.sockets = ListeningSockets(self.config, share_socket=share_socket)
        # Built once here, before any fork: every worker serves the same
        # context, so a session ticket one worker issued resumes on another.
        self.tls = ServerTLS.of(self.config)
        self.urls: list[str] = []
        self.phase = SupervisorPhase.STARTING
        self._children: dict[int, _Child] = {}          # by pid, until reaped
        self._failures: dict[int, int] = {}             # slot -> quick deaths in a row
        self._restart_at: dict[int, float] = {}         # slot -> no new worker before this (back-off)
        self._awaiting_code: set[int] = set()           # slots whose code did not load: none until a change
        self._app_loaded = not isinstance(app, AppLoader)  # a worker has loaded it (or it was given loaded)
        self._kill_at: float | None = None              # when stopping: SIGKILL the stragglers then
        self._signals: collections.deque[int] = collections.deque()  # received, not yet handled
        self._reactor: Reactor | None = None
        self._pid = os.getpid()
        # --metrics-path, --status-path: the workers' figures meet in shared
        # memory mapped before any fork (metrics_table.py); the supervisor
        # serves them itself at --metrics-bind.
        self.metrics_table: MetricsTable | None = None
        if self.config.metrics_path or self.config.status_path or self.config.metrics_bind is not None:
            self.metrics_table = MetricsTable()
        self.metrics_server: Server | None = None

    # ----------------------------------------------------------------- run
    def run(self) -> int:
        """Start the workers and supervise them until every one has exited; returns 0.

        Raises ``OSError`` when the listening address cannot be bound.  If
        this raises later (a bug), every worker left is killed.
        """
        self.sockets.open()
        self.urls = self.sockets.urls
        reactor = self._reactor = Reactor()
        try:
            if self.metrics_table is not None and self.config.metrics_bind is not None:
                self.metrics_server = metrics_server(reactor, self.config, self.metrics_table.snapshots)
                self.metrics_server.start()
                for url in self.metrics_server.urls:
                    logger.info("metrics and status on %s", url)
            for signum in _SIGNALS:
                # Queued, not handled in the reactor's callback: handlers run
                # between passes, in arrival order, and one reconciliation
                # then sees what a burst of them asked for.
                reactor.add_signal_handler(signum, self._signals.append, signum)
            logger.info("supervisor pid %d starting %d workers", os.getpid(), self.target)
            if self.watcher is not None:
                logger.info("reload: watching %d files under %s (%s) every %.2g s", len(self.watcher),
                            ", ".join(self.watcher.dirs), " ".join(self.watcher.include), self.watcher.interval_s)
                reactor.call_every(self.watcher.interval_s, self._check_sources, self.watcher)
            while True:
                while self._signals:
                    getattr(self, handler_name(self._signals.popleft()))()
                self._reconcile()
                if self.phase is SupervisorPhase.STOPPED:
                    break
                reactor.run_once(self._sleep_s())
        finally:
            for child in list(self._children.values()):
                _kill(child.pid, signal.SIGKILL)
            if self.metrics_server is not None:
                self.metrics_server.close()
                reactor.run_once(0)  # its connections' sockets close in their callbacks
            if self.metrics_table is not None:
                self.metrics_table.close()
            self.sockets.close()
            reactor.close()
        logger.info("supervisor: every worker has exited")
        return self.exit_status

    @property
    def _stopping(self) -> bool:
        return self.phase in (SupervisorPhase.STOPPING, SupervisorPhase.STOPPED)

    def _loop(self) -> Reactor:
        assert self._reactor is not None, "the supervisor is not running"
        return self._reactor

    def _sleep_s(self) -> float | None:
        """How long the loop may wait for an event: until the next deadline, or for ever (None)."""
        deadlines = [when for slot, when in self._restart_at.items() if slot < self.target]
        if self._kill_at is not None:
            deadlines.append(self._kill_at)
        for child in self._children.values():
            if child.state is WorkerState.TIMED_OUT:
                if child.kill_at is not None:
                    deadlines.append(child.kill_at)
            elif self.worker_timeout_s:
                deadlines.append(child.last_seen + self.worker_timeout_s)
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - self._loop().time())

    # ----------------------------------------------------------- reconcile
    def _reconcile(self) -> None:
        """Act on the difference between the wanted workers and the running ones."""
        now = self._loop().time()
        self._time_out_silent(now)
        if self.phase is SupervisorPhase.STOPPING:
            for child in list(self._children.values()):
                self._retire(child)
            if self._kill_at is not None and now >= self._kill_at:
                self._kill_at = None
                self._kill_all("still running after the graceful timeout")
            if not self._children:
                self.phase = SupervisorPhase.STOPPED
            return
        for child in list(self._children.values()):
            if child.slot >= self.target:
                self._retire(child)
        # Until a worker has loaded the application, slot 0 tries alone:
        # code that does not load is one error, not one per worker.
        for slot in range(self.target if self._app_loaded else 1):
            self._reconcile_slot(slot, now)
        if self.phase is SupervisorPhase.STARTING and self._count(WorkerState.RUNNING) >= self.target:
            self.phase = SupervisorPhase.SERVING
            for url in self.urls:
                logger.info("evloop serving on %s (%d workers, supervisor pid %d)", url, self.target, os.getpid())

    def _reconcile_slot(self, slot: int, now: float) -> None:
        """A slot wants one worker STARTING or RUNNING; a SUPERSEDED one goes once its successor runs."""
        replaced = [c for c in self._children.values()
                    if c.slot == slot and c.state in (WorkerState.SUPERSEDED, WorkerState.TIMED_OUT)]
        current = [c for c in self._children.values()
                   if c.slot == slot and c.state in (WorkerState.STARTING, WorkerState.RUNNING)]
        if not current:
            if slot in self._awaiting_code:
                return
            if now >= self._restart_at.get(slot, now):
                self._restart_at.pop(slot, None)
                self._spawn(slot, replacing=[c.pid for c in replaced])
        elif any(c.state is WorkerState.RUNNING for c in current):
            for child in replaced:
                if child.state is WorkerState.SUPERSEDED:
                    self._retire(child)

    def _retire(self, child: _Child) -> None:
        """Tell ``child`` to drain and exit (a TIMED_OUT one is being killed already)."""
        if child.state in (WorkerState.DRAINING, WorkerState.TIMED_OUT):
            return
        child.state = WorkerState.DRAINING
        logger.info("worker %d (pid %d): draining", child.slot, child.pid)
        _kill(child.pid, signal.SIGTERM)

    def _time_out_silent(self, now: float) -> None:
        """Ask each worker silent for ``worker_timeout_s`` for its stack; SIGKILL those asked long enough ago."""
        for child in list(self._children.values()):
            if child.state is WorkerState.TIMED_OUT:
                if child.kill_at is not None and now >= child.kill_at:
                    child.kill_at = None
                    _kill(child.pid, signal.SIGKILL)
            elif self.worker_timeout_s and now - child.last_seen >= self.worker_timeout_s:
                logger.error("worker %d (pid %d) silent for %.1f s (--worker-timeout %.1f s) while %s: "
                             "its stack follows if it can write it; SIGKILL in %.1f s",
                             child.slot, child.pid, now - child.last_seen, self.worker_timeout_s,
                             child.state.value, _STACK_DUMP_GRACE_S)
                child.state = WorkerState.TIMED_OUT
                child.kill_at = now + _STACK_DUMP_GRACE_S
                _kill(child.pid, STACK_DUMP_SIGNAL)

    def _kill_all(self, reason: str) -> None:
        for child in list(self._children.values()):
            logger.warning("worker %d (pid %d): SIGKILL (%s)", child.slot, child.pid, reason)
            _kill(child.pid, signal.SIGKILL)

    def _count(self, state: WorkerState) -> int:
        return sum(1 for c in self._children.values() if c.state is state)

    # ------------------------------------------------------------ spawning
    def _spawn(self, slot: int, replacing: list[int]) -> None:
        reactor = self._loop()
        region = self.metrics_table.allocate() if self.metrics_table is not None else None
        rfd, wfd = os.pipe()
        _flush_logs()  # else the child inherits buffered output and writes it a second time
        # Signals stay blocked across fork() until the child has its own
        # handlers: one arriving earlier would be written to the wakeup socket
        # the child shares with the supervisor and be taken for the supervisor's.
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        try:
            pid = os.fork()
            if pid == 0:
                self._child_main(slot, rfd, wfd, old_mask, region)
        finally:
            if os.getpid() == self._pid:
                signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        os.close(wfd)
        os.set_blocking(rfd, False)
        now = reactor.time()
        child = _Child(slot=slot, pid=pid, pipe=rfd, started=now, last_seen=now, metrics_region=region)
        self._children[pid] = child
        reactor.add_reader(rfd, self._on_child_message, child)
        logger.info("started worker %d (pid %d)%s", slot, pid,
                    f" to replace pid {', '.join(map(str, replacing))}" if replacing else "")

    def _child_main(self, slot: int, rfd: int, wfd: int, signal_mask: Iterable[int],
                    metrics_region: int | None) -> NoReturn:
        """In the forked child: drop what belongs to the supervisor, run a ``Worker``, exit."""
        status = 1
        try:
            os.close(rfd)
            self._loop().discard_after_fork()
            self.sockets.close_in_worker()
            for other in self._children.values():
                if other.pipe >= 0:
                    os.close(other.pipe)
            link = SupervisorLink(
                slot=slot, pipe=wfd, supervisor_pid=self._pid, signal_mask=signal_mask,
                own_socket=self.sockets.own_per_worker,
                max_requests=self.max_requests, max_requests_jitter=self.max_requests_jitter,
                heartbeat_interval_s=self.worker_timeout_s / _HEARTBEATS_PER_TIMEOUT,
                metrics_table=self.metrics_table if metrics_region is not None else None,
                metrics_region=metrics_region or 0,
            )
            config = self.sockets.child_config
            if self.tls is not None:
                config = dataclasses.replace(config, ssl_context=self.tls.context)
            app = self.app.load() if isinstance(self.app, AppLoader) else self.app
            worker = Worker(app, config, slow_callback_s=self.slow_callback_s, supervisor=link)
            status = worker.run()
        except AppLoadError as exc:
            logger.error("worker %d (pid %d): %s", slot, os.getpid(), exc)
            logger.debug("worker %d: the application's import failed here:", slot, exc_info=exc.__cause__ or exc)
            status = EXIT_APP_LOAD_FAILED
        except BaseException:
            logger.exception("worker %d failed", slot)
        finally:
            _flush_logs()
            os._exit(status)  # never return into the supervisor's loop

    # ------------------------------------------------------------ messages
    def _on_child_message(self, child: _Child) -> None:
        try:
            data = os.read(child.pipe, 64)
        except BlockingIOError:
            return
        if not data:
            self._close_pipe(child)
            return
        child.last_seen = self._loop().time()  # every message, HEARTBEAT or other, shows its loop turns
        for byte in data:
            if byte == READY[0]:
                self._child_ready(child)
            elif byte == QUOTA_REACHED[0]:
                self._child_quota_reached(child)

    def _close_pipe(self, child: _Child) -> None:
        if child.pipe >= 0:
            if self._reactor is not None and not self._reactor.is_closed:
                self._reactor.remove_reader(child.pipe)
            os.close(child.pipe)
            child.pipe = -1

    def _child_ready(self, child: _Child) -> None:
        child.ready = True
        self._app_loaded = True
        if child.state is WorkerState.STARTING:
            child.state = WorkerState.RUNNING
        logger.info("worker %d (pid %d) is listening", child.slot, child.pid)

    def _child_quota_reached(self, child: _Child) -> None:
        if self._stopping or child.state is not WorkerState.RUNNING:
            return
        logger.info("worker %d (pid %d) reached --max-requests: replacing it", child.slot, child.pid)
        child.state = WorkerState.SUPERSEDED

    # ------------------------------------------------------------- signals
    def handle_chld(self) -> None:
        """SIGCHLD: reap every exited worker."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self._children.pop(pid, None)
            if child is None:
                continue
            self._close_pipe(child)
            if self.metrics_table is not None and child.metrics_region is not None:
                self.metrics_table.retire(child.metrics_region, child.slot)
            how = _describe_status(status)
            if child.state in (WorkerState.DRAINING, WorkerState.TIMED_OUT) or self._stopping:
                logger.info("worker %d (pid %d) exited (%s)", child.slot, pid, how)
            elif os.waitstatus_to_exitcode(status) == EXIT_APP_LOAD_FAILED and self._code_failed(child):
                pass
            else:
                self._child_died(child, how)

    def _code_failed(self, child: _Child) -> bool:
        """``child`` could not load the application (it logged why): keep the old code serving.

        Returns False when nothing here applies and the exit is an ordinary death (restarted with back-off).
        """
        slot = child.slot
        previous = [c for c in self._children.values()
                    if c.slot == slot and c.state is WorkerState.SUPERSEDED and c.ready]
        if previous:
            keeper = max(previous, key=lambda c: c.started)
            keeper.state = WorkerState.RUNNING
            logger.error("worker %d (pid %d) could not load the application; pid %d goes on serving the code "
                         "it loaded before", slot, child.pid, keeper.pid)
            return True
        if self.watcher is not None:
            self._awaiting_code.add(slot)
            logger.error("worker %d (pid %d) could not load the application; waiting for a change to the "
                         "watched files", slot, child.pid)
            return True
        if not self._app_loaded:
            logger.error("the application could not be loaded: stopping")
            self.exit_status = 1
            self.stop()
            return True
        return False

    def _child_died(self, child: _Child, how: str) -> None:
        """An exit nobody asked for: when the slot is left empty, schedule its next worker."""
        slot = child.slot
        served = any(c.slot == slot and c.state in (WorkerState.STARTING, WorkerState.RUNNING)
                     for c in self._children.values())
        if slot >= self.target or served:
            logger.warning("worker %d (pid %d) died unexpectedly (%s)", slot, child.pid, how)
            return
        now = self._loop().time()
        lived = now - child.started
        failures = self._failures.get(slot, 0) + 1 if lived < _HEALTHY_S else 1
        self._failures[slot] = failures
        delay = 0.0 if failures == 1 else min(_MAX_BACKOFF_S, _FIRST_BACKOFF_S * 2 ** (failures - 2))
        logger.warning("worker %d (pid %d) died unexpectedly (%s) after %.1f s; restarting %s",
                       slot, child.pid, how, lived, "at once" if delay == 0 else f"in {delay:.1f} s")
        self._restart_at[slot] = now + delay

    def handle_term(self) -> None:
        """SIGTERM: stop gracefully."""
        self._stop_signal("SIGTERM")

    def handle_quit(self) -> None:
        """SIGQUIT: stop gracefully, as SIGTERM does."""
        self._stop_signal("SIGQUIT")

    def handle_int(self) -> None:
        """SIGINT: stop gracefully the first time; kill every worker the next."""
        if self._stopping:
            logger.warning("second SIGINT: killing %d workers now", len(self._children))
            self._kill_all("second SIGINT")
            return
        self._stop_signal("SIGINT")

    def _stop_signal(self, name: str) -> None:
        if not self._stopping:
            logger.info("%s: stopping %d workers gracefully", name, len(self._children))
            self.stop()

    def handle_hup(self) -> None:
        """SIGHUP: replace every worker (with HTTPS, once the certificates reloaded; if not, none)."""
        if self.tls is not None and not self.tls.reload():
            return  # logged; the workers go on with the old certificates
        self.reload("SIGHUP")

    def _check_sources(self, watcher: SourceWatcher) -> None:
        """The ``--reload`` timer: replace the workers when a watched file changed."""
        changed = watcher.changed()
        if changed and not self._stopping:
            shown = ", ".join(os.path.relpath(path) for path in changed[:5])
            more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
            self.reload(f"reload: {shown}{more} changed")

    def handle_ttin(self) -> None:
        """SIGTTIN: one worker more."""
        self.add_worker()

    def handle_ttou(self) -> None:
        """SIGTTOU: one worker fewer."""
        self.remove_worker()

    # ------------------------------------------------------------ commands
    # Each changes what is wanted; the loop's next reconciliation acts on it.
    def stop(self) -> None:
        """Drain every worker; ``run()`` returns once all have exited.

        Workers still running ``graceful_timeout_s`` plus a few seconds later are killed.
        """
        if self._stopping:
            return
        self.phase = SupervisorPhase.STOPPING
        self._restart_at.clear()
        drain_bound_s = FIRST_REQUEST_GRACE_S + self.config.graceful_timeout_s  # a worker's own bound
        self._kill_at = self._loop().time() + drain_bound_s + _KILL_AFTER_S

    def reload(self, reason: str = "reload") -> None:
        """Start a new worker for every slot; each old one drains once its successor listens.

        With an ``AppLoader`` the new workers import the application afresh;
        ``reason`` starts the log line.
        """
        if self._stopping:
            return
        current = [c for c in self._children.values()
                   if c.state in (WorkerState.STARTING, WorkerState.RUNNING) and c.slot < self.target]
        logger.info("%s: replacing %d workers", reason, len(current))
        self._awaiting_code.clear()
        for child in current:
            child.state = WorkerState.SUPERSEDED

    def add_worker(self) -> None:
        """One more worker."""
        if self._stopping:
            return
        self.target += 1
        logger.info("SIGTTIN: %d workers", self.target)

    def remove_worker(self) -> None:
        """One worker fewer (never below one): the one in the highest slot drains."""
        if self._stopping:
            return
        if self.target <= 1:
            logger.info("SIGTTOU: keeping the last worker")
            return
        self.target -= 1
        logger.info("SIGTTOU: %d workers", self.target)
        self._restart_at.pop(self.target, None)


def _describe_status(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _flush_logs() -> None:
    for handler in logging.getLogger().handlers:
        try:
            handler.flush()
        except Exception:
            pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
