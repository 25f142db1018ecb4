"""The netlink plumbing against the real kernel: bridges, namespaces, veth pairs, errors."""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import subprocess
from pathlib import Path

import pytest

from dockyard.network import netlink
from dockyard.network.netlink import BridgeSpec, NetlinkError, VethSpec

from .conftest import NetRegistry, link_names, mounts_under

pytestmark = pytest.mark.root

ip = ipaddress.ip_interface
addr = ipaddress.ip_address


def ip_json(*args: str, netns: Path | None = None) -> list[dict]:
    cmd = ["ip", "-j", *args]
    if netns is not None:
        cmd = ["nsenter", f"--net={netns}", *cmd]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


def link(name: str, netns: Path | None = None) -> dict:
    return ip_json("-d", "addr", "show", "dev", name, netns=netns)[0]


def addresses(info: dict) -> set[str]:
    return {f"{a['local']}/{a['prefixlen']}" for a in info["addr_info"]
            if a.get("scope") == "global"}


def ping(busybox: str, netns: Path, target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["nsenter", f"--net={netns}", busybox, "ping", "-c", "1", "-W", "2",
                           target], capture_output=True, text=True, timeout=10)


def subnet() -> tuple[str, str]:
    """A random private IPv4 /24 prefix and IPv6 /64 prefix, unlikely to meet another test's."""
    a, b = os.urandom(2)
    return f"10.{a}.{b}", f"fd00:d7:{a:x}:{b:x}"


def make_bridge(net: NetRegistry, v4: str, v6: str, mtu: int = 1400) -> str:
    name = net.link()
    netlink.ensure_bridge(BridgeSpec(name, mtu, (ip(f"{v4}.1/24"), ip(f"{v6}::1/64"))))
    return name


def attach(net: NetRegistry, bridge: str, v4: str, v6: str, host: int,
           mtu: int = 1400) -> tuple[str, Path]:
    veth, ns = net.link(), net.netns()
    netlink.create_netns(ns)
    netlink.create_veth(VethSpec(
        host=veth, bridge=bridge, netns=ns, mtu=mtu, mac=f"02:42:ac:11:00:{host:02x}",
        addresses=(ip(f"{v4}.{host}/24"), ip(f"{v6}::{host}/64")),
        gateways=(addr(f"{v4}.1"), addr(f"{v6}::1"))))
    return veth, ns


def test_bridge_gets_mtu_addresses_and_up_and_ensure_is_idempotent(net: NetRegistry) -> None:
    v4, v6 = subnet()
    name = make_bridge(net, v4, v6, mtu=1450)
    netlink.ensure_bridge(BridgeSpec(name, 1450, (ip(f"{v4}.1/24"), ip(f"{v6}::1/64"))))
    info = link(name)
    assert info["linkinfo"]["info_kind"] == "bridge"
    assert info["mtu"] == 1450
    assert "UP" in info["flags"]
    assert addresses(info) == {f"{v4}.1/24", f"{v6}::1/64"}
    assert netlink.bridge_exists(name)

    netlink.delete_bridge(name)
    assert not netlink.bridge_exists(name)
    assert name not in link_names()


def test_netns_is_a_mount_with_lo_up_that_outlives_its_creator(net: NetRegistry) -> None:
    ns = net.netns()
    netlink.create_netns(ns)
    assert [m for m in mounts_under(net.root) if str(ns) in m]
    assert os.stat(ns).st_ino != os.stat("/proc/self/ns/net").st_ino
    lo = ip_json("link", "show", "dev", "lo", netns=ns)[0]
    assert "UP" in lo["flags"]
    assert ip_json("link", "show", netns=ns) == [lo]  # nothing but lo in a fresh namespace

    netlink.delete_netns(ns)
    assert not os.path.lexists(ns)
    assert mounts_under(net.root) == []


def test_namespaces_on_a_bridge_ping_each_other_and_the_gateway(
        net: NetRegistry, busybox: str) -> None:
    v4, v6 = subnet()
    bridge = make_bridge(net, v4, v6)
    _, ns2 = attach(net, bridge, v4, v6, 2)
    _, ns3 = attach(net, bridge, v4, v6, 3)

    for target in (f"{v4}.3", f"{v6}::3", f"{v4}.1", f"{v6}::1"):
        result = ping(busybox, ns2, target)
        assert result.returncode == 0, (target, result.stdout, result.stderr)
    result = ping(busybox, ns3, f"{v4}.2")
    assert result.returncode == 0, result.stdout + result.stderr


