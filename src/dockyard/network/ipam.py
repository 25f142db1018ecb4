"""IP address management: which subnet a network gets and which address each endpoint gets.

This is dockerd's default IPAM driver (libnetwork's `defaultipam`) as pure code: no netlink,
no root. The caller (the engine's networks service) passes in what the module cannot see for
itself, such as the host's routes, and performs whatever the answers imply.

Subnets. A network either names its subnet (`docker network create --subnet --ip-range
--gateway`) or gets one from the default pools: dockerd splits 172.17.0.0/16 … 172.31.0.0/16
into /16s and 192.168.0.0/16 into /20s (libnetwork/ipamutils), 31 subnets in all, handed out
in order, skipping any that overlap a subnet of this space or one of the caller's `reserved`
prefixes (the host's routes, other spaces' networks). The default bridge is simply the first
request, so it gets 172.17.0.0/16. There is no default IPv6 pool unless one is configured.

Addresses. An IPv4 subnet larger than a /31 never hands out its network and broadcast
addresses; an IPv6 subnet never hands out its first address (the subnet-router anycast).
The gateway is the first free address of the range unless `--gateway` names one. Dynamic
addresses come from the ip-range (the whole subnet without one) sequentially: the search
starts after the last address handed out and wraps around, so a released address is not
reused at once (a stale ARP entry or DNS answer then points nowhere rather than at a new
container). A static address (`--ip`) may lie anywhere in the subnet, inside the range or
not: Docker users keep static addresses outside `--ip-range` so they never collide with
dynamic ones.

Persistence. One JSON document per address space, `<directory>/<space>.json`, rewritten
atomically (temporary file, fsync, rename, fsync of the directory) after every change, so a
daemon restart (a new `AddressSpace` on the same directory) sees every pool and address:

    {"version": 1,
     "pools": [{"subnet": "172.18.0.0/16", "ip_range": null, "gateway": "172.18.0.1",
                "allocated": ["172.18.0.1", "172.18.0.2"], "last": "172.18.0.2"}]}

Concurrency. Methods are synchronous and not thread-safe; the one owner of a directory (the
engine's networks service) serializes calls, e.g. under one asyncio lock, and only one
`AddressSpace` object may own a given document at a time.

Errors carry Docker's messages; their classes name the Engine API status the engine maps
them to at its edge:

    IpamError
      ├─ InvalidParameter (400)   bad subnet, ip-range, gateway or address; no subnet left
      ├─ Forbidden (403)          "Pool overlaps with other one …", "Address already in use"
      ├─ NotFound (404)           no pool with that subnet
      └─ Unavailable (503)        "no available addresses on this pool"
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.fsutil import write_atomic

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

FORMAT_VERSION = 1


class IpamError(Exception):
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidParameter(IpamError):
    status = 400


class Forbidden(IpamError):
    status = 403


class NotFound(IpamError):
    status = 404


class Unavailable(IpamError):
    status = 503


# libnetwork/ipamapi's messages
POOL_OVERLAP = "invalid pool request: Pool overlaps with other one on this address space"
NO_MORE_SUBNETS = "all predefined address pools have been fully subnetted"
NO_AVAILABLE_IPS = "no available addresses on this pool"
IP_IN_USE = "Address already in use"
IP_OUT_OF_RANGE = "requested address is out of range"


@dataclass(frozen=True)
class PoolSpec:
    """A default pool: `base` split into subnets of prefix length `size` (dockerd's
    `default-address-pools` entries: {"base": "172.17.0.0/16", "size": 16})."""

    base: Network
    size: int

    @classmethod
    def parse(cls, base: str, size: int) -> PoolSpec:
        net = ipaddress.ip_network(base)
        if not net.prefixlen <= size <= net.max_prefixlen:
            raise InvalidParameter(f"invalid pools size: {size}")
        return cls(net, size)


DEFAULT_POOLS: tuple[PoolSpec, ...] = (
    *(PoolSpec.parse(f"172.{n}.0.0/16", 16) for n in (17, 18, 19)),
    *(PoolSpec.parse(f"172.{n}.0.0/14", 16) for n in (20, 24, 28)),
    PoolSpec.parse("192.168.0.0/16", 20),
)


@dataclass(frozen=True)
class Pool:
    """A network's allocation: its subnet, the range dynamic addresses come from, its gateway."""

    subnet: Network
    ip_range: Network | None
    gateway: Address


