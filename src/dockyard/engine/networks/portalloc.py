"""Host ports reserved for published ports (`docker run -p`, `-P`), as dockerd 28 does it:
`PortAllocator.allocate` at a container's start, all or nothing, `release` when it stops,
`restore` after a daemon restart. What to reserve comes from ports.py (`requests`).

Why a port is held by a bound socket and not only written down: the DNAT rule takes a port's
traffic before any host program sees it, so a program already listening there would silently
lose its connections, and one starting later would bind a port that does not work. dockerd
binds each published port (TCP without listen()) for as long as the container runs; so do we.
The kernel then answers "address already in use" for a port someone else has, and refuses it
to programs that start later.

Why a table of our own reservations as well: the sockets carry SO_REUSEADDR (as dockerd's do,
so that a port comes back as soon as it is released), and with it Linux lets two sockets that
are not listening share a TCP port, and any two share a UDP port. So the kernel cannot tell two
of our containers apart; the table does, and gives dockerd's "port is already allocated".

Why random ports go round-robin through ip_local_port_range (first 32768, then 32769, even if
32768 was freed meanwhile): dockerd's portallocator does, and a restarted container does not
get the port a client of the previous one may still be talking to.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockyard.engine.errors import EngineError
from dockyard.engine.networks.ports import PROTOCOLS, Binding, PortRequest

PORT_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
FALLBACK_RANGE = (49153, 65535)   # dockerd's when the file cannot be read
ATTEMPTS = 10                     # dockerd's maxAllocatePortAttempts for random/range ports

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass
class _Held:
    binding: Binding
    address: _Address
    sock: socket.socket


class PortAllocator:
    """Reserves host ports by holding a bound socket for each (so no other process, and no
    other container, takes the port while the container runs); random ports come from
    /proc/sys/net/ipv4/ip_local_port_range as dockerd's portallocator does."""

    def __init__(self, port_range: tuple[int, int] | None = None) -> None:
        self.port_range = port_range or dynamic_port_range()
        self._lock = threading.Lock()
        self._owners: dict[str, list[_Held]] = {}
        self._by_port: dict[tuple[str, int], list[tuple[_Address, str]]] = {}
        self._last: dict[tuple[str, int, int], int] = {}

    def allocate(self, owner: str, reqs: Sequence[PortRequest], *, ipv6: bool = False,
                 container_ip: str = "", container_ip6: str = "") -> list[Binding]:
        """Reserve every request, or none. host_ip "" means 0.0.0.0 and, with ipv6 (and a host
        that has IPv6), "::" on the same port. IPv6 host addresses are skipped without ipv6.
        container_ip{,6} only make the error messages dockerd's."""
        with self._lock:
            taken: list[_Held] = []
            try:
                for req in sorted(reqs, key=_allocation_order):
                    addresses = _host_addresses(req.host_ip, ipv6)
                    for cport, start, end in _per_container_port(req):
                        if addresses:
                            cips = (container_ip, container_ip6)
                            taken += self._take(owner, req.proto, cport, addresses,
                                                start, end, cips)
            except BaseException:
                self._drop(taken)
                raise
            self._owners.setdefault(owner, []).extend(taken)
            return [h.binding for h in taken]

    def restore(self, owner: str, bindings: Sequence[Binding]) -> list[Binding]:
        """Take exactly these ports again (after a daemon restart); those that another owner
        or another program has meanwhile are left out of what is returned."""
        with self._lock:
            got: list[_Held] = []
            for b in bindings:
                address = ipaddress.ip_address(b.host_ip)
                if self._holder(b.proto, [address], b.host_port) is not None:
                    continue
                try:
                    sock = _bind(b.proto, address, b.host_port, str)
                except EngineError:
                    continue
                held = _Held(b, address, sock)
                self._register(owner, held)
                got.append(held)
            self._owners.setdefault(owner, []).extend(got)
            return [h.binding for h in got]

    def release(self, owner: str) -> None:
        with self._lock:
            self._drop(self._owners.pop(owner, []))

    def held(self, owner: str) -> list[Binding]:
        with self._lock:
            return [h.binding for h in self._owners.get(owner, [])]

    def close(self) -> None:
        """Release every owner's ports."""
        with self._lock:
            for owner in list(self._owners):
                self._drop(self._owners.pop(owner))

    def _take(self, owner: str, proto: str, cport: int, addresses: list[_Address],
              start: int, end: int, cips: tuple[str, str]) -> list[_Held]:
        """One host port, the same on every address, for one container port."""
        fixed = start != 0 and start == end
        describe = functools.partial(_describe, proto, cport, start, end, cips)
        failure = "all ports are allocated"
        attempts = 0
        for port in self._candidates(proto, start, end):
            holder = self._holder(proto, addresses, port)
            if holder is not None:
                if fixed:
                    raise EngineError(
                        f"Bind for {holder}:{port} failed: port is already allocated")
                continue
            if not fixed:   # dockerd's allocator moves on even when the bind then fails
                self._last[(proto, *self._bounds(start, end))] = port
            try:
                socks = _bind_all(proto, addresses, port, describe, ranged=start != end)
            except EngineError as e:
                failure = e.message
                attempts += 1
                if fixed or attempts >= ATTEMPTS:
                    break
                continue
            taken = [_Held(Binding(proto, cport, str(a), port), a, s)
                     for a, s in zip(addresses, socks, strict=True)]
            for held in taken:
                self._register(owner, held)
            return taken
        raise EngineError(failure)

    def _bounds(self, start: int, end: int) -> tuple[int, int]:
        return (start, end) if start else self.port_range

    def _candidates(self, proto: str, start: int, end: int) -> Iterator[int]:
        """The requested port; or the range (the ephemeral one for port 0), starting after
        the last port it gave out, round-robin as in dockerd's portallocator."""
        if start != 0 and start == end:
            yield start
            return
        lo, hi = self._bounds(start, end)
        port = self._last.get((proto, lo, hi), hi)
        for _ in range(hi - lo + 1):
            port = lo if port >= hi else port + 1
            yield port

    def _holder(self, proto: str, addresses: Sequence[_Address], port: int) -> str | None:
        """The address one of our reservations holds that conflicts with binding the port on
        any of addresses, as the kernel sees it: same family, and the same address or either
        one the unspecified address (IPv6 sockets are V6ONLY)."""
        for held, _owner in self._by_port.get((proto, port), ()):
            for address in addresses:
                if held.version == address.version and \
                        (held == address or held.is_unspecified or address.is_unspecified):
                    return str(held)
        return None

    def _register(self, owner: str, held: _Held) -> None:
        key = (held.binding.proto, held.binding.host_port)
        self._by_port.setdefault(key, []).append((held.address, owner))

    def _drop(self, helds: Sequence[_Held]) -> None:
        for held in helds:
            held.sock.close()
            key = (held.binding.proto, held.binding.host_port)
            entries = self._by_port.get(key, [])
            entries[:] = [e for e in entries if e[0] != held.address]
            if not entries:
                self._by_port.pop(key, None)


