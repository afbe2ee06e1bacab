"""The sans-I/O DNS codec and the resolver's configuration parsers: no sockets.

Replies are built by ``support.dns_wire`` (written apart from evloop's codec),
byte by byte for the hostile ones.
"""

from __future__ import annotations

import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.dns_wire import AAAA, CNAME, a, aaaa, parse_query, reply, rr, soa, wire_name

from evloop.net.dns_config import ConfigFile, parse_hosts, parse_resolv_conf
from evloop.net.dns_message import (
    TYPE_A,
    TYPE_AAAA,
    Answer,
    DNSFormatError,
    Message,
    Outcome,
    build_query,
    encode_name,
    is_reply_to,
    name_text,
    parse_message,
    read_answer,
)

A = TYPE_A
PTR = b"\xc0\x0c"  # a pointer to the question's name, right after the header


def query_for(name: str, qtype: int = A, qid: int = 0x1234):
    return parse_query(build_query(qid, encode_name(name), qtype))


# ---------------------------------------------------------------- names
def test_names_are_lowercase_labels():
    assert encode_name("WWW.Example.COM.") == (b"www", b"example", b"com")
    assert encode_name("bücher.example") == (b"xn--bcher-kva", b"example")
    assert name_text(encode_name("a.b")) == "a.b"


@pytest.mark.parametrize("bad", ["", ".", "a..b", ".a", "x" * 64 + ".com", "a b.com", "a\x00b",
                                 ".".join(["x" * 63] * 4)])
def test_bad_names_are_refused(bad):
    with pytest.raises(DNSFormatError):
        encode_name(bad)


def test_the_longest_name_fits():
    name = ".".join(["x" * 63] * 3 + ["x" * 61])  # 3*64 + 62 + 1 = 255 bytes on the wire
    assert len(encode_name(name)) == 4


def test_a_query_on_the_wire():
    assert build_query(0xBEEF, encode_name("a.example"), TYPE_AAAA) == (
        b"\xbe\xef\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + b"\x01a\x07example\x00" + b"\x00\x1c\x00\x01"
    )


# -------------------------------------------------------------- replies
def test_a_reply_with_compression_cname_and_addresses():
    query = query_for("www.example", A)
    data = reply(query, [
        rr(PTR, CNAME, 300, wire_name("real.example")),
        rr(wire_name("real.example"), A, 60, a("192.0.2.1")),
        rr(wire_name("real.example"), A, 120, a("192.0.2.2")),
        rr(wire_name("other.example"), A, 60, a("203.0.113.9")),  # not on the chain: ignored
    ])
    message = parse_message(data)
    assert is_reply_to(message, 0x1234, encode_name("www.example"), A)
    answer = read_answer(message, encode_name("www.example"), A)
    assert answer == Answer(Outcome.ADDRESSES, ("192.0.2.1", "192.0.2.2"), 60, encode_name("real.example"))


def test_aaaa_and_the_question_echo_in_any_case():
    query = query_for("v6.example", AAAA)
    upper = query.question.replace(b"v6", b"V6")
    message = parse_message(reply(query, [rr(PTR, AAAA, 30, aaaa("2001:db8::1"))], question=upper))
    assert is_reply_to(message, 0x1234, encode_name("v6.example"), AAAA)  # RFC 4343: any case
    assert read_answer(message, encode_name("v6.example"), AAAA).addresses == ("2001:db8::1",)


def test_nxdomain_and_nodata_are_told_apart_with_the_soa_ttl():
    query = query_for("nope.test")
    nx = read_answer(parse_message(reply(query, rcode=3, authority=[soa(900, 60)])), encode_name("nope.test"), A)
    assert (nx.outcome, nx.ttl) == (Outcome.NXDOMAIN, 60)
    nodata = read_answer(parse_message(reply(query, authority=[soa(30, 600)])), encode_name("nope.test"), A)
    assert (nodata.outcome, nodata.ttl) == (Outcome.NODATA, 30)
    bare = read_answer(parse_message(reply(query, rcode=3)), encode_name("nope.test"), A)
    assert (bare.outcome, bare.ttl) == (Outcome.NXDOMAIN, 0)  # no SOA: not to be cached


