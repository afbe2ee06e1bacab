"""The non-blocking resolver over real sockets: dnsmasq as the name server, and an
in-test responder (``support.dns_wire``) for hostile, truncated and silent servers.

Timeouts and retries run on a ``ManualClock``: with ``autojump`` when every
server is silent (nothing can arrive, so the loop may jump to each deadline),
advanced by hand when a silent server comes before one that answers.
"""

from __future__ import annotations

import gc
import os
import socket

import pytest
from reactor.conftest import run_until
from support.dns_wire import AAAA, CNAME, Responder, a, aaaa, reply, rr, soa, wire_name
from support.dnsmasq import running_dnsmasq

from evloop import ManualClock, Protocol, Reactor, Resolver, connect, listen
from evloop.futures import CancelledError

A = 1
PTR = b"\xc0\x0c"
EAI_NODATA = getattr(socket, "EAI_NODATA", socket.EAI_NONAME)
WAIT_S = 10.0

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def reactor():
    with Reactor() as r:
        yield r


def conf(tmp_path, text="options timeout:5 attempts:1\n"):
    path = tmp_path / "resolv.conf"
    path.write_text(text)
    return str(path)


def resolve(reactor, resolver, host, port=80, family=0, type_=socket.SOCK_STREAM):
    future = resolver.resolve(host, port, family, type_)
    run_until(reactor, future.done, WAIT_S)
    return future.result()


def failure(reactor, resolver, host, family=0):
    with pytest.raises(socket.gaierror) as info:
        resolve(reactor, resolver, host, family=family)
    return info.value


def addresses(infos):
    return [info[4][0] for info in infos]


def open_fds() -> int:
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


# ------------------------------------------------------------- dnsmasq
@pytest.fixture(scope="module")
def dnsmasq(tmp_path_factory):
    with running_dnsmasq(tmp_path_factory.mktemp("dnsmasq")) as address:
        yield address


@pytest.fixture
def via_dnsmasq(reactor, dnsmasq, tmp_path):
    return Resolver(reactor, nameservers=[dnsmasq], hosts_file=None,
                    resolv_conf=conf(tmp_path, "search test\noptions ndots:1 timeout:5 attempts:1\n"))


def test_dnsmasq_a_aaaa_and_both(reactor, via_dnsmasq):
    assert addresses(resolve(reactor, via_dnsmasq, "fromhosts.test", family=socket.AF_INET)) == ["10.1.2.3"]
    assert addresses(resolve(reactor, via_dnsmasq, "fromhosts.test", family=socket.AF_INET6)) == ["fd00::5"]
    both = resolve(reactor, via_dnsmasq, "fromhosts.test", 443)
    assert sorted(addresses(both)) == ["10.1.2.3", "fd00::5"]
    assert sorted(both) == sorted([
        (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("10.1.2.3", 443)),
        (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("fd00::5", 443, 0, 0)),
    ])
    assert sorted(addresses(resolve(reactor, via_dnsmasq, "multi.test"))) == ["10.1.2.4", "10.1.2.5"]


def test_dnsmasq_cname_chain(reactor, via_dnsmasq):
    assert sorted(addresses(resolve(reactor, via_dnsmasq, "alias2.test"))) == ["10.1.2.3", "fd00::5"]


def test_dnsmasq_nxdomain_and_nodata_are_told_apart(reactor, via_dnsmasq):
    missing = failure(reactor, via_dnsmasq, "nope.test")
    assert missing.errno == socket.EAI_NONAME and "nope.test" in str(missing)
    no_v6 = failure(reactor, via_dnsmasq, "v4only.test", socket.AF_INET6)
    assert no_v6.errno == EAI_NODATA
    assert addresses(resolve(reactor, via_dnsmasq, "v4only.test")) == ["10.9.9.9"]  # AAAA NODATA, A wins
    assert addresses(resolve(reactor, via_dnsmasq, "v6only.test")) == ["2001:db8::6"]


