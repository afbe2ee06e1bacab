"""Unix-domain socket paths: abstract names, and stale socket files left by an earlier process.

Shared by the stream listener (``listener.py``) and the datagram transports
(``net/udp.py``), which both bind paths and remove them when they close.
"""

from __future__ import annotations

import os
import stat

__all__ = ["is_abstract_socket_name", "unlink_stale_socket"]


def is_abstract_socket_name(path: str | bytes) -> bool:
    """True for a Linux abstract socket name (it starts with a NUL byte and names no file)."""
    return path[:1] in ("\0", b"\0")


def unlink_stale_socket(path: str | bytes) -> None:
    """Remove ``path`` if it is a socket (left by an earlier server); anything else is kept.

    An abstract socket name (Linux: a leading NUL byte) has no file: nothing to do.
    """
    if is_abstract_socket_name(path):
        return
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass
