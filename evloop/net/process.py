"""Child processes with pipes: ``spawn`` and the ``ProcessProtocol`` contract.

Theory of operation.  ``spawn`` makes a pipe for each of the child's
streams asked for (``subprocess.PIPE``), starts the child with
``subprocess.Popen`` (which reports a failed exec as an exception in the
parent) and keeps only the parent's ends, each driven by a pipe transport
(``net/pipes.py``).  The protocol hears, for the child's stdout (fd 1) and
stderr (fd 2), ``pipe_data_received(fd, data)``, and for every pipe
``pipe_connection_lost(fd, exc)``; ``process_exited(returncode)`` comes
once, last, when the child has exited *and* every pipe has been drained and
closed, so nothing the child wrote arrives after it.  (A grandchild that
inherited a pipe holds it open, and with it ``process_exited``: close that
pipe's transport to stop waiting.)

The exit is learnt without threads.  Where the kernel has ``pidfd_open``
(Linux 5.3), the child's pidfd is watched with ``add_reader``: it becomes
readable when the child exits, and signals are sent through it
(``pidfd_send_signal``), so they can never reach a recycled pid.  Elsewhere,
or with ``use_pidfd=False``, a ``SIGCHLD`` handler on the reactor calls
``waitpid(pid, WNOHANG)`` for each child evloop started and is still
waiting for; it never waits for any other pid (``waitpid(-1)`` would reap
children the program started by other means).  Signals coalesce, so every
``SIGCHLD`` polls every such child.  The handler is the reactor's one
``SIGCHLD`` handler while children are watched that way: it replaces one the
program set with ``add_signal_handler``, and the last exit puts back the
handler from before the reactor's, not that one.  So it needs the main
thread, and a program with its own ``SIGCHLD`` handling wants pidfds.
Either way the exit status reaches the ``Popen`` object too, so its own
clean-up never waits for a pid that may by then belong to someone else.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import subprocess
from collections.abc import Callable, Sequence
from typing import Any

from ..futures import Future
from ..reactor import Reactor
from .base import BaseProtocol, Protocol
from .pipes import PipeReader, PipeWriter

__all__ = ["ProcessProtocol", "ProcessTransport", "spawn", "pidfd_supported"]

logger = logging.getLogger("evloop")

PIPE = subprocess.PIPE
_UNKNOWN_EXIT = 255  # the child was reaped by someone else: its status is lost (asyncio says 255 too)


class ProcessProtocol(BaseProtocol):
    """Base class for what hears from a child process; every method is optional to override.

    Call order: ``connection_made(transport)`` once, then any number of
    ``pipe_data_received(fd, data)`` (fd 1 or 2), ``pipe_connection_lost(fd,
    exc)`` once per pipe, ``pause_writing()``/``resume_writing()`` around the
    stdin pipe's water marks, and last ``process_exited(returncode)`` exactly
    once: the exit code, or minus the signal that killed the child.
    """

    __slots__ = ()

    def connection_made(self, transport: ProcessTransport) -> None:
        pass

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        pass

    def pipe_connection_lost(self, fd: int, exc: BaseException | None) -> None:
        pass

    def process_exited(self, returncode: int) -> None:
        pass


class _PipeEnd(Protocol):
    """The protocol of one pipe transport: passes its calls on to the process transport, with the fd."""

    __slots__ = ("_process", "_fd")

    def __init__(self, process: ProcessTransport, fd: int) -> None:
        self._process = process
        self._fd = fd

    def data_received(self, data: bytes) -> None:
        self._process._protocol.pipe_data_received(self._fd, data)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._process._pipe_lost(self._fd, exc)

    def pause_writing(self) -> None:
        self._process._protocol.pause_writing()

    def resume_writing(self) -> None:
        self._process._protocol.resume_writing()


class ProcessTransport:
    """A child process started by ``spawn``: its pid, its pipes, signals, and its exit.

    ``pid``; ``returncode`` (None until the exit is learnt); ``exited``, a
    future of the return code, done just after ``process_exited``.
    ``get_pipe_transport(fd)``: the pipe transport for fd 0 (a ``PipeWriter``:
    ``write``, ``writelines``, ``write_eof``, water marks), or 1 and 2 (a
    ``PipeReader``: ``pause_reading``, ``resume_reading``), or None when that
    stream is not a pipe.
    """

    __slots__ = ("_reactor", "_protocol", "_popen", "pid", "returncode", "exited", "_pipes", "_open_pipes",
                 "_pidfd", "_sigchld", "_closing", "_finished")

    def __init__(self, reactor: Reactor, popen: subprocess.Popen[bytes], protocol: ProcessProtocol,
                 pipe_fds: dict[int, int]) -> None:
        self._reactor = reactor
        self._protocol = protocol
        self._popen = popen
        self.pid = popen.pid
        self.returncode: int | None = None
        self.exited: Future[int] = reactor.create_future()
        self._pipes: dict[int, PipeReader | PipeWriter] = {}
        for fd, parent_end in pipe_fds.items():
            pipe_class = PipeWriter if fd == 0 else PipeReader
            self._pipes[fd] = pipe_class(reactor, parent_end, _PipeEnd(self, fd))
        self._open_pipes = set(self._pipes)
        self._pidfd: int | None = None
        self._sigchld: SigchldWatcher | None = None
        self._closing = False
        self._finished = False

    @property
    def protocol(self) -> ProcessProtocol:
        return self._protocol

    @property
    def reactor(self) -> Reactor:
        return self._reactor

    def get_pipe_transport(self, fd: int) -> PipeReader | PipeWriter | None:
        return self._pipes.get(fd)

    def is_closing(self) -> bool:
        return self._closing

    # -------------------------------------------------------------- signals
    def send_signal(self, signum: int) -> None:
        """Send ``signum`` to the child; ``ProcessLookupError`` once its exit is learnt (its pid may be reused)."""
        if self.returncode is not None:
            raise ProcessLookupError(f"process {self.pid} has exited")
        if self._pidfd is not None:
            signal.pidfd_send_signal(self._pidfd, signum)
        else:
            os.kill(self.pid, signum)  # not reaped yet: the pid is still the child's

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def close(self) -> None:
        """Close every pipe (stdin after what is queued) and kill the child if it still runs.

        ``pipe_connection_lost`` and ``process_exited`` follow as usual.
        """
        if self._closing:
            return
        self._closing = True
        for pipe in list(self._pipes.values()):
            pipe.close()
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.kill()

    # ------------------------------------------------------------ internals
    def _start(self, use_pidfd: bool | None) -> None:
        try:
            self._reactor._track(self)
            self._watch_exit(use_pidfd)
            for pipe in self._pipes.values():
                pipe._start()
        except BaseException:
            # A closed reactor, no pidfd with use_pidfd=True, SIGCHLD outside
            # the main thread, a descriptor select() cannot watch: undo
            # everything, the child included, and tell the protocol nothing.
            self._reactor._untrack(self)
            self._stop_watching()
            for pipe in self._pipes.values():
                pipe._close_quietly()
            self._popen.kill()
            self._popen.wait()
            raise
        try:
            self._protocol.connection_made(self)
        except BaseException:
            self.close()
            raise

    def _watch_exit(self, use_pidfd: bool | None) -> None:
        if use_pidfd is not False and hasattr(os, "pidfd_open"):  # spawn() refused True without it
            try:
                self._pidfd = os.pidfd_open(self.pid)
            except OSError as exc:
                # ENOSYS: an older kernel (or a seccomp filter); EMFILE: no descriptor left.
                if use_pidfd:
                    raise
                logger.debug("pidfd_open(%d) failed (%s): learning its exit from SIGCHLD", self.pid, exc)
            else:
                self._reactor.add_reader(self._pidfd, self._on_pidfd_readable)
                return
        self._sigchld = SigchldWatcher.of(self._reactor)
        self._sigchld.watch(self.pid, self._exited)

    def _on_pidfd_readable(self) -> None:
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            self._exited(_reaped_elsewhere(self.pid))
            return
        if pid:
            self._exited(os.waitstatus_to_exitcode(status))

    def _stop_watching(self) -> None:
        if self._pidfd is not None:
            self._reactor.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        if self._sigchld is not None:
            self._sigchld.forget(self.pid)
            self._sigchld = None

    def _exited(self, returncode: int) -> None:
        self._stop_watching()
        self.returncode = returncode
        self._popen.returncode = returncode  # so Popen never waits for this pid again
        self._maybe_finish()

    def _pipe_lost(self, fd: int, exc: BaseException | None) -> None:
        self._open_pipes.discard(fd)
        try:
            self._protocol.pipe_connection_lost(fd, exc)
        except Exception as error:
            self._report(error, "protocol.pipe_connection_lost() failed")
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        if self._finished or self.returncode is None or self._open_pipes:
            return
        self._finished = True
        self._closing = True
        self._reactor._untrack(self)
        try:
            self._protocol.process_exited(self.returncode)
        except Exception as exc:
            self._report(exc, "protocol.process_exited() failed")
        finally:
            if not self.exited.done():  # the caller may have cancelled it (it stops waiting, nothing else)
                self.exited.set_result(self.returncode)

    def _report(self, exc: BaseException, message: str) -> None:
        self._reactor.call_exception_handler(
            {"message": message, "exception": exc, "transport": self, "protocol": self._protocol})

    def _close_with_reactor(self) -> None:
        """The reactor is closing: close the pipes, kill and reap the child, all before returning."""
        self._closing = True
        for pipe in list(self._pipes.values()):
            pipe._close_with_reactor()
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.kill()
            try:
                _, status = os.waitpid(self.pid, 0)  # SIGKILL: not long
                code = os.waitstatus_to_exitcode(status)
            except ChildProcessError:
                code = _reaped_elsewhere(self.pid)
            self._exited(code)

    def _discard_after_fork(self) -> None:
        """In a forked child: close this process's copies of the pipes and the pidfd; nothing else."""
        self._finished = self._closing = True
        for pipe in self._pipes.values():
            pipe._discard_after_fork()
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    def __repr__(self) -> str:
        state = "running" if self.returncode is None else f"returncode={self.returncode}"
        return f"<ProcessTransport pid={self.pid} {state}>"