def test_dnsmasq_search_list_and_absolute_names(reactor, via_dnsmasq):
    assert addresses(resolve(reactor, via_dnsmasq, "v4only")) == ["10.9.9.9"]  # v4only.test, from "search test"
    assert failure(reactor, via_dnsmasq, "v4only.").errno == socket.EAI_NONAME  # absolute: no search


def test_dnsmasq_types_and_services_as_getaddrinfo_shapes_them(reactor, via_dnsmasq):
    infos = resolve(reactor, via_dnsmasq, "v4only.test", "http", socket.AF_INET, 0)
    assert infos == socket.getaddrinfo("10.9.9.9", "http", socket.AF_INET, 0)
    infos = resolve(reactor, via_dnsmasq, "v4only.test", 80, socket.AF_INET, 0)
    assert [info[1] for info in infos] == [socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW]


def test_connect_by_name_through_dnsmasq(reactor, via_dnsmasq):
    """connect() takes the resolver's future: dnsmasq says where 'loopback.test' is."""
    listener = listen(reactor, Protocol, "127.0.0.1", 0)
    pending = connect(reactor, Protocol, "loopback.test", listener.port, resolver=via_dnsmasq.resolve)
    transport = reactor.run_until_complete(pending.future, timeout_s=WAIT_S)
    assert transport.get_extra_info("peername")[:2] == ("127.0.0.1", listener.port)
    transport.close()
    listener.close()


# --------------------------------------------- the hosts file, numbers
def _names_in_etc_hosts() -> list[str]:
    names = []
    try:
        with open("/etc/hosts") as f:
            for line in f:
                names += line.split("#", 1)[0].split()[1:]
    except OSError:
        pass
    return sorted(set(names))


@pytest.fixture
def no_network(reactor):
    """A responder that fails the test if anything reaches it."""
    responder = Responder(reactor, lambda query, transport: pytest.fail(f"{query.text} reached the network"))
    yield responder
    assert responder.queries == []
    responder.close()


@pytest.mark.parametrize("family", [socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6])
@pytest.mark.parametrize("type_", [socket.SOCK_STREAM, 0])
def test_names_in_etc_hosts_resolve_as_getaddrinfo_does(reactor, no_network, tmp_path, family, type_):
    names = _names_in_etc_hosts()
    if not names:
        pytest.skip("/etc/hosts has no names")
    resolver = Resolver(reactor, nameservers=[no_network.address], resolv_conf=conf(tmp_path))
    compared = 0
    for name in names:
        try:
            expected = socket.getaddrinfo(name, 8080, family, type_)
        except socket.gaierror:
            continue  # e.g. an IPv4-only name asked for IPv6: glibc would ask DNS next
        assert resolve(reactor, resolver, name, 8080, family, type_) == expected, name
        compared += 1
    if family == socket.AF_UNSPEC:
        assert compared == len(names)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "127.1", "fe80::1%lo", None, "::ffff:10.0.0.1"])
def test_numeric_addresses_never_reach_the_network(reactor, no_network, tmp_path, host):
    resolver = Resolver(reactor, nameservers=[no_network.address], resolv_conf=conf(tmp_path), hosts_file=None)
    try:
        expected = socket.getaddrinfo(host, 80, 0, socket.SOCK_STREAM)
    except socket.gaierror:
        pytest.skip(f"this system has no {host}")
    assert resolve(reactor, resolver, host) == expected


@pytest.mark.parametrize("host, port, family, type_, code", [
    ("a..b", 80, 0, socket.SOCK_STREAM, socket.EAI_NONAME),
    ("x" * 64 + ".test", 80, 0, socket.SOCK_STREAM, socket.EAI_NONAME),
    ("bad name", 80, 0, socket.SOCK_STREAM, socket.EAI_NONAME),
    ("ok.test", "no-such-service", 0, socket.SOCK_STREAM, socket.EAI_SERVICE),
    ("ok.test", 80, 12345, socket.SOCK_STREAM, socket.EAI_FAMILY),
    ("127.0.0.1", 80, socket.AF_INET6, socket.SOCK_STREAM, socket.EAI_ADDRFAMILY),
])
def test_bad_arguments_fail_the_future_without_the_network(reactor, no_network, tmp_path, host, port, family, type_,
                                                            code):
    resolver = Resolver(reactor, nameservers=[no_network.address], resolv_conf=conf(tmp_path), hosts_file=None)
    future = resolver.resolve(host, port, family, type_)  # never raises
    with pytest.raises(socket.gaierror) as info:
        reactor.run_until_complete(future, timeout_s=WAIT_S)
    assert info.value.errno == code