def mac_address(address: ipaddress.IPv4Address) -> str:
    """The MAC Docker derives from an endpoint's IPv4 address: locally administered 02:42
    followed by the four address bytes, so one address always has one MAC."""
    return "02:42:" + ":".join(f"{b:02x}" for b in address.packed)


def parse_config(subnet: str | None, ip_range: str | None = None,
                 gateway: str | None = None) -> tuple[Network | None, Network | None,
                                                       Address | None]:
    """Parse and check one IPAM config as the Engine API's ValidateIPAM does, with its
    messages; all problems are reported together, as dockerd does."""
    if not subnet:
        if ip_range or gateway:
            raise InvalidParameter("every ip-range or gateway must have a corresponding subnet")
        return None, None, None
    net = _parse_prefix(subnet)
    if net is None:
        raise InvalidParameter(_config_error(
            [f"invalid subnet {subnet}: invalid CIDR block notation"]))
    errors: list[str] = []
    if net.ip != net.network.network_address:
        errors.append(f"invalid subnet {subnet}: it should be {net.network}")
    rng = None
    if ip_range:
        rng = _parse_prefix(ip_range)
        if rng is None:
            errors.append(f"invalid ip-range {ip_range}: invalid CIDR block notation")
        elif rng.version != net.version:
            errors.append(f"invalid ip-range {ip_range}: parent subnet is an "
                          f"IPv{net.version} block")
            rng = None
        else:
            if rng.network.prefixlen < net.network.prefixlen:
                errors.append(f"invalid ip-range {ip_range}: CIDR block is bigger than its "
                              f"parent subnet {net.network}")
            if rng.ip != rng.network.network_address:
                errors.append(f"invalid ip-range {ip_range}: it should be {rng.network}")
            if not rng.network.overlaps(net.network):
                errors.append(f"invalid ip-range {ip_range}: parent subnet {net.network} "
                              "doesn't contain ip-range")
    gw = None
    if gateway:
        try:
            gw = ipaddress.ip_address(gateway)
        except ValueError:
            errors.append(f"invalid gateway {gateway}: invalid address")
        else:
            if gw.version != net.version:
                errors.append(f"invalid gateway {gateway}: parent subnet is an "
                              f"IPv{net.version} block")
            elif gw not in net.network:
                errors.append(f"invalid gateway {gateway}: parent subnet {net.network} "
                              "doesn't contain this address")
    if errors:
        raise InvalidParameter(_config_error(errors))
    return net.network, rng.network if rng else None, gw


@dataclass
class _PoolState:
    """Mutable bookkeeping of one pool; addresses kept as offsets from the subnet's start."""

    subnet: Network
    ip_range: Network | None
    gateway: int = 0
    allocated: set[int] = field(default_factory=set)
    last: int | None = None

    def offset(self, address: Address) -> int:
        return int(address) - int(self.subnet.network_address)

    def address(self, offset: int) -> Address:
        return self.subnet.network_address + offset

    def reserved(self) -> set[int]:
        size = self.subnet.num_addresses
        if self.subnet.version == 4:
            return {0, size - 1} if size > 2 else set()
        return {0}

    def bounds(self) -> tuple[int, int]:
        if self.ip_range is None:
            return 0, self.subnet.num_addresses - 1
        start = self.offset(self.ip_range.network_address)
        return start, start + self.ip_range.num_addresses - 1

    def take_next(self) -> int:
        """The next free offset in the range after the last one handed out, wrapping."""
        start, end = self.bounds()
        reserved = self.reserved()
        busy = self.allocated | reserved
        used = len(busy) if self.ip_range is None else sum(start <= o <= end for o in busy)
        if used >= end - start + 1:
            raise Unavailable(NO_AVAILABLE_IPS)
        cand = start if self.last is None or not start <= self.last < end else self.last + 1
        while cand in busy:  # ends: a free offset exists and the walk visits each once
            cand = start if cand >= end else cand + 1
        self.allocated.add(cand)
        self.last = cand
        return cand

    def take(self, address: Address) -> int:
        if address.version != self.subnet.version or address not in self.subnet:
            raise InvalidParameter(IP_OUT_OF_RANGE)
        off = self.offset(address)
        if off in self.allocated or off in self.reserved():
            raise Forbidden(IP_IN_USE)
        self.allocated.add(off)
        return off

    def to_json(self) -> dict[str, object]:
        return {"subnet": str(self.subnet),
                "ip_range": str(self.ip_range) if self.ip_range else None,
                "gateway": str(self.address(self.gateway)),
                "allocated": [str(self.address(o)) for o in sorted(self.allocated)],
                "last": None if self.last is None else str(self.address(self.last))}

    @classmethod
    def from_json(cls, doc: dict[str, object]) -> _PoolState:
        subnet = ipaddress.ip_network(str(doc["subnet"]))
        rng = doc.get("ip_range")
        pool = cls(subnet, ipaddress.ip_network(str(rng)) if rng else None)

        def offset(text: object) -> int:
            addr = ipaddress.ip_address(str(text))
            if addr.version != subnet.version or addr not in subnet:
                raise ValueError(f"{addr} is not in {subnet}")
            return pool.offset(addr)

        pool.gateway = offset(doc["gateway"])
        allocated = doc.get("allocated") or []
        if not isinstance(allocated, list):
            raise ValueError("allocated is not a list")
        pool.allocated = {offset(a) for a in allocated}
        if doc.get("last") is not None:
            pool.last = offset(doc["last"])
        return pool

    def public(self) -> Pool:
        return Pool(self.subnet, self.ip_range, self.address(self.gateway))


