"""Where a server listens: ``Bind``, parsed from gunicorn's forms, opened into sockets.

``parse_bind`` reads ``HOST:PORT``, ``[IPv6]:PORT``, ``:PORT`` (every
interface), ``unix:PATH`` and ``fd://N``; ``open_bind`` turns a ``Bind``
into bound sockets, raising ``BindError`` (an ``OSError``) whose message
names the address and, when ``/proc`` tells it, the process already
listening there, so that a command line can print one line and exit.
"""

from __future__ import annotations

import dataclasses
import enum
import errno
import ipaddress
import os
import re
import socket

from .listener import bind_sockets, bind_unix_socket
from .net.unix import SocketFile

__all__ = ["Bind", "BindKind", "BindError", "parse_bind", "open_bind", "check_host", "listening_process"]


class BindKind(enum.Enum):
    TCP = "tcp"        # host and port
    UNIX = "unix"      # a Unix domain socket's path (or a Linux abstract name, "\0...")
    FD = "fd"          # an inherited listening socket, by descriptor number
    SOCKET = "socket"  # a socket object already open (ServerConfig.sock, a supervisor's shared socket)


@dataclasses.dataclass(frozen=True)
class Bind:
    """One listening address.  Build it with ``parse_bind`` or the class methods."""

    kind: BindKind
    host: str | None = None
    port: int = 0
    path: str | None = None
    fd: int | None = None
    sock: socket.socket | None = dataclasses.field(default=None, compare=False)

    @classmethod
    def tcp(cls, host: str | None, port: int) -> Bind:
        return cls(BindKind.TCP, host=host, port=port)

    @classmethod
    def unix(cls, path: str) -> Bind:
        return cls(BindKind.UNIX, path=path)

    @classmethod
    def of_socket(cls, sock: socket.socket) -> Bind:
        return cls(BindKind.SOCKET, sock=sock)

    def __str__(self) -> str:
        """The bind in the form ``parse_bind`` reads (a socket object: ``fd://N``)."""
        if self.kind is BindKind.TCP:
            host = self.host or ""
            return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"
        if self.kind is BindKind.UNIX:
            return f"unix:{self.path}"
        return f"fd://{self.fd if self.sock is None else self.sock.fileno()}"


# A host name or an IPv4 address: dot-separated labels of letters, digits, '-' and '_'.
_HOST_NAME_RE = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?")


def check_host(host: str) -> str:
    """``host`` as a host to bind (a name, an IPv4 or an IPv6 address); ValueError saying why not.

    The usual mistake is a port inside it (``127.0.0.1:8080``): the message
    points to ``--port`` and ``--bind``.
    """
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not a host: give the port with --port, or use --bind {host}") from None
    elif host and _HOST_NAME_RE.fullmatch(host) is None:
        raise ValueError(f"{host!r} is not a host name or address")
    return host


def _port(text: str, spec: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"bind {spec!r}: the port must be a number, got {text!r}")
    port = int(text)
    if port > 65535:
        raise ValueError(f"bind {spec!r}: the port must be 0-65535, got {port}")
    return port


def parse_bind(spec: str) -> Bind:
    """A bind from gunicorn's forms; ValueError naming what is wrong.

    ``HOST:PORT``, ``[IPv6]:PORT``, ``:PORT`` or ``0.0.0.0:PORT`` (every
    IPv4 interface), ``[::]:PORT`` (every IPv6 one), ``HOST`` alone (port
    8000, as gunicorn), ``unix:PATH`` and ``fd://N``.
    """
    spec = spec.strip()
    if not spec:
        raise ValueError("bind: empty address")
    if spec.startswith("unix:"):
        path = spec[5:]
        if not path:
            raise ValueError(f"bind {spec!r}: unix: needs a path")
        return Bind.unix(path)
    if spec.startswith("fd://"):
        text = spec[5:]
        if not (text.isascii() and text.isdigit()):
            raise ValueError(f"bind {spec!r}: fd:// needs a descriptor number")
        return Bind(BindKind.FD, fd=int(text))
    if spec.startswith("["):
        host, bracket, rest = spec[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"bind {spec!r}: an IPv6 address is written [ADDRESS]:PORT")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"bind {spec!r}: {host!r} is not an IPv6 address") from None
        return Bind.tcp(host, _port(rest[1:], spec) if rest else 8000)
    host, colon, port = spec.rpartition(":")
    if not colon:
        host, port = spec, "8000"
    elif ":" in host:
        raise ValueError(f"bind {spec!r}: write an IPv6 address in brackets, as [::1]:8080")
    if host:
        try:
            check_host(host)
        except ValueError as exc:
            raise ValueError(f"bind {spec!r}: {exc}") from None
    return Bind.tcp(host or None, _port(port, spec))


