"""DNS messages, sans-I/O: queries built, answers parsed and read (RFC 1035).

Theory of operation.  The resolver sends one question per query (``A`` or
``AAAA``) and reads back one message.  Everything that comes back is hostile
until proven otherwise, so ``parse_message`` refuses, with ``DNSFormatError``
and nothing else, whatever RFC 1035 does not allow:

- a message longer than the caller's bound (512 bytes is the classic UDP
  limit; the resolver allows 4 KiB over UDP and the 64 KiB a TCP length
  prefix can say), shorter than its header, or with bytes after its last
  record;
- a label longer than 63 bytes, a name longer than 255 bytes on the wire, the
  reserved label types ``0x40`` and ``0x80``;
- a compression pointer that does not point strictly before itself: every
  jump then goes to a smaller offset, so no pointer chain can loop, and the
  jumps are counted as well;
- a record whose data overruns its length, or an ``A``/``AAAA``/``CNAME``/
  ``SOA`` whose data does not have exactly the shape of its type.

Names are tuples of lowercase labels (bytes): DNS compares names without
regard to ASCII case (RFC 4343), and a label may hold a dot, so a dotted
string would let ``a.b`` (one label) pass for ``a``, ``b`` (two).

``read_answer`` then turns a message that answers our question into the
addresses it gives, following the CNAME chain from the question's name, or
into the negative outcome: NXDOMAIN (no such name) and NODATA (the name
exists, not with this type) are told apart, with how long each may be cached
(RFC 2308: the SOA in the authority section bounds it).
"""

from __future__ import annotations

import enum
import ipaddress
import struct
from dataclasses import dataclass, field

__all__ = [
    "DNSFormatError", "Name", "Header", "Question", "Record", "SOA", "Message", "Outcome", "Answer",
    "TYPE_A", "TYPE_AAAA", "TYPE_CNAME", "TYPE_SOA", "CLASS_IN",
    "RCODE_NOERROR", "RCODE_FORMERR", "RCODE_SERVFAIL", "RCODE_NXDOMAIN", "RCODE_NOTIMP", "RCODE_REFUSED",
    "encode_name", "name_text", "build_query", "parse_message", "is_reply_to", "read_answer",
    "MAX_NAME_BYTES", "MAX_LABEL_BYTES", "MAX_MESSAGE_BYTES",
]

TYPE_A, TYPE_CNAME, TYPE_SOA, TYPE_AAAA = 1, 5, 6, 28
CLASS_IN = 1
RCODE_NOERROR, RCODE_FORMERR, RCODE_SERVFAIL, RCODE_NXDOMAIN, RCODE_NOTIMP, RCODE_REFUSED = 0, 1, 2, 3, 4, 5

MAX_LABEL_BYTES = 63         # RFC 1035 section 2.3.4
MAX_NAME_BYTES = 255         # on the wire: every length byte and the final zero counted
MAX_MESSAGE_BYTES = 65535    # what a TCP length prefix can say (RFC 1035 section 4.2.2)
MAX_CNAME_CHAIN = 16         # links followed from the question's name; glibc stops at 16 too
_MAX_POINTER_JUMPS = 127     # a name of 255 bytes has at most 127 labels: more jumps than that is hostile

_HEADER = struct.Struct("!HHHHHH")
_QUESTION_TAIL = struct.Struct("!HH")
_RECORD_TAIL = struct.Struct("!HHIH")
_SOA_TAIL = struct.Struct("!IIIII")

Name = tuple[bytes, ...]
"""A domain name as its lowercase labels, without the root's empty label: ``(b"www", b"example", b"com")``."""


class DNSFormatError(ValueError):
    """A DNS message or name that breaks RFC 1035's rules (the reason is the message)."""


@dataclass(frozen=True, slots=True)
class Header:
    id: int
    is_response: bool
    opcode: int
    authoritative: bool
    truncated: bool
    recursion_desired: bool
    recursion_available: bool
    rcode: int


@dataclass(frozen=True, slots=True)
class Question:
    name: Name
    type: int
    cls: int


