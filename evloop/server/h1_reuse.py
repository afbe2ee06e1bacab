"""Protocol reuse, a part of ``HTTPProtocol`` (``h1.py``): a closed connection's protocol serves the next one.

A closed connection's protocol, with its state machine, head reader and
receive buffer, waits in ``ctx.h1.idle_protocols`` (``connection_lost``
puts it there, its buffered bytes and body dropped) and is renewed for the
server's next connection (``HTTPProtocol._renew``, ``ServerConnection.renew``)
rather than made: no allocation, constructors and deallocation of the four
objects (load/bench_instructions.py close 57,210 -> 53,794, wsgi-close
85,963 -> 82,138 instructions a connection; the whole server,
load/server_instructions.py close --no-access-log, 104,800 -> 100,144).

It is taken only when nothing else holds it any more: a reference count,
as for the spare request (``h1.py``).  So a request that an app kept from
the old connection, whose ``respond()`` reaches the protocol through its
bound responder, can never answer on the new one: that protocol is left to
its holder and freed with it, as before.  Bounded: a burst of closes keeps
at most ``IDLE_PROTOCOLS_MAX`` (~1 KiB each, idle); the rest are freed.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TypeVar

from .context import ServerContext

__all__ = ["IDLE_PROTOCOLS_MAX", "ProtocolReuse"]

IDLE_PROTOCOLS_MAX = 64

_refcount = sys.getrefcount
_P = TypeVar("_P", bound="ProtocolReuse")


class ProtocolReuse:
    """``HTTPProtocol.for_connection``: the protocol for a connection just accepted."""

    __slots__ = ()

    if TYPE_CHECKING:
        def __init__(self, ctx: ServerContext) -> None: ...
        def _renew(self) -> None: ...

    @classmethod
    def for_connection(cls: type[_P], ctx: ServerContext) -> _P:
        """A closed connection's protocol, renewed, or a new one (the server's protocol factory).

        The last one ``connection_lost`` put in ``ctx.h1.idle_protocols``
        is taken when nothing but this call holds it any more (its count
        is 2: the local name and getrefcount's argument); one that
        something still holds is dropped from the list and left to it.
        """
        shared = ctx.h1
        idle = shared.idle_protocols
        if idle:
            protocol = idle.pop()
            spare = shared.spare_request
            if spare is not None and getattr(spare._responder, "__self__", None) is protocol:
                # The spare answered this protocol's last request: made another connection's when it is
                # next used (_process), and no longer a holder of this protocol.
                spare._responder = None
            if type(protocol) is cls and _refcount(protocol) == 2:
                protocol._renew()
                return protocol
        return cls(ctx)