class AddressSpace:
    """The pools of one address space (dockerd's "LocalDefault"), IPv4 and IPv6 together,
    persisted in `<directory>/<name>.json`. See the module docstring for the rules."""

    def __init__(self, directory: str | os.PathLike[str], name: str = "local",
                 default_pools: Sequence[PoolSpec] = DEFAULT_POOLS) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            raise InvalidParameter(f"invalid address space name: {name!r}")
        self._dir = Path(directory)
        self._path = self._dir / f"{name}.json"
        self._defaults = list(default_pools)
        self._pools: dict[Network, _PoolState] = self._load()

    def pools(self) -> list[Pool]:
        """Every pool of the space, in subnet order (IPv4 first)."""
        return [p.public() for _, p in sorted(self._pools.items(), key=_sort_key)]

    def in_use(self, subnet: str | Network) -> list[Address]:
        """The addresses handed out in a pool (the gateway included), in order."""
        pool = self._pool(subnet)
        return [pool.address(o) for o in sorted(pool.allocated)]

    def request_pool(self, subnet: str | None = None, ip_range: str | None = None,
                     gateway: str | None = None, *, v6: bool = False,
                     reserved: Iterable[str | Network] = ()) -> Pool:
        """Allocate a network's subnet and its gateway. With `subnet` (and optionally
        `ip_range` and `gateway`) the pool is exactly that, if it overlaps no pool of this
        space; without, the first default subnet of the family (`v6`) that overlaps no pool
        and none of `reserved` (the host's routes; default routes are ignored)."""
        net, rng, gw = parse_config(subnet, ip_range, gateway)
        if net is None:
            net = self._free_subnet(6 if v6 else 4, [_as_network(r) for r in reserved])
        elif any(net.overlaps(other) for other in self._pools):
            raise Forbidden(POOL_OVERLAP)
        pool = _PoolState(net, rng)
        try:
            pool.gateway = pool.take(gw) if gw is not None else pool.take_next()
        except IpamError as e:
            which = f" ({gw})" if gw is not None else ""
            raise type(e)(f"failed to allocate gateway{which}: {e.message}") from None
        with self._committing():
            self._pools[net] = pool
        return pool.public()

    def release_pool(self, subnet: str | Network) -> None:
        """Forget a pool and every address in it (the network is gone)."""
        pool = self._pool(subnet)
        with self._committing():
            del self._pools[pool.subnet]

    def request_address(self, subnet: str | Network, address: str | None = None) -> Address:
        """An endpoint's address: `address` if given (`--ip`/`--ip6`) and free, otherwise the
        next free one of the range."""
        pool = self._pool(subnet)
        want = None
        if address:
            try:
                want = ipaddress.ip_address(address)
            except ValueError:
                raise InvalidParameter(f"invalid address: {address}") from None
        with self._committing():
            off = pool.take(want) if want is not None else pool.take_next()
        return pool.address(off)

    def release_address(self, subnet: str | Network, address: str | Address) -> None:
        """Give an endpoint's address back; releasing a free address is not an error."""
        pool = self._pool(subnet)
        try:
            addr = ipaddress.ip_address(address)
        except ValueError:
            raise InvalidParameter(f"invalid address: {address}") from None
        if addr.version != pool.subnet.version or addr not in pool.subnet:
            raise InvalidParameter(IP_OUT_OF_RANGE)
        with self._committing():
            pool.allocated.discard(pool.offset(addr))

    def _pool(self, subnet: str | Network) -> _PoolState:
        try:
            net = ipaddress.ip_network(subnet)
        except ValueError:
            raise InvalidParameter(f"invalid subnet {subnet}") from None
        pool = self._pools.get(net)
        if pool is None:
            raise NotFound(f"cannot find address pool for {net}")
        return pool

    def _free_subnet(self, version: int, reserved: list[Network]) -> Network:
        """The first subnet of the default pools that overlaps nothing in use. Candidates
        jump past whatever blocks them, so a pool of 2^56 /64s costs one step per blocker."""
        blockers = [n for n in [*self._pools, *reserved]
                    if n.version == version and n.prefixlen > 0]
        for spec in self._defaults:
            if spec.base.version != version:
                continue
            step = 1 << (spec.base.max_prefixlen - spec.size)
            start, stop = int(spec.base.network_address), int(spec.base.broadcast_address)
            while start <= stop:
                cand = type(spec.base)((start, spec.size))
                hits = [b for b in blockers if b.overlaps(cand)]
                if not hits:
                    return cand
                after = max(int(b.broadcast_address) for b in hits) + 1
                start = -(-after // step) * step  # round up to the next candidate
        raise InvalidParameter(NO_MORE_SUBNETS)

    def _committing(self) -> _Commit:
        return _Commit(self)

    def _load(self) -> dict[Network, _PoolState]:
        try:
            text = self._path.read_text()
        except FileNotFoundError:
            return {}
        try:
            doc = json.loads(text)
            if doc.get("version") != FORMAT_VERSION:
                raise ValueError(f"unknown version {doc.get('version')!r}")
            pools = [_PoolState.from_json(p) for p in doc["pools"]]
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise IpamError(f"corrupt IPAM state {self._path}: {e}") from None
        return {p.subnet: p for p in pools}

    def _save(self) -> None:
        doc = {"version": FORMAT_VERSION,
               "pools": [p.to_json() for _, p in sorted(self._pools.items(), key=_sort_key)]}
        self._dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self._path, json.dumps(doc, indent=1), sync_dir=True)