@dataclass(frozen=True, slots=True)
class SOA:
    mname: Name
    rname: Name
    serial: int
    refresh: int
    retry: int
    expire: int
    minimum: int


@dataclass(frozen=True, slots=True)
class Record:
    """One resource record; ``data`` is parsed for the types the resolver reads.

    ``A``/``AAAA``: the address as text; ``CNAME``: the target ``Name``;
    ``SOA``: an ``SOA``; any other type: the raw bytes.
    """

    name: Name
    type: int
    cls: int
    ttl: int
    data: str | Name | SOA | bytes


@dataclass(frozen=True, slots=True)
class Message:
    header: Header
    questions: tuple[Question, ...]
    answers: tuple[Record, ...]
    authority: tuple[Record, ...]
    additional: tuple[Record, ...]


class Outcome(enum.Enum):
    ADDRESSES = "addresses"            # at least one address of the type asked
    NXDOMAIN = "no such name"          # RCODE 3: the name does not exist, with any type
    NODATA = "no data"                 # NOERROR and no address: the name exists, not with this type
    SERVER_FAILURE = "server failure"  # SERVFAIL, REFUSED, NOTIMP, FORMERR or a reserved code: ask another


@dataclass(frozen=True, slots=True)
class Answer:
    """What a reply says about one question: ``outcome``, ``addresses`` (text), and
    ``ttl`` (seconds it may be cached; 0: not at all)."""

    outcome: Outcome
    addresses: tuple[str, ...] = ()
    ttl: int = 0
    canonical_name: Name = field(default=())


# --------------------------------------------------------------- names
def encode_name(host: str) -> Name:
    """The ``Name`` of a host name as text; one trailing dot (absolute name) is allowed.

    Non-ASCII labels are IDNA-encoded as ``socket.getaddrinfo`` does.
    ``DNSFormatError`` for an empty name or label, a label past 63 bytes,
    a name past 255 bytes, or a character that is not printable ASCII.
    """
    text = host[:-1] if host.endswith(".") else host
    if not text:
        raise DNSFormatError("empty host name")
    try:
        raw = text.encode("ascii") if text.isascii() else text.encode("idna")
    except UnicodeError as exc:
        raise DNSFormatError(f"host name not IDNA-encodable: {exc}") from None
    labels = raw.split(b".")
    for label in labels:
        if not label:
            raise DNSFormatError("empty label in host name")
        if len(label) > MAX_LABEL_BYTES:
            raise DNSFormatError(f"label of {len(label)} bytes (at most {MAX_LABEL_BYTES})")
        if not all(0x21 <= byte < 0x7F for byte in label):
            raise DNSFormatError("host name with a space or control character")
    name = tuple(label.lower() for label in labels)
    if _wire_length(name) > MAX_NAME_BYTES:
        raise DNSFormatError(f"host name of {_wire_length(name)} bytes on the wire (at most {MAX_NAME_BYTES})")
    return name


def name_text(name: Name) -> str:
    """A ``Name`` as dotted text (for messages; bytes outside printable ASCII escaped)."""
    return ".".join(label.decode("ascii", "backslashreplace") for label in name) or "."


def _wire_length(name: Name) -> int:
    return sum(len(label) + 1 for label in name) + 1


# -------------------------------------------------------------- queries
def build_query(query_id: int, name: Name, qtype: int, *, recursion_desired: bool = True) -> bytes:
    """A standard query (opcode 0) for ``name``/``qtype`` in class IN with id ``query_id``."""
    if not 0 <= query_id <= 0xFFFF:
        raise ValueError(f"query id out of range: {query_id}")
    flags = 0x0100 if recursion_desired else 0
    wire = b"".join(bytes([len(label)]) + label for label in name) + b"\0"
    return _HEADER.pack(query_id, flags, 1, 0, 0, 0) + wire + _QUESTION_TAIL.pack(qtype, CLASS_IN)


