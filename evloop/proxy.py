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

A hop is believed only as far as it follows the grammar: its node must be
what RFC 7239 section 6 allows (an IP address, ``unknown`` or an obfuscated
``_name``, with an optional port), and a ``Forwarded`` element must follow
section 4 (no unbalanced quote, every pair ``token=value``).  Anything else
(a host name, spaces, a forged log line) names no address: the walk stops
there as at an untrusted hop, the peer's address is kept, and the text never
reaches ``Request.client`` or the access log.

``Forwarded`` wins over the ``X-Forwarded-*`` pair when both are present.
Pure functions: no sockets, no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any

from .http.grammar import QUOTED, TCHAR

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
# RFC 7239 section 4: forwarded-pair = token "=" value, value = token / quoted-string.
_PAIR = re.compile(rf"[ \t]*+([{TCHAR}]++)=([{TCHAR}]++|{QUOTED})[ \t]*+")
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
# RFC 7239 section 6.3: obfnode and obfport, "_" 1*( ALPHA / DIGIT / "." / "_" / "-" ).
_OBFUSCATED = re.compile(r"_[A-Za-z0-9._-]++")
_PORT = re.compile(r"[0-9]{1,5}+")


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


def parse_forwarded(values: Iterable[str]) -> list[dict[str, str]]:
    """The elements of ``Forwarded`` field values, left to right, as ``{param: value}``.

    Parameter names are lower-cased, values unquoted.  An element that breaks
    RFC 7239 section 4 (an unbalanced quote, a pair without ``=``, a value
    that is neither a token nor a quoted-string, a parameter given twice)
    comes back as ``{}``: nothing in it is believed, and it still counts as a
    hop so the positions of the others stay right.
    """
    elements: list[dict[str, str]] = []
    for value in values:
        for element in _split_outside_quotes(value, ","):
            if element.strip(" \t"):
                elements.append(_parse_element(element))
    return elements


def _parse_element(element: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in _split_outside_quotes(element, ";"):
        if not pair.strip(" \t"):
            continue  # empty pairs are allowed: [ forwarded-pair ] *( ";" [ forwarded-pair ] )
        match = _PAIR.fullmatch(pair)
        if match is None or match[1].lower() in params:
            return {}
        value = match[2]
        params[match[1].lower()] = _QUOTED_PAIR.sub(r"\1", value[1:-1]) if value[0] == '"' else value
    return params


def _parse_node(node: str, *, bare_ipv6: bool = False) -> tuple[str, int] | None:
    """An RFC 7239 section 6 node as ``(host, port)``, or None when it is not one.

    ``host`` is an IPv4 address, an IPv6 address (in brackets; bare too with
    ``bare_ipv6``, as X-Forwarded-For writes it), ``unknown`` or an obfuscated
    ``_name``; ``port`` is 0 when absent or obfuscated.  Anything else (a
    name, spaces, quotes, a port over 65535) is None: the header's writer did
    not follow the grammar, so nothing from it reaches a request or a log.
    """
    if node[:1] == "[":
        end = node.find("]")
        host, rest = node[1:end], node[end + 1 :]
        if end < 0 or not _is_ipv6(host):
            return None
    elif bare_ipv6 and node.count(":") > 1:
        return (node, 0) if _is_ipv6(node) else None
    else:
        host = node.partition(":")[0]
        rest = node[len(host) :]
        if not (_is_ipv4(host) or host.lower() == "unknown" or _OBFUSCATED.fullmatch(host)):
            return None
    if not rest:
        return host, 0
    port = rest[1:]
    if rest[0] != ":":
        return None
    if _OBFUSCATED.fullmatch(port):
        return host, 0
    if _PORT.fullmatch(port) and int(port) <= 65535:
        return host, int(port)
    return None


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _is_ipv6(text: str) -> bool:
    if "%" in text:  # RFC 3986's IPv6address has no zone identifier
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


# A hop of the chain: the address it names (None when it names none: unknown,
# obfuscated, absent or malformed), and the scheme it states (None when it
# states none, or when its element is malformed).
Hop = tuple[tuple[str, int] | None, str | None]


def _hop(node: str | None, proto: str | None, *, bare_ipv6: bool = False) -> Hop:
    if node is None:
        return None, proto
    parsed = _parse_node(node.strip(" \t"), bare_ipv6=bare_ipv6)
    if parsed is None:
        return None, None  # a malformed node: nothing its writer said is believed
    host = parsed[0]
    return (None if host[0] == "_" or host.lower() == "unknown" else parsed), proto


def _hops(headers: Iterable[tuple[str, str]]) -> list[Hop] | None:
    """The chain of hops left to right, or None when no proxy header is present."""
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
        return [_hop(el.get("for"), el.get("proto")) for el in parse_forwarded(forwarded)]
    if not xff and not xfp:
        return None
    fors = [part.strip(" \t") for value in xff for part in value.split(",") if part.strip(" \t")]
    protos = [part.strip(" \t") for value in xfp for part in value.split(",") if part.strip(" \t")]
    if len(protos) == len(fors):
        return [_hop(node, proto, bare_ipv6=True) for node, proto in zip(fors, protos, strict=True)]
    # Counts differ (a proxy set one header and not the other): the proto is
    # the one set last, by the direct peer, for whatever hop we settle on.
    last_proto = protos[-1] if protos else None
    if not fors:
        return [(None, last_proto)]
    return [_hop(node, last_proto, bare_ipv6=True) for node in fors]


def resolve_client(
    peer: Any, scheme: str, headers: Iterable[tuple[str, str]], trusted: TrustedProxies
) -> tuple[Any, str]:
    """The ``(client, scheme)`` of a request, from its proxy headers when the peer is trusted.

    ``peer`` is the socket's peername (``(host, port, ...)`` or a Unix socket
    path); ``client`` comes back as ``(host, port)`` (port 0 when the
    headers do not carry one) or the unchanged ``peer``.  A hop that names no
    address (``unknown``, obfuscated, absent, or malformed: see
    ``_parse_node``) is never trusted, so the walk stops there and the peer's
    address is kept; a malformed hop's proto is ignored too, and a proto other
    than http/https always is.
    """
    if not trusted.is_trusted_peer(peer):
        return peer, scheme
    hops = _hops(headers)
    if not hops:
        return peer, scheme
    chosen = 0
    for index in range(len(hops) - 1, -1, -1):
        address = hops[index][0]
        if address is None or not trusted.is_trusted(address[0]):
            chosen = index
            break
    address, proto = hops[chosen]
    if proto is not None and proto.lower() in _SCHEMES:
        scheme = proto.lower()
    return (peer if address is None else address), scheme
