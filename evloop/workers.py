"""Worker processes: a supervisor forks N workers, each with its own reactor and listener.

Theory of operation.  The supervisor is a small reactor program: it owns no
connections, only signal handlers, one pipe per worker and a few timers.

Sockets.  With ``SO_REUSEPORT`` (Linux, the BSDs) the supervisor binds one
socket per address with ``SO_REUSEPORT`` and never calls ``listen()`` on it:
it turns port 0 into a real port and holds the port, but the kernel only
routes connections to sockets in the LISTEN state, so none ever queue there.
Each worker binds and listens its own ``SO_REUSEPORT`` socket on that port and
the kernel spreads new connections evenly between them.  (One shared listening
socket piles connections onto whichever worker wakes first.)  Without
``SO_REUSEPORT``, for an inherited socket (``--fd``, systemd socket activation)
and for a Unix socket, the supervisor listens once and every worker inherits
that one socket.

Worker life.  A worker is forked, drops the inherited reactor
(``Reactor.discard_after_fork``), builds its own reactor and ``Server``,
listens, and writes ``R`` (ready) on its pipe to the supervisor.  It writes
``Q`` when it has served its ``--max-requests``.  On SIGTERM (or SIGINT or
SIGQUIT) it drains: it accepts what is already queued on its own socket,
closes the socket, gives just-accepted connections a moment to deliver their
first request, then shuts the server down gracefully and exits 0.  A second
SIGINT aborts every connection.

Replacing a worker (SIGHUP, max-requests) always starts the new worker first
and tells the old one to drain only once the new one is listening, so the
port never lacks a listener.  Kernel caveat: with ``SO_REUSEPORT`` a
connection that completed its handshake into the old worker's accept queue
after the last ``accept()`` and before ``close()`` is reset by the kernel,
unless ``net.ipv4.tcp_migrate_req = 1`` (Linux 5.14+), which moves such
connections to another listener of the group.  The drain makes that window a
few microseconds wide (accept until EAGAIN, then close at once); the sysctl
closes it.

Child exits arrive as SIGCHLD (through the reactor's signal wakeup) and are
reaped with ``waitpid(WNOHANG)``.  A worker that exits while not asked to is
logged with its exit status or signal and restarted: at once the first time,
then with exponential back-off (0.2 s doubling up to 30 s) while its
replacements keep dying within ``_HEALTHY_S`` of starting.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import os
import random
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

from .listener import bind_sockets, bind_unix_socket, unlink_stale_socket
from .reactor import Reactor
from .server import Server, ServerConfig, address_url
from .server import serve as serve_one

__all__ = ["Supervisor", "serve", "current_worker", "systemd_sockets", "reuse_port_available"]

logger = logging.getLogger("evloop.workers")

_HEALTHY_S = 5.0            # a worker that lived this long was healthy: its death resets the back-off
_FIRST_BACKOFF_S = 0.2
_MAX_BACKOFF_S = 30.0
_FIRST_REQUEST_GRACE_S = 0.5  # on drain: time for just-accepted connections to send their request
_WORKER_TICK_S = 0.1        # max-requests and orphan checks in a worker
_KILL_AFTER_S = 5.0         # beyond graceful_timeout_s, before the supervisor SIGKILLs stragglers

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)

_current: dict[str, int] | None = None


def current_worker() -> dict[str, int] | None:
    """In a worker process, ``{"id": slot, "pid": pid}``; None outside a supervisor."""
    return _current


def reuse_port_available() -> bool:
    """Whether this platform lets several sockets listen on one port (``SO_REUSEPORT``)."""
    if not hasattr(socket, "SO_REUSEPORT"):
        return False
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError:
        return False
    return True


def systemd_sockets(unset_environment: bool = True) -> list[socket.socket]:
    """The sockets passed by systemd socket activation, or ``[]``.

    Honours ``LISTEN_FDS`` only when ``LISTEN_PID`` is this process (as
    ``sd_listen_fds(3)``); the descriptors start at 3.  The variables are
    removed so that child processes do not take the sockets for their own.
    """
    try:
        pid = int(os.environ.get("LISTEN_PID", ""))
        count = int(os.environ.get("LISTEN_FDS", ""))
    except ValueError:
        return []
    if pid != os.getpid() or count <= 0:
        return []
    if unset_environment:
        for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            os.environ.pop(name, None)
    return [socket.socket(fileno=fd) for fd in range(3, 3 + count)]


class WorkerState(enum.Enum):
    STARTING = "starting"   # forked, not yet listening
    RUNNING = "running"     # listening and serving
    DRAINING = "draining"   # told to stop (SIGTERM sent); its exit is expected


@dataclasses.dataclass(eq=False)
class _Worker:
    slot: int
    pid: int
    pipe: int                   # read end: "R" ready, "Q" max-requests reached
    started: float
    state: WorkerState = WorkerState.STARTING
    replaces: int | None = None  # pid of the worker to retire once this one is ready
    replacement: int | None = None  # pid of the worker starting in this one's place


def _describe_status(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


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


class Supervisor:
    """Runs ``app`` in ``workers`` forked processes until SIGTERM or SIGINT.

    ``config`` is the ``ServerConfig`` every worker serves with (its
    ``host``/``port``, ``uds`` or ``sock`` say where).  ``max_requests``:
    a worker is replaced after ``max_requests + randint(0, max_requests_jitter)``
    requests (0: never).  ``share_socket=True`` forces one shared listening
    socket even where ``SO_REUSEPORT`` exists.  ``run()`` returns the exit
    status (0 after an orderly stop).  Call it from the main thread.
    """

    def __init__(
        self,
        app: Callable[..., Any],
        config: ServerConfig | None = None,
        workers: int = 2,
        *,
        max_requests: int = 0,
        max_requests_jitter: int = 0,
        slow_callback_s: float | None = None,
        share_socket: bool = False,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.app = app
        self.config = config or ServerConfig()
        self.target = workers
        self.max_requests = max(0, max_requests)
        self.max_requests_jitter = max(0, max_requests_jitter)
        self.slow_callback_s = slow_callback_s
        self.share_socket = share_socket
        self.urls: list[str] = []
        self._workers: dict[int, _Worker] = {}
        self._failures: dict[int, int] = {}
        self._restart_timers: dict[int, Any] = {}
        self._held: list[socket.socket] = []     # bound, not listening (SO_REUSEPORT mode)
        self._shared: socket.socket | None = None
        self._unlink: str | None = None
        self._child_config = self.config
        self._reactor: Reactor | None = None
        self._stopping = False
        self._announced = False
        self._pid = os.getpid()

    # ------------------------------------------------------------- sockets
    def _open_sockets(self) -> None:
        cfg = self.config
        if cfg.sock is not None:
            self._shared = cfg.sock
            self._shared.listen(cfg.backlog)
            why = f"the inherited socket, fd {cfg.sock.fileno()}"
        elif cfg.uds is not None:
            self._shared = bind_unix_socket(cfg.uds, backlog=cfg.backlog)
            self._unlink = cfg.uds
            why = "a Unix socket"
        elif not self.share_socket and reuse_port_available():
            self._held = bind_sockets(cfg.host, cfg.port, reuse_port=True)
            port = self._held[0].getsockname()[1]
            self._child_config = dataclasses.replace(cfg, port=port, reuse_port=True, sock=None)
            self.urls = [address_url(s.getsockname()) for s in self._held]
            if _read_sysctl("net/ipv4/tcp_migrate_req") == "0":
                logger.debug("net.ipv4.tcp_migrate_req is 0: a connection queued on a draining worker's "
                              "socket in the instant it closes is reset")
            return
        else:
            why = "share_socket=True" if self.share_socket else "SO_REUSEPORT is not available"
            held = bind_sockets(cfg.host, cfg.port)
            if len(held) > 1:
                logger.warning("one shared socket serves one address: listening on %s only",
                               address_url(held[0].getsockname()))
                for s in held[1:]:
                    s.close()
            self._shared = held[0]
            self._shared.listen(cfg.backlog)
        self._child_config = dataclasses.replace(cfg, sock=self._shared)
        self.urls = [address_url(self._shared.getsockname())]
        logger.info("workers share one listening socket (%s): %s", why, self.urls[0])

    def _close_sockets(self) -> None:
        for s in self._held:
            s.close()
        self._held = []
        if self._shared is not None:
            self._shared.close()
            self._shared = None
        if self._unlink is not None:
            try:
                unlink_stale_socket(self._unlink)
            except OSError:
                pass

    # ---------------------------------------------------------------- run
    def run(self) -> int:
        """Start the workers and supervise them until they have all stopped; returns 0."""
        self._open_sockets()
        reactor = self._reactor = Reactor()
        try:
            reactor.add_signal_handler(signal.SIGCHLD, self._reap)
            for signum in _STOP_SIGNALS:
                reactor.add_signal_handler(signum, self._on_stop_signal, signum)
            reactor.add_signal_handler(signal.SIGHUP, self.reload)
            reactor.add_signal_handler(signal.SIGTTIN, self.add_worker)
            reactor.add_signal_handler(signal.SIGTTOU, self.remove_worker)
            logger.info("supervisor pid %d starting %d workers", os.getpid(), self.target)
            for slot in range(self.target):
                self._spawn(slot)
            reactor.run()
        finally:
            for worker in list(self._workers.values()):
                _kill(worker.pid, signal.SIGKILL)
            self._close_sockets()
            reactor.close()
        logger.info("supervisor: every worker has exited")
        return 0

    # ------------------------------------------------------------ spawning
    def _spawn(self, slot: int, replaces: int | None = None) -> _Worker:
        reactor = self._reactor
        assert reactor is not None
        rfd, wfd = os.pipe()
        # Signals stay blocked across fork() until the child has its own
        # handlers: one arriving earlier would be written to the wakeup socket
        # the child shares with the supervisor and be taken for the supervisor's.
        _flush_logs()  # else the child inherits buffered output and writes it a second time
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        try:
            pid = os.fork()
            if pid == 0:
                status = 1
                try:
                    os.close(rfd)
                    status = self._worker_main(slot, wfd, old_mask)
                except BaseException:
                    logger.exception("worker %d failed", slot)
                finally:
                    _flush_logs()
                    os._exit(status)
        finally:
            if os.getpid() == self._pid:
                signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        os.close(wfd)
        os.set_blocking(rfd, False)
        worker = _Worker(slot=slot, pid=pid, pipe=rfd, started=reactor.time(), replaces=replaces)
        self._workers[pid] = worker
        reactor.add_reader(rfd, self._on_worker_message, worker)
        if replaces is not None and replaces in self._workers:
            self._workers[replaces].replacement = pid
        logger.info("started worker %d (pid %d)%s", slot, pid,
                    f" to replace pid {replaces}" if replaces is not None else "")
        return worker

    def _on_worker_message(self, worker: _Worker) -> None:
        try:
            data = os.read(worker.pipe, 64)
        except BlockingIOError:
            return
        if not data:
            self._close_pipe(worker)
            return
        for byte in data:
            if byte == ord("R"):
                self._worker_ready(worker)
            elif byte == ord("Q"):
                self._worker_quota_reached(worker)

    def _close_pipe(self, worker: _Worker) -> None:
        if worker.pipe >= 0:
            if self._reactor is not None and not self._reactor.is_closed:
                self._reactor.remove_reader(worker.pipe)
            os.close(worker.pipe)
            worker.pipe = -1

    def _worker_ready(self, worker: _Worker) -> None:
        if worker.state is WorkerState.STARTING:
            worker.state = WorkerState.RUNNING
        logger.info("worker %d (pid %d) is listening", worker.slot, worker.pid)
        if self._stopping:
            self._retire(worker)
            return
        old = self._workers.get(worker.replaces) if worker.replaces is not None else None
        if old is not None and old.state is not WorkerState.DRAINING:
            self._retire(old)
        if not self._announced and self._count(WorkerState.RUNNING) >= self.target:
            self._announced = True
            for url in self.urls:
                logger.info("evloop serving on %s (%d workers, supervisor pid %d)", url, self.target, os.getpid())

    def _worker_quota_reached(self, worker: _Worker) -> None:
        if self._stopping or worker.state is not WorkerState.RUNNING or worker.replacement is not None:
            return
        logger.info("worker %d (pid %d) reached --max-requests: replacing it", worker.slot, worker.pid)
        self._spawn(worker.slot, replaces=worker.pid)

    def _retire(self, worker: _Worker) -> None:
        """Tell ``worker`` to drain and exit."""
        if worker.state is WorkerState.DRAINING:
            return
        worker.state = WorkerState.DRAINING
        logger.info("worker %d (pid %d): draining", worker.slot, worker.pid)
        _kill(worker.pid, signal.SIGTERM)

    def _count(self, state: WorkerState) -> int:
        return sum(1 for w in self._workers.values() if w.state is state)

    def _slot_holder(self, slot: int) -> _Worker | None:
        for w in self._workers.values():
            if w.slot == slot and w.state is not WorkerState.DRAINING:
                return w
        return None

    # ------------------------------------------------------------- reaping
    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            worker = self._workers.pop(pid, None)
            if worker is None:
                continue
            self._close_pipe(worker)
            how = _describe_status(status)
            if worker.state is WorkerState.DRAINING or self._stopping:
                logger.info("worker %d (pid %d) exited (%s)", worker.slot, pid, how)
            else:
                self._worker_died(worker, how)
        if self._stopping and not self._workers and self._reactor is not None:
            self._reactor.stop()

    def _worker_died(self, worker: _Worker, how: str) -> None:
        slot = worker.slot
        replacing = self._workers.get(worker.replaces) if worker.replaces is not None else None
        if replacing is not None:
            replacing.replacement = None
        holder = self._slot_holder(slot)
        if slot >= self.target or (holder is not None and replacing is None):
            logger.warning("worker %d (pid %d) died unexpectedly (%s)", slot, worker.pid, how)
            return
        assert self._reactor is not None  # a worker's exit is seen from the running loop
        lived = self._reactor.time() - worker.started
        failures = self._failures.get(slot, 0) + 1 if lived < _HEALTHY_S else 1
        self._failures[slot] = failures
        delay = 0.0 if failures == 1 else min(_MAX_BACKOFF_S, _FIRST_BACKOFF_S * 2 ** (failures - 2))
        logger.warning("worker %d (pid %d) died unexpectedly (%s) after %.1f s; restarting %s",
                       slot, worker.pid, how, lived, "at once" if delay == 0 else f"in {delay:.1f} s")
        replaces = replacing.pid if replacing is not None else None
        if delay == 0:
            self._restart(slot, replaces)
        else:
            assert self._reactor is not None
            self._restart_timers[slot] = self._reactor.call_later(delay, self._restart, slot, replaces)

    def _restart(self, slot: int, replaces: int | None) -> None:
        self._restart_timers.pop(slot, None)
        if self._stopping or slot >= self.target:
            return
        if replaces is not None and replaces not in self._workers:
            replaces = None
        if replaces is None and self._slot_holder(slot) is not None:
            return
        self._spawn(slot, replaces=replaces)

    # ------------------------------------------------------------- signals
    def _on_stop_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self._stopping:
            if signum == signal.SIGINT:
                logger.warning("second SIGINT: killing %d workers now", len(self._workers))
                self._kill_all("second SIGINT")
            return
        logger.info("%s: stopping %d workers gracefully", name, len(self._workers))
        self.stop()

    def stop(self) -> None:
        """Drain every worker; ``run()`` returns once all have exited."""
        self._stopping = True
        for timer in self._restart_timers.values():
            timer.cancel()
        self._restart_timers.clear()
        for worker in list(self._workers.values()):
            self._retire(worker)
        assert self._reactor is not None
        self._reactor.call_later(self.config.graceful_timeout_s + _FIRST_REQUEST_GRACE_S + _KILL_AFTER_S,
                                 self._kill_all, "still running after the graceful timeout")
        if not self._workers:
            self._reactor.stop()

    def _kill_all(self, reason: str) -> None:
        for worker in list(self._workers.values()):
            logger.warning("worker %d (pid %d): SIGKILL (%s)", worker.slot, worker.pid, reason)
            _kill(worker.pid, signal.SIGKILL)

    def reload(self) -> None:
        """SIGHUP: start a new worker for every slot, then drain each old one once its successor listens."""
        if self._stopping:
            return
        current = [w for w in self._workers.values()
                   if w.state is not WorkerState.DRAINING and w.replacement is None and w.slot < self.target]
        logger.info("SIGHUP: replacing %d workers", len(current))
        for worker in current:
            self._spawn(worker.slot, replaces=worker.pid)

    def add_worker(self) -> None:
        """SIGTTIN: one more worker."""
        if self._stopping:
            return
        self.target += 1
        logger.info("SIGTTIN: %d workers", self.target)
        self._spawn(self.target - 1)

    def remove_worker(self) -> None:
        """SIGTTOU: one worker fewer (never below one)."""
        if self._stopping:
            return
        if self.target <= 1:
            logger.info("SIGTTOU: keeping the last worker")
            return
        self.target -= 1
        logger.info("SIGTTOU: %d workers", self.target)
        timer = self._restart_timers.pop(self.target, None)
        if timer is not None:
            timer.cancel()
        for worker in list(self._workers.values()):
            if worker.slot >= self.target:
                self._retire(worker)

    # -------------------------------------------------------------- worker
    def _worker_main(self, slot: int, wfd: int, signal_mask: Any) -> int:
        """The body of a forked worker; returns its exit status."""
        global _current
        assert self._reactor is not None
        self._reactor.discard_after_fork()
        for s in self._held:
            s.close()  # SO_REUSEPORT mode: the worker binds its own
        for other in self._workers.values():
            if other.pipe >= 0:
                os.close(other.pipe)
        for signum in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU):
            signal.signal(signum, signal.SIG_IGN)  # meant for the supervisor
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        pid = os.getpid()
        _current = {"id": slot, "pid": pid}
        log_filter = _WorkerLogFilter(f"[worker {slot} pid {pid}] ")
        for handler in logging.getLogger().handlers:
            handler.addFilter(log_filter)

        reactor = Reactor(slow_callback_s=self.slow_callback_s)
        server = Server(self.app, reactor, self._child_config)
        draining = False

        def on_signal(signum: int) -> None:
            nonlocal draining
            if draining:
                if signum == signal.SIGINT:
                    logger.warning("second SIGINT: closing every connection now")
                    server.shutdown(reactor.stop, graceful=False)
                return
            draining = True
            logger.info("%s: draining (%d connections open)", signal.Signals(signum).name, len(server.connections))
            self._drain(server)

        for signum in _STOP_SIGNALS:
            reactor.add_signal_handler(signum, on_signal, signum)
        signal.pthread_sigmask(signal.SIG_SETMASK, signal_mask)
        try:
            server.start()
        except OSError as exc:
            logger.error("cannot listen: %s", exc)
            return 3
        os.write(wfd, b"R")
        limit = 0
        if self.max_requests:
            limit = self.max_requests + random.Random().randint(0, self.max_requests_jitter)
        supervisor = self._pid
        asked = False

        def tick() -> None:
            nonlocal asked
            if draining:
                return
            if os.getppid() != supervisor:
                logger.warning("the supervisor is gone: draining")
                on_signal(signal.SIGTERM)
                return
            if limit and not asked and server.requests_served >= limit:
                asked = True
                logger.info("served %d requests (limit %d): asking for a replacement", server.requests_served, limit)
                try:
                    os.write(wfd, b"Q")
                except OSError:
                    pass
            reactor.call_later(_WORKER_TICK_S if limit else 1.0, tick)

        reactor.call_later(_WORKER_TICK_S, tick)
        try:
            reactor.run()
        finally:
            server.close()
            reactor.close()
        logger.info("exiting after %d requests", server.requests_served)
        return 0

    def _drain(self, server: Server) -> None:
        """Stop accepting without dropping what is queued, then shut down gracefully."""
        if self._shared is None:
            # Our own SO_REUSEPORT socket: what is in its accept queue dies
            # with it, so take it all, then close at once (see the module doc).
            for listener in server.listeners:
                listener.accept_pending()
        for listener in server.listeners:
            listener.close()
        # A connection accepted a moment ago has usually sent its request
        # already; closing it as "idle" now would reset it.
        server.reactor.call_later(_FIRST_REQUEST_GRACE_S, server.shutdown, server.reactor.stop)


def _read_sysctl(name: str) -> str | None:
    try:
        with open(f"/proc/sys/{name}") as f:
            return f.read().strip()
    except OSError:
        return None


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


def serve(
    app: Callable[..., Any],
    host: str | None = "127.0.0.1",
    port: int = 8080,
    *,
    workers: int = 1,
    max_requests: int = 0,
    max_requests_jitter: int = 0,
    config: ServerConfig | None = None,
    reactor: Reactor | None = None,
    on_started: Callable[[Server], Any] | None = None,
    slow_callback_s: float | None = None,
    **settings: Any,
) -> int:
    """Serve ``app`` until SIGINT/SIGTERM: in this process, or in ``workers`` processes.

    With ``workers=1`` and no ``max_requests`` this is ``evloop.server.serve``
    (``reactor`` and ``on_started`` apply only there).  Otherwise a
    ``Supervisor`` forks the workers; see its docstring and the module's.
    ``settings`` are ``ServerConfig`` fields.  Returns the exit status.
    """
    if config is None:
        config = ServerConfig(host=host, port=port, **settings)
    elif settings:
        config = dataclasses.replace(config, **settings)
    if workers == 1 and not max_requests:
        own_reactor = Reactor(slow_callback_s=slow_callback_s) if reactor is None else None
        try:
            serve_one(app, config=config, reactor=own_reactor or reactor, on_started=on_started)
        finally:
            if own_reactor is not None:
                own_reactor.close()
        return 0
    supervisor = Supervisor(app, config, workers, max_requests=max_requests,
                            max_requests_jitter=max_requests_jitter, slow_callback_s=slow_callback_s)
    return supervisor.run()