def _reaped_elsewhere(pid: int) -> int:
    logger.warning("child process %d was reaped by someone else; its exit status is unknown", pid)
    return _UNKNOWN_EXIT


class SigchldWatcher:
    """The children of one reactor whose exit is learnt from ``SIGCHLD`` (see the module docstring).

    One per reactor (``of``); it holds the reactor's ``SIGCHLD`` handler
    while it watches at least one child.
    """

    __slots__ = ("_reactor", "_children")

    def __init__(self, reactor: Reactor) -> None:
        self._reactor = reactor
        self._children: dict[int, Callable[[int], None]] = {}

    @classmethod
    def of(cls, reactor: Reactor) -> SigchldWatcher:
        watcher = reactor._sigchld_watcher
        if watcher is None:
            watcher = reactor._sigchld_watcher = cls(reactor)
        assert isinstance(watcher, cls)
        return watcher

    def watch(self, pid: int, on_exit: Callable[[int], None]) -> None:
        """Call ``on_exit(returncode)`` from the loop once ``pid`` (a child of this process) has exited."""
        if not self._children:
            self._reactor.add_signal_handler(signal.SIGCHLD, self._reap)
        self._children[pid] = on_exit
        # It may have exited before the handler was there: look once now.
        self._reactor.call_soon(self._reap)

    def forget(self, pid: int) -> None:
        if self._children.pop(pid, None) is not None and not self._children and not self._reactor.is_closed:
            self._reactor.remove_signal_handler(signal.SIGCHLD)

    def _reap(self) -> None:
        for pid, on_exit in list(self._children.items()):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                code = _reaped_elsewhere(pid)
            else:
                if not done:
                    continue
                code = os.waitstatus_to_exitcode(status)
            on_exit(code)  # which forgets it