def test_reactor_resolve_uses_the_system_files():
    with Reactor() as reactor:
        assert reactor.run_until_complete(reactor.resolve("127.0.0.1", 80), timeout_s=WAIT_S) == \
            socket.getaddrinfo("127.0.0.1", 80, 0, socket.SOCK_STREAM)
        if "localhost" in _names_in_etc_hosts():
            assert reactor.run_until_complete(reactor.resolve("localhost", 80), timeout_s=WAIT_S) == \
                socket.getaddrinfo("localhost", 80, 0, socket.SOCK_STREAM)
        with pytest.raises(socket.gaierror):
            reactor.run_until_complete(reactor.resolve("a..b", 80), timeout_s=WAIT_S)


def test_connect_resolves_through_the_reactor_by_default(reactor):
    if "localhost" not in _names_in_etc_hosts():
        pytest.skip("/etc/hosts has no localhost")
    listener = listen(reactor, Protocol, "127.0.0.1", 0)
    pending = connect(reactor, Protocol, "localhost", listener.port)
    transport = reactor.run_until_complete(pending.future, timeout_s=WAIT_S)
    assert transport.get_extra_info("peername")[0] == "127.0.0.1"
    transport.close()
    listener.close()


# ----------------------------------------------------- the responder
def answering(*records_of):
    """A handler answering every A query with ``records_of(query)``, AAAA with nothing."""
    def handler(query, transport):
        return [reply(query, records_of[0](query) if query.qtype == A else [])]
    return handler


def test_truncated_reply_is_asked_again_over_tcp(reactor, tmp_path):
    many = [rr(PTR, A, 60, a(f"10.0.{i // 250}.{i % 250 + 1}")) for i in range(300)]  # ~4.8 KB: TCP only

    def handler(query, transport):
        if transport == "udp":
            return [reply(query, tc=True)]
        return [reply(query, many if query.qtype == A else [])]

    responder = Responder(reactor, handler)
    resolver = Resolver(reactor, nameservers=[responder.address], resolv_conf=conf(tmp_path), hosts_file=None)
    infos = resolve(reactor, resolver, "big.test", family=socket.AF_INET)
    assert len(infos) == 300 and infos[0][4] == ("10.0.0.1", 80)
    assert [transport for transport, _ in responder.queries] == ["udp", "tcp"]
    assert responder.queries[0][1].id == responder.queries[1][1].id
    responder.close()


@pytest.mark.parametrize("over_tcp", ["nothing", "wrong id", "garbage"])
def test_a_failed_tcp_fallback_is_a_failure_of_that_try(reactor, tmp_path, over_tcp):
    def handler(query, transport):
        if transport == "udp":
            return [reply(query, tc=True)]
        return {"nothing": [], "wrong id": [reply(query, qid=query.id ^ 1)], "garbage": [b"\xc0\x00" * 8]}[over_tcp]

    responder = Responder(reactor, handler)
    resolver = Resolver(reactor, nameservers=[responder.address], resolv_conf=conf(tmp_path), hosts_file=None)
    error = failure(reactor, resolver, "x.test", socket.AF_INET)
    assert error.errno == socket.EAI_AGAIN and "TCP" in str(error)
    assert [transport for transport, _ in responder.queries] == ["udp", "tcp"]
    responder.close()


