"""HTTPS in the server: the listener's TLS context from ``ServerConfig``, SNI, reloads, and the 400 for plain HTTP.

One ``SSLContext`` per server, shared by its listeners (and one per extra SNI name), built when the
server starts and again on a reload; never one per connection, which would
silently defeat session resumption.  A reload builds complete new contexts
first and swaps them in only when every one loaded: a bad new certificate
is logged and the old one kept.  Connections already open keep the context
they were accepted with.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from typing import Any

from ..net.tls_context import server_context
from .config import ServerConfig

__all__ = ["ServerTLS", "PLAINTEXT_REPLY", "CERT_REQS", "TLS_VERSIONS", "ALPN_PROTOCOLS"]

logger = logging.getLogger("evloop.server")

ALPN_PROTOCOLS = ["http/1.1"]  # h2 joins once HTTP/2 exists

CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}

_PLAINTEXT_BODY = (
    b"400 Bad Request: this is an HTTPS port, and a plain HTTP request reached it.\n"
    b"Use an https:// URL for this address.\n"
)
# Sent in the clear to a client whose first bytes are not TLS (nginx answers
# its 497 "HTTP request sent to HTTPS port" the same way), then the connection closes.
PLAINTEXT_REPLY = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(_PLAINTEXT_BODY)
) + _PLAINTEXT_BODY


class ServerTLS:
    """The TLS side of a server's configuration: its current context, rebuilt by ``reload()``.

    ``ServerTLS.of(config)`` is None when the config asks for no TLS.
    """

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.context = self._build()

    @classmethod
    def of(cls, config: ServerConfig) -> ServerTLS | None:
        if not config.serves_https:
            return None
        return cls(config)

    def reload(self) -> bool:
        """Build the contexts again from the files; on failure log it, keep the old ones and return False."""
        if self.config.ssl_context is not None:
            logger.info("TLS: the SSLContext was given by the application; nothing to reload")
            return True
        try:
            context = self._build()
        except (OSError, ValueError, ssl.SSLError) as exc:
            logger.error("TLS: the certificates could not be reloaded (%s); serving the old ones", exc)
            return False
        self.context = context
        logger.info("TLS: certificates reloaded from %s", self.config.certfile)
        return True

    def _build(self) -> ssl.SSLContext:
        cfg = self.config
        if cfg.ssl_context is not None:
            context = cfg.ssl_context
        else:
            assert cfg.certfile is not None
            context = self._context_for(cfg.certfile, cfg.keyfile)
            by_name = {name.lower(): self._context_for(certfile, keyfile)
                       for name, (certfile, keyfile) in cfg.sni_certs.items()}
            # Always: the name the client asked for is known only to this callback
            # (request.tls.server_name, SSL_TLS_SNI).
            context.sni_callback = _sni_chooser(by_name, cfg.sni_callback)
        return context

    def _context_for(self, certfile: str, keyfile: str | None) -> ssl.SSLContext:
        """A context serving ``certfile``; ValueError naming the files it was made from when one does not load
        (OpenSSL's error names none: an --cert of SNI or the CA file was blamed on --certfile)."""
        cfg = self.config
        try:
            return server_context(
                certfile, keyfile, cfg.keyfile_password, ca_certs=cfg.ca_certs, cert_reqs=CERT_REQS[cfg.cert_reqs],
                ciphers=cfg.ciphers, minimum_version=TLS_VERSIONS[cfg.tls_min_version], alpn_protocols=ALPN_PROTOCOLS,
            )
        except (OSError, ssl.SSLError) as exc:
            files = f"the certificate {certfile}" + (f" or its key {keyfile}" if keyfile else " or its key")
            if cfg.ca_certs is not None:
                files += f" or the CA certificates {cfg.ca_certs}"
            raise ValueError(f"cannot load {files}: {exc}") from exc


def _sni_chooser(
    by_name: dict[str, ssl.SSLContext], callback: Callable[[str | None], ssl.SSLContext | None] | None
) -> Callable[[Any, str | None, ssl.SSLContext], None]:
    """An ``SSLContext.sni_callback``: the context named for the server name, else the callback's, else the default.

    It also leaves the name on the ``SSLObject`` as ``sni_name``, where ``TLSInfo`` finds it.
    """

    def choose(ssl_object: Any, server_name: str | None, context: ssl.SSLContext) -> None:
        ssl_object.sni_name = server_name
        chosen = by_name.get(server_name.lower()) if server_name else None
        if chosen is None and callback is not None:
            chosen = callback(server_name)
        if chosen is not None:
            ssl_object.context = chosen

    return choose