def test_veth_ends_get_mtu_mac_addresses_routes_and_the_bridge(net: NetRegistry) -> None:
    v4, v6 = subnet()
    bridge = make_bridge(net, v4, v6, mtu=1400)
    veth, ns = attach(net, bridge, v4, v6, 7, mtu=1400)

    host = link(veth)
    assert host["mtu"] == 1400
    assert host["master"] == bridge
    assert "UP" in host["flags"]
    peer = link("eth0", netns=ns)
    assert peer["mtu"] == 1400
    assert peer["address"] == "02:42:ac:11:00:07"
    assert "UP" in peer["flags"]
    assert addresses(peer) == {f"{v4}.7/24", f"{v6}::7/64"}
    routes4 = ip_json("-4", "route", "show", "default", netns=ns)
    routes6 = ip_json("-6", "route", "show", "default", netns=ns)
    assert [(r["gateway"], r["dev"]) for r in routes4] == [(f"{v4}.1", "eth0")]
    assert [(r["gateway"], r["dev"]) for r in routes6] == [(f"{v6}::1", "eth0")]
    assert link(bridge)["mtu"] == 1400
    assert netlink.link_exists("eth0", netns=ns)


def test_deleting_veth_netns_and_bridge_leaves_no_link_or_mount(net: NetRegistry) -> None:
    v4, v6 = subnet()
    bridge = make_bridge(net, v4, v6)
    veth, ns = attach(net, bridge, v4, v6, 2)
    before = {n for n in link_names() if n.startswith("dyv")}

    netlink.delete_veth(veth)
    assert veth not in link_names()
    assert not netlink.link_exists("eth0", netns=ns)
    netlink.delete_netns(ns)
    assert not os.path.lexists(ns)
    assert mounts_under(net.root) == []
    netlink.delete_bridge(bridge)
    assert bridge not in link_names()
    assert {n for n in link_names() if n.startswith("dyv")} <= before
    assert net.leftovers() == []


def test_deleting_the_netns_takes_the_veth_with_it(net: NetRegistry) -> None:
    v4, v6 = subnet()
    bridge = make_bridge(net, v4, v6)
    veth, ns = attach(net, bridge, v4, v6, 2)
    netlink.delete_netns(ns)
    # The kernel destroys the namespace (and so the pair) asynchronously.
    for _ in range(200):
        if veth not in link_names():
            break
        subprocess.run(["sleep", "0.05"])
    assert veth not in link_names()
    netlink.delete_veth(veth, missing_ok=True)


def test_attach_netns_binds_a_process_namespace(net: NetRegistry) -> None:
    proc = subprocess.Popen(["unshare", "--net", "sleep", "30"])
    try:
        ns = net.netns()
        for _ in range(100):  # wait for unshare to have exec'd sleep in its namespace
            if os.readlink(f"/proc/{proc.pid}/ns/net") != os.readlink("/proc/self/ns/net"):
                break
            subprocess.run(["sleep", "0.02"])
        netlink.attach_netns(proc.pid, ns)
        assert os.stat(ns).st_ino == os.stat(f"/proc/{proc.pid}/ns/net").st_ino
    finally:
        proc.kill()
        proc.wait()
    assert netlink.link_exists("lo", netns=ns)  # outlives the process
    netlink.delete_netns(ns)
    assert mounts_under(net.root) == []


