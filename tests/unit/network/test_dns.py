"""The embedded DNS server, on 127.0.0.1 with fake upstream resolvers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.reversename
import dns.rrset
import pytest

from dockyard.network.dns import DNSServer, NameTable, Upstream

HOST = "127.0.0.1"


class LoopThread:
    """An event loop in a thread, so the tests can use dnspython's blocking queries."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class FakeUpstream:
    """A resolver on loopback: answers `records` (name -> A addresses), NXDOMAIN otherwise."""

    def __init__(
        self,
        records: dict[str, list[str]],
        *,
        rcode: int = dns.rcode.NOERROR,
        truncate_udp: bool = False,
        silent: bool = False,
    ) -> None:
        self.records = records
        self.rcode = rcode
        self.truncate_udp = truncate_udp
        self.silent = silent
        self.queries: list[tuple[str, str]] = []  # (protocol, name)
        self.port = 0

    def answer(self, data: bytes, protocol: str) -> bytes | None:
        query = dns.message.from_wire(data)
        name = query.question[0].name.to_text()
        self.queries.append((protocol, name))
        if self.silent:
            return None
        response = dns.message.make_response(query)
        if self.rcode != dns.rcode.NOERROR:
            response.set_rcode(self.rcode)
        elif name in self.records:
            response.answer.append(
                dns.rrset.from_text_list(name, 30, "IN", "A", self.records[name])
            )
        else:
            response.set_rcode(dns.rcode.NXDOMAIN)
        if protocol == "udp" and self.truncate_udp:
            response.answer.clear()
            response.flags |= dns.flags.TC
        return response.to_wire()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        upstream = self

        class Protocol(asyncio.DatagramProtocol):
            def connection_made(self, transport: Any) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: Any) -> None:
                reply = upstream.answer(data, "udp")
                if reply is not None:
                    self.transport.sendto(reply, addr)

        async def serve_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            (size,) = struct.unpack("!H", await reader.readexactly(2))
            reply = self.answer(await reader.readexactly(size), "tcp")
            if reply is not None:
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
            writer.close()

        self.udp, _ = await loop.create_datagram_endpoint(Protocol, local_addr=(HOST, 0))
        self.port = self.udp.get_extra_info("sockname")[1]
        self.tcp = await asyncio.start_server(serve_tcp, HOST, self.port)

    async def stop(self) -> None:
        self.udp.close()
        self.tcp.close()

    @property
    def upstream(self) -> Upstream:
        return Upstream(HOST, self.port)


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


@pytest.fixture
def table() -> NameTable:
    table = NameTable()
    table.add("appnet", "web", ["172.20.0.2", "fd00::2"])
    table.add("appnet", "db", ["172.20.0.3"])
    table.add("appnet", "cache-alias", ["172.20.0.3"], ptr=False)
    table.set_domain("othernet", "other.internal")
    table.add("othernet", "queue", ["10.9.0.5"])
    return table


Start = Callable[..., tuple[DNSServer, int]]


@pytest.fixture
def start(loop: LoopThread, table: NameTable) -> Iterator[Start]:
    started: list[Any] = []

    def start(*upstreams: Upstream, **options: Any) -> tuple[DNSServer, int]:
        server = DNSServer(table, upstreams=upstreams, **options)
        loop.run(server.start(HOST, 0))
        started.append(server)
        assert server.udp_address is not None and server.tcp_address == server.udp_address
        return server, server.udp_address[1]

    yield start
    for server in started:
        loop.run(server.close())


@pytest.fixture
def upstream(loop: LoopThread) -> Iterator[FakeUpstream]:
    fake = FakeUpstream({"example.test.": ["192.0.2.10"]})
    loop.run(fake.start())
    yield fake
    loop.run(fake.stop())


def ask(
    port: int, name: str, rdtype: str = "A", *, tcp: bool = False, **make: Any
) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, **make)
    if tcp:
        return dns.query.tcp(query, HOST, port=port, timeout=5)
    return dns.query.udp(query, HOST, port=port, timeout=5)


def addresses(response: dns.message.Message) -> list[str]:
    return sorted(rd.to_text() for rrset in response.answer for rd in rrset)


def test_answers_a_and_aaaa_for_table_names_with_ttl_600(start: Start) -> None:
    _, port = start()
    response = ask(port, "web")
    assert response.rcode() == dns.rcode.NOERROR
    assert addresses(response) == ["172.20.0.2"]
    assert response.answer[0].ttl == 600
    assert addresses(ask(port, "web", "AAAA")) == ["fd00::2"]


def test_names_are_case_insensitive_and_keep_the_question_spelling(start: Start) -> None:
    _, port = start()
    response = ask(port, "WeB.")
    assert addresses(response) == ["172.20.0.2"]
    assert response.answer[0].name.to_text() == "WeB."