@pytest.mark.parametrize("rcode", [1, 2, 4, 5, 9])
def test_error_codes_are_server_failures(rcode):
    query = query_for("x.test")
    assert read_answer(parse_message(reply(query, rcode=rcode)), encode_name("x.test"), A).outcome \
        is Outcome.SERVER_FAILURE


def test_replies_to_another_question_or_id_are_not_ours():
    query = query_for("x.test")
    name = encode_name("x.test")
    ours = parse_message(reply(query))
    assert is_reply_to(ours, 0x1234, name, A)
    assert not is_reply_to(ours, 0x1235, name, A)
    assert not is_reply_to(ours, 0x1234, encode_name("y.test"), A)
    assert not is_reply_to(ours, 0x1234, name, AAAA)
    assert not is_reply_to(parse_message(query.raw), 0x1234, name, A)  # a query, not a response
    two = reply(query)[:5] + b"\x02" + reply(query)[6:] + query.question  # the question twice
    assert not is_reply_to(parse_message(two), 0x1234, name, A)


def test_a_cname_loop_is_refused():
    query = query_for("a.test")
    data = reply(query, [rr(PTR, CNAME, 60, wire_name("b.test")), rr(wire_name("b.test"), CNAME, 60, wire_name("a.test"))])
    with pytest.raises(DNSFormatError, match="loops"):
        read_answer(parse_message(data), encode_name("a.test"), A)


def test_a_long_cname_chain_is_refused():
    query = query_for("c0.test")
    links = [rr(wire_name(f"c{i}.test"), CNAME, 60, wire_name(f"c{i + 1}.test")) for i in range(20)]
    with pytest.raises(DNSFormatError):
        read_answer(parse_message(reply(query, links)), encode_name("c0.test"), A)


def test_a_negative_ttl_bit_reads_as_zero():
    query = query_for("x.test")
    data = reply(query, [rr(PTR, A, 0x80000001, a("192.0.2.1"))])
    assert read_answer(parse_message(data), encode_name("x.test"), A).ttl == 0


# ------------------------------------------------------- hostile replies
HEADER = struct.pack("!HHHHHH", 0x1234, 0x8180, 1, 1, 0, 0)
QUESTION = wire_name("x.test") + b"\x00\x01\x00\x01"


def hostile_cases():
    ok = HEADER + QUESTION + rr(PTR, A, 60, a("192.0.2.1"))
    yield "the reference reply parses", ok, None
    yield "shorter than a header", ok[:11], "shorter than a header"
    yield "pointer to itself", HEADER + b"\xc0\x0c\x00\x01\x00\x01", "not strictly backwards"
    yield "pointer forward", HEADER + b"\xc0\x20\x00\x01\x00\x01" + b"\x00" * 32, "not strictly backwards"
    # Two names pointing at each other: the second's pointer goes back to the
    # first, whose pointer would go forward: refused there.
    yield "pointer cycle", HEADER[:4] + b"\x00\x02" + HEADER[6:] + b"\x01x\xc0\x12\x00\x01\x00\x01\xc0\x0c\x00\x01\x00\x01", \
        "not strictly backwards"
    yield "label type 0x40", HEADER + b"\x40" + b"x" * 64 + b"\x00\x00\x01\x00\x01", "reserved label type"
    yield "label type 0x80", HEADER + b"\x80\x00\x00\x01\x00\x01", "reserved label type"
    yield "name ends early", HEADER + b"\x05ab", "ends inside"
    yield "pointer cut", HEADER + b"\xc0", "ends inside"
    yield "question cut", HEADER + wire_name("x.test") + b"\x00", "ends inside a question"
    yield "record data overruns", HEADER + QUESTION + PTR + struct.pack("!HHIH", 1, 1, 60, 40) + a("192.0.2.1"), \
        "runs past the end"
    yield "A of 5 bytes", HEADER + QUESTION + rr(PTR, A, 60, a("192.0.2.1") + b"\0"), "A record of 5 bytes"
    yield "AAAA of 4 bytes", HEADER + QUESTION + rr(PTR, AAAA, 60, a("192.0.2.1")), "AAAA record of 4 bytes"
    yield "CNAME longer than its name", HEADER + QUESTION + rr(PTR, CNAME, 60, wire_name("y.test") + b"zz"), \
        "disagree"
    yield "SOA cut", HEADER[:8] + b"\x00\x01" + HEADER[10:] + QUESTION[:0] + soa(60, 60)[:-4], "ends inside|disagree|past"
    yield "trailing bytes", ok + b"\x00", "after the last record"
    yield "more records announced than sent", HEADER[:6] + b"\x00\x02" + HEADER[8:] + QUESTION + rr(PTR, A, 60, a("1.2.3.4")), \
        "ends inside"
    # 130 two-byte labels, each pointing back at the previous one, as the data of
    # a record of an unknown type; the next record's owner points at the last: past 255 bytes.
    start = 12 + 1 + 10  # after the header and the first record's root owner and fixed fields
    links = bytearray()
    previous = None
    for _ in range(130):
        here = start + len(links)
        links += b"\x02xy" + (struct.pack("!H", 0xC000 | previous) if previous is not None else b"\x00")
        previous = here
    chain = HEADER[:4] + b"\x00\x00\x00\x02" + HEADER[8:] + rr(b"\x00", 99, 60, bytes(links)) \
        + rr(struct.pack("!H", 0xC000 | previous), A, 60, a("1.2.3.4"))
    yield "name past 255 bytes through pointers", bytes(chain), "longer than 255|ends inside"


