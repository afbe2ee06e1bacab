"""Request heads: taken from the receive buffer, parsed and validated.

Theory of operation
-------------------
Bytes accumulate in a ``ReceiveBuffer`` (a bytearray and a read offset).  A
request head is parsed only once it is complete: ``HeadReader`` looks for the
empty line that ends it, resuming each search where the previous one stopped
(``ReceiveBuffer.searched``), so a head that arrives one byte at a time costs
linear time.  The complete head is decoded once as latin-1 and validated with
one compiled ``fullmatch`` for the request line and, the plain path, one
``findall`` for all field lines (a count check proves every line matched; a
head with trailing whitespace in a value takes a second ``findall`` with the
pattern that strips it, see ``grammar.FIELD_LINE_NO_TRAILING_OWS_RE``).  A
longer field section is split into lines instead, each looked up in a cache
of lines already checked (``field_lines``: a browser repeats most of its
lines), with the plain path for anything unusual.  The few fields that
matter to framing are then picked out by lowercased name.

Clients repeat themselves: keep-alive connections, health checks and polling
clients send the same head again and again.  A successful parse is a pure
function of the head text and the limits, so ``HeadReader`` looks the exact
text up in the server's bounded cache of parsed heads (``HTTP1Caches.heads``,
see ``evloop.http.caches``) before parsing it with ``parse_head``; a hit skips
the validation that already passed on identical bytes.  Each ``HeadReader``
(one per connection) also remembers the last head it took from that cache:
when the next bytes start with exactly those bytes (a keep-alive client, a
pipelined burst) the head is taken with one comparison, without searching or
decoding.  A browser's heads never repeat whole: their target, Referer and
Cookie change.  A longer head is then looked up without those three
(``head_templates``), and a hit checks only them.

Line endings: RFC 9112 2.2 lets a recipient accept a bare LF as the end of a
line in the request line and header section, and evloop does (some scripted
clients send them; accepting them cannot desynchronise framing because the
head ends at the first empty line either way).  A bare CR anywhere in the head
is rejected.

The body after a head is read by ``body_readers``.  All errors are
``ProtocolError(status, reason)``.
"""

import re
from dataclasses import dataclass