class BindError(OSError):
    """A bind that could not be opened; ``str()`` is the one line to show."""

    def __init__(self, bind: Bind, cause: OSError) -> None:
        super().__init__(cause.errno, cause.strerror or str(cause))
        self.bind = bind
        self.cause = cause

    def __str__(self) -> str:
        why = self.cause.strerror or str(self.cause)
        line = f"cannot listen on {self.bind}: {why.lower() if why[:1].isupper() else why}"
        if self.cause.errno == errno.EADDRINUSE:
            holder = listening_process(self.bind)
            if holder is not None:
                line += f", held by {holder}"
        return line


def open_bind(
    bind: Bind, *, reuse_port: bool = False, backlog: int | None = None,
    uds_mode: int | None = None, uds_group: str | int | None = None,
) -> list[socket.socket]:
    """The sockets of ``bind``, bound (listening when ``backlog`` is not None).

    A TCP bind gives one socket per address of its host (``bind_sockets``).
    A Unix socket gets ``uds_mode`` and ``uds_group`` before it listens, so no
    client ever finds it with other permissions.  Raises ``BindError``;
    nothing is left open then.
    """
    try:
        if bind.kind is BindKind.TCP:
            return bind_sockets(bind.host, bind.port, reuse_port=reuse_port, backlog=backlog)
        if bind.kind is BindKind.UNIX:
            assert bind.path is not None
            # The mode through the umask, as bind() creates the file: no moment
            # with other permissions, and no chmod by path that a symlink
            # swapped in meanwhile could redirect.  (The umask is the
            # process's: evloop starts no threads, so nothing else sees it.)
            umask = os.umask(0o777 & ~uds_mode) if uds_mode is not None else None
            try:
                sock = bind_unix_socket(bind.path)
            finally:
                if umask is not None:
                    os.umask(umask)
            socket_file = SocketFile.of(bind.path)
            try:
                if uds_group is not None and socket_file is not None:
                    os.chown(bind.path, -1, group_id(uds_group), follow_symlinks=False)
                if backlog is not None:
                    sock.listen(backlog)
            except BaseException:
                sock.close()
                if socket_file is not None:
                    socket_file.remove()
                raise
            return [sock]
        sock = bind.sock if bind.sock is not None else socket.socket(fileno=_checked_fd(bind))
        if sock.type != socket.SOCK_STREAM:
            # listen() would say only "operation not supported".
            kind = sock.type.name if isinstance(sock.type, socket.SocketKind) else str(sock.type)
            if bind.sock is None:
                sock.detach()  # the descriptor stays the caller's, open
            raise OSError(errno.EOPNOTSUPP, f"a {kind} socket: HTTP needs a stream socket (SOCK_STREAM)")
        if backlog is not None:
            sock.listen(backlog)
        return [sock]
    except OSError as exc:
        if isinstance(exc, BindError):
            raise
        raise BindError(bind, exc) from exc


def _checked_fd(bind: Bind) -> int:
    assert bind.fd is not None
    os.fstat(bind.fd)  # EBADF, as an OSError, for a descriptor that is not open
    return bind.fd


def group_id(group: str | int) -> int:
    """A group name or number as a gid; OSError for an unknown one."""
    if isinstance(group, int) or group.isdigit():
        return int(group)
    import grp

    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise OSError(errno.EINVAL, f"no group named {group!r}") from None


# ------------------------------------------------------- who holds the address
def listening_process(bind: Bind) -> str | None:
    """``pid N (command)`` of a process listening where ``bind`` points, when ``/proc`` tells it.

    Linux lists listening sockets with their inode in ``/proc/net/tcp``,
    ``tcp6`` and ``unix``; a process's ``/proc/PID/fd`` links name the inodes
    it holds.  Other users' processes are unreadable without privileges, so
    this often knows that something listens but not what: then None.
    """
    inodes = _listening_inodes(bind)
    if not inodes:
        return None
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            for fd in fds:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in targets:
                    return f"pid {pid} ({_command(pid)})"
        except OSError:
            continue
    return None


def _command(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            words = f.read().split(b"\0")
    except OSError:
        return "?"
    return b" ".join(w for w in words if w).decode("utf-8", "replace")[:120] or "?"


_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's st column


def _listening_inodes(bind: Bind) -> set[str]:
    inodes: set[str] = set()
    if bind.kind is BindKind.TCP:
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for fields in _rows(table):
                # local_address is HEXADDR:HEXPORT; st is the fourth column, the inode the tenth.
                if len(fields) > 9 and fields[3] == _LISTEN and int(fields[1].rpartition(":")[2], 16) == bind.port:
                    inodes.add(fields[9])
    elif bind.kind is BindKind.UNIX:
        for fields in _rows("/proc/net/unix"):
            if len(fields) > 7 and fields[7] == bind.path:
                inodes.add(fields[6])
    return inodes


def _rows(table: str) -> list[list[str]]:
    try:
        with open(table) as f:
            return [line.split() for line in f.readlines()[1:]]
    except OSError:
        return []
