"""Request header fields as a case-insensitive multi-dict (``Request.headers``).

This module imports no ``socket``, ``selectors`` or ``time``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

__all__ = ["Headers"]


# ``Headers._index`` after one lookup answered by a scan: the next lookup builds the index.
_SCANNED_ONCE: dict[str, list[str]] = {}


class Headers:
    """Case-insensitive multi-dict over a list of ``(name, value)`` pairs.

    ``raw`` is the sequence as received: names as sent, received order (a
    tuple for a request's headers, which are read-only).  The first ``get``
    scans the pairs; a second lookup of any kind builds a lowercase index
    and uses it from then on.  So a request whose handler never reads a
    header pays nothing for it, and one that reads a single field (an echo
    its Content-Type) pays a scan, without the index's dict and a list per
    field: 2 fields 4,367 -> 2,565 instructions, 12 (a browser's head)
    20,235 -> 8,676 (callgrind); a handler that reads many pays one scan more.
    """

    __slots__ = ("raw", "_index")

    def __init__(self, raw: Iterable[tuple[str, str]] | None = None) -> None:
        self.raw: list[tuple[str, str]] | tuple[tuple[str, str], ...] = (
            raw if type(raw) is list or type(raw) is tuple else list(raw or ())
        )
        # None: not looked up yet; _SCANNED_ONCE: one get answered by a scan; else the index.
        self._index: dict[str, list[str]] | None = None

    def _indexed(self) -> dict[str, list[str]]:
        """The lowercase index: name -> values in received order, built on first use."""
        index = self._index
        if index is None or index is _SCANNED_ONCE:
            index = {}
            for name, value in self.raw:
                index.setdefault(name.lower(), []).append(value)
            self._index = index
        return index

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of field ``name``, or ``default``.

        Use ``get_all`` for fields that may repeat (RFC 9110 section 5.3).
        """
        if self._index is None:  # the first lookup: a scan (see the class docstring)
            self._index = _SCANNED_ONCE
            wanted = name.lower()
            if wanted.isascii():
                # The length first: len() makes no string, lower() does, and a name of another length cannot
                # match (only U+0130 lowers to more characters, one of them not ASCII): the first get("content-type")
                # of a browser's 12 fields 11,290 -> 8,624 instructions, of a POST's 2 5,166 -> 4,970 (callgrind).
                size = len(wanted)
                for field_name, value in self.raw:
                    if len(field_name) == size and field_name.lower() == wanted:
                        return value
                return default
        values = self._indexed().get(name.lower())
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        """Every value of field ``name`` in received order (empty list if none)."""
        return list(self._indexed().get(name.lower(), ()))

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return name.lower() in self._indexed()

    def __iter__(self) -> Iterator[tuple[str, str]]:
        """Yield ``(name, value)`` pairs in received order, names as sent."""
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)

    def items(self) -> list[tuple[str, str]]:
        return list(self.raw)

    def __repr__(self) -> str:
        return f"Headers({self.raw!r})"