@pytest.mark.parametrize("data, error", [case[1:] for case in hostile_cases()],
                         ids=[case[0] for case in hostile_cases()])
def test_hostile_replies_are_refused(data, error):
    if error is None:
        assert isinstance(parse_message(data), Message)
        return
    with pytest.raises(DNSFormatError, match=error):
        parse_message(data)


def test_oversized_messages_are_refused():
    query = query_for("x.test")
    big = reply(query, [rr(PTR, A, 60, a(f"192.0.2.{i}")) for i in range(40)])
    assert len(big) > 512
    with pytest.raises(DNSFormatError, match="at most 512"):
        parse_message(big, max_bytes=512)
    assert len(parse_message(big).answers) == 40


# ------------------------------------------------------------- fuzzing
def _valid_replies():
    query = query_for("www.example", A)
    yield reply(query, [rr(PTR, CNAME, 300, wire_name("real.example")), rr(b"\xc0\x2d", A, 60, a("192.0.2.1"))])
    yield reply(query, rcode=3, authority=[soa(60, 60)])
    yield reply(query_for("v6.test", AAAA), [rr(PTR, AAAA, 30, aaaa("2001:db8::1"))])


SEEDS = list(_valid_replies())


@st.composite
def mutated(draw):
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["set", "insert", "delete", "pointer"]))
        if action == "set" and position < len(data):
            data[position] = draw(st.integers(0, 255))
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=4))
        elif action == "delete":
            del data[position:position + draw(st.integers(1, 4))]
        else:  # a compression pointer anywhere, to anywhere
            data[position:position + 2] = struct.pack("!H", 0xC000 | draw(st.integers(0, 0x3FFF)))
    return bytes(data)


def _parse_or_refuse(data: bytes) -> None:
    try:
        message = parse_message(data)
    except DNSFormatError:
        return
    assert isinstance(message, Message)
    for question in message.questions:
        assert sum(len(label) + 1 for label in question.name) + 1 <= 255
        assert all(len(label) <= 63 for label in question.name)
        try:
            answer = read_answer(message, question.name, question.type)
        except DNSFormatError:
            continue
        assert isinstance(answer, Answer)


