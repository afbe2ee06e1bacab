"""Unix-domain socket paths: abstract names, stale socket files left by an earlier process, and our own.

Shared by the stream listener (``listener.py``) and the datagram transports
(``net/udp.py``), which both bind paths and remove them when they close.
"""

from __future__ import annotations

import errno
import os
import socket
import stat

__all__ = ["SocketFile", "is_abstract_socket_name", "unlink_stale_socket"]


def is_abstract_socket_name(path: str | bytes) -> bool:
    """True for a Linux abstract socket name (it starts with a NUL byte and names no file)."""
    return path[:1] in ("\0", b"\0")


def unlink_stale_socket(path: str | bytes, kind: int = socket.SOCK_STREAM) -> None:
    """Remove ``path`` if it is a socket file nobody answers on (left by an earlier server); keep anything else.

    A socket file where a live server answers (a connect() of ``kind``
    succeeds, or finds a full backlog or a socket of another type) raises
    ``OSError(EADDRINUSE)``: binding over it would take the address from that
    server.  An abstract socket name (Linux: a leading NUL byte) has no file:
    nothing to do.
    """
    if is_abstract_socket_name(path):
        return
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return
    except FileNotFoundError:
        return
    if _answers(path, kind):
        raise OSError(errno.EADDRINUSE, "address already in use (a server answers on this socket file)",
                      os.fsdecode(path))
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _answers(path: str | bytes, kind: int) -> bool:
    probe = socket.socket(socket.AF_UNIX, kind)
    try:
        probe.setblocking(False)
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        return False  # nobody bound there: stale
    except OSError as exc:
        # EAGAIN: a listener with a full backlog; EPROTOTYPE: a live socket of another type.
        return exc.errno in (errno.EAGAIN, errno.EPROTOTYPE)
    finally:
        probe.close()
    return True


class SocketFile:
    """The socket file this process just bound at ``path``: ``remove()`` deletes it only while it is that file.

    Another server may have replaced the file since (after this one was
    stopped, say): its socket file is then not ours to delete.
    """

    __slots__ = ("path", "_identity")

    def __init__(self, path: str) -> None:
        self.path = path
        st = os.stat(path)
        self._identity = (st.st_dev, st.st_ino)

    @classmethod
    def of(cls, path: str | None) -> SocketFile | None:
        """The file bound at ``path`` (None for no path, an abstract name or a file already gone)."""
        if path is None or is_abstract_socket_name(path):
            return None
        try:
            return cls(path)
        except FileNotFoundError:
            return None

    def remove(self) -> None:
        try:
            st = os.stat(self.path)
            if (st.st_dev, st.st_ino) == self._identity:
                os.unlink(self.path)
        except FileNotFoundError:
            pass