def test_aliases_and_the_network_domain_suffix_resolve(start: Start) -> None:
    _, port = start()
    assert addresses(ask(port, "cache-alias")) == ["172.20.0.3"]
    assert addresses(ask(port, "queue.other.internal")) == ["10.9.0.5"]
    assert addresses(ask(port, "QUEUE")) == ["10.9.0.5"]


def test_known_name_without_that_record_type_gets_an_empty_answer(
    start: Start, upstream: FakeUpstream
) -> None:
    _, port = start(upstream.upstream)
    response = ask(port, "db", "AAAA")
    assert response.rcode() == dns.rcode.NOERROR
    assert response.answer == []
    assert upstream.queries == []


def test_only_the_servers_networks_are_consulted(start: Start, upstream: FakeUpstream) -> None:
    _, port = start(upstream.upstream, networks=["othernet"])
    assert ask(port, "web").rcode() == dns.rcode.NXDOMAIN  # the upstream's answer
    assert upstream.queries == [("udp", "web.")]
    assert addresses(ask(port, "queue")) == ["10.9.0.5"]


def test_table_updates_apply_while_running(
    start: Start, table: NameTable, upstream: FakeUpstream
) -> None:
    _, port = start(upstream.upstream)
    table.add("appnet", "late", ["172.20.0.9"])
    table.add("appnet", "web", ["172.20.0.7"])
    assert addresses(ask(port, "late")) == ["172.20.0.9"]
    assert addresses(ask(port, "web")) == ["172.20.0.2", "172.20.0.7"]
    table.remove("appnet", "web", ["172.20.0.2"])
    assert addresses(ask(port, "web")) == ["172.20.0.7"]
    table.remove("appnet", "late")
    assert ask(port, "late").rcode() == dns.rcode.NXDOMAIN
    assert upstream.queries == [("udp", "late.")]


def test_unknown_names_are_forwarded_and_the_answer_relayed_with_the_clients_id(
    start: Start, upstream: FakeUpstream
) -> None:
    _, port = start(upstream.upstream)
    query = dns.message.make_query("example.test", "A")
    query.id = 4242
    response = dns.query.udp(query, HOST, port=port, timeout=5)  # checks id and question
    assert response.id == 4242
    assert addresses(response) == ["192.0.2.10"]
    assert response.answer[0].ttl == 30
    assert upstream.queries == [("udp", "example.test.")]


def test_a_down_upstream_is_skipped_for_the_next(start: Start, upstream: FakeUpstream) -> None:
    _, port = start(Upstream(HOST, closed_port()), upstream.upstream)
    assert addresses(ask(port, "example.test")) == ["192.0.2.10"]


def test_a_silent_or_failing_upstream_is_skipped_for_the_next(
    loop: LoopThread, start: Start, upstream: FakeUpstream
) -> None:
    silent = FakeUpstream({}, silent=True)
    failing = FakeUpstream({}, rcode=dns.rcode.SERVFAIL)
    refusing = FakeUpstream({}, rcode=dns.rcode.REFUSED)
    for fake in (silent, failing, refusing):
        loop.run(fake.start())
    try:
        _, port = start(
            silent.upstream, failing.upstream, refusing.upstream, upstream.upstream, timeout=0.3
        )
        assert addresses(ask(port, "example.test")) == ["192.0.2.10"]
        assert [len(f.queries) for f in (silent, failing, refusing)] == [1, 1, 1]
    finally:
        for fake in (silent, failing, refusing):
            loop.run(fake.stop())


def test_all_upstreams_down_or_none_configured_is_servfail(start: Start) -> None:
    _, port = start(Upstream(HOST, closed_port()), Upstream(HOST, closed_port()))
    assert ask(port, "example.test").rcode() == dns.rcode.SERVFAIL
    _, port = start()
    response = ask(port, "example.test", "MX")
    assert response.rcode() == dns.rcode.SERVFAIL
    assert response.question[0].name.to_text() == "example.test."


def test_tcp_queries_are_answered_locally_and_forwarded(
    start: Start, upstream: FakeUpstream
) -> None:
    _, port = start(upstream.upstream)
    assert addresses(ask(port, "web", tcp=True)) == ["172.20.0.2"]
    assert addresses(ask(port, "example.test", tcp=True)) == ["192.0.2.10"]


def test_several_queries_on_one_tcp_connection(start: Start) -> None:
    _, port = start()
    with socket.create_connection((HOST, port), timeout=5) as sock:
        for name in ("web", "db"):
            query = dns.message.make_query(name, "A")
            response = dns.query.tcp(query, HOST, port=port, timeout=5, sock=sock)
            assert len(addresses(response)) == 1