@settings(max_examples=1500, deadline=1000, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_fuzz_mutated_replies_parse_or_are_refused(data):
    _parse_or_refuse(data)


@settings(max_examples=1000, deadline=1000)
@given(st.binary(max_size=600))
def test_fuzz_random_bytes_parse_or_are_refused(data):
    _parse_or_refuse(HEADER[:2] + data)
    _parse_or_refuse(data)


@settings(max_examples=300, deadline=1000)
@given(st.lists(st.from_regex(r"[a-z0-9-]{1,20}", fullmatch=True), min_size=1, max_size=5),
       st.lists(st.ip_addresses(v=4).map(str), min_size=1, max_size=10), st.integers(0, 2**31 - 1))
def test_round_trip_of_any_name_and_addresses(labels, addresses, ttl):
    name = ".".join(labels)
    query = query_for(name)
    data = reply(query, [rr(PTR, A, ttl, a(address)) for address in addresses])
    answer = read_answer(parse_message(data), encode_name(name), A)
    assert answer.addresses == tuple(dict.fromkeys(addresses))
    assert answer.ttl == ttl


# ----------------------------------------------------- resolv.conf, hosts
def test_resolv_conf_settings_and_bounds():
    conf = parse_resolv_conf(
        "# comment\n; also a comment\nnameserver 10.0.0.1\nnameserver ::1 # trailing\nnameserver 10.0.0.3\n"
        "nameserver 10.0.0.4\nsearch corp.example example\noptions ndots:3 timeout:99 attempts:0 rotate\n"
        "options edns0 bogus ndots:x\nsortlist 10.0.0.0\n"
    )
    assert conf.nameservers == ("10.0.0.1", "::1", "10.0.0.3")  # at most three, as glibc
    assert conf.search == (encode_name("corp.example"), encode_name("example"))
    assert (conf.ndots, conf.timeout_s, conf.attempts, conf.rotate) == (3, 30, 1, True)


def test_resolv_conf_defaults_domain_and_hostname():
    assert parse_resolv_conf("") == parse_resolv_conf("garbage\n\x00\n")
    conf = parse_resolv_conf("")
    assert (conf.nameservers, conf.search, conf.ndots, conf.timeout_s, conf.attempts, conf.rotate) == \
        ((), (), 1, 5, 2, False)
    assert parse_resolv_conf("", hostname="box.lab.example").search == (encode_name("lab.example"),)
    assert parse_resolv_conf("search a.example\ndomain b.example\n").search == (encode_name("b.example"),)


def test_hosts_file():
    table = parse_hosts(
        "127.0.0.1 localhost\n::1 localhost ip6-localhost  # comment\n10.0.0.1 Web.Lan web\n"
        "not-an-address name\n10.0.0.2\n10.0.0.1 web\nfe80::1%lo link\n"
    )
    assert table.lookup(encode_name("localhost")) == ("127.0.0.1", "::1")
    assert table.lookup(encode_name("WEB.lan")) == ("10.0.0.1",)
    assert table.lookup(encode_name("web")) == ("10.0.0.1",)  # listed twice, kept once
    assert table.lookup(encode_name("link")) == ("fe80::1%lo",)
    assert table.lookup(encode_name("name")) == ()


def test_config_files_are_read_again_when_they_change(tmp_path):
    path = tmp_path / "hosts"
    watched = ConfigFile(str(path), parse_hosts)
    assert watched.get().lookup(encode_name("a")) == ()  # missing: empty
    path.write_text("10.0.0.1 a\n")
    assert watched.get().lookup(encode_name("a")) == ("10.0.0.1",)
    path.write_text("10.0.0.22 a\n")
    assert watched.get().lookup(encode_name("a")) == ("10.0.0.22",)


# -------------------------------------------------------------- scaling
def pointer_chain_message(labels: int) -> bytes:
    """A reply whose ``25 * labels`` records are all owned by a name of ``labels`` labels,
    each label a compression pointer away from the next: without memory of the names
    already read, its cost would grow with the square of ``labels``."""
    links, previous, start = bytearray(), None, 12 + 1 + 10
    for _ in range(labels):
        here = start + len(links)
        links += b"\x02xy" + (struct.pack("!H", 0xC000 | previous) if previous is not None else b"\x00")
        previous = here
    chain = rr(b"\x00", 99, 60, bytes(links))
    record = rr(struct.pack("!H", 0xC000 | previous), A, 60, a("192.0.2.1"))
    count = 25 * labels
    return struct.pack("!HHHHHH", 1, 0x8180, 0, count + 1, 0, 0) + chain + record * count


def parse_cpu(data: bytes) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        parse_message(data)
        best = min(best, time.process_time() - started)
    return best


def test_names_behind_long_pointer_chains_cost_linear_time():
    small, big = pointer_chain_message(40), pointer_chain_message(80)
    assert len(parse_message(big).answers[-1].name) == 80
    ratios = []
    for _ in range(3):  # linear gives about 2, quadratic about 4; a loaded machine can be noisy
        ratios.append(parse_cpu(big) / parse_cpu(small))
        if ratios[-1] < 3.0:
            return
    raise AssertionError(f"CPU time ratios {ratios} for a doubled input")
