"""Request header fields as a case-insensitive multi-dict (``Request.headers``).

This module imports no ``socket``, ``selectors`` or ``time``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

__all__ = ["Headers"]


class Headers:
    """Case-insensitive multi-dict over a list of ``(name, value)`` pairs.

    ``raw`` is the sequence as received: names as sent, received order (a
    tuple for a request's headers, which are read-only). Lookups build a
    lowercase index on first use, so a request whose handler never reads a
    header pays nothing for it.
    """

    __slots__ = ("raw", "_index")

    def __init__(self, raw: Iterable[tuple[str, str]] | None = None) -> None:
        self.raw: list[tuple[str, str]] | tuple[tuple[str, str], ...] = (
            raw if type(raw) is list or type(raw) is tuple else list(raw or ())
        )
        self._index: dict[str, list[str]] | None = None

    def _build_index(self) -> dict[str, list[str]]:
        index: dict[str, list[str]] = {}
        for name, value in self.raw:
            index.setdefault(name.lower(), []).append(value)
        self._index = index
        return index

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of field ``name``, or ``default``.

        Use ``get_all`` for fields that may repeat (RFC 9110 section 5.3).
        """
        index = self._index if self._index is not None else self._build_index()
        values = index.get(name.lower())
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        """Every value of field ``name`` in received order (empty list if none)."""
        index = self._index if self._index is not None else self._build_index()
        return list(index.get(name.lower(), ()))

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        index = self._index if self._index is not None else self._build_index()
        return name.lower() in index

    def __iter__(self) -> Iterator[tuple[str, str]]:
        """Yield ``(name, value)`` pairs in received order, names as sent."""
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)

    def items(self) -> list[tuple[str, str]]:
        return list(self.raw)

    def __repr__(self) -> str:
        return f"Headers({self.raw!r})"
