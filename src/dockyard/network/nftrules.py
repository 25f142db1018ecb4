"""Dockyard's nftables table, computed as data: networks and published ports in, one `nft -f`
script out. Pure: no root, no subprocess; `network/nft.py` applies what this returns.

The script replaces the whole table in one transaction (nft applies a file atomically):

    table inet <name>              create it if missing, so that the next line cannot fail
    delete table inet <name>       drop whatever a previous daemon left
    table inet <name> { … }        the table as the current state says it should be

so reconciling after a restart, or after any container or network change, is "compute from
state, apply", and nothing of a removed container or network survives. Other tables of the
host are never named.

One `inet` table holds both the filter and the nat chains (inet nat needs Linux ≥ 5.2):

    set bridges                    every Dockyard bridge (type ifname)
    chain guard        prerouting, priority raw: drop 127.0.0.0/8 arriving on a bridge
                       (route_localnet must not open the host's loopback to containers)
    chain forward      forward, priority filter: for each bridge B
                         oifname B jump fwd-in-B      (into B's containers)
                         iifname B jump fwd-out-B     (out of B; internal networks only)
    chain fwd-in-B     established/related accept; same-bridge traffic accepted (icc=true);
                       published ports accepted after DNAT; everything else dropped: the
                       rest of same-bridge traffic (icc=false), another Dockyard bridge's
                       (isolation), and traffic routed from beyond the host straight to a
                       container's address (Docker 28's "direct routing" block)
    chain fwd-out-B    internal networks: nothing leaves but to B itself
    chain prerouting   nat prerouting, priority dstnat:  fib daddr type local jump ports
    chain output       nat output, priority -100:        fib daddr type local jump ports
                       (locally generated traffic, 127.0.0.1 included)
    chain ports        one DNAT per published port (or range)
    chain postrouting  nat postrouting, priority srcnat: masquerade each masquerading,
                       non-internal subnet leaving through another interface; masquerade
                       127.0.0.0/8 sources going out to a bridge; masquerade hairpin traffic
                       (from a bridge's subnet back out to it after DNAT), so that replies
                       come back through the host and are un-NATed

What the caller sets outside nftables (this module only writes rules):
  - net.ipv4.ip_forward=1 (and net.ipv6.conf.all.forwarding=1 for IPv6 networks);
  - net.ipv4.conf.<bridge>.route_localnet=1 for 127.0.0.1 → container to be routed at all;
  - hairpin mode on each bridge port, for a container reaching its own published port;
  - br_netfilter with net.bridge.bridge-nf-call-ip{,6}tables=1 for icc=false to see traffic
    between containers of one bridge (bridged at layer 2, it otherwise skips the forward hook).
IPv6 ::1 cannot be DNATed to a container (the kernel has no route_localnet for IPv6): as with
Docker, published IPv6 ports are reached from the host through its other addresses.

Another table's forward chain with policy drop (a host firewall) still drops what ours
accepts: an accept verdict ends only the evaluation of our own base chain.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

FAMILY = "inet"
PROTOCOLS = ("tcp", "udp", "sctp")
LOOPBACK4 = ipaddress.IPv4Network("127.0.0.0/8")

# a table name nft accepts unquoted; interface names as the kernel takes them (≤ 15 bytes)
# restricted to characters that are also safe inside our chain names
_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_BRIDGE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}")


@dataclass(frozen=True)
class Network:
    """A bridge network as the rules see it."""

    bridge: str
    subnets: tuple[IPNetwork, ...]
    internal: bool = False
    icc: bool = True
    masquerade: bool = True

    def __post_init__(self) -> None:
        if not _BRIDGE.fullmatch(self.bridge):
            raise ValueError(f"invalid bridge name {self.bridge!r}")
        for subnet in self.subnets:
            if not isinstance(subnet, ipaddress.IPv4Network | ipaddress.IPv6Network):
                raise ValueError(f"invalid subnet {subnet!r} for bridge {self.bridge}")

    def contains(self, address: IPAddress) -> bool:
        return any(address in subnet for subnet in self.subnets
                   if subnet.version == address.version)


@dataclass(frozen=True)
class PortMapping:
    """One published port or range: host_ip:host_port[-host_port_end] → container.

    host_ip None means every host address of the container address's family. A host range
    maps onto a container range of the same length starting at container_port, or, when
    container_port_end is None and the host range is longer than one port, every host port
    of the range onto the single container_port.
    """

    proto: str
    container_ip: IPAddress
    container_port: int
    host_port: int
    host_port_end: int | None = None
    container_port_end: int | None = None
    host_ip: IPAddress | None = None

    def __post_init__(self) -> None:
        if self.proto not in PROTOCOLS:
            raise ValueError(f"invalid protocol {self.proto!r}: want one of {PROTOCOLS}")
        for port in (self.host_port, self.host_end, self.container_port, self.container_end):
            if not 1 <= port <= 65535:
                raise ValueError(f"invalid port {port} in {self}")
        if self.host_end < self.host_port or self.container_end < self.container_port:
            raise ValueError(f"invalid port range in {self}")
        if self.container_port_end is not None and \
                self.container_end - self.container_port != self.host_end - self.host_port:
            raise ValueError(f"host and container port ranges differ in length in {self}")
        if self.host_ip is not None and self.host_ip.version != self.container_ip.version:
            raise ValueError(f"host address and container address of {self} differ in family")

    @property
    def host_end(self) -> int:
        return self.host_port if self.host_port_end is None else self.host_port_end

    @property
    def container_end(self) -> int:
        return self.container_port if self.container_port_end is None \
            else self.container_port_end


def script(table: str, networks: Sequence[Network], ports: Sequence[PortMapping] = ()) -> str:
    """The whole `nft -f` script that (re)places table `inet <table>` atomically."""
    _check(table, networks)
    body = [
        _bridges_set(networks),
        _chain("guard", ["type filter hook prerouting priority raw; policy accept;"],
               _guard(networks)),
        _chain("forward", ["type filter hook forward priority filter; policy accept;"],
               _forward_dispatch(networks)),
        *(_chain(f"fwd-in-{n.bridge}", [], _forward_in(n, ports)) for n in networks),
        *(_chain(f"fwd-out-{n.bridge}", [], _forward_out(n)) for n in networks if n.internal),
        _chain("prerouting", ["type nat hook prerouting priority dstnat; policy accept;"],
               ["fib daddr type local jump ports"]),
        _chain("output", ["type nat hook output priority -100; policy accept;"],
               ["fib daddr type local jump ports"]),
        _chain("ports", [], [rule for p in ports for rule in _dnat(p)]),
        _chain("postrouting", ["type nat hook postrouting priority srcnat; policy accept;"],
               _postrouting(networks)),
    ]
    head = f"{FAMILY} {table}"
    return f"table {head}\ndelete table {head}\ntable {head} {{\n" + "".join(body) + "}\n"


def delete_script(table: str) -> str:
    """A script that removes the table, and succeeds when there is none."""
    _check(table, ())
    return f"table {FAMILY} {table}\ndelete table {FAMILY} {table}\n"


def _check(table: str, networks: Sequence[Network]) -> None:
    if not _TABLE.fullmatch(table):
        raise ValueError(f"invalid table name {table!r}")
    bridges = [n.bridge for n in networks]
    if len(set(bridges)) != len(bridges):
        raise ValueError(f"a bridge is named twice in {bridges}")


def _chain(name: str, head: list[str], rules: list[str]) -> str:
    lines = [f"\tchain {name} {{"] + [f"\t\t{line}" for line in head + rules] + ["\t}"]
    return "\n".join(lines) + "\n"


def _bridges_set(networks: Sequence[Network]) -> str:
    lines = ["\tset bridges {", "\t\ttype ifname"]
    if networks:
        lines.append("\t\telements = { " + ", ".join(_q(n.bridge) for n in networks) + " }")
    return "\n".join([*lines, "\t}"]) + "\n"


def _guard(networks: Sequence[Network]) -> list[str]:
    if not networks:
        return []
    return [f"iifname @bridges ip daddr {LOOPBACK4} drop"]


def _forward_dispatch(networks: Sequence[Network]) -> list[str]:
    rules = [f"oifname {_q(n.bridge)} jump fwd-in-{n.bridge}" for n in networks]
    rules += [f"iifname {_q(n.bridge)} jump fwd-out-{n.bridge}" for n in networks if n.internal]
    return rules


def _forward_in(network: Network, ports: Sequence[PortMapping]) -> list[str]:
    """Traffic going out through the bridge to its containers.

    A published port is reached, after DNAT, from anywhere but another internal network:
    from outside, from the host, and from containers of any Dockyard network through a host
    address (hairpin), as with Docker's userland proxy. An internal network's published ports
    are reached from its own bridge only.
    """
    bridge = _q(network.bridge)
    only_from = f"iifname {bridge} " if network.internal else ""
    rules = ["ct state established,related accept"]
    if network.icc:
        rules.append(f"iifname {bridge} accept")
    rules += [f"{only_from}ct status dnat {_to_container(p)} accept"
              for p in ports if network.contains(p.container_ip)]
    if not network.icc:
        rules.append(f"iifname {bridge} drop")
    # Anything else, from another bridge or from beyond the host straight to a container's
    # address, is dropped, as Docker 28 does: only what is published gets in.
    rules.append("drop")
    return rules


def _forward_out(network: Network) -> list[str]:
    """Traffic from an internal network's containers to anywhere but its own bridge."""
    return [f"oifname != {_q(network.bridge)} drop"]