class _Commit:
    """Apply a change in memory, then persist it; if persisting fails, the memory goes back
    to what the document holds, so the two never disagree."""

    def __init__(self, space: AddressSpace) -> None:
        self._space = space

    def __enter__(self) -> None:
        self._before = {n: _PoolState.from_json(p.to_json())
                        for n, p in self._space._pools.items()}

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        if kind is None:
            try:
                self._space._save()
                return
            except BaseException:
                self._restore()
                raise
        self._restore()

    def _restore(self) -> None:
        self._space._pools.clear()
        self._space._pools.update(self._before)


def _sort_key(item: tuple[Network, _PoolState]) -> tuple[int, int, int]:
    net = item[0]
    return net.version, int(net.network_address), net.prefixlen


def _as_network(value: str | Network) -> Network:
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return value
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise InvalidParameter(f"invalid reserved prefix {value}") from None


def _parse_prefix(text: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface | None:
    """A prefix in CIDR notation (address/length), host bits allowed so that the caller can
    say what the canonical form is; netmask notation and bare addresses are refused."""
    _, slash, length = text.partition("/")
    if not slash or not length.isdigit():
        return None
    try:
        return ipaddress.ip_interface(text)
    except ValueError:
        return None


def _config_error(errors: list[str]) -> str:
    """dockerd's joined error: one error as is, several as a bulleted list."""
    body = errors[0] if len(errors) == 1 else "* " + "\n* ".join(errors)
    return f"invalid network config:\n{body}"
