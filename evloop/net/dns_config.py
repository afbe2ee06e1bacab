"""What the resolver reads from the system: ``/etc/resolv.conf`` and ``/etc/hosts``, as glibc reads them.

Both parsers take text and never fail: a line they do not understand is
skipped, as the C library skips it, and every number is clamped to glibc's
bounds (``resolv.conf(5)``).  ``ConfigFile`` re-reads a file when it changes
(a ``stat`` per look-up, no more), as glibc has done since 2.26.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from .dns_message import DNSFormatError, Name, encode_name

__all__ = ["ResolvConf", "parse_resolv_conf", "HostsTable", "parse_hosts", "ConfigFile"]

MAX_NAMESERVERS = 3        # MAXNS: glibc ignores the rest
MAX_SEARCH_DOMAINS = 6     # the historical MAXDNSRCH
MAX_NDOTS = 15
MAX_TIMEOUT_S = 30         # RES_MAXRETRANS
MAX_ATTEMPTS = 5           # RES_MAXRETRY

T = TypeVar("T")


@dataclass(frozen=True)
class ResolvConf:
    """The settings of ``resolv.conf`` the resolver uses, with glibc's defaults.

    ``nameservers`` are addresses as written (a port is not part of the
    syntax: 53); with none the C library asks ``127.0.0.1``.
    """

    nameservers: tuple[str, ...] = ()
    search: tuple[Name, ...] = ()
    ndots: int = 1
    timeout_s: int = 5
    attempts: int = 2
    rotate: bool = False


def parse_resolv_conf(text: str, *, hostname: str | None = None) -> ResolvConf:
    """``ResolvConf`` from the text of a ``resolv.conf``.

    ``search`` and ``domain`` replace each other (the last one wins, as in
    glibc); with neither, the search list is the domain part of ``hostname``
    (the machine's name) when it has one.
    """
    nameservers: list[str] = []
    search: list[Name] | None = None
    values = {"ndots": 1, "timeout": 5, "attempts": 2}
    bounds = {"ndots": (0, MAX_NDOTS), "timeout": (1, MAX_TIMEOUT_S), "attempts": (1, MAX_ATTEMPTS)}
    rotate = False
    for line in text.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if not words:
            continue
        keyword, args = words[0], words[1:]
        if keyword == "nameserver" and args and len(nameservers) < MAX_NAMESERVERS:
            nameservers.append(args[0])
        elif keyword == "domain" and args:
            search = _domains(args[:1])
        elif keyword == "search":
            search = _domains(args)[:MAX_SEARCH_DOMAINS]
        elif keyword == "options":
            for option in args:
                key, _, value = option.partition(":")
                if key == "rotate":
                    rotate = True
                elif key in values and value.isdigit():
                    low, high = bounds[key]
                    values[key] = min(max(int(value), low), high)
    if search is None:
        search = _domains([hostname.partition(".")[2]]) if hostname else []
    return ResolvConf(
        nameservers=tuple(nameservers), search=tuple(search), ndots=values["ndots"],
        timeout_s=values["timeout"], attempts=values["attempts"], rotate=rotate,
    )


def _domains(texts: list[str]) -> list[Name]:
    domains = []
    for text in texts:
        try:
            domains.append(encode_name(text))
        except DNSFormatError:
            continue  # "search ." or a malformed domain: skipped
    return domains


@dataclass(frozen=True)
class HostsTable:
    """``/etc/hosts``: each name (and alias) to its addresses, in file order."""

    addresses: dict[Name, tuple[str, ...]] = field(default_factory=dict)

    def lookup(self, name: Name) -> tuple[str, ...]:
        return self.addresses.get(name, ())


def parse_hosts(text: str) -> HostsTable:
    """``HostsTable`` from the text of a hosts file: ``address name [alias ...]`` per line."""
    table: dict[Name, list[str]] = {}
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) < 2 or not _is_address(words[0]):
            continue
        for word in words[1:]:
            try:
                name = encode_name(word)
            except DNSFormatError:
                continue
            known = table.setdefault(name, [])
            if words[0] not in known:
                known.append(words[0])
    return HostsTable({name: tuple(addresses) for name, addresses in table.items()})


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return False
    return True


class ConfigFile(Generic[T]):
    """A file parsed once and again whenever its inode, size or mtime changes.

    A missing or unreadable file parses as the empty text (glibc's behaviour
    for both ``resolv.conf`` and ``hosts``).
    """

    def __init__(self, path: str | None, parse: Callable[[str], T]) -> None:
        self._path = path
        self._parse = parse
        self._stamp: tuple[int, int, int] | None = None
        self._value = parse("")

    def get(self) -> T:
        if self._path is None:
            return self._value
        try:
            info = os.stat(self._path)
            stamp = (info.st_ino, info.st_size, info.st_mtime_ns)
        except OSError:
            stamp = (0, 0, 0)
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                with open(self._path, encoding="utf-8", errors="replace") as f:
                    text = f.read(1024 * 1024)  # bounded: a hosts file of a megabyte is already absurd
            except OSError:
                text = ""
            self._value = self._parse(text)
        return self._value
