"""Proxy headers: the real client address and scheme behind trusted proxies.

Theory of operation.  A request that came through proxies carries a chain of
addresses: the ``Forwarded`` header (RFC 7239), or ``X-Forwarded-For`` and
``X-Forwarded-Proto``, each proxy appending the address of its own peer, and
last the direct peer of this server.  Anybody can send these headers, so the
chain is read from the right and only as far as it is vouched for: starting
from the direct peer (which must be trusted, else nothing is read), each hop
added by a trusted proxy is skipped; the first untrusted hop is the client
(the "right-most untrusted" rule of uvicorn and werkzeug's ProxyFix).  When
every hop is trusted the left-most one is the client.

``Forwarded`` wins over the ``X-Forwarded-*`` pair when both are present.
Pure functions: no sockets, no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

__all__ = ["TrustedProxies", "parse_forwarded", "resolve_client"]

_SCHEMES = frozenset({"http", "https"})
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """The set of peers whose proxy headers are believed.

    ``spec`` is a comma-separated string or an iterable of entries: IPv4 or
    IPv6 addresses, CIDR ranges (``10.0.0.0/8``), ``*`` (trust every peer), or
    ``unix:`` (trust peers on a Unix domain socket).  Raises ``ValueError``
    naming a malformed entry.
    """

    __slots__ = ("trust_all", "trust_unix", "networks", "spec")

    def __init__(self, spec: str | Iterable[str] = "127.0.0.1") -> None:
        entries = spec.split(",") if isinstance(spec, str) else list(spec)
        self.trust_all = False
        self.trust_unix = False
        self.networks: list[Network] = []
        for entry in (e.strip() for e in entries):
            if not entry:
                continue
            if entry == "*":
                self.trust_all = True
            elif entry == "unix:":
                self.trust_unix = True
            else:
                try:
                    self.networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    raise ValueError(
                        f"--forwarded-allow-ips: {entry!r} is not an address, a CIDR range, '*' or 'unix:'"
                    ) from None
        self.spec = ",".join(e.strip() for e in entries if e.strip())

    def __repr__(self) -> str:
        return f"TrustedProxies({self.spec!r})"

    def is_trusted(self, host: Any) -> bool:
        """Whether ``host`` (an address string; a non-tuple peer means a Unix socket) is trusted."""
        if self.trust_all:
            return True
        if not isinstance(host, str):
            return False
        address = _ip(host)
        if address is None:
            return False
        return any(address in network for network in self.networks)

    def is_trusted_peer(self, peer: Any) -> bool:
        """Whether the direct peer (a socket's peername) is trusted."""
        if isinstance(peer, tuple) and peer:
            return self.is_trusted(peer[0])
        return self.trust_all or self.trust_unix  # a Unix socket peer has no address


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:127.0.0.1 from a dual-stack socket
    return address


# ----------------------------------------------------------------- parsing
def _split_outside_quotes(text: str, sep: str) -> list[str]:
    """Split on ``sep`` except inside RFC 9110 quoted-strings (which may hold commas)."""
    parts: list[str] = []
    start = 0
    quoted = False
    escaped = False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        out = []
        escaped = False
        for ch in value[1:-1]:
            if escaped:
                out.append(ch)
                escaped = False
            elif ch == "\\":
                escaped = True
            else:
                out.append(ch)
        return "".join(out)
    return value


def parse_forwarded(values: Iterable[str]) -> list[dict[str, str]]:
    """The elements of ``Forwarded`` field values, left to right, as ``{param: value}``.

    Parameter names are lower-cased, values unquoted.  Malformed pairs are
    skipped; an element with no valid pair is kept as ``{}`` so hop positions
    stay right.
    """
    elements: list[dict[str, str]] = []
    for value in values:
        for element in _split_outside_quotes(value, ","):
            if not element.strip():
                continue
            params: dict[str, str] = {}
            for pair in _split_outside_quotes(element, ";"):
                name, eq, val = pair.partition("=")
                name = name.strip().lower()
                if eq and name and name not in params:
                    params[name] = _unquote(val)
            elements.append(params)
    return elements


def _parse_node(node: str) -> tuple[str, int]:
    """An RFC 7239 node (``192.0.2.1``, ``192.0.2.1:80``, ``[2001:db8::1]:4711``, ``unknown``)
    or an X-Forwarded-For entry, as ``(host, port)``; port 0 when absent."""
    node = node.strip()
    if node.startswith("["):
        host, _, rest = node[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif node.count(":") == 1:
        host, _, port = node.partition(":")
    else:
        host, port = node, ""  # IPv4, bare IPv6 (X-Forwarded-For), or a token
    return host, int(port) if port.isdigit() and len(port) <= 5 else 0


def _hops(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str | None]] | None:
    """``[(for_node, proto_or_None), ...]`` left to right, or None when no proxy header is present."""
    forwarded: list[str] = []
    xff: list[str] = []
    xfp: list[str] = []
    for name, value in headers:
        lname = name.lower()
        if lname == "forwarded":
            forwarded.append(value)
        elif lname == "x-forwarded-for":
            xff.append(value)
        elif lname == "x-forwarded-proto":
            xfp.append(value)
    if forwarded:
        return [(el.get("for", ""), el.get("proto")) for el in parse_forwarded(forwarded)]
    if not xff and not xfp:
        return None
    fors = [part.strip() for value in xff for part in value.split(",") if part.strip()]
    protos = [part.strip() for value in xfp for part in value.split(",") if part.strip()]
    if len(protos) == len(fors):
        return list(zip(fors, protos, strict=True))
    # Counts differ (a proxy set one header and not the other): the proto is
    # the one set last, by the direct peer, for whatever hop we settle on.
    last_proto = protos[-1] if protos else None
    if not fors:
        return [("", last_proto)]
    return [(node, last_proto) for node in fors]


def resolve_client(
    peer: Any, scheme: str, headers: Iterable[tuple[str, str]], trusted: TrustedProxies
) -> tuple[Any, str]:
    """The ``(client, scheme)`` of a request, from its proxy headers when the peer is trusted.

    ``peer`` is the socket's peername (``(host, port, ...)`` or a Unix socket
    path); ``client`` comes back as ``(host, port)`` (port 0 when the
    headers do not carry one) or the unchanged ``peer``.  An absent or unknown
    ``for`` keeps the peer's address; a proto other than http/https is ignored.
    """
    if not trusted.is_trusted_peer(peer):
        return peer, scheme
    hops = _hops(headers)
    if not hops:
        return peer, scheme
    chosen = 0
    for index in range(len(hops) - 1, -1, -1):
        host, _ = _parse_node(hops[index][0])
        if index == 0 or not trusted.is_trusted(host):
            chosen = index
            break
    node, proto = hops[chosen]
    client = peer
    host, port = _parse_node(node)
    if host and host.lower() != "unknown" and not host.startswith("_"):
        client = (host, port)
    if proto is not None and proto.lower() in _SCHEMES:
        scheme = proto.lower()
    return client, scheme