from ..buffers import EMPTY, ReceiveBuffer
from . import grammar, head_templates
from .caches import BoundedCache, CachedHead, HTTP1Caches
from .errors import ProtocolError
from .events import RequestHead
from .field_lines import FRAMING_FIELDS, FRAMING_INITIALS, MIN_SECTION_CHARS, split_field_lines
from .fields import ContentLengthTooLarge, parse_content_length


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-connection parser limits; each overrun maps to a status."""

    max_request_line_bytes: int = 8192  # else 414
    max_head_bytes: int = 65536  # else 431
    max_header_count: int = 100  # else 431 (also for trailers)
    # Else 413.  1 GiB, as waitress: bodies past ServerConfig.body_spool_bytes
    # go to a temporary file, so the limit bounds disk, not memory.
    max_body_bytes: int = 1 << 30
    max_chunk_ext_bytes: int = 4096  # on one chunk's size line, else 400
    # All of one body's chunk extensions together, else 413: the line limit
    # alone let 40 MiB of extensions through beside 10 KiB of data.  16 KiB
    # and 413, as Node.js since CVE-2024-22019.
    max_chunk_ext_total_bytes: int = 16384
    # Unparsed bytes held behind a complete request before the server should
    # stop reading (``ServerConnection.should_pause_reading``).
    max_pipelined_bytes: int = 65536 * 4


_BARE_CR = re.compile(rb"\r(?!\n)")


# ---------------------------------------------------------------------------
# Head


def skip_empty_lines(buf: ReceiveBuffer) -> None:
    """Drop empty lines before a request line (RFC 9112 2.2 SHOULD ignore)."""
    data = buf.data
    pos = buf.pos
    size = len(data)
    while pos < size:
        c = data[pos]
        if c == 10:
            pos += 1
        elif c == 13:
            if pos + 1 == size:
                break
            if data[pos + 1] != 10:
                raise ProtocolError(400, "bare CR before request line (RFC 9112 2.2)")
            pos += 2
        else:
            break
    if pos != buf.pos:
        buf.pos = pos
        buf.searched = 0


class HeadReader:
    """Takes request heads out of one connection's receive buffer.

    Keeps the connection's memo of the last head it took from
    ``HTTP1Caches.heads`` (``last``, a ``CachedHead``): when the next bytes
    start with exactly that head's bytes (a keep-alive client, a pipelined
    burst) the head is taken with one comparison, without searching,
    decoding or a cache lookup.  ``ServerConnection.next_event`` makes that
    comparison before it calls ``read`` (without the call: pipelined
    17,728 -> 17,380 instructions a request), so ``read`` itself does not.
    Measured with ``load/bench_instructions.py`` (against the same run
    without the memo): ``keepalive`` 38,497 -> 33,100 instructions a
    request.  The memo is about bytes, not offsets, so the buffer's
    compaction leaves it valid.

    A browser sends one head a read.  When the whole buffer is the
    connection's last template's key with valid holes
    (``head_templates.fill``), it is one complete head that ends where
    the buffer does and nowhere before: the key's pieces are a parsed
    head's, whose only empty line ends it, and the holes hold no line
    end.  So ``ServerConnection.next_event`` fills the head before the
    search for its empty line, which is then not made (~3,600
    instructions over a browser's head; load/bench_instructions.py
    --manual-clock browser 69,715 -> 65,031 instructions a request), and
    without this reader's call (55,513 -> 54,976).  A buffer the template
    does not fill comes here, its text decoded once (``read``'s
    ``whole``).  tests/unit/http/test_http_head_templates.py reads heads
    whole, in two parts and with bytes behind them, through that and the
    plain path.
    """

    __slots__ = ("limits", "caches", "last", "last_template")

    def __init__(self, limits: Limits, caches: HTTP1Caches) -> None:
        self.limits = limits
        self.caches = caches
        # An entry of ``caches.heads`` (set on a hit only), so always checked against ``limits``; it outlives
        # ``ServerConnection.renew``: the next connection's head compares with it as a lookup would.
        self.last: CachedHead | None = None
        # The template the connection's last head was made from: a browser's next head likely has its shape.
        # Always one checked against ``limits`` (``head_templates.lookup`` finds no other).
        self.last_template: head_templates.HeadTemplate | None = None

    def read(self, buf: ReceiveBuffer, whole: str | None = None) -> RequestHead | None:
        """Consume and parse one complete request head, or return None.

        Returns None when the head is not complete yet (nothing is consumed).
        Raises ProtocolError for a malformed head or an exceeded limit;
        incomplete heads are checked as they grow (limits, bare CR) so an
        attack is refused without waiting for its end.

        ``whole``: the whole buffer's text, when the caller decoded it and the
        connection's last template did not fill it (see the class's docstring).
        """
        data = buf.data
        pos = buf.pos
        size = len(data)
        if pos == size:
            # Asked once a keep-alive request (load/bench_instructions.py: keepalive 33,556 -> 32,513).  All
            # parsed: cleared now, not at the next read, so an idle connection holds no head.
            if size:
                buf.data = EMPTY
                buf.pos = 0
            return None
        limits = self.limits
        c = data[pos]
        if c == 13 or c == 10:
            skip_empty_lines(buf)
            pos = buf.pos
            if pos == size:
                return None
        lo = pos + buf.searched
        # The head ends at the first empty line: "\n\r\n" or, with bare LF, "\n\n".
        i = data.find(b"\n\r\n", lo)
        if i >= 0:
            end = i + 3
            # A bare-LF empty line before i would end the head first.  It is
            # looked for only when the head up to i is refused: an empty line
            # inside a head always is (parse_head takes no empty field line,
            # and a cached head passed parse_head), so a head that parses has
            # none.  The scan cost ~4,300 instructions a browser-sized head.
            bare_lf_unchecked = True
        else:
            j = data.find(b"\n\n", lo)
            if j < 0:
                _check_partial_head(buf, self.limits, lo)
                return None
            end = j + 2
            bare_lf_unchecked = False
        while True:  # at most twice: see bare_lf_unchecked
            buf.pos = end
            buf.searched = 0
            try:
                return self._head_between(data, pos, end, limits, whole)
            except ProtocolError:
                # The refused head stays in the buffer: the error report (the
                # access log) shows its request line.  Nothing is parsed after an error.
                buf.pos = pos
                if bare_lf_unchecked:
                    bare_lf_unchecked = False
                    j = data.find(b"\n\n", lo, end - 2)
                    if j >= 0:
                        end = j + 2  # the head ends earlier: parse that one
                        continue
                # A bare CR always fails parsing; report it first, as an incomplete
                # head would, so the answer does not depend on how bytes arrived.
                if _BARE_CR.search(data, pos, end) is not None:
                    raise ProtocolError(400, "bare CR in request head (RFC 9112 2.2)") from None
                raise

    def _head_between(
        self, data: bytes | bytearray, pos: int, end: int, limits: Limits, whole: str | None
    ) -> RequestHead:
        """The head in ``data[pos:end]`` (ending with its empty line): from the cache of heads, else parsed.

        ``whole``: the buffer's text when ``read`` decoded it and the connection's template did not fill it.
        """
        size = end - pos  # the text's length: latin-1 has a character a byte (len() once less, unique ~100)
        if size > limits.max_head_bytes:
            # The request line limit wins when the request line alone is too long.
            nl = data.find(b"\n", pos, end)
            if nl - pos - (data[nl - 1] == 13) > limits.max_request_line_bytes:
                raise ProtocolError(414, "request line too long")
            raise ProtocolError(431, "request head too large")
        # One request per read is the common case: decode without slicing.
        if pos == 0 and end == len(data):
            if whole is not None:
                text = whole  # and the connection's template did not fill it (read)
            else:
                text = data.decode("latin-1")
        else:
            text = data[pos:end].decode("latin-1")
            whole = None
        template = self.last_template
        if template is not None and whole is None:
            # The shape of the connection's last head, compared in place before the text is hashed for the
            # caches (head_templates.fill; load/bench_instructions.py --manual-clock browser 95,369 -> 79,295).
            head = head_templates.fill(template, text)
            if head is not None:
                return head
        caches = self.caches
        heads = caches.heads
        cached = heads.entries.get(text)
        if cached is not None and cached.limits is limits:
            # Identical text already passed validation under these limits (and the size limits above).
            self.last = cached
            return cached.head
        heads.misses += 1
        # A head that differs from an earlier one only in its target, Referer and Cookie (see head_templates).
        template_key = None
        if size > MIN_SECTION_CHARS:  # a short head parses faster than it is cut
            template, template_key = head_templates.lookup(text, limits, caches)
            if template is not None:
                found = head_templates.fill(template, text)
                if found is not None:
                    self.last_template = template
                    return found
                caches.head_templates.misses += 1
        head = parse_head(text, limits, caches)
        if template_key is not None and size <= caches.max_head_chars:
            _admit_template(template_key, text, head, limits, caches)
        # Admitted to ``caches.heads`` on its second sighting only: a stream of unique heads then costs
        # one lookup and one insert each instead of holding their parses.  Inline, not a function: a call
        # less for every head parsed (load/bench_instructions.py unique: 63,364 -> 62,225).
        if size <= caches.max_head_chars:
            key = hash(text)
            seen = caches.heads_seen
            if key not in seen.entries:
                seen.misses += 1
                seen.put(key, True)
            else:
                heads.put(text, CachedHead(limits, head, text.encode("latin-1")))
        return head


def _admit_template(key: head_templates.Key, text: str, head: RequestHead, limits: Limits, caches: HTTP1Caches) -> None:
    """Hold ``head``'s template under ``key`` on the key's second sighting (see ``head_templates``)."""
    seen = caches.heads_seen
    key_hash = hash(key)
    if key_hash not in seen.entries:
        seen.misses += 1
        seen.put(key_hash, True)
        return
    template = head_templates.template_for(text, head, limits)
    if template is not None:
        caches.head_templates.put(key, template)


def _check_partial_head(buf: ReceiveBuffer, limits: Limits, lo: int) -> None:
    data = buf.data
    pos = buf.pos
    size = len(data)
    # A trailing CR may yet be followed by LF; check everything before it.
    end = size - 1 if data[size - 1] == 13 else size
    if _BARE_CR.search(data, lo, end) is not None:
        raise ProtocolError(400, "bare CR in request head (RFC 9112 2.2)")
    n = size - pos
    max_line = limits.max_request_line_bytes
    # Once the request line window is complete the answer cannot change, so
    # look only on the call that completes it (keeps byte-at-a-time linear).
    if n > max_line + 1 >= lo - pos + 1 and data.find(b"\n", pos, pos + max_line + 2) < 0:
        raise ProtocolError(414, "request line too long")
    if n > limits.max_head_bytes:
        raise ProtocolError(431, "request head too large")
    # Overlap by two bytes so a terminator split across reads is found.
    buf.searched = n - 2 if n > 2 else 0


def parse_head(text: str, limits: Limits, caches: HTTP1Caches) -> RequestHead:
    """Parse and validate a complete head (latin-1 text ending with its empty line).

    The full parse: ``HeadReader`` calls it for a head that is not in ``caches.heads`` (it uses
    ``caches.field_lines`` and ``caches.hosts``).  Heads are read-only (their ``headers`` is a
    tuple): the reader hands out the same object again for an identical head.
    """
    line_end = text.find("\n")
    rl_end = line_end - 1 if text[line_end - 1] == "\r" else line_end
    if rl_end > limits.max_request_line_bytes:
        raise ProtocolError(414, "request line too long")
    # The lines through the cache of checked lines (see field_lines), or None: the plain path parses them.
    fields = split_field_lines(text, line_end + 1, caches, limits) if len(text) - line_end > MIN_SECTION_CHARS else None
    if fields is None:
        nfields = text.count("\n") - 2
        if nfields > limits.max_header_count:
            raise ProtocolError(431, "too many header fields")

    target_host = None
    m = grammar.REQUEST_LINE_FAST_RE.fullmatch(text, 0, rl_end)
    if m is not None and m[1] != "CONNECT":
        method, target, minor = m.groups()
        version = "HTTP/1.0" if minor == "0" else "HTTP/1.1"
    else:
        method, target, version, target_host = parse_request_line(text[:rl_end])

    if fields is None:
        # The loop below picks the framing fields out of all of them.
        headers = framing = _field_lines(text, line_end + 1, nfields) if nfields else []
    else:
        headers, framing = fields

    http11 = version == "HTTP/1.1"
    host: str | None = None
    host_count = 0
    lengths: list[str] | None  # the Content-Length values
    connection = expect = transfer_encoding = lengths = None
    # ``framing`` holds the framing fields among ``headers`` (valid, OWS-stripped), or all of them.  Names are
    # non-empty tokens: testing the first letter before lowering skips most (~2,400 instructions a browser head).
    for name, value in framing:
        if name[0] not in FRAMING_INITIALS:
            continue
        name = name.lower()
        if name not in FRAMING_FIELDS:
            continue
        value = value.lower()
        if name == "host":
            host_count += 1
            host = value
        elif name == "connection":
            connection = connection + "," + value if connection is not None else value
        elif name == "content-length":
            if lengths is None:
                lengths = [value]
            else:
                lengths.append(value)
        elif name == "transfer-encoding":
            transfer_encoding = transfer_encoding + "," + value if transfer_encoding is not None else value
        else:
            expect = expect + "," + value if expect is not None else value

    hosts = caches.hosts
    if host_count != 1 or host not in hosts.entries:
        _check_host(host, host_count, http11, hosts)
    if target_host is not None:
        host, headers = _host_from_target(target_host, headers, host_count)

    # "keep-alive" is what browsers send: no list to split (~5,700 instructions less a head).
    keep_alive = http11 if connection is None else connection == "keep-alive" or _keep_alive(connection, http11)

    content_length: int | None = None
    chunked = expect_continue = False
    if expect is not None or transfer_encoding is not None or lengths is not None:
        content_length, chunked, expect_continue = _body_fields(expect, transfer_encoding, lengths, http11, limits)
    return RequestHead(
        method, target, version, tuple(headers), keep_alive, content_length, chunked, expect_continue, host
    )


def _keep_alive(connection: str, http11: bool) -> bool:
    """Whether a request with these Connection tokens (joined, lowercased) keeps its connection (RFC 9112 9.3)."""
    tokens = list_elements(connection)
    return "close" not in tokens and (http11 or "keep-alive" in tokens)


def _field_lines(text: str, start: int, nfields: int) -> list[tuple[str, str]]:
    """The ``nfields`` (name, value) pairs of the field lines from ``start``; ``ProtocolError`` naming a bad one.

    One match per valid line; a count mismatch means some line is bad, or
    (for the fast pattern only) has trailing OWS.
    """
    headers: list[tuple[str, str]] = grammar.FIELD_LINE_NO_TRAILING_OWS_RE.findall(text, start)
    if len(headers) != nfields:
        headers = grammar.FIELD_LINE_RE.findall(text, start)
        if len(headers) != nfields:
            raise field_error(text[start:])
    return headers


def _host_from_target(
    target_host: str, headers: list[tuple[str, str]], host_count: int
) -> tuple[str, list[tuple[str, str]]]:
    """RFC 9112 3.2.2: the authority of an absolute-form target wins, and the
    Host field says so too (as a proxy must rewrite it), so every reader of
    the headers (handlers, WSGI's HTTP_HOST) sees one host."""
    if host_count:
        headers = [(name, target_host) if name.lower() == "host" else (name, value) for name, value in headers]
    else:  # HTTP/1.0 may leave Host out
        headers.append(("Host", target_host))
    return target_host.lower(), headers


def _check_host(host: str | None, count: int, http11: bool, hosts: BoundedCache[str, bool]) -> None:
    """RFC 9112 3.2: exactly one valid Host in HTTP/1.1, at most one in 1.0;
    a valid one not in ``hosts`` (a miss) is remembered there."""
    if count != 1:
        if count:
            raise ProtocolError(400, "multiple Host headers (RFC 9112 3.2)")
        if http11:
            raise ProtocolError(400, "missing Host header (RFC 9112 3.2)")
        return
    hosts.misses += 1
    if host is None or grammar.HOST_RE.fullmatch(host) is None:
        raise ProtocolError(400, "invalid Host header (RFC 9112 3.2)")
    hosts.put(host, True)


def _body_fields(
    expect: str | None, transfer_encoding: str | None, lengths: list[str] | None, http11: bool, limits: Limits
) -> tuple[int | None, bool, bool]:
    """``parse_head``'s Expect, Transfer-Encoding and Content-Length fields
    (lowercased, repeated ones joined): (Content-Length, chunked, 100-continue expected)."""
    expect_continue = False
    if expect is not None:
        for element in list_elements(expect):
            if element != "100-continue":
                raise ProtocolError(417, "unsupported expectation (RFC 9110 10.1.1)")
            # RFC 9110 10.1.1: ignore 100-continue from an HTTP/1.0 client.
            expect_continue = http11

    if transfer_encoding is not None:
        if not http11:
            raise ProtocolError(400, "Transfer-Encoding in HTTP/1.0 (RFC 9112 6.1)")
        if lengths is not None:
            raise ProtocolError(400, "both Transfer-Encoding and Content-Length (RFC 9112 6.3)")
        check_transfer_coding(list_elements(transfer_encoding))
        return None, True, expect_continue
    if lengths is None:
        return None, False, expect_continue
    try:
        content_length = parse_content_length(lengths)
    except ContentLengthTooLarge as exc:
        raise ProtocolError(413, str(exc)) from None
    except ValueError as exc:
        raise ProtocolError(400, str(exc)) from None
    if content_length > limits.max_body_bytes:
        raise ProtocolError(413, "request body too large")
    return content_length, False, expect_continue


def parse_request_line(line: str) -> tuple[str, str, str, str | None]:
    """The slow path: any request line the fast pattern did not accept.

    Returns (method, target, version, authority of an absolute-form target or
    None) or raises ProtocolError naming the problem.
    """
    if "\r" in line:
        raise ProtocolError(400, "bare CR in request line (RFC 9112 2.2)")
    parts = line.split(" ")
    if len(parts) != 3:
        raise ProtocolError(400, "malformed request line (RFC 9112 3)")
    method, target, version = parts
    if grammar.TOKEN_RE.fullmatch(method) is None:
        raise ProtocolError(400, "invalid method (RFC 9112 3.1)")
    vm = grammar.VERSION_RE.fullmatch(version)
    if vm is None:
        raise ProtocolError(400, "invalid HTTP version (RFC 9112 2.3)")
    if vm[1] != "1":
        raise ProtocolError(505, "HTTP version not supported")
    version = "HTTP/1.0" if vm[2] == "0" else "HTTP/1.1"
    if method == "CONNECT":
        # RFC 9112 3.2.3: CONNECT takes the authority form; evloop is no proxy.
        if grammar.AUTHORITY_FORM_RE.fullmatch(target) is None:
            raise ProtocolError(400, "CONNECT needs an authority-form target (RFC 9112 3.2.3)")
        raise ProtocolError(501, "CONNECT not supported")
    target_host = None
    if target[:1] == "/":
        if grammar.ORIGIN_FORM_RE.fullmatch(target) is None:
            raise ProtocolError(400, "invalid request-target (RFC 9112 3.2.1)")
    elif target == "*":
        if method != "OPTIONS":
            raise ProtocolError(400, "asterisk-form is only for OPTIONS (RFC 9112 3.2.4)")
    else:
        am = grammar.ABSOLUTE_FORM_RE.fullmatch(target)
        if am is None:
            raise ProtocolError(400, "invalid request-target (RFC 9112 3.2)")
        target_host = am[1]
    return method, target, version, target_host


def field_error(lines: str) -> ProtocolError:
    """Name the first bad field line in ``lines`` (the slow path)."""
    for line in lines.split("\n"):
        if line[-1:] == "\r":
            line = line[:-1]
        if not line:
            continue
        if "\r" in line:
            return ProtocolError(400, "bare CR in field line (RFC 9112 2.2)")
        if line[0] in " \t":
            return ProtocolError(400, "obs-fold or leading whitespace in field line (RFC 9112 5.2)")
        name, colon, value = line.partition(":")
        if not colon:
            return ProtocolError(400, "field line without a colon (RFC 9112 5)")
        if not name:
            return ProtocolError(400, "empty field name (RFC 9112 5)")
        if name[-1] in " \t":
            return ProtocolError(400, "whitespace before colon (RFC 9112 5.1)")
        if grammar.TOKEN_RE.fullmatch(name) is None:
            return ProtocolError(400, "invalid character in field name (RFC 9110 5.1)")
        if grammar.FIELD_VALUE_RE.fullmatch(value) is None:
            return ProtocolError(400, "invalid character in field value (RFC 9110 5.5)")
    return ProtocolError(400, "malformed field line")


def list_elements(value: str) -> list[str]:
    """Non-empty, OWS-stripped elements of a comma list (RFC 9110 5.6.1)."""
    return [e for e in (e.strip(" \t") for e in value.split(",")) if e]


def check_transfer_coding(elements: list[str]) -> None:
    """Accept exactly a final "chunked"; see RFC 9112 6.1 and 6.3."""
    codings = []
    for element in elements:
        m = grammar.TRANSFER_CODING_RE.fullmatch(element)
        if m is None:
            raise ProtocolError(400, "invalid Transfer-Encoding (RFC 9112 6.1)")
        codings.append(m.groups())
    if not codings:
        raise ProtocolError(400, "empty Transfer-Encoding (RFC 9112 6.1)")
    name, params = codings[-1]
    if name != "chunked":
        raise ProtocolError(400, "final transfer coding is not chunked (RFC 9112 6.3)")
    if params:
        raise ProtocolError(400, "parameters on chunked (RFC 9112 7)")
    for name, _ in codings[:-1]:
        if name == "chunked":
            raise ProtocolError(400, "chunked applied more than once (RFC 9112 6.1)")
    if len(codings) > 1:
        raise ProtocolError(501, "unsupported transfer coding (RFC 9112 6.1)")