def test_forged_and_malformed_datagrams_are_dropped_and_the_real_reply_wins(reactor, tmp_path):
    def handler(query, transport):
        real = reply(query, [rr(PTR, A, 60, a("10.0.0.7"))])
        return [
            reply(query, [rr(PTR, A, 60, a("6.6.6.6"))], qid=query.id ^ 1),             # wrong id
            reply(query, [rr(PTR, A, 60, a("6.6.6.6"))], question=wire_name("evil.test") + b"\x00\x01\x00\x01"),
            reply(query, [rr(PTR, A, 60, a("6.6.6.6"))], question=query.name + b"\x00\x1c\x00\x01"),  # type
            query.raw,                                                                  # a query, not a reply
            real[:20],                                                                  # cut short
            b"\xc0" * 40,                                                               # garbage
            real + b"x" * 5000,                                                         # oversized
            real,
        ]

    responder = Responder(reactor, handler)
    resolver = Resolver(reactor, nameservers=[responder.address], resolv_conf=conf(tmp_path), hosts_file=None)
    assert addresses(resolve(reactor, resolver, "x.test", family=socket.AF_INET)) == ["10.0.0.7"]
    assert len(responder.queries) == 1
    responder.close()


def test_records_for_other_names_are_not_believed(reactor, tmp_path):
    responder = Responder(reactor, answering(lambda q: [rr(wire_name("bank.test"), A, 60, a("6.6.6.6"))]))
    resolver = Resolver(reactor, nameservers=[responder.address], resolv_conf=conf(tmp_path), hosts_file=None)
    assert failure(reactor, resolver, "x.test", socket.AF_INET).errno == EAI_NODATA
    assert len(resolver.cache) == 0  # and nothing about bank.test was cached
    responder.close()


def test_silent_servers_are_retried_per_attempt_then_eai_again(tmp_path):
    clock = ManualClock(autojump=True)  # nothing can arrive: the loop jumps to each timeout
    with Reactor(clock=clock) as reactor:
        hints = []
        silent = [Responder(reactor, lambda q, t: hints.append(q) or []) for _ in range(2)]
        resolver = Resolver(reactor, nameservers=[s.address for s in silent], hosts_file=None,
                            resolv_conf=conf(tmp_path, "options timeout:3 attempts:2\n"))
        started = clock.time()
        fds = open_fds()
        error = failure(reactor, resolver, "x.test", socket.AF_INET)
        assert error.errno == socket.EAI_AGAIN and "no answer within 3" in str(error)
        assert clock.time() - started == pytest.approx(2 * 2 * 3)  # attempts x servers x timeout
        assert [len(s.queries) for s in silent] == [2, 2]
        assert len({q.id for q in hints}) >= 3  # a fresh random id per try (a repeat is 1 in 65536)
        assert open_fds() <= fds
        for s in silent:
            s.close()


def test_a_silent_server_then_one_that_answers(tmp_path):
    clock = ManualClock()
    with Reactor(clock=clock) as reactor:
        silent = Responder(reactor, lambda q, t: [])
        good = Responder(reactor, answering(lambda q: [rr(PTR, A, 60, a("10.0.0.2"))]))
        resolver = Resolver(reactor, nameservers=[silent.address, good.address], hosts_file=None,
                            resolv_conf=conf(tmp_path, "options timeout:2 attempts:1\n"))
        future = resolver.resolve("x.test", 80, socket.AF_INET)
        run_until(reactor, lambda: len(silent.queries) == 1)
        for _ in range(3):
            reactor.run_once(0.01)
        assert not future.done() and good.queries == []  # it waits its timeout for the first
        clock.advance(2)
        run_until(reactor, future.done)
        assert addresses(future.result()) == ["10.0.0.2"]
        silent.close()
        good.close()


