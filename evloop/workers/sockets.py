"""Where the workers listen: the supervisor's listening sockets, ``SO_REUSEPORT`` and systemd.

Two ways to spread connections between workers, with opposite failure modes.

``SO_REUSEPORT`` (Linux, the BSDs; ``share_socket=False``): the supervisor
binds one socket per address with ``SO_REUSEPORT`` and never calls
``listen()`` on it: it turns port 0 into a real port and holds the port, but
the kernel only routes connections to sockets in the LISTEN state, so none
ever queue there.  Each worker binds and listens its own ``SO_REUSEPORT``
socket on that port and the kernel spreads new connections between them by a
hash of the addresses, evenly and without waking the others, but blindly: a
worker stuck in a blocking handler keeps getting its share, and they wait.

One shared socket (``share_socket=True``; also, necessarily, without
``SO_REUSEPORT``, for an inherited socket (``--fd``, systemd socket
activation) and for a Unix socket): the supervisor listens once and every
worker inherits that socket.  Only a worker back in its selector accepts, so
an idle worker takes each new connection and a blocked one takes none; each
takes at most ``SHARED_ACCEPT_BATCH`` per readiness event, so that a worker
about to block in a handler holds few connections hostage behind it.  The
price is that every idle worker wakes for each connection (they race for
the ``accept()``), and the spread is uneven.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket

from ..binds import Bind, BindKind, open_bind
from ..net.unix import SocketFile
from ..server import ServerConfig, address_url

__all__ = ["ListeningSockets", "reuse_port_available", "systemd_sockets"]

logger = logging.getLogger("evloop.workers")

SHARED_ACCEPT_BATCH = 1  # accepts per wake-up on a shared socket, as nginx's multi_accept off


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


class ListeningSockets:
    """The supervisor's sockets for ``config``, and the config its workers serve with.

    Every bind of ``config.listen_binds()`` is opened here, before the fork:
    a TCP bind in ``SO_REUSEPORT`` mode as port-holding sockets (each worker
    binds its own on that port), anything else (``share_socket``, an
    inherited socket, a Unix socket, no ``SO_REUSEPORT``) as a listening
    socket every worker inherits.  Call order: ``open()`` once, then read
    ``child_config``, ``urls`` and ``shared``; ``close()`` (idempotent) at the
    end, and ``close_in_worker()`` in a forked worker.  ``open()`` raises
    ``OSError`` (``evloop.binds.BindError``) when an address cannot be bound
    (nothing is left open then).
    """

    def __init__(self, config: ServerConfig, *, share_socket: bool = False) -> None:
        self.config = config
        self.share_socket = share_socket
        self.child_config = config
        self.urls: list[str] = []
        # The listening sockets every worker inherits (empty when each worker
        # listens on its own SO_REUSEPORT sockets only).
        self.shared: list[socket.socket] = []
        self._held: list[socket.socket] = []   # bound, never listening (SO_REUSEPORT mode)
        self._socket_files: list[SocketFile] = []  # ours to remove at close, if still ours
        # Whether each worker listens on SO_REUSEPORT sockets of its own (for some binds at least).
        self.own_per_worker = False

    def open(self) -> None:
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        cfg = self.config
        reuse_port = not self.share_socket and reuse_port_available()
        scheme = "https" if cfg.serves_https else "http"
        child_binds: list[Bind] = []
        for bind in cfg.listen_binds():
            if bind.kind is BindKind.TCP and reuse_port:
                held = open_bind(bind, reuse_port=True)
                self._held += held
                self.own_per_worker = True
                child_binds.append(Bind.tcp(bind.host, held[0].getsockname()[1]))
                self.urls += [address_url(s.getsockname(), scheme) for s in held]
                continue
            sockets = open_bind(bind, backlog=cfg.backlog, uds_mode=cfg.uds_mode, uds_group=cfg.uds_group)
            socket_file = SocketFile.of(bind.path) if bind.kind is BindKind.UNIX else None
            if socket_file is not None:
                self._socket_files.append(socket_file)
            self.shared += sockets
            child_binds += [Bind.of_socket(s) for s in sockets]
            self.urls += [address_url(s.getsockname(), scheme) for s in sockets]
            logger.info("workers share one listening socket (%s): %s", _why_shared(bind, sockets, self.share_socket),
                        ", ".join(address_url(s.getsockname(), scheme) for s in sockets))
        self.child_config = dataclasses.replace(
            cfg, binds=tuple(child_binds), sock=None, reuse_port=reuse_port,
            # Workers sharing a socket take one connection at a time, so
            # that one about to block holds no others back.
            accept_batch=min(cfg.accept_batch, SHARED_ACCEPT_BATCH) if self.shared else cfg.accept_batch)
        if self._held and _read_sysctl("net/ipv4/tcp_migrate_req") == "0":
            logger.debug("net.ipv4.tcp_migrate_req is 0: a connection queued on a draining worker's "
                         "socket in the instant it closes is reset")

    def close_in_worker(self) -> None:
        """In a forked worker: close the port-holding sockets (the worker binds its own); keep ``shared``."""
        for s in self._held:
            s.close()
        self._held = []

    def close(self) -> None:
        """Close every socket, and remove the Unix socket files this opened."""
        self.close_in_worker()
        for s in self.shared:
            s.close()
        self.shared = []
        for socket_file in self._socket_files:
            try:
                socket_file.remove()
            except OSError:
                pass
        self._socket_files = []


def _why_shared(bind: Bind, sockets: list[socket.socket], share_socket: bool) -> str:
    if bind.kind in (BindKind.FD, BindKind.SOCKET):
        return f"the inherited socket, fd {sockets[0].fileno()}"
    if bind.kind is BindKind.UNIX:
        return "a Unix socket"
    return "share_socket=True" if share_socket else "SO_REUSEPORT is not available"


def _read_sysctl(name: str) -> str | None:
    try:
        with open(f"/proc/sys/{name}") as f:
            return f.read().strip()
    except OSError:
        return None