def _dnat(port: PortMapping) -> list[str]:
    family = "ip" if port.container_ip.version == 4 else "ip6"
    match = f"{family} daddr {port.host_ip}" if port.host_ip is not None else \
        f"meta nfproto ipv{port.container_ip.version}"
    target = str(port.container_ip) if family == "ip" else f"[{port.container_ip}]"
    single = port.host_port == port.host_end
    if port.container_port_end is None or single:
        # one container port: every host port of the range goes to it
        return [f"{match} {port.proto} dport {_range(port.host_port, port.host_end)} "
                f"dnat {family} to {target}:{port.container_port}"]
    if port.container_port == port.host_port:
        # the same range on both sides: the destination port stays as it is
        return [f"{match} {port.proto} dport {_range(port.host_port, port.host_end)} "
                f"dnat {family} to {target}"]
    # shifted ranges: nft has no offset mapping, so one rule per port
    offset = port.container_port - port.host_port
    return [f"{match} {port.proto} dport {hp} dnat {family} to {target}:{hp + offset}"
            for hp in range(port.host_port, port.host_end + 1)]


def _postrouting(networks: Sequence[Network]) -> list[str]:
    rules = []
    for n in networks:
        if n.internal or not n.masquerade:
            continue
        rules += [f"{_family(s)} saddr {s} oifname != {_q(n.bridge)} masquerade"
                  for s in n.subnets]
    for n in networks:
        # postrouting knows no input interface: hairpin is "from B's subnet, back out to B"
        bridge = _q(n.bridge)
        rules.append(f"oifname {bridge} ip saddr {LOOPBACK4} masquerade")
        rules += [f"{_family(s)} saddr {s} oifname {bridge} ct status dnat masquerade"
                  for s in n.subnets]
    return rules


def _to_container(port: PortMapping) -> str:
    family = "ip" if port.container_ip.version == 4 else "ip6"
    return (f"{family} daddr {port.container_ip} {port.proto} dport "
            f"{_range(port.container_port, port.container_end)}")


def _family(subnet: IPNetwork) -> str:
    return "ip" if subnet.version == 4 else "ip6"


def _range(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"


def _q(name: str) -> str:
    return f'"{name}"'
