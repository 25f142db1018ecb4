"""The embedded DNS server of user-defined networks (Docker's 127.0.0.11).

A `NameTable` holds, per network, the names the engine registers (container names, network
aliases, `--link` names) with their addresses; the engine updates it while the server runs.
A `DNSServer` answers from the table for the networks it is given and forwards every other
question to the upstream resolvers, relaying their answer unchanged::

    client ──query──▶ DNSServer ── A/AAAA/PTR known here? ── yes ──▶ answer (TTL 600)
                         │ no                                 known name, no such record:
                         ▼                                    NOERROR with no answer
                  upstream 1 (UDP; TCP when truncated) ─ down, timeout, SERVFAIL, REFUSED ─┐
                  upstream 2 …                          ◀──────────────────────────────────┘
                  none left (or none configured) ──▶ SERVFAIL

The server listens on sockets it creates (`host`, `port`) or on sockets the caller bound
already (so the engine can bind them inside a container's network namespace). Malformed
packets are dropped; answers bigger than the client's UDP size are truncated with TC set.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import socket
import struct
import threading
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset

log = logging.getLogger(__name__)

TTL = 600  # seconds, as Docker's resolver
UPSTREAM_TIMEOUT = 4.0  # seconds per upstream and protocol, as Docker's extIOTimeout
MAX_CONCURRENT_FORWARDS = 100  # as Docker: beyond this, SERVFAIL
MAX_UDP_PAYLOAD = 4096
TCP_IDLE_TIMEOUT = 10.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _normalize(name: str) -> str:
    return name.strip().rstrip(".").lower()


@dataclass
class _Network:
    domain: str = ""
    names: dict[str, list[IPAddress]] = field(default_factory=dict)
    reverse: dict[IPAddress, list[str]] = field(default_factory=dict)


class NameTable:
    """Names per network, case-insensitive, updated at run time (thread-safe).

    A network's `domain` (Docker uses the network's name) is an accepted suffix:
    `web` and `web.<domain>` both resolve, and PTR answers are `web.<domain>.`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._networks: dict[str, _Network] = {}

    def set_domain(self, network: str, domain: str) -> None:
        with self._lock:
            self._networks.setdefault(network, _Network()).domain = _normalize(domain)

    def add(
        self, network: str, name: str, addresses: Iterable[str | IPAddress], *, ptr: bool = True
    ) -> None:
        """Add addresses to `name`; with `ptr`, the addresses also map back to it."""
        key = _normalize(name)
        parsed = [ipaddress.ip_address(a) for a in addresses]
        with self._lock:
            net = self._networks.setdefault(network, _Network())
            current = net.names.setdefault(key, [])
            for address in parsed:
                if address not in current:
                    current.append(address)
                if ptr and key not in net.reverse.setdefault(address, []):
                    net.reverse[address].append(key)

    def remove(
        self, network: str, name: str, addresses: Iterable[str | IPAddress] | None = None
    ) -> None:
        """Remove some addresses of `name` (all of them when `addresses` is None)."""
        key = _normalize(name)
        with self._lock:
            net = self._networks.get(network)
            if net is None or key not in net.names:
                return
            gone = (
                list(net.names[key])
                if addresses is None
                else [ipaddress.ip_address(a) for a in addresses]
            )
            net.names[key] = [a for a in net.names[key] if a not in gone]
            if not net.names[key]:
                del net.names[key]
            for address in gone:
                names = net.reverse.get(address, [])
                if key in names:
                    names.remove(key)
                if not names:
                    net.reverse.pop(address, None)

    def remove_network(self, network: str) -> None:
        with self._lock:
            self._networks.pop(network, None)

    def resolve(self, name: str, networks: Sequence[str] | None = None) -> list[IPAddress] | None:
        """The addresses of `name` in the first network that knows it; None when none does."""
        key = _normalize(name)
        with self._lock:
            for net in self._select(networks):
                for candidate in (key, self._strip_domain(key, net.domain)):
                    if candidate and candidate in net.names:
                        return list(net.names[candidate])
        return None

    def reverse(self, address: IPAddress, networks: Sequence[str] | None = None) -> str | None:
        """The fully qualified name for `address` (with a final dot), or None."""
        with self._lock:
            for net in self._select(networks):
                names = net.reverse.get(address)
                if names:
                    return f"{names[0]}.{net.domain}." if net.domain else f"{names[0]}."
        return None

    def _select(self, networks: Sequence[str] | None) -> list[_Network]:
        if networks is None:
            return list(self._networks.values())
        return [self._networks[n] for n in networks if n in self._networks]

    @staticmethod
    def _strip_domain(key: str, domain: str) -> str:
        if domain and key.endswith("." + domain):
            return key[: -len(domain) - 1]
        return ""