def test_oversize_local_answer_sets_tc_over_udp_but_not_tcp(start: Start, table: NameTable) -> None:
    table.add("appnet", "many", [f"172.21.{i // 250}.{i % 250 + 1}" for i in range(100)])
    _, port = start()
    truncated = ask(port, "many")
    assert truncated.flags & dns.flags.TC
    assert len(addresses(truncated)) < 100
    assert len(addresses(ask(port, "many", tcp=True))) == 100
    assert len(addresses(ask(port, "many", use_edns=0, payload=4096))) == 100


def test_truncated_upstream_answer_is_retried_over_tcp(loop: LoopThread, start: Start) -> None:
    many = [f"192.0.2.{i}" for i in range(1, 101)]
    fake = FakeUpstream({"big.test.": many}, truncate_udp=True)
    loop.run(fake.start())
    try:
        _, port = start(fake.upstream)
        response = ask(port, "big.test", use_edns=0, payload=4096)
        assert len(addresses(response)) == 100
        assert fake.queries == [("udp", "big.test."), ("tcp", "big.test.")]
        small = ask(port, "big.test")  # 512 bytes: truncated for the client, which retries
        assert small.flags & dns.flags.TC
        assert small.answer == []
    finally:
        loop.run(fake.stop())


def test_malformed_packets_are_dropped_and_the_server_keeps_serving(start: Start) -> None:
    _, port = start()
    response_packet = dns.message.make_response(dns.message.make_query("web", "A")).to_wire()
    no_question = dns.message.make_query("web", "A")
    no_question.question.clear()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.3)
        for garbage in (b"", b"\x00", b"\xff" * 40, response_packet, no_question.to_wire()):
            sock.sendto(garbage, (HOST, port))
            with pytest.raises(TimeoutError):
                sock.recv(4096)
    with socket.create_connection((HOST, port), timeout=5) as sock:
        sock.sendall(struct.pack("!H", 5) + b"\x01\x02\x03\x04\x05")
        assert sock.recv(10) == b""  # connection closed, nothing answered
    assert addresses(ask(port, "web")) == ["172.20.0.2"]


def test_ptr_answers_the_networks_addresses(start: Start, upstream: FakeUpstream) -> None:
    _, port = start(upstream.upstream)
    reverse = dns.reversename.from_address("172.20.0.3")
    response = ask(port, reverse.to_text(), "PTR")
    assert [rd.to_text() for rd in response.answer[0]] == ["db."]  # not the alias
    assert response.answer[0].ttl == 600
    v6 = ask(port, dns.reversename.from_address("fd00::2").to_text(), "PTR")
    assert [rd.to_text() for rd in v6.answer[0]] == ["web."]
    other = ask(port, dns.reversename.from_address("10.9.0.5").to_text(), "PTR")
    assert [rd.to_text() for rd in other.answer[0]] == ["queue.other.internal."]
    unknown = dns.reversename.from_address("172.20.0.99").to_text()
    assert ask(port, unknown, "PTR").rcode() == dns.rcode.NXDOMAIN
    assert upstream.queries == [("udp", unknown)]


def test_an_already_bound_socket_is_served(loop: LoopThread, table: NameTable) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    server = DNSServer(table)
    loop.run(server.start(udp_sock=sock))
    try:
        assert server.tcp_address is None
        assert addresses(ask(sock.getsockname()[1], "web")) == ["172.20.0.2"]
    finally:
        loop.run(server.close())


def test_name_table_removal_drops_reverse_entries_and_networks() -> None:
    table = NameTable()
    table.add("n", "Web.", ["172.20.0.2", "172.20.0.4"])
    table.add("n", "other", ["172.20.0.2"])
    table.remove("n", "web", ["172.20.0.2"])
    assert [str(a) for a in table.resolve("WEB") or []] == ["172.20.0.4"]
    assert table.reverse(ipaddress.ip_address("172.20.0.2")) == "other."
    table.remove("n", "web")
    assert table.resolve("web") is None
    assert table.reverse(ipaddress.ip_address("172.20.0.4")) is None
    table.remove("n", "missing")  # no error
    table.remove_network("n")
    assert table.resolve("other") is None
    assert table.resolve("other", ["n", "absent"]) is None


def test_close_ends_open_tcp_connections(loop: LoopThread, table: NameTable) -> None:
    server = DNSServer(table)
    loop.run(server.start(HOST, 0))
    assert server.tcp_address is not None
    with socket.create_connection(server.tcp_address, timeout=5) as sock:
        query = dns.message.make_query("web", "A")
        assert addresses(dns.query.tcp(query, HOST, sock=sock, timeout=5)) == ["172.20.0.2"]
        loop.run(server.close())
        assert sock.recv(10) == b""
