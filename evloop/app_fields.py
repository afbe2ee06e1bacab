"""An application's response fields, checked once when its ``Response`` is made.

``evloop.app.Response`` takes fields from handler code: each is checked
here as the wire's rules say, so a bad one fails as the handler's mistake (a
logged 500), and the Content-Length it declares is taken out (the server
frames the body).  The HTTP writer frames what passed; it does not check
application input.

This module imports no ``socket``, ``selectors`` or ``time``.
"""

from __future__ import annotations

from collections.abc import Iterable

from .http.fields import check_field, parse_content_length

__all__ = ["checked_app_fields"]


def checked_app_fields(
    headers: Iterable[tuple[str, str]] | dict[str, str],
) -> tuple[list[tuple[str, str]], int | None, bool]:
    """An application's response fields, each checked (``ValueError`` for one that breaks the
    rules, so it fails as a 500): the list without its Content-Length, the length that declared
    (None: none), and whether a Content-Type is among them."""
    header_list = list(headers.items()) if isinstance(headers, dict) else list(headers)
    kept = []
    lengths = None
    has_content_type = False
    for name, value in header_list:
        check_field(name, value)
        lname = name.lower()
        if lname == "content-length":
            if lengths is None:
                lengths = [value]
            else:
                lengths.append(value)
            continue
        if lname == "content-type":
            has_content_type = True
        kept.append((name, value))
    return kept, None if lengths is None else parse_content_length(lengths), has_content_type