def test_a_server_that_is_not_listening_is_left_at_once(tmp_path):
    """The ICMP port unreachable reaches the connected UDP socket as ECONNREFUSED: the next
    server is asked without waiting for the timeout (the manual clock never moves)."""
    with Reactor(clock=ManualClock()) as reactor:
        holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        holder.bind(("127.0.0.1", 0))  # the port is ours on 127.0.0.1; on 127.0.0.2 nothing listens
        refusing = ("127.0.0.2", holder.getsockname()[1])
        good = Responder(reactor, answering(lambda q: [rr(PTR, A, 60, a("10.0.0.8"))]))
        resolver = Resolver(reactor, nameservers=[refusing, good.address], hosts_file=None,
                            resolv_conf=conf(tmp_path))
        infos = resolve(reactor, resolver, "x.test", family=socket.AF_INET)
        assert addresses(infos) == ["10.0.0.8"]
        assert reactor.time() == 0
        holder.close()
        good.close()


@pytest.mark.parametrize("rcode", [2, 5])
def test_servfail_and_refused_move_on_to_the_next_server(reactor, tmp_path, rcode):
    failing = Responder(reactor, lambda q, t: [reply(q, rcode=rcode)])
    good = Responder(reactor, answering(lambda q: [rr(PTR, A, 60, a("10.0.0.3"))]))
    resolver = Resolver(reactor, nameservers=[failing.address, good.address], hosts_file=None,
                        resolv_conf=conf(tmp_path))
    assert addresses(resolve(reactor, resolver, "x.test", family=socket.AF_INET)) == ["10.0.0.3"]
    assert len(failing.queries) == len(good.queries) == 1
    failing.close()
    good.close()


def test_a_cname_loop_from_the_server_is_a_failure(reactor, tmp_path):
    loop = answering(lambda q: [rr(PTR, CNAME, 60, wire_name("b.test")),
                                rr(wire_name("b.test"), CNAME, 60, wire_name("x.test"))])
    responder = Responder(reactor, loop)
    resolver = Resolver(reactor, nameservers=[responder.address], hosts_file=None, resolv_conf=conf(tmp_path))
    error = failure(reactor, resolver, "x.test", socket.AF_INET)
    assert error.errno == socket.EAI_AGAIN and "loops" in str(error)
    responder.close()


def test_options_rotate_spreads_queries(reactor, tmp_path):
    servers = [Responder(reactor, answering(lambda q: [rr(PTR, A, 0, a("10.0.0.4"))])) for _ in range(2)]
    resolver = Resolver(reactor, nameservers=[s.address for s in servers], hosts_file=None,
                        resolv_conf=conf(tmp_path, "options rotate\n"))
    for _ in range(4):
        resolve(reactor, resolver, "x.test", family=socket.AF_INET)  # TTL 0: never cached
    assert [len(s.queries) for s in servers] == [2, 2]
    for s in servers:
        s.close()


def test_search_order_follows_ndots(reactor, tmp_path):
    asked = []

    def handler(query, transport):
        asked.append(query.text)
        return [reply(query, rcode=3)]

    responder = Responder(reactor, handler)
    resolver = Resolver(reactor, nameservers=[responder.address], hosts_file=None,
                        resolv_conf=conf(tmp_path, "search one.test two.test\noptions ndots:2\n"))
    assert failure(reactor, resolver, "a.b", socket.AF_INET).errno == socket.EAI_NONAME
    assert asked == ["a.b.one.test", "a.b.two.test", "a.b"]  # 1 dot < ndots 2: the search list first
    asked.clear()
    failure(reactor, resolver, "a.b.c", socket.AF_INET)
    assert asked == ["a.b.c", "a.b.c.one.test", "a.b.c.two.test"]
    responder.close()