@dataclass(frozen=True)
class Upstream:
    """An external resolver; the server tries them in order."""

    address: str
    port: int = 53


class DNSServer:
    """Answers from a `NameTable` for `networks` (all when None), forwards the rest.

    `networks` and `upstreams` are plain attributes the engine may replace at run time.
    """

    def __init__(
        self,
        table: NameTable,
        *,
        networks: Sequence[str] | None = None,
        upstreams: Sequence[Upstream] = (),
        timeout: float = UPSTREAM_TIMEOUT,
    ) -> None:
        self.table = table
        self.networks = networks
        self.upstreams = list(upstreams)
        self.timeout = timeout
        self._forwards = asyncio.Semaphore(MAX_CONCURRENT_FORWARDS)
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- life cycle ---------------------------------------------------------------------------

    async def start(
        self,
        host: str = "127.0.0.11",
        port: int = 53,
        *,
        udp_sock: socket.socket | None = None,
        tcp_sock: socket.socket | None = None,
    ) -> None:
        """Listen on the given bound sockets, or bind both on (`host`, `port`).

        With port 0, UDP picks a free port and TCP binds the same one. Either socket may be
        given alone (bound; the TCP one need not listen yet). `close` closes them.
        """
        if udp_sock is None and tcp_sock is None:
            udp_sock, tcp_sock = _bind_pair(host, port)
        loop = asyncio.get_running_loop()
        if udp_sock is not None:
            udp_sock.setblocking(False)
            self._udp, _ = await loop.create_datagram_endpoint(
                lambda: _UDPProtocol(self), sock=udp_sock
            )
        if tcp_sock is not None:
            tcp_sock.setblocking(False)
            self._tcp = await asyncio.start_server(self._serve_tcp, sock=tcp_sock)

    @property
    def udp_address(self) -> tuple[str, int] | None:
        return self._udp.get_extra_info("sockname")[:2] if self._udp else None

    @property
    def tcp_address(self) -> tuple[str, int] | None:
        return self._tcp.sockets[0].getsockname()[:2] if self._tcp else None

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
            self._tcp = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- transports ---------------------------------------------------------------------------

    def _spawn_udp(self, data: bytes, peer: tuple[str, int]) -> None:
        task = asyncio.get_running_loop().create_task(self._answer_udp(data, peer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer_udp(self, data: bytes, peer: tuple[str, int]) -> None:
        reply = await self.handle(data, tcp=False)
        if reply is not None and self._udp is not None:
            self._udp.sendto(reply, peer)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:  # so that close() ends open connections too
            self._tasks.add(task)
        try:
            while True:
                async with asyncio.timeout(TCP_IDLE_TIMEOUT):
                    (size,) = struct.unpack("!H", await reader.readexactly(2))
                    data = await reader.readexactly(size)
                reply = await self.handle(data, tcp=True)
                if reply is None:
                    break  # malformed: drop the connection
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    # -- the resolver -------------------------------------------------------------------------

    async def handle(self, data: bytes, *, tcp: bool) -> bytes | None:
        """The reply to one query on the wire, or None to drop it. Never raises."""
        try:
            query = dns.message.from_wire(data)
        except Exception:  # dnspython raises many kinds on hostile input
            log.debug("dropping malformed DNS packet", exc_info=True)
            return None
        if query.flags & dns.flags.QR or not query.question:
            return None
        limit = 65535 if tcp else _udp_limit(query)
        try:
            if query.opcode() != dns.opcode.QUERY:
                return _reply(query, dns.rcode.NOTIMP, limit)
            local = self._answer_locally(query)
            if local is not None:
                return local.to_wire(max_size=limit, prefer_truncation=True)
            async with self._forward_slot() as acquired:
                relayed = await self._forward(data, query.question) if acquired else None
            if relayed is None:
                return _reply(query, dns.rcode.SERVFAIL, limit)
            return relayed if len(relayed) <= limit else _truncated(relayed, query, limit)
        except Exception:
            log.exception("DNS query failed")
            return None

    def _answer_locally(self, query: dns.message.Message) -> dns.message.Message | None:
        question = query.question[0]
        if question.rdclass != dns.rdataclass.IN:
            return None
        if question.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            addresses = self.table.resolve(question.name.to_text(), self.networks)
            if addresses is None:
                return None
            version = 4 if question.rdtype == dns.rdatatype.A else 6
            texts = [str(a) for a in addresses if a.version == version]
        elif question.rdtype == dns.rdatatype.PTR:
            try:
                address = ipaddress.ip_address(dns.reversename.to_address(question.name))
            except (dns.exception.SyntaxError, ValueError):
                return None
            target = self.table.reverse(address, self.networks)
            if target is None:
                return None
            texts = [target]
        else:
            return None
        response = _make_response(query)
        if texts:  # a known name without this record type: NOERROR, no answer (as Docker)
            response.answer.append(
                dns.rrset.from_text_list(question.name, TTL, "IN", question.rdtype, texts)
            )
        return response

    @contextlib.asynccontextmanager
    async def _forward_slot(self) -> AsyncIterator[bool]:
        if self._forwards.locked():
            yield False
            return
        async with self._forwards:
            yield True

    async def _forward(self, data: bytes, question: list[dns.rrset.RRset]) -> bytes | None:
        """Ask each upstream in turn; relay the first usable answer with the client's id."""
        client_id = data[:2]
        for upstream in list(self.upstreams):
            query_id = secrets.token_bytes(2)
            wire = query_id + data[2:]
            try:
                answer = await _exchange_udp(upstream, wire, question, self.timeout)
                if dns.message.from_wire(answer).flags & dns.flags.TC:
                    answer = await _exchange_tcp(upstream, wire, question, self.timeout)
                rcode = dns.message.from_wire(answer).rcode()
            except (OSError, TimeoutError, dns.exception.DNSException, EOFError) as err:
                log.debug("upstream %s:%d failed: %r", upstream.address, upstream.port, err)
                continue
            if rcode in (dns.rcode.SERVFAIL, dns.rcode.REFUSED):
                continue
            return client_id + answer[2:]
        return None


class _UDPProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DNSServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.server._spawn_udp(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("DNS UDP socket error: %r", exc)


def _bind_pair(host: str, port: int) -> tuple[socket.socket, socket.socket]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(20):
        udp = socket.socket(family, socket.SOCK_DGRAM)
        tcp = socket.socket(family, socket.SOCK_STREAM)
        try:
            udp.bind((host, port))
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind((host, udp.getsockname()[1]))
            tcp.listen(128)
            return udp, tcp
        except OSError:
            udp.close()
            tcp.close()
            if port:
                raise
    raise OSError(f"no free port on {host} for both UDP and TCP")


def _udp_limit(query: dns.message.Message) -> int:
    if query.edns < 0:
        return 512
    return max(512, min(query.payload, MAX_UDP_PAYLOAD))


def _make_response(query: dns.message.Message) -> dns.message.Message:
    return dns.message.make_response(query, recursion_available=True, our_payload=MAX_UDP_PAYLOAD)


def _reply(query: dns.message.Message, rcode: dns.rcode.Rcode, limit: int) -> bytes:
    response = _make_response(query)
    response.set_rcode(rcode)
    return response.to_wire(max_size=limit, prefer_truncation=True)


def _truncated(answer: bytes, query: dns.message.Message, limit: int) -> bytes:
    """An upstream answer too big for the client's UDP size: header and question, TC set."""
    upstream = dns.message.from_wire(answer)
    response = _make_response(query)
    response.flags = upstream.flags | dns.flags.TC
    response.set_rcode(upstream.rcode())
    return response.to_wire(max_size=limit, prefer_truncation=True)


def _matches(answer: bytes, query_id: bytes, question: list[dns.rrset.RRset]) -> bool:
    if answer[:2] != query_id:
        return False
    try:
        message = dns.message.from_wire(answer, question_only=True)
    except Exception:
        return False
    return bool(message.flags & dns.flags.QR) and message.question == question


async def _exchange_udp(
    upstream: Upstream, wire: bytes, question: list[dns.rrset.RRset], timeout: float
) -> bytes:
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in upstream.address else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, (upstream.address, upstream.port))
        await loop.sock_sendall(sock, wire)
        async with asyncio.timeout(timeout):
            while True:  # ignore stray datagrams that do not answer our query
                answer = await loop.sock_recv(sock, 65535)
                if _matches(answer, wire[:2], question):
                    return answer


async def _exchange_tcp(
    upstream: Upstream, wire: bytes, question: list[dns.rrset.RRset], timeout: float
) -> bytes:
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(upstream.address, upstream.port)
        try:
            writer.write(struct.pack("!H", len(wire)) + wire)
            await writer.drain()
            (size,) = struct.unpack("!H", await reader.readexactly(2))
            answer = await reader.readexactly(size)
        finally:
            writer.close()
    if not _matches(answer, wire[:2], question):
        raise dns.exception.FormError("upstream answer does not match the query")
    return answer
