"""TLS set-up: server and client contexts, the acceptor a TLS listener wraps each connection in,
``upgrade`` (``start_tls``), and ``TLSInfo`` (what a session tells the application: version,
cipher, server name, client certificate).

The transport itself is ``tls.py``.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..reactor import Reactor
from .base import DEFAULT_HIGH_WATER, Protocol, Transport
from .tls import DEFAULT_HANDSHAKE_TIMEOUT_S, TLSOrigin, TLSTransport

if TYPE_CHECKING:
    from ..futures import Future
    from .tcp import SocketTransport

__all__ = ["TLSAcceptor", "TLSInfo", "server_context", "client_context", "upgrade"]


class TLSAcceptor:
    """What a TLS listener wraps each accepted connection in; one per listener.

    ``context`` is the listener's one ``SSLContext`` (its session cache and
    ticket keys are what make resumption work): replace it to serve a
    reloaded certificate to new connections, while open ones keep theirs.
    ``plaintext_reply``: bytes sent in the clear to a client whose first byte
    is not a TLS handshake record (a plain HTTP request), before closing.
    """

    def __init__(
        self,
        reactor: Reactor,
        context: ssl.SSLContext,
        *,
        handshake_timeout_s: float = DEFAULT_HANDSHAKE_TIMEOUT_S,
        plaintext_reply: bytes | None = None,
        high_water: int = DEFAULT_HIGH_WATER,
        low_water: int | None = None,
    ) -> None:
        if not _is_server_context(context):
            raise ValueError("listen(ssl=...) needs a server context (ssl.PROTOCOL_TLS_SERVER or Purpose.CLIENT_AUTH)")
        self.reactor = reactor
        self.context = context
        self.handshake_timeout_s = handshake_timeout_s
        self.plaintext_reply = plaintext_reply
        self.high_water = high_water
        self.low_water = low_water

    def wrap(self, protocol: Protocol) -> TLSTransport:
        return TLSTransport(
            self.reactor, protocol, self.context, origin=TLSOrigin.ACCEPTED, server_side=True,
            handshake_timeout_s=self.handshake_timeout_s, plaintext_reply=self.plaintext_reply,
            high_water=self.high_water, low_water=self.low_water,
        )


class TLSInfo:
    """What a TLS connection says about itself, for applications; built once per connection.

    ``version`` (``"TLSv1.3"``), ``cipher`` (its name), ``server_name``
    (SNI, or None), ``alpn_protocol``, ``client_cert`` (``getpeercert()``'s
    dict for a verified client certificate, else None), ``client_cert_der``,
    ``client_subject`` and ``client_issuer`` (RFC 4514 strings, most
    specific last as mod_ssl writes them, e.g. ``CN=alice,O=Example``).
    """

    __slots__ = ("version", "cipher", "server_name", "alpn_protocol", "client_cert", "client_cert_der",
                 "client_subject", "client_issuer", "_cgi")

    def __init__(self, obj: ssl.SSLObject) -> None:
        self.version = obj.version()
        cipher = obj.cipher()
        self.cipher = cipher[0] if cipher else None
        self.server_name: str | None = getattr(obj, "sni_name", None) or obj.server_hostname
        self.alpn_protocol = obj.selected_alpn_protocol()
        cert = obj.getpeercert()
        self.client_cert: dict[str, Any] | None = cert or None
        self.client_cert_der = obj.getpeercert(binary_form=True) if cert else None
        self.client_subject = _dn_text(cert.get("subject", ())) if cert else None
        self.client_issuer = _dn_text(cert.get("issuer", ())) if cert else None
        self._cgi: dict[str, str] | None = None

    def cgi_variables(self) -> dict[str, str]:
        """``HTTPS=on`` and mod_ssl's ``SSL_*`` variables (for WSGI and CGI environs)."""
        if self._cgi is None:
            env = {"HTTPS": "on", "SSL_PROTOCOL": self.version or "", "SSL_CIPHER": self.cipher or ""}
            if self.server_name:
                env["SSL_TLS_SNI"] = self.server_name
            cert = self.client_cert
            if cert is None:
                env["SSL_CLIENT_VERIFY"] = "NONE"
            else:
                env["SSL_CLIENT_VERIFY"] = "SUCCESS"
                env["SSL_CLIENT_S_DN"] = self.client_subject or ""
                env["SSL_CLIENT_I_DN"] = self.client_issuer or ""
                env["SSL_CLIENT_M_SERIAL"] = str(cert.get("serialNumber", ""))
                env["SSL_CLIENT_V_START"] = str(cert.get("notBefore", ""))
                env["SSL_CLIENT_V_END"] = str(cert.get("notAfter", ""))
                for name_type, value in _subject_fields(cert.get("subject", ())):
                    env.setdefault(f"SSL_CLIENT_S_DN_{name_type}", value)
                if self.client_cert_der is not None:
                    env["SSL_CLIENT_CERT"] = ssl.DER_cert_to_PEM_cert(self.client_cert_der)
            self._cgi = env
        return dict(self._cgi)

    @classmethod
    def of(cls, transport: Transport) -> TLSInfo | None:
        """The ``TLSInfo`` of a TLS transport after its handshake, None for any other."""
        obj = transport.get_extra_info("ssl_object") if type(transport) is TLSTransport else None
        return cls(obj) if obj is not None else None