def test_answers_are_cached_for_their_ttl_and_negative_ones_for_the_soa(tmp_path):
    clock = ManualClock()
    with Reactor(clock=clock) as reactor:
        def handler(query, transport):
            if query.text.startswith("nope"):
                return [reply(query, rcode=3, authority=[soa(600, 20)])]
            return [reply(query, [rr(PTR, A, 30, a("10.0.0.5"))] if query.qtype == A else [rr(PTR, AAAA, 90, aaaa("fd00::9"))])]

        responder = Responder(reactor, handler)
        resolver = Resolver(reactor, nameservers=[responder.address], hosts_file=None, resolv_conf=conf(tmp_path))
        resolve(reactor, resolver, "x.test")
        assert len(responder.queries) == 2
        resolve(reactor, resolver, "x.test")
        failure(reactor, resolver, "nope.test")
        failure(reactor, resolver, "nope.test")
        assert len(responder.queries) == 4  # A and AAAA of each, once
        clock.advance(21)  # past the negative TTL (the SOA's minimum, 20 s)
        failure(reactor, resolver, "nope.test")
        assert len(responder.queries) == 6
        clock.advance(10)  # 31 s: the A (30 s) is gone, the AAAA (90 s) is not
        assert sorted(addresses(resolve(reactor, resolver, "x.test"))) == ["10.0.0.5", "fd00::9"]
        assert [q.qtype for _, q in responder.queries[6:]] == [A]
        responder.close()


def test_the_cache_is_bounded(reactor, tmp_path):
    responder = Responder(reactor, answering(lambda q: [rr(PTR, A, 300, a("10.0.0.6"))]))
    resolver = Resolver(reactor, nameservers=[responder.address], hosts_file=None, resolv_conf=conf(tmp_path))
    resolver.cache.max_entries = 8
    for i in range(20):
        resolve(reactor, resolver, f"n{i}.test", family=socket.AF_INET)
        assert len(resolver.cache) <= 8
    responder.close()


def test_cancelling_a_lookup_closes_its_sockets(reactor, tmp_path):
    silent = Responder(reactor, lambda q, t: [])
    resolver = Resolver(reactor, nameservers=[silent.address], hosts_file=None, resolv_conf=conf(tmp_path))
    fds = open_fds()
    future = resolver.resolve("x.test", 80)
    run_until(reactor, lambda: len(silent.queries) == 2)
    assert open_fds() == fds + 2  # A and AAAA in flight
    future.cancel()
    for _ in range(3):
        reactor.run_once(0)
    assert open_fds() == fds
    with pytest.raises(CancelledError):
        future.result()
    silent.close()


def test_closing_the_reactor_ends_lookups(tmp_path):
    before = open_fds()
    reactor = Reactor()
    silent = Responder(reactor, lambda q, t: [])
    resolver = Resolver(reactor, nameservers=[silent.address], hosts_file=None, resolv_conf=conf(tmp_path))
    silent.close()  # nothing answers; its sockets are not counted
    fds = open_fds()
    future = resolver.resolve("x.test", 80)
    assert open_fds() == fds + 2  # A and AAAA in flight
    reactor.close()
    assert future.cancelled()
    assert open_fds() == before  # the look-up's sockets, then the reactor's own


def test_connect_timeout_covers_the_lookup(tmp_path):
    clock = ManualClock(autojump=True)
    with Reactor(clock=clock) as reactor:
        silent = Responder(reactor, lambda q, t: [])
        resolver = Resolver(reactor, nameservers=[silent.address], hosts_file=None, resolv_conf=conf(tmp_path))
        events = []

        class Client(Protocol):
            def connection_failed(self, exc):
                events.append(exc)

        fds = open_fds()
        pending = connect(reactor, Client, "x.test", 80, resolver=resolver.resolve, timeout_s=1)
        with pytest.raises(TimeoutError):
            reactor.run_until_complete(pending.future, timeout_s=WAIT_S)
        run_until(reactor, lambda: open_fds() <= fds)  # the look-up's sockets go with it
        assert len(events) == 1 and isinstance(events[0], TimeoutError)
        assert clock.time() == pytest.approx(1)  # well before the DNS timeout (5 s)
        silent.close()


def test_every_selector_class_resolves(selector_cls, dnsmasq, tmp_path):
    with Reactor(selector_cls()) as reactor:
        resolver = Resolver(reactor, nameservers=[dnsmasq], hosts_file=None, resolv_conf=conf(tmp_path))
        assert sorted(addresses(resolve(reactor, resolver, "alias.test"))) == ["10.1.2.3", "fd00::5"]