def pidfd_supported() -> bool:
    """Whether this kernel and Python give pidfds (``os.pidfd_open``), so exits need no ``SIGCHLD``."""
    if not hasattr(os, "pidfd_open"):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return False
    return True


def spawn(
    reactor: Reactor,
    argv: Sequence[str | bytes | os.PathLike[str]],
    protocol_factory: Callable[[], ProcessProtocol],
    *,
    stdin: Any = PIPE,
    stdout: Any = PIPE,
    stderr: Any = PIPE,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    use_pidfd: bool | None = None,
) -> ProcessTransport:
    """Start ``argv`` as a child process whose pipes and exit the reactor watches; returns its transport.

    ``stdin``, ``stdout``, ``stderr``: ``subprocess.PIPE`` (a pipe transport),
    or whatever ``subprocess.Popen`` takes there (``DEVNULL``, None to
    inherit, a file descriptor or file; ``stderr=subprocess.STDOUT``).
    ``env`` and ``cwd`` as for ``Popen``; the child inherits no other
    descriptor.  ``use_pidfd``: None uses a pidfd where the kernel has one
    and ``SIGCHLD`` otherwise; False forces ``SIGCHLD`` (main thread only);
    True insists on a pidfd.  Raises what ``Popen`` raises
    (``FileNotFoundError`` for a missing program, ...) with no descriptor
    left open.  The protocol's ``connection_made`` is called before this
    returns; if it raises, the child is killed and the error propagates.
    """
    if use_pidfd and not hasattr(os, "pidfd_open"):
        raise OSError(errno.ENOSYS, "os.pidfd_open is not available")
    pipe_fds: dict[int, int] = {}   # the parent's ends, by the child's fd
    child_ends: dict[int, int] = {}
    try:
        for fd, spec in ((0, stdin), (1, stdout), (2, stderr)):
            if isinstance(spec, int) and spec == PIPE:
                read_end, write_end = os.pipe()
                pipe_fds[fd], child_ends[fd] = (write_end, read_end) if fd == 0 else (read_end, write_end)
        popen = subprocess.Popen(
            argv, stdin=child_ends.get(0, stdin), stdout=child_ends.get(1, stdout),
            stderr=child_ends.get(2, stderr), env=env, cwd=cwd, close_fds=True,
        )
    except BaseException:
        for parent_end in pipe_fds.values():
            os.close(parent_end)
        raise
    finally:
        for child_end in child_ends.values():
            os.close(child_end)
    try:
        protocol = protocol_factory()
        transport = ProcessTransport(reactor, popen, protocol, pipe_fds)
    except BaseException:
        for parent_end in pipe_fds.values():
            os.close(parent_end)
        popen.kill()
        popen.wait()
        raise
    transport._start(use_pidfd)
    return transport