# mod_ssl's short names for the attribute types getpeercert() spells out.
_DN_SHORT_NAMES = {
    "commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU", "countryName": "C",
    "stateOrProvinceName": "ST", "localityName": "L", "emailAddress": "Email", "domainComponent": "DC",
    "userId": "UID", "serialNumber": "serialNumber", "givenName": "GN", "surname": "SN",
}


def _subject_fields(dn: Any) -> list[tuple[str, str]]:
    return [(_DN_SHORT_NAMES.get(key, key), value) for rdn in dn for key, value in rdn]


def _dn_text(dn: Any) -> str:
    """RFC 4514 text of a ``getpeercert()`` name, most specific first (``CN=alice,O=Example``).

    As mod_ssl's ``SSL_CLIENT_S_DN`` (OpenSSL's RFC 2253 flags): the
    attributes of a multi-valued RDN joined with ``+``; the special
    characters escaped with a backslash, control characters as ``\\XX``
    (a value of the peer's certificate must not put a line end into a log
    or a header).
    """
    return ",".join("+".join(f"{_DN_SHORT_NAMES.get(key, key)}={_dn_value(value)}" for key, value in rdn)
                    for rdn in reversed(dn))


def _dn_value(value: str) -> str:
    chars = ["\\" + ch if ch in ',+"\\<>;=' else "".join(f"\\{b:02X}" for b in ch.encode()) if ch < " " or ch == "\x7f"
             else ch for ch in value]
    if value[:1] in ("#", " "):  # RFC 4514 2.4: a leading "#" or space, and a trailing space
        chars[0] = "\\" + chars[0]
    if len(value) > 1 and value[-1] == " ":
        chars[-1] = "\\ "
    return "".join(chars)


def _is_server_context(context: ssl.SSLContext) -> bool:
    return context.protocol in (ssl.PROTOCOL_TLS_SERVER, ssl.PROTOCOL_TLS)


def server_context(
    certfile: str,
    keyfile: str | None = None,
    password: str | None = None,
    *,
    ca_certs: str | None = None,
    cert_reqs: ssl.VerifyMode = ssl.CERT_NONE,
    ciphers: str | None = None,
    minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
    alpn_protocols: Iterable[str] = (),
    session_tickets: int = 1,
) -> ssl.SSLContext:
    """A server ``SSLContext`` with evloop's defaults: TLS 1.2 or later, renegotiation off, tickets on.

    ``session_tickets``: the TLS 1.3 session tickets sent after a full
    handshake (0: none, and no resumption by ticket).  One, where OpenSSL
    sends two: a ticket costs the server about 168,000 instructions, 5% of
    a full handshake (``load/server_instructions.py tls-handshake``:
    3,142,845 with two, 2,974,446 with one), and clients (browsers, curl,
    Python's ``ssl``) keep one session per server, so a second ticket is
    seldom used; Go's ``crypto/tls`` sends one too.  A resumed handshake gets
    one whatever this says (OpenSSL), and TLS 1.2 has one ticket a handshake.

    Raises ``ssl.SSLError``/``OSError`` for a certificate or key that cannot be loaded.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = minimum_version
    context.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.num_tickets = session_tickets
    context.load_cert_chain(certfile, keyfile, password)
    if ca_certs is not None:
        context.load_verify_locations(ca_certs)
    context.verify_mode = cert_reqs
    if ciphers:
        context.set_ciphers(ciphers)
    alpn = list(alpn_protocols)
    if alpn:
        context.set_alpn_protocols(alpn)
    return context


def client_context(cafile: str | None = None, *, alpn_protocols: Iterable[str] = ()) -> ssl.SSLContext:
    """``ssl.create_default_context()`` (verification on), with ``cafile`` trusted and ALPN offered."""
    context = ssl.create_default_context(cafile=cafile)
    alpn = list(alpn_protocols)
    if alpn:
        context.set_alpn_protocols(alpn)
    return context


def upgrade(
    transport: SocketTransport,
    context: ssl.SSLContext,
    *,
    server_side: bool,
    server_hostname: str | None,
    handshake_timeout_s: float,
    paused: bool,
    high_water: int,
    low_water: int,
) -> tuple[TLSTransport, Future[TLSTransport]]:
    """``SocketTransport.start_tls``: the layer that takes over ``transport``'s protocol, and its future."""
    future: Future[TLSTransport] = transport.reactor.create_future()
    tls = TLSTransport(transport.reactor, transport.protocol, context, origin=TLSOrigin.UPGRADED,
                       server_side=server_side, server_hostname=server_hostname,
                       handshake_timeout_s=handshake_timeout_s, waiter=future, high_water=high_water,
                       low_water=low_water)
    if paused:
        tls.pause_writing()  # the socket transport's buffer is over its high water mark already
    return tls, future
