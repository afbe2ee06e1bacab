"""HTTP/1.1 behind the PROXY protocol: what the header says of the client's own TLS.

A proxy that terminated the client's TLS says so in version 2's
``PP2_TYPE_SSL`` TLV (HAProxy's ``send-proxy-v2-ssl``): the client used
https, though the hop to this server is plain, so ``Request.scheme`` (and
WSGI's ``wsgi.url_scheme``) is ``https``, as ``X-Forwarded-Proto`` makes it
with ``--proxy-headers``.  A subclass used only by servers with
``proxy_protocol`` on, so the ordinary path pays nothing for it.
"""

from __future__ import annotations

from ..net.base import Transport
from .h1 import HTTPProtocol

__all__ = ["ProxiedHTTPProtocol"]


class ProxiedHTTPProtocol(HTTPProtocol):
    """``HTTPProtocol`` whose scheme is https when the PROXY header says the client's connection was TLS."""

    __slots__ = ()

    def connection_made(self, transport: Transport) -> None:
        super().connection_made(transport)
        header = transport.get_extra_info("proxy_header")
        if header is not None and self.tls is None:
            ssl = header.ssl
            if ssl is not None and ssl.tls:
                self._scheme = "https"