def dynamic_port_range(path: Path = PORT_RANGE_FILE) -> tuple[int, int]:
    """The kernel's ephemeral port range, where dockerd takes random host ports from."""
    try:
        start, end = (int(field) for field in path.read_text().split())
    except (OSError, ValueError):
        return FALLBACK_RANGE
    if not 0 < start <= end <= 65535:
        return FALLBACK_RANGE
    return start, end


def _allocation_order(req: PortRequest) -> tuple[Any, ...]:
    """dockerd's (cmpPortBinding): exact host ports before ranges and random ones, so that an
    exact port inside someone's range is not taken by the range first."""
    exact = req.host_port != 0 and req.host_port_end is None
    return (not exact, req.container_port, PROTOCOLS.index(req.proto), req.host_port,
            req.host_port_end or req.host_port, req.host_ip)


def _per_container_port(req: PortRequest) -> Iterator[tuple[int, int, int]]:
    """(container port, host start, host end) for each container port of a request; a random
    port is (0, 0); a container range takes the host range port for port."""
    host_end = req.host_port_end or req.host_port
    if req.container_port_end is None:
        yield req.container_port, req.host_port, host_end
        return
    for i in range(req.container_port_end - req.container_port + 1):
        host = req.host_port + i if req.host_port else 0
        yield req.container_port + i, host, host


def _host_addresses(host_ip: str, ipv6: bool) -> list[_Address]:
    if host_ip == "":
        both = [ipaddress.IPv4Address("0.0.0.0"), ipaddress.IPv6Address("::")]
        return both if ipv6 and v6_listenable() else both[:1]
    address = ipaddress.ip_address(host_ip)
    return [address] if address.version == 4 or ipv6 else []


@functools.cache
def v6_listenable() -> bool:
    """dockerd's netutils.IsV6Listenable: no implicit "::" bindings on a host without IPv6."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def _bind_all(proto: str, addresses: Sequence[_Address], port: int,
              describe: Callable[[_Address], str], ranged: bool) -> list[socket.socket]:
    """Bind port on every address, or close what was bound and raise."""
    socks: list[socket.socket] = []
    try:
        for address in addresses:
            socks.append(_bind(proto, address, port, describe, ranged))
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


def _bind(proto: str, address: _Address, port: int,
          describe: Callable[[_Address], str], ranged: bool = False) -> socket.socket:
    """A socket bound to address:port and not listening: the reservation itself. Failures
    in dockerd's words (libnetwork/drivers/bridge/port_mapping_linux.go, bindTCPOrUDP and
    bindSCTP), as EngineError (500, as dockerd's InternalError)."""
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    kind, number = {"tcp": (socket.SOCK_STREAM, socket.IPPROTO_TCP),
                    "udp": (socket.SOCK_DGRAM, socket.IPPROTO_UDP),
                    "sctp": (socket.SOCK_STREAM, getattr(socket, "IPPROTO_SCTP", 132))}[proto]
    try:
        sock = socket.socket(family, kind, number)
    except OSError as e:
        raise EngineError(f"failed to create socket for userland proxy for "
                          f"{describe(address)}: {_go_error(e)}") from e
    try:
        if proto != "sctp":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((str(address), port))
    except OSError as e:
        sock.close()
        where = describe(address)
        text = (f"failed to bind socket for userland proxy for {where}" if proto == "sctp"
                else f"failed to bind host port {port} for {where}" if ranged
                else f"failed to bind host port for {where}")
        raise EngineError(f"{text}: {_go_error(e)}") from e
    return sock


def _describe(proto: str, cport: int, start: int, end: int, cips: tuple[str, str],
              address: _Address) -> str:
    """libnetwork's PortBinding.String(): host-ip:host-port[-end]:container-ip:port/proto,
    IPv6 addresses bracketed, a random host port left empty ("0.0.0.0::172.17.0.2:80/tcp")."""
    host = f"[{address}]" if address.version == 6 else str(address)
    ports = "" if start == 0 else str(start) if end in (0, start) else f"{start}-{end}"
    cip = cips[1] if address.version == 6 else cips[0]
    inner = "" if not cip else f"[{cip}]:" if ":" in cip else f"{cip}:"
    return f"{host}:{ports}:{inner}{cport}/{proto}"


def _go_error(e: OSError) -> str:
    """An errno as Go prints it: "address already in use", "permission denied"."""
    if e.errno is None:
        return str(e)
    text = os.strerror(e.errno)
    return text[:1].lower() + text[1:]