# -------------------------------------------------------------- parsing
def parse_message(data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> Message:
    """Parse a whole DNS message; ``DNSFormatError`` for anything RFC 1035 does not allow
    (see the module docstring), and for a message longer than ``max_bytes``."""
    if len(data) > max_bytes:
        raise DNSFormatError(f"message of {len(data)} bytes (at most {max_bytes})")
    if len(data) < _HEADER.size:
        raise DNSFormatError(f"message of {len(data)} bytes is shorter than a header")
    query_id, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(data)
    header = Header(
        id=query_id, is_response=bool(flags & 0x8000), opcode=(flags >> 11) & 0xF,
        authoritative=bool(flags & 0x0400), truncated=bool(flags & 0x0200),
        recursion_desired=bool(flags & 0x0100), recursion_available=bool(flags & 0x0080), rcode=flags & 0xF,
    )
    offset = _HEADER.size
    known: dict[int, tuple[Name, int]] = {}
    questions = []
    for _ in range(qdcount):
        name, offset = _read_name(data, offset, known)
        qtype, qclass = _unpack(_QUESTION_TAIL, data, offset, "question")
        offset += _QUESTION_TAIL.size
        questions.append(Question(name, qtype, qclass))
    sections = []
    for count in (ancount, nscount, arcount):
        records = []
        for _ in range(count):
            record, offset = _read_record(data, offset, known)
            records.append(record)
        sections.append(tuple(records))
    if offset != len(data):
        raise DNSFormatError(f"{len(data) - offset} bytes after the last record")
    return Message(header, tuple(questions), *sections)


def _unpack(fmt: struct.Struct, data: bytes, offset: int, what: str) -> tuple[int, ...]:
    if offset + fmt.size > len(data):
        raise DNSFormatError(f"message ends inside a {what}")
    return fmt.unpack_from(data, offset)


def _read_name(data: bytes, offset: int, known: dict[int, tuple[Name, int]]) -> tuple[Name, int]:
    """The name at ``offset`` and the offset just after it (after its first pointer, if any).

    ``known`` maps the offsets of names already read in this message to
    their labels and wire length, so a pointer to one costs one step: many
    records pointing at one long chain of pointers cost their number, not
    their number times the chain's length.
    """
    labels: list[bytes] = []
    starts: list[int] = []  # where each label of this name was read
    wire_length = 1
    end = -1  # where the name ends in the record: set at the first pointer
    jumps = 0
    size = len(data)
    while True:
        if offset in known:
            suffix, suffix_length = known[offset]
            wire_length += suffix_length - 1
            if wire_length > MAX_NAME_BYTES:
                raise DNSFormatError(f"name longer than {MAX_NAME_BYTES} bytes")
            labels.extend(suffix)
            break
        if offset >= size:
            raise DNSFormatError("message ends inside a name")
        length = data[offset]
        kind = length & 0xC0
        if kind == 0xC0:
            if offset + 1 >= size:
                raise DNSFormatError("message ends inside a compression pointer")
            target = ((length & 0x3F) << 8) | data[offset + 1]
            if target >= offset:
                raise DNSFormatError(f"compression pointer at {offset} to {target}: not strictly backwards")
            jumps += 1
            if jumps > _MAX_POINTER_JUMPS:
                raise DNSFormatError("too many compression pointers in one name")
            if end < 0:
                end = offset + 2
            offset = target
            continue
        if kind:
            raise DNSFormatError(f"reserved label type 0x{kind:02x}")
        if length == 0:
            offset += 1
            break
        wire_length += length + 1
        if wire_length > MAX_NAME_BYTES:
            raise DNSFormatError(f"name longer than {MAX_NAME_BYTES} bytes")
        label = data[offset + 1:offset + 1 + length]
        if len(label) != length:
            raise DNSFormatError("message ends inside a label")
        starts.append(offset)
        labels.append(label.lower())
        offset += 1 + length
    name = tuple(labels)
    suffix_length = wire_length
    for index, start in enumerate(starts):
        known[start] = (name[index:], suffix_length)
        suffix_length -= len(name[index]) + 1
    return name, (offset if end < 0 else end)


def _read_record(data: bytes, offset: int, known: dict[int, tuple[Name, int]]) -> tuple[Record, int]:
    name, offset = _read_name(data, offset, known)
    rtype, rclass, ttl, rdlength = _unpack(_RECORD_TAIL, data, offset, "record")
    start = offset + _RECORD_TAIL.size
    end = start + rdlength
    if end > len(data):
        raise DNSFormatError("record data runs past the end of the message")
    if ttl & 0x80000000:
        ttl = 0  # RFC 2181 section 8: a TTL with the top bit set is read as zero
    payload: str | Name | SOA | bytes
    if rclass != CLASS_IN:
        payload = data[start:end]
    elif rtype == TYPE_A:
        if rdlength != 4:
            raise DNSFormatError(f"A record of {rdlength} bytes")
        payload = str(ipaddress.IPv4Address(data[start:end]))
    elif rtype == TYPE_AAAA:
        if rdlength != 16:
            raise DNSFormatError(f"AAAA record of {rdlength} bytes")
        payload = str(ipaddress.IPv6Address(data[start:end]))
    elif rtype == TYPE_CNAME:
        payload, after = _read_name(data, start, known)
        if after != end:
            raise DNSFormatError("CNAME data and its length disagree")
    elif rtype == TYPE_SOA:
        mname, after = _read_name(data, start, known)
        rname, after = _read_name(data, after, known)
        if after + _SOA_TAIL.size != end:
            raise DNSFormatError("SOA data and its length disagree")
        payload = SOA(mname, rname, *_SOA_TAIL.unpack_from(data, after))
    else:
        payload = data[start:end]
    return Record(name, rtype, rclass, ttl, payload), end


# ------------------------------------------------------------- reading
def is_reply_to(message: Message, query_id: int, name: Name, qtype: int) -> bool:
    """Whether ``message`` is the reply to our query: a response, our id, a standard
    query's opcode, and our one question echoed (RFC 5452 section 9.1)."""
    header = message.header
    return (
        header.is_response and header.id == query_id and header.opcode == 0
        and message.questions == (Question(name, qtype, CLASS_IN),)
    )


def read_answer(message: Message, name: Name, qtype: int) -> Answer:
    """What ``message`` (a reply to ``name``/``qtype``, see ``is_reply_to``) says.

    The answer section's CNAME chain is followed from ``name`` (at most
    ``MAX_CNAME_CHAIN`` links; a loop or a longer chain is
    ``DNSFormatError``); the addresses are the records of ``qtype`` owned by
    the chain's last name.  Records owned by other names are ignored: a server
    may only speak for what was asked.  The TTL is the smallest of the
    records used; a negative answer's is the SOA's (RFC 2308 section 5), or
    0 without one.
    """
    rcode = message.header.rcode
    if rcode not in (RCODE_NOERROR, RCODE_NXDOMAIN):
        return Answer(Outcome.SERVER_FAILURE)
    aliases: dict[Name, Record] = {}
    for record in message.answers:
        if record.type == TYPE_CNAME and record.cls == CLASS_IN:
            aliases.setdefault(record.name, record)
    current = name
    ttls: list[int] = []
    seen = {current}
    while current in aliases:
        link = aliases[current]
        ttls.append(link.ttl)
        target = link.data
        assert isinstance(target, tuple)
        if target in seen or len(seen) > MAX_CNAME_CHAIN:
            raise DNSFormatError(f"CNAME chain from {name_text(name)} loops or is longer than {MAX_CNAME_CHAIN}")
        seen.add(target)
        current = target
    addresses = []
    for record in message.answers:
        if record.type == qtype and record.cls == CLASS_IN and record.name == current:
            assert isinstance(record.data, str)
            addresses.append(record.data)
            ttls.append(record.ttl)
    if addresses:
        return Answer(Outcome.ADDRESSES, tuple(dict.fromkeys(addresses)), min(ttls), current)
    outcome = Outcome.NXDOMAIN if rcode == RCODE_NXDOMAIN else Outcome.NODATA
    return Answer(outcome, ttl=_negative_ttl(message), canonical_name=current)


def _negative_ttl(message: Message) -> int:
    for record in message.authority:
        if record.type == TYPE_SOA and isinstance(record.data, SOA):
            return min(record.ttl, record.data.minimum)
    return 0  # RFC 2308 section 5: no SOA, no caching
