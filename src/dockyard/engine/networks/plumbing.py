"""What the bridge driver does to the host, in the order it must be done; blocking (netlink,
/proc/sys, `nft`), so the service calls each through `asyncio.to_thread`.

    network up      bridge (MTU, gateway addresses, up); route_localnet on it, so that
                    127.0.0.1 can be DNATed to its containers
    sandbox         <exec-root>/netns/<container id>: a namespace bound at a path (lo up)
                    before the container starts; the runtime joins it by path
    endpoint        a veth pair: `vethXXXXXXX` on the bridge with hairpin on (a container
                    reaching its own published port), its peer eth<N> in the sandbox with
                    the endpoint's MAC, addresses and (on the first routed network) the
                    default routes
    firewall        the one nftables table, recomputed from every bridge network and every
                    published port and replaced in one transaction (network/nftrules.py)
    sandbox gone    the bind mount; the kernel deletes the veths as the namespace dies;
                    the connection-tracking entries of the addresses given back (ctnetlink)
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Sequence
from pathlib import Path

from dockyard.network import netlink, nft, nftrules

Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def network_up(bridge: str, mtu: int, gateways: Sequence[Interface]) -> None:
    netlink.ensure_bridge(netlink.BridgeSpec(bridge, mtu, tuple(gateways)))
    if any(g.version == 4 for g in gateways):
        netlink.enable_route_localnet(bridge)


def network_down(bridge: str) -> None:
    netlink.delete_bridge(bridge, missing_ok=True)


def enable_forwarding() -> None:
    """net.ipv4.ip_forward=1, as dockerd sets it (`ip-forward`, on by default): containers
    reach beyond their bridge only through the host's routing."""
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        if f.read().strip() == "1":
            return
    netlink.enable_ipv4_forwarding()


def enable_bridge_netfilter() -> None:
    """bridge-nf-call-ip{,6}tables=1, as dockerd sets them: traffic between two containers
    of one bridge is switched, not routed, and only with these does it pass the forward hook
    where an icc=false network drops it. They apply to every bridge of the host."""
    base = Path("/proc/sys/net/bridge")
    if not base.exists():
        import subprocess

        subprocess.run(["modprobe", "br_netfilter"], capture_output=True, check=False)
    for name in ("bridge-nf-call-iptables", "bridge-nf-call-ip6tables"):
        path = base / name
        try:
            if path.read_text().strip() != "1":
                path.write_text("1")
        except OSError as e:
            raise netlink.NetlinkError("enable bridge netfilter", name, e.errno) from None


def sandbox_up(path: str | os.PathLike[str]) -> None:
    with contextlib.suppress(netlink.NetlinkError):  # what a crash left at this path
        netlink.delete_netns(path, missing_ok=True)
    # As dockerd: no IPv6 on an endpoint of an IPv4-only network, not even link-local (no
    # router solicitations, no MLD: a quiet interface until the container speaks); an
    # endpoint with IPv6 addresses turns it on for its own interface.
    netlink.create_netns(path, [("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1")]
                         if os.path.exists("/proc/sys/net/ipv6") else [])


def endpoint_up(host: str, bridge: str, netns: str, peer: str, mtu: int, mac: str | None,
                addresses: Sequence[Interface], gateways: Sequence[Address]) -> None:
    netlink.create_veth(netlink.VethSpec(host=host, bridge=bridge, netns=Path(netns),
                                         peer_name=peer, mtu=mtu, mac=mac,
                                         addresses=tuple(addresses),
                                         gateways=tuple(gateways)))
    try:
        Path(f"/sys/class/net/{host}/brport/hairpin_mode").write_text("1")
    except OSError as e:
        netlink.delete_veth(host, missing_ok=True)
        raise netlink.NetlinkError("set hairpin mode", host, e.errno) from None


def endpoint_down(host: str) -> None:
    netlink.delete_veth(host, missing_ok=True)


def sandbox_down(path: str | os.PathLike[str]) -> None:
    """Unbind the namespace. Its veths go with it once its last process is gone: the kernel
    deletes them on its own (batched, off our path) instead of one synchronous delete each."""
    netlink.delete_netns(path, missing_ok=True)


def forget_connections(addresses: Sequence[str]) -> None:
    """Delete the connection-tracking entries of addresses given back, as dockerd does: a
    flow the firewall accepted as established would otherwise carry on to the next holder
    of the address, past rules (icc=false, isolation) that would drop it as new. Flows from
    it, to it, and DNATed to it (the reply's source), all addresses in one pass over the
    table (network/conntrack.py). The service runs this behind the stop, not in its way
    (the IPAM does not hand a released address out again at once)."""
    from dockyard.network import conntrack

    try:
        conntrack.delete_entries(addresses)
    except OSError as e:
        raise netlink.NetlinkError("delete conntrack entries", ", ".join(addresses),
                                   e.errno, e.strerror or "") from None


def firewall(table: str, networks: Sequence[nftrules.Network],
             ports: Sequence[nftrules.PortMapping]) -> None:
    nft.apply(nftrules.script(table, networks, ports))


def firewall_down(table: str) -> None:
    nft.delete_table(table)


def host_routes() -> list[str]:
    """The host's IPv4 and IPv6 route destinations (not the defaults): subnets a new
    network must not overlap."""
    from pyroute2 import IPRoute

    out: list[str] = []
    with IPRoute() as ipr:
        for family in (2, 10):
            for route in ipr.get_routes(family=family, table=254):
                dst = route.get_attr("RTA_DST")
                if dst and route["dst_len"]:
                    out.append(f"{dst}/{route['dst_len']}")
    return out
