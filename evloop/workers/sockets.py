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

from ..listener import bind_sockets, bind_unix_socket, unlink_stale_socket
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

    Call order: ``open()`` once, then read ``child_config``, ``urls`` and
    ``shared``; ``close()`` (idempotent) at the end, and ``close_in_worker()``
    in a forked worker.  ``open()`` raises ``OSError`` when the address cannot
    be bound (nothing is left open then).
    """

    def __init__(self, config: ServerConfig, *, share_socket: bool = False) -> None:
        self.config = config
        self.share_socket = share_socket
        self.child_config = config
        self.urls: list[str] = []
        # One listening socket every worker inherits; None when each worker
        # listens on its own SO_REUSEPORT socket.
        self.shared: socket.socket | None = None
        self._held: list[socket.socket] = []   # bound, never listening (SO_REUSEPORT mode)
        self._unlink: str | None = None

    def open(self) -> None:
        cfg = self.config
        if cfg.sock is not None:
            self.shared = cfg.sock
            self.shared.listen(cfg.backlog)
            why = f"the inherited socket, fd {cfg.sock.fileno()}"
        elif cfg.uds is not None:
            self.shared = bind_unix_socket(cfg.uds, backlog=cfg.backlog)
            self._unlink = cfg.uds
            why = "a Unix socket"
        elif not self.share_socket and reuse_port_available():
            self._held = bind_sockets(cfg.host, cfg.port, reuse_port=True)
            port = self._held[0].getsockname()[1]
            self.child_config = dataclasses.replace(cfg, port=port, reuse_port=True, sock=None)
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
            self.shared = held[0]
            self.shared.listen(cfg.backlog)
        self.child_config = dataclasses.replace(cfg, sock=self.shared,
                                                accept_batch=min(cfg.accept_batch, SHARED_ACCEPT_BATCH))
        self.urls = [address_url(self.shared.getsockname())]
        logger.info("workers share one listening socket (%s): %s", why, self.urls[0])

    def close_in_worker(self) -> None:
        """In a forked worker: close the port-holding sockets (the worker binds its own); keep ``shared``."""
        for s in self._held:
            s.close()
        self._held = []

    def close(self) -> None:
        """Close every socket, and remove the Unix socket file this opened."""
        self.close_in_worker()
        if self.shared is not None:
            self.shared.close()
            self.shared = None
        if self._unlink is not None:
            try:
                unlink_stale_socket(self._unlink)
            except OSError:
                pass


def _read_sysctl(name: str) -> str | None:
    try:
        with open(f"/proc/sys/{name}") as f:
            return f.read().strip()
    except OSError:
        return None