def test_sysctls_are_written_only_where_asked(net: NetRegistry) -> None:
    v4, v6 = subnet()
    bridge = make_bridge(net, v4, v6)
    netlink.enable_route_localnet(bridge)
    assert Path(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet").read_text() == "1\n"

    ns = net.netns()
    netlink.create_netns(ns)
    host_forwarding = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    netlink.enable_ipv4_forwarding(netns=ns)  # inside the namespace, so the host is untouched
    inside = subprocess.run(["nsenter", f"--net={ns}", "cat", "/proc/sys/net/ipv4/ip_forward"],
                            capture_output=True, text=True, check=True).stdout
    assert inside == "1\n"
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == host_forwarding


# -- errors ------------------------------------------------------------------------------


def test_duplicate_veth_name_is_an_error_and_leaves_nothing(net: NetRegistry) -> None:
    v4, v6 = subnet()
    bridge = make_bridge(net, v4, v6)
    veth, ns = attach(net, bridge, v4, v6, 2)
    other = net.netns()
    netlink.create_netns(other)
    before = link_names()

    with pytest.raises(NetlinkError) as caught:
        netlink.create_veth(VethSpec(host=veth, bridge=bridge, netns=other))
    assert caught.value.errno == errno.EEXIST
    assert str(caught.value) == f"create veth {veth}: File exists"

    # A second eth0 in the same namespace: the half-made pair is removed again.
    second = net.link()
    with pytest.raises(NetlinkError) as caught:
        netlink.create_veth(VethSpec(host=second, bridge=bridge, netns=ns))
    assert caught.value.errno == errno.EEXIST
    assert "eth0" in str(caught.value)
    assert link_names() == before
    assert [i["ifname"] for i in ip_json("link", "show", netns=other)] == ["lo"]


def test_bridge_name_taken_by_another_kind_is_an_error(net: NetRegistry) -> None:
    name, peer = net.link(), net.link()
    subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", peer], check=True)
    with pytest.raises(NetlinkError) as caught:
        netlink.ensure_bridge(BridgeSpec(name))
    assert caught.value.errno == errno.EEXIST
    assert str(caught.value) == f"ensure bridge {name}: a link of another kind exists"
    assert not netlink.bridge_exists(name)
    with pytest.raises(NetlinkError, match="not a bridge"):
        netlink.delete_bridge(name)


def test_missing_namespace_is_an_error(net: NetRegistry) -> None:
    v4, v6 = subnet()
    bridge = make_bridge(net, v4, v6)
    missing = net.netns()
    veth = net.link()
    with pytest.raises(NetlinkError) as caught:
        netlink.create_veth(VethSpec(host=veth, bridge=bridge, netns=missing))
    assert caught.value.errno == errno.ENOENT
    assert str(missing) in str(caught.value)
    assert veth not in link_names()

    with pytest.raises(NetlinkError) as caught:
        netlink.delete_netns(missing)
    assert caught.value.errno == errno.ENOENT
    assert str(caught.value) == f"delete netns {missing}: No such file or directory"
    netlink.delete_netns(missing, missing_ok=True)

    with pytest.raises(NetlinkError) as caught:
        netlink.link_exists("lo", netns=missing)
    assert caught.value.op == "open netns"


def test_existing_netns_path_is_an_error(net: NetRegistry) -> None:
    ns = net.netns()
    netlink.create_netns(ns)
    with pytest.raises(NetlinkError) as caught:
        netlink.create_netns(ns)
    assert caught.value.errno == errno.EEXIST
    assert str(caught.value) == f"create netns {ns}: File exists"
    assert len(mounts_under(net.root)) == 1


def test_missing_links_and_bad_names_are_errors(net: NetRegistry) -> None:
    ghost = net.link()
    with pytest.raises(NetlinkError) as caught:
        netlink.delete_bridge(ghost)
    assert caught.value.errno == errno.ENODEV
    assert str(caught.value) == f"delete bridge {ghost}: no such link"
    netlink.delete_bridge(ghost, missing_ok=True)
    with pytest.raises(NetlinkError, match="no such link"):
        netlink.delete_veth(ghost)
    netlink.delete_veth(ghost, missing_ok=True)

    ns = net.netns()
    netlink.create_netns(ns)
    with pytest.raises(NetlinkError, match=f"no bridge {ghost}"):
        netlink.create_veth(VethSpec(host=net.link(), bridge=ghost, netns=ns))
    with pytest.raises(NetlinkError) as caught:
        netlink.ensure_bridge(BridgeSpec("dyt-name-too-long"))
    assert caught.value.errno == errno.EINVAL
    assert "invalid interface name" in str(caught.value)
