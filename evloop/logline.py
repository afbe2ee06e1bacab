"""The access log's line: Common Log Format, escaped, with the duration; or a format of the user's.

``format_access_log`` makes a whole line; a server remembers the part before
the duration (``access_log_prefix``) because clients repeat their requests,
and ``request_log_prefix`` takes a request line as it came (a refused one's,
as far as it was read).  ``evloop.server.access_log`` delivers the lines.
``compile_access_format`` makes a line function from gunicorn's atoms
(``--access-log-format``), ``JSONAccessLine`` writes one as JSON, and
``JSONFormatter`` the server log's records (``--log-format json``).
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import re
import time
from collections.abc import Callable
from typing import Any

__all__ = ["format_access_log", "access_log_prefix", "request_log_prefix", "duration_text", "in_quotes",
           "line_start", "line_status", "THREE_DIGITS",
           "compile_access_format", "JSONAccessLine", "JSONFormatter", "LineFormat", "REQUEST_ID_FIELD"]

# What the access log writes as is: inside the quoted request line, visible
# ASCII and space except '"' and '\'; in the bare client field, not even the
# space (it separates the fields).  The rest is escaped as nginx escapes its
# log variables, "\xHH" per byte (UTF-8 for a character past latin-1), so
# a client cannot forge a line, a field, or terminal escapes.
_UNSAFE_IN_QUOTES = re.compile(r'[^\x20\x21\x23-\x5b\x5d-\x7e]')
_UNSAFE_BARE = re.compile(r'[^\x21\x23-\x5b\x5d-\x7e]')


def _escape_char(match: re.Match[str]) -> str:
    char = match[0]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02X}"
    return "".join(f"\\x{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))


def format_access_log(
    client_host: str | None,
    method: str,
    target: str,
    version: str,
    status: int,
    size: int | None,
    duration_s: float,
    when_str: str,
) -> str:
    """A Common Log Format line followed by the duration in seconds (``duration_text``).

    ``when_str`` is the CLF timestamp without brackets, e.g.
    ``10/Oct/2000:13:55:36 +0000``; ``size`` is body bytes sent (0 or None
    prints ``-`` as CLF does). Every request-derived field is escaped (see
    ``_UNSAFE_IN_QUOTES``): a quote, a backslash, a control or non-ASCII
    character becomes ``\\xHH`` as in nginx's log, and so does a space in the
    client field, so a client cannot forge a line or a field.
    """
    return access_log_prefix(client_host, method, target, version, status, size, when_str) + duration_text(duration_s)


def duration_text(duration_s: float) -> str:
    """A duration for the log: seconds with six decimals, whole microseconds (truncated)."""
    # The six decimals as two remembered three-digit texts: formatting one
    # int with a width (f"{us:06d}") cost more than the rest of the call
    # (valgrind: ~4,800 -> ~3,400 instructions a call with Python's loop).
    seconds, fraction = divmod(int(duration_s * 1_000_000), 1_000_000)
    milli, micro = divmod(fraction, 1000)
    return f"{seconds}.{THREE_DIGITS[milli]}{THREE_DIGITS[micro]}"


THREE_DIGITS = tuple(f"{i:03d}" for i in range(1000))  # "000" to "999"


def access_log_prefix(
    client_host: str | None, method: str, target: str, version: str, status: int, size: int | None, when_str: str
) -> str:
    """``format_access_log``'s line up to the duration: the part a server may
    remember, as clients repeat their requests (see ``server.access_log``)."""
    return request_log_prefix(client_host, f"{method} {target} {version}", status, size, when_str)


def request_log_prefix(client_host: str | None, request_line: str, status: int, size: int | None, when_str: str) -> str:
    """``access_log_prefix`` for a request line as it came (a refused request's, as far as it was read)."""
    return line_start(client_host, when_str) + in_quotes(request_line) + line_status(status, size)


# The prefix in three parts, which a server remembers apart: the start for
# its client and second, the status part for its status and size, so that a
# line for a target not seen before joins them around the request line.


def in_quotes(request_line: str) -> str:
    """The request line as the quoted field shows it: escaped where it must be (``_UNSAFE_IN_QUOTES``)."""
    # Most fields need nothing: C-level scans say so before any pattern runs
    # (a line prefix 0.47 us, against 1.0 with the patterns alone).
    if not (request_line.isascii() and request_line.isprintable()) or '"' in request_line or "\\" in request_line:
        return _UNSAFE_IN_QUOTES.sub(_escape_char, request_line)
    return request_line


def line_start(client_host: str | None, when_str: str) -> str:
    """The prefix up to the request line: the client (escaped, ``-`` when unknown), the time, the opening quote."""
    client = client_host or "-"
    if not (client.isascii() and client.isprintable()) or '"' in client or "\\" in client or " " in client:
        client = _UNSAFE_BARE.sub(_escape_char, client)
    return f'{client} - - [{when_str}] "'


def line_status(status: int, size: int | None) -> str:
    """The prefix after the request line: the closing quote, the status and the size (``-`` for none)."""
    return f'" {status} {size or "-"} '


# ------------------------------------------------------- custom line formats
# A subset of gunicorn's access-log atoms (its --access-logformat), each a
# Python expression over the arguments of a compiled line function (see
# compile_access_format).  Request-derived text is escaped as above.
_ATOMS = {
    "h": "_bare(client)",                      # remote address (the proxy's client with --proxy-headers)
    "l": "'-'",                                 # identd user: never known
    "u": "'-'",                                 # authenticated user: not known to the server
    "t": "'[' + when + ']'",                    # time, Common Log Format, in brackets
    "r": "_quoted(request_line)",               # request line
    "m": "_quoted(method)",                     # method
    "U": "_quoted(_path(target))",              # URL path, without the query
    "q": "_quoted(_query(target))",             # query string
    "H": "_quoted(version)",                    # protocol
    "s": "str(status)",                         # status
    "B": "str(size)",                           # body bytes sent
    "b": "str(size or '-')",                    # body bytes sent, '-' for none (CLF)
    "f": "_quoted(_header(request, 'referer'))",     # Referer
    "a": "_quoted(_header(request, 'user-agent'))",  # User-Agent
    "T": "str(int(duration_s))",                # duration, whole seconds
    "M": "str(int(duration_s * 1000))",         # duration, whole milliseconds
    "D": "str(int(duration_s * 1000000))",      # duration, whole microseconds
    "L": "duration_text(duration_s)",           # duration, seconds with six decimals
    "p": "_pid()",                              # process id
}
# %({NAME}i)s: a request field; %({x-request-id}i)s is the request id (see
# evloop.app.Request.request_id), from a trusted proxy or made.
_ATOM = re.compile(r"%\((?:([A-Za-z])|\{([!#$%&'*+.^_`|~0-9A-Za-z-]+)\}i)\)s|%%")
REQUEST_ID_FIELD = "x-request-id"

# The line functions' arguments: AccessLog passes them by position.
_LINE_ARGS = "client, request_line, method, target, version, status, size, duration_s, when, request"
LineFormat = Callable[[Any, str, str, str, str, int, int, float, str, Any], str]


def _quoted(value: str | None) -> str:
    if not value:
        return "-"
    if not (value.isascii() and value.isprintable()) or '"' in value or "\\" in value:
        return _UNSAFE_IN_QUOTES.sub(_escape_char, value)
    return value


def _bare(value: str | None) -> str:
    if not value:
        return "-"
    if not (value.isascii() and value.isprintable()) or '"' in value or "\\" in value or " " in value:
        return _UNSAFE_BARE.sub(_escape_char, value)
    return value


def _header(request: Any, name: str) -> str | None:
    if request is None:
        return None
    if name == REQUEST_ID_FIELD:
        return str(request.request_id)
    value: str | None = request.headers.get(name)
    return value


def _path(target: str) -> str:
    return target.partition("?")[0]


def _query(target: str) -> str:
    return target.partition("?")[2]


def compile_access_format(fmt: str) -> LineFormat:
    """A line function for ``fmt``, in gunicorn's atoms (``_ATOMS``, ``%({field}i)s``, ``%%``), made once.

    The format becomes the source of one function joining its literal
    text and its atoms' expressions (as ``collections.namedtuple`` makes
    its class), so a line costs what the atoms cost and no lookup of them.
    Raises ``ValueError`` naming the first thing that is not an atom.
    """
    namespace: dict[str, Any] = {
        "_bare": _bare, "_quoted": _quoted, "_header": _header, "_path": _path, "_query": _query,
        "duration_text": duration_text, "_pid": lambda: str(os.getpid()),
    }
    parts: list[str] = []

    def literal(text: str) -> None:
        if "%" in text:
            at = text.index("%")
            raise ValueError(f"--access-log-format: {text[at:at + 12]!r} is not an atom such as %(h)s or "
                             f"%({{user-agent}}i)s (write %% for a percent sign)")
        if text:
            name = f"_text{len(namespace)}"
            namespace[name] = text  # passed in, never written into the source
            parts.append(name)

    end = 0
    for match in _ATOM.finditer(fmt):
        literal(fmt[end:match.start()])
        end = match.end()
        letter, field = match.group(1), match.group(2)
        if match.group(0) == "%%":
            literal_name = f"_text{len(namespace)}"
            namespace[literal_name] = "%"
            parts.append(literal_name)
        elif letter is not None:
            if letter not in _ATOMS:
                raise ValueError(f"--access-log-format: %({letter})s is not an atom; known: "
                                 f"{', '.join(sorted(_ATOMS, key=str.lower))} and %({{field}}i)s")
            parts.append(_ATOMS[letter])
        else:
            name = f"_field{len(namespace)}"
            namespace[name] = field.lower()
            parts.append(f"_quoted(_header(request, {name}))")
    literal(fmt[end:])
    source = f"def line({_LINE_ARGS}):\n    return " + (" + ".join(parts) if parts else "''") + "\n"
    exec(compile(source, f"<access log format {fmt!r}>", "exec"), namespace)  # noqa: S102 - atoms only
    line: LineFormat = namespace["line"]
    return line


class JSONAccessLine:
    """The access log's line with ``--log-format json``: one JSON object, a ``LineFormat``.

    Its keys: ``JSONFormatter``'s (time, level, logger) and the request's
    (remote_addr, request, method, path, query, protocol, status, bytes,
    duration_s, referer, user_agent, request_id).  Written as one f-string,
    strings through the C encoder of ``json``, ASCII only: a control
    character or a lone surrogate from a request cannot break the line.  The
    time's text is remembered for its second (formatting it cost more than
    the rest of the line).
    """

    __slots__ = ("_second", "_date_time", "_offset")

    def __init__(self) -> None:
        self._second = -1
        self._date_time = ""  # 2026-12-06T09:00:00
        self._offset = ""  # +00:00

    def __call__(self, client: Any, request_line: str, method: str, target: str, version: str, status: int,
                 size: int, duration_s: float, when: str, request: Any) -> str:
        path, mark, query = target.partition("?")
        return (f'{{"time":"{self._now()}","level":"INFO","logger":"evloop.access",'
                f'"remote_addr":{_json_or_null(client)},"request":{_json_text(request_line)},'
                f'"method":{_json_or_null(method)},"path":{_json_or_null(path)},'
                f'"query":{_json_or_null(query if mark else None)},"protocol":{_json_or_null(version)},'
                f'"status":{status},"bytes":{size},"duration_s":{duration_text(duration_s)},'
                f'"referer":{_json_or_null(_header(request, "referer"))},'
                f'"user_agent":{_json_or_null(_header(request, "user-agent"))},'
                f'"request_id":{_json_or_null(_header(request, REQUEST_ID_FIELD))}}}')

    def _now(self) -> str:
        """Now, in RFC 3339 with milliseconds and the local offset (what log shippers parse without a pattern)."""
        now = time.time()
        second = int(now)
        if second != self._second:
            text = datetime.datetime.fromtimestamp(second).astimezone().isoformat()
            self._second, self._date_time, self._offset = second, text[:19], text[19:]
        return f"{self._date_time}.{int((now - second) * 1000):03d}{self._offset}"


def _json_or_null(value: str | None) -> str:
    return _json_text(value) if value else "null"


# ASCII only: a control character or a lone surrogate from a request cannot break the line.
_json_dumps = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode
_json_text: Callable[[str], str] = json.encoder.encode_basestring_ascii  # C; with the quotes


class JSONFormatter(logging.Formatter):
    """Server log records as one JSON object a line: time, level, logger, pid, message (and exception, stack)."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,  # with workers, whose lines also start "[worker N pid P]"
            "message": record.getMessage(),
        }
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            fields["stack"] = self.formatStack(record.stack_info)
        return _json_dumps(fields)
