"""What bridge networks do for a Docker user, against dockyardd with the docker CLI and SDK:
names resolved by the embedded DNS server (container names, aliases, links; not across
networks), published ports reachable from the host and (hairpin) from containers,
isolation between networks and of --internal ones, connect/disconnect of a running
container, static addresses and the generated /etc/hosts and resolv.conf, forwarding to the
host's resolver, nothing left behind, and what survives a daemon restart. The API's shape
of networks is in test_networks_api.py."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import random
import re
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import unique
from tests.integration.engine.fakedns import FakeDNS
from tests.integration.engine.harness import Engine, running_engine

pytestmark = pytest.mark.root


# -- helpers ---------------------------------------------------------------------------------

def inspect(engine, ref: str) -> dict:
    return json.loads(engine.docker("inspect", ref).stdout)[0]


def ip_of(engine, ref: str, network: str) -> str:
    ip = inspect(engine, ref)["NetworkSettings"]["Networks"][network]["IPAddress"]
    assert ip, f"{ref} has no address on {network}"
    return ip


def gateway_of(engine, network: str) -> str:
    doc = json.loads(engine.docker("network", "inspect", network).stdout)[0]
    return doc["IPAM"]["Config"][0]["Gateway"]


def run(engine, name: str, *args: str, cmd: tuple[str, ...] = ("sleep", "300")) -> str:
    return engine.docker("run", "-d", "--name", name, *args, "busybox",
                         *cmd).stdout.decode().strip()


def sh(engine, name: str, *cmd: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return engine.docker("exec", name, *cmd, check=False, timeout=timeout)


def out(p: subprocess.CompletedProcess) -> str:
    return p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")


def pings(engine, name: str, target: str, wait: int = 2) -> bool:
    return sh(engine, name, "ping", "-c1", f"-W{wait}", target).returncode == 0


def looks_up(engine, name: str, target: str) -> subprocess.CompletedProcess:
    return sh(engine, name, "nslookup", target)


def answers(p: subprocess.CompletedProcess) -> list[str]:
    """The addresses a busybox nslookup printed (the server's own lines left out)."""
    text = p.stdout.decode(errors="replace")
    body = text.split("\n\n", 1)[1] if "\n\n" in text else ""
    return re.findall(r"Address:\s*([0-9a-f.:]+)\s*$", body, re.M)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url: str, deadline: float = 10) -> str:
    """The body at `url`, retried while the server in the container comes up."""
    end = time.monotonic() + deadline
    while True:
        try:
            with urllib.request.urlopen(url, timeout=3) as r:
                return r.read().decode()
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


def cleanup(engine, containers=(), networks=()) -> None:
    if containers:
        engine.docker("rm", "-f", *containers, check=False)
    for n in networks:
        engine.docker("network", "rm", n, check=False)


def random_subnet() -> ipaddress.IPv4Network:
    """A /24 that no engine's bip or pool (10.64-191.x) is taken from."""
    return ipaddress.ip_network(f"10.{random.randrange(200, 250)}.{random.randrange(256)}.0/24")


HTTPD = ("sh", "-c", "mkdir -p /www && echo hello from $(hostname) > /www/index.html && "
         "exec httpd -f -p 80 -h /www")


# -- 1. names ----------------------------------------------------------------------------------

def test_containers_reach_each_other_by_name_alias_and_link(engine):
    net, other = unique("bn"), unique("bo")
    a, b, c = unique("a"), unique("b"), unique("c")
    alias = unique("alias")
    try:
        engine.docker("network", "create", net)
        engine.docker("network", "create", other)
        run(engine, a, "--network", net, "--network-alias", alias)
        run(engine, b, "--network", net, "--link", f"{a}:lnk")
        run(engine, c, "--network", other)
        ip_a, ip_c = ip_of(engine, a, net), ip_of(engine, c, other)

        assert pings(engine, b, a)
        for name in (a, alias, "lnk"):
            p = looks_up(engine, b, name)
            assert p.returncode == 0 and answers(p) == [ip_a], (name, out(p))
        assert pings(engine, b, alias) and pings(engine, b, "lnk")

        p = looks_up(engine, b, c)  # on another network: not a name here
        assert p.returncode != 0 and ip_c not in out(p), out(p)
        assert not pings(engine, b, c, wait=1)
    finally:
        cleanup(engine, [a, b, c], [net, other])


# -- 2. published ports ------------------------------------------------------------------------

def test_published_ports_answer_on_the_host_and_through_the_gateway(engine):
    fixed, rand, client, clash = unique("pf"), unique("pr"), unique("pc"), unique("px")
    port = free_port()
    try:
        run(engine, fixed, "-p", f"127.0.0.1:{port}:80", cmd=HTTPD)
        assert fetch(f"http://127.0.0.1:{port}/index.html").startswith("hello from")

        cid = run(engine, rand, "-P", "--expose", "80", cmd=HTTPD)
        doc = inspect(engine, rand)
        bindings = doc["NetworkSettings"]["Ports"]["80/tcp"]
        assert bindings and all(b["HostPort"] == bindings[0]["HostPort"] for b in bindings)
        assert "0.0.0.0" in {b["HostIp"] for b in bindings}
        random_port = int(bindings[0]["HostPort"])
        assert random_port > 0
        shown = engine.docker("port", rand, "80/tcp").stdout.decode().split()
        assert shown and {int(s.rsplit(":", 1)[1]) for s in shown} == {random_port}
        assert f"0.0.0.0:{random_port}" in shown
        ps = engine.docker("ps", "--filter", f"id={cid}", "--format", "{{.Ports}}")
        assert f"0.0.0.0:{random_port}->80/tcp" in ps.stdout.decode()
        assert fetch(f"http://127.0.0.1:{random_port}/index.html") == \
            f"hello from {cid[:12]}\n"

        # hairpin: a container on the default bridge, through the host's published port
        gateway = gateway_of(engine, "bridge")
        run(engine, client)
        # (no -T: Debian's busybox 1.35 wget dies of SIGSEGV with it)
        p = sh(engine, client, "timeout", "10", "wget", "-q", "-O", "-",
               f"http://{gateway}:{random_port}/index.html")
        assert p.returncode == 0 and p.stdout.decode() == f"hello from {cid[:12]}\n", out(p)
        p = sh(engine, rand, "timeout", "10", "wget", "-q", "-O", "-",  # its own port
               f"http://{gateway}:{random_port}/index.html")
        assert p.returncode == 0 and p.stdout.decode() == f"hello from {cid[:12]}\n", out(p)

        # the same host port again: refused as dockerd refuses it
        p = engine.docker("run", "-d", "--name", clash, "-p", f"127.0.0.1:{port}:80",
                          "busybox", "sleep", "300", check=False)
        assert p.returncode != 0
        assert "port is already allocated" in p.stderr.decode(), out(p)
        assert fetch(f"http://127.0.0.1:{port}/index.html").startswith("hello from")
    finally:
        cleanup(engine, [fixed, rand, client, clash])


# -- 3. isolation -------------------------------------------------------------------------------

def test_networks_are_isolated_and_internal_ones_reach_nothing_outside(engine):
    n1, n2, ni = unique("i1"), unique("i2"), unique("ii")
    a, b, inner, bridged = unique("ia"), unique("ib"), unique("in"), unique("ig")
    try:
        engine.docker("network", "create", n1)
        engine.docker("network", "create", n2)
        engine.docker("network", "create", "--internal", ni)
        run(engine, a, "--network", n1)
        run(engine, b, "--network", n2)
        run(engine, inner, "--network", ni)
        run(engine, bridged)
        ip_a, ip_b = ip_of(engine, a, n1), ip_of(engine, b, n2)

        assert pings(engine, a, gateway_of(engine, n1))
        assert pings(engine, b, gateway_of(engine, n2))
        assert not pings(engine, a, ip_b, wait=1)
        assert not pings(engine, b, ip_a, wait=1)

        assert not pings(engine, inner, gateway_of(engine, "bridge"), wait=1)
        assert not pings(engine, inner, ip_a, wait=1)
        assert not pings(engine, inner, ip_of(engine, bridged, "bridge"), wait=1)
    finally:
        cleanup(engine, [a, b, inner, bridged], [n1, n2, ni])


# -- 4. connect / disconnect --------------------------------------------------------------------

def test_connect_and_disconnect_a_running_container(engine):
    n1, n2 = unique("c1"), unique("c2")
    c, d = unique("cc"), unique("cd")
    try:
        engine.docker("network", "create", n1)
        engine.docker("network", "create", n2)
        run(engine, c, "--network", n1)
        run(engine, d, "--network", n2)
        assert sh(engine, c, "ip", "link", "show", "eth1").returncode != 0

        engine.docker("network", "connect", n2, c)
        ip = ip_of(engine, c, n2)
        subnet = json.loads(engine.docker("network", "inspect", n2).stdout)[0][
            "IPAM"]["Config"][0]["Subnet"]
        assert ipaddress.ip_address(ip) in ipaddress.ip_network(subnet)
        p = sh(engine, c, "ip", "-4", "-o", "addr", "show", "eth1")
        assert p.returncode == 0 and f" {ip}/" in p.stdout.decode(), out(p)
        p = looks_up(engine, c, d)
        assert p.returncode == 0 and answers(p) == [ip_of(engine, d, n2)], out(p)
        assert pings(engine, c, d)

        engine.docker("network", "disconnect", n2, c)
        assert sh(engine, c, "ip", "link", "show", "eth1").returncode != 0
        assert n2 not in inspect(engine, c)["NetworkSettings"]["Networks"]
        assert sh(engine, c, "ip", "link", "show", "eth0").returncode == 0
    finally:
        cleanup(engine, [c, d], [n1, n2])


# -- 5. static address, /etc/hosts, resolv.conf ------------------------------------------------

def test_static_ip_hosts_and_resolv_conf(engine):
    net, name = unique("sn"), unique("sc")
    subnet = random_subnet()
    static = str(subnet.network_address + 77)
    try:
        engine.docker("network", "create", "--subnet", str(subnet), net)
        run(engine, name, "--network", net, "--ip", static, "--add-host", "h:host-gateway")
        assert ip_of(engine, name, net) == static
        p = sh(engine, name, "ip", "-4", "-o", "addr", "show", "eth0")
        assert f" {static}/24" in p.stdout.decode(), out(p)

        hostname = inspect(engine, name)["Config"]["Hostname"]
        hosts = [line.split() for line in sh(engine, name, "cat", "/etc/hosts")
                 .stdout.decode().splitlines() if line.strip() and not line.startswith("#")]
        assert [gateway_of(engine, "bridge"), "h"] in hosts
        assert any(f[0] == static and hostname in f[1:] for f in hosts), hosts

        resolv = sh(engine, name, "cat", "/etc/resolv.conf").stdout.decode()
        servers = re.findall(r"^nameserver\s+(\S+)", resolv, re.M)
        assert servers == ["127.0.0.11"], resolv
    finally:
        cleanup(engine, [name], [net])


# -- 6. forwarding to the host's resolver --------------------------------------------------------

def test_embedded_dns_forwards_to_the_hosts_resolver(busybox_tar, tmp_path):
    with FakeDNS({"some.test.name": "192.0.2.77"}) as fake:
        resolv = tmp_path / "resolv.conf"
        resolv.write_text(f"nameserver {fake.address}\noptions timeout:1\n")
        with running_engine(Path("/var/tmp"), busybox_tar,
                            config={"resolv-conf": str(resolv)}) as e:
            net, name = unique("fn"), unique("fc")
            try:
                e.docker("network", "create", net)
                run(e, name, "--network", net)
                p = looks_up(e, name, "some.test.name")
                assert p.returncode == 0 and answers(p) == ["192.0.2.77"], out(p)
                assert ("some.test.name", "A") in fake.asked
                p = looks_up(e, name, "other.test.name")
                assert p.returncode != 0 and "192.0.2.77" not in out(p)
                assert ("other.test.name", "A") in fake.asked
                # asked from the host's loopback: the query never left it
                assert fake.peers and all(ipaddress.ip_address(a).is_loopback
                                          for a in fake.peers), fake.peers
            finally:
                cleanup(e, [name], [net])


# -- 7. nothing left behind -----------------------------------------------------------------------

def veths_on(bridges: set[str]) -> list[str]:
    links = json.loads(subprocess.run(["ip", "-j", "link", "show", "type", "veth"],
                                      capture_output=True, text=True).stdout or "[]")
    return [link["ifname"] for link in links if link.get("master") in bridges]


def dnat_ports(table: str) -> set[int]:
    p = subprocess.run(["nft", "-j", "list", "table", "inet", table], capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr
    found: set[int] = set()
    for item in json.loads(p.stdout)["nftables"]:
        rule = item.get("rule")
        if rule and any("dnat" in expr for expr in rule["expr"]):
            for expr in rule["expr"]:
                right = (expr.get("match") or {}).get("right")
                left = json.dumps((expr.get("match") or {}).get("left"))
                if isinstance(right, int) and '"dport"' in left:
                    found.add(right)
    return found


def test_nothing_is_left_after_removal(fresh_engine):
    e = fresh_engine
    net, a, b = unique("ln"), unique("la"), unique("lb")
    port = free_port()
    try:
        net_id = e.docker("network", "create", net).stdout.decode().strip()
        bridge = f"br-{net_id[:12]}"
        run(e, a, "--network", net, "-p", f"127.0.0.1:{port}:80", cmd=HTTPD)
        run(e, b, "-P", "--expose", "80", cmd=HTTPD)
        random_port = int(inspect(e, b)["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"])
        # what is there while they run, so that the checks below can see it go
        assert len(veths_on({e.bridge, bridge})) == 2
        assert {port, random_port} <= dnat_ports(e.nft_table)
        assert len(list((e.exec_root / "netns").iterdir())) == 2
    finally:
        cleanup(e, [a, b], [net])
    # The kernel deletes a sandbox's veths itself as the namespace dies with its container,
    # a moment after the container is gone: not in the API's path, but soon.
    deadline = time.monotonic() + 3
    while veths_on({e.bridge, bridge}) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert veths_on({e.bridge, bridge}) == []
    assert subprocess.run(["ip", "link", "show", bridge], capture_output=True).returncode != 0
    assert not {port, random_port} & dnat_ports(e.nft_table)
    netns = e.exec_root / "netns"
    assert not netns.exists() or list(netns.iterdir()) == []


# -- 8. daemon restarts --------------------------------------------------------------------------

def test_live_restore_keeps_addresses_names_and_ports(busybox_tar):
    e = Engine(Path("/var/tmp"), config={"live-restore": True})
    net, a, b, c = unique("rn"), unique("ra"), unique("rb"), unique("rc")
    port = free_port()
    try:
        e.start()
        e.load(busybox_tar)
        e.docker("network", "create", net)
        run(e, a, "--network", net, "-p", f"127.0.0.1:{port}:80", cmd=HTTPD)
        run(e, b, "--network", net)
        ip_a, ip_b = ip_of(e, a, net), ip_of(e, b, net)
        assert fetch(f"http://127.0.0.1:{port}/index.html").startswith("hello from")

        e.stop()
        e._sdk = None
        e.start()
        assert inspect(e, a)["State"]["Running"] and inspect(e, b)["State"]["Running"]
        assert (ip_of(e, a, net), ip_of(e, b, net)) == (ip_a, ip_b)
        p = sh(e, a, "ip", "-4", "-o", "addr", "show", "eth0")
        assert f" {ip_a}/" in p.stdout.decode(), out(p)
        p = looks_up(e, b, a)
        assert p.returncode == 0 and answers(p) == [ip_a], out(p)
        assert pings(e, b, a)
        assert fetch(f"http://127.0.0.1:{port}/index.html").startswith("hello from")

        run(e, c, "--network", net)  # a newcomer gets an address nobody holds
        assert ip_of(e, c, net) not in {ip_a, ip_b}
        assert pings(e, c, a)
    finally:
        with contextlib.suppress(Exception):
            cleanup(e, [a, b, c], [net])
        assert not e.destroy()


def test_after_a_plain_restart_no_address_is_given_twice(fresh_engine):
    e = fresh_engine
    net, kept, kept2, new, new2 = (unique("pn"), unique("pk"), unique("pd"), unique("pw"),
                                   unique("pv"))
    try:
        e.docker("network", "create", net)
        # (sleep as PID 1 ignores SIGTERM: the daemon's stop would wait 10 s for it)
        run(e, kept, "--network", net, "--restart", "always", "--stop-timeout", "1")
        run(e, kept2, "--restart", "always", "--stop-timeout", "1")
        e.stop()
        e._sdk = None
        e.start()
        deadline = time.monotonic() + 20
        while not (inspect(e, kept)["State"]["Running"] and
                   inspect(e, kept2)["State"]["Running"]):
            assert time.monotonic() < deadline, "restart always: not started again"
            time.sleep(0.2)
        held, held2 = ip_of(e, kept, net), ip_of(e, kept2, "bridge")
        run(e, new, "--network", net)
        run(e, new2)
        assert ip_of(e, new, net) != held
        assert ip_of(e, new2, "bridge") != held2
        assert pings(e, new, kept) and pings(e, new2, held2)
    finally:
        cleanup(e, [kept, kept2, new, new2], [net])


def test_a_killed_daemon_reconciles_at_its_next_start(fresh_engine):
    """kill -9 of dockyardd while containers run: the supervisor keeps them; one exits while
    no daemon is there. At the next start the running one keeps its address, its port and
    its names; the one that exited loses its sandbox, its address and its rules."""
    e = fresh_engine
    net, stays, goes, probe = unique("kn"), unique("ks"), unique("kg"), unique("kp")
    port, gone_port = free_port(), free_port()
    try:
        e.docker("network", "create", "--subnet", str(random_subnet()), net)
        run(e, stays, "--network", net, "-p", f"127.0.0.1:{port}:80", cmd=HTTPD)
        run(e, goes, "--network", net, "-p", f"127.0.0.1:{gone_port}:80",
            cmd=("sh", "-c", "sleep 2"))
        held, lost = ip_of(e, stays, net), ip_of(e, goes, net)
        stays_id = inspect(e, stays)["Id"]
        fetch(f"http://127.0.0.1:{port}/")
        e.kill()
        time.sleep(3)  # `goes` exits meanwhile
        e._sdk = None
        e.start()
        assert inspect(e, stays)["State"]["Running"]
        assert not inspect(e, goes)["State"]["Running"]
        assert ip_of(e, stays, net) == held
        assert "hello" in fetch(f"http://127.0.0.1:{port}/")
        assert gone_port not in dnat_ports(e.nft_table) and port in dnat_ports(e.nft_table)
        assert [p.name for p in (e.exec_root / "netns").iterdir()] == [stays_id]
        run(e, probe, "--network", net, "--ip", lost)  # the address is free again
        assert pings(e, probe, stays)
    finally:
        cleanup(e, [stays, goes, probe], [net])


@contextlib.contextmanager
def outside_host():
    """A stand-in for the world beyond the host, on this machine: a namespace behind a veth
    with a /30 of its own and no route back to any container subnet, so that only
    masqueraded traffic gets an answer. Yields its namespace, its address and the host's
    address facing it."""
    tag = unique("dyo").replace("-", "")[:12]
    ns, host_end = f"{tag}n", f"{tag}h"
    third = random.randrange(256)
    here, there = f"10.254.{third}.1", f"10.254.{third}.2"
    steps = [["ip", "netns", "add", ns],
             ["ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", ns],
             ["ip", "addr", "add", f"{here}/30", "dev", host_end],
             ["ip", "link", "set", host_end, "up"],
             ["ip", "-n", ns, "addr", "add", f"{there}/30", "dev", "eth0"],
             ["ip", "-n", ns, "link", "set", "eth0", "up"],
             ["ip", "-n", ns, "link", "set", "lo", "up"]]
    try:
        for step in steps:
            subprocess.run(step, check=True, capture_output=True)
        yield ns, there, here
    finally:
        subprocess.run(["ip", "link", "delete", host_end], capture_output=True)
        subprocess.run(["ip", "netns", "delete", ns], capture_output=True)


def test_containers_reach_beyond_the_host_masqueraded_and_internal_ones_do_not(engine):
    net, internal = unique("mn"), unique("mi")
    a, b, c, h = unique("ma"), unique("mb"), unique("mc"), unique("mh")
    port = free_port()
    try:
        engine.docker("network", "create", net)
        engine.docker("network", "create", "--internal", internal)
        run(engine, a)
        run(engine, b, "--network", net)
        run(engine, c, "--network", internal)
        run(engine, h, "-p", f"{port}:80", cmd=HTTPD)
        with outside_host() as (ns, there, here):
            assert pings(engine, a, there) and pings(engine, b, there)
            assert not pings(engine, c, there, wait=1)
            # from beyond the host: the published port through the host's address; never
            # a container's own address, even with a route to it (Docker 28)
            subnet = json.loads(engine.docker("network", "inspect", "bridge").stdout)[0][
                "IPAM"]["Config"][0]["Subnet"]
            subprocess.run(["ip", "-n", ns, "route", "add", subnet, "via", here], check=True)
            outside = ["ip", "netns", "exec", ns, "busybox"]
            got = subprocess.run([*outside, "wget", "-qO-", f"http://{here}:{port}/"],
                                 capture_output=True, timeout=20)
            assert b"hello" in got.stdout, got
            direct = subprocess.run([*outside, "nc", "-w", "2", ip_of(engine, h, "bridge"),
                                     "80"], input=b"GET / HTTP/1.0\r\n\r\n",
                                    capture_output=True, timeout=20)
            assert b"hello" not in direct.stdout
        # and from the host itself on its other addresses (the bridge's gateway)
        gateway = gateway_of(engine, "bridge")
        assert "hello" in fetch(f"http://{gateway}:{port}/")
    finally:
        cleanup(engine, [a, b, c, h], [net, internal])


# -- 9. the docker SDK -------------------------------------------------------------------------

def test_the_sdk_creates_connects_publishes_and_removes(engine):
    from docker.types import IPAMConfig, IPAMPool

    client = engine.sdk
    subnet = random_subnet()
    gateway = str(subnet.network_address + 1)
    port = free_port()
    name = unique("sdk")
    network = client.networks.create(
        unique("sn"), driver="bridge",
        ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=str(subnet), gateway=gateway)]))
    container = None
    try:
        assert network.attrs["IPAM"]["Config"] == [{"Subnet": str(subnet), "Gateway": gateway}]
        container = client.containers.run("busybox", list(HTTPD), detach=True, name=name,
                                          ports={"80/tcp": ("127.0.0.1", port)})
        assert fetch(f"http://127.0.0.1:{port}/index.html") == \
            f"hello from {container.id[:12]}\n"
        network.connect(container)
        container.reload()
        ip = container.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
        assert ipaddress.ip_address(ip) in subnet
        network.reload()
        assert container.id in network.attrs["Containers"]
        assert container.exec_run(["ping", "-c1", "-W2", gateway]).exit_code == 0
        assert container.attrs["NetworkSettings"]["Ports"]["80/tcp"] == [
            {"HostIp": "127.0.0.1", "HostPort": str(port)}]
        network.disconnect(container)
        container.remove(force=True)
        container = None
        network.remove()
        network = None
    finally:
        if container is not None:
            container.remove(force=True)
        if network is not None:
            network.remove()


# -- 10. options: IPv6, MTU, icc; ranges and UDP; our own CLI ------------------------------------

def test_dual_stack_mtu_and_icc_false(engine):
    v6, quiet = unique("v6"), unique("ni")
    a, b = unique("qa"), unique("qb")
    six = f"fd{random.randrange(256):02x}:{random.randrange(65536):x}::/64"
    try:
        engine.docker("network", "create", "--ipv6", "--subnet", six, "--subnet",
                      str(random_subnet()), "-o", "com.docker.network.driver.mtu=1400", v6)
        p = engine.docker("run", "--rm", "--network", v6, "busybox", "sh", "-c",
                          "cat /sys/class/net/eth0/mtu; ip -6 addr show eth0 scope global; "
                          f"ping -6 -c1 -W2 {ipaddress.ip_network(six)[1]}", check=False)
        assert p.returncode == 0, out(p)
        assert p.stdout.decode().splitlines()[0] == "1400"
        assert str(ipaddress.ip_network(six)[2]) in p.stdout.decode()
        engine.docker("network", "create", "-o", "com.docker.network.bridge.enable_icc=false",
                      quiet)
        run(engine, a, "--network", quiet)
        run(engine, b, "--network", quiet)
        # no traffic between containers of the network; its gateway still answers
        assert not pings(engine, b, ip_of(engine, a, quiet))
        assert pings(engine, b, gateway_of(engine, quiet))
    finally:
        cleanup(engine, [a, b], [v6, quiet])


def test_port_ranges_and_udp(engine):
    name = unique("pr")
    base = random.randrange(20000, 30000, 10)
    try:
        run(engine, name, "-p", f"127.0.0.1:{base}-{base + 1}:80-81",
            "-p", f"127.0.0.1:{base + 5}-{base + 7}:90", "-p", f"127.0.0.1:{base + 9}:53/udp",
            cmd=("httpd", "-f", "-p", "81", "-h", "/etc"))
        lines = engine.docker("port", name).stdout.decode().split("\n")
        assert sorted(filter(None, lines)) == [
            f"53/udp -> 127.0.0.1:{base + 9}", f"80/tcp -> 127.0.0.1:{base}",
            f"81/tcp -> 127.0.0.1:{base + 1}", f"90/tcp -> 127.0.0.1:{base + 5}"]
        assert fetch(f"http://127.0.0.1:{base + 1}/hostname").strip() == \
            inspect(engine, name)["Config"]["Hostname"]
        # busybox has no UDP server to answer with: the rule is what can be seen
        rules = subprocess.run(["nft", "list", "chain", "inet", engine.nft_table, "ports"],
                               capture_output=True, text=True).stdout
        ip = ip_of(engine, name, "bridge")
        assert f"udp dport {base + 9} dnat ip to {ip}:53" in rules
    finally:
        cleanup(engine, [name])


def test_the_dockyard_cli_drives_networks(engine):
    from tests.integration.engine.test_cli import dy

    net, name = unique("cn"), unique("cc")
    port = free_port()
    subnet = random_subnet()
    try:
        created = dy(engine, "network", "create", "--subnet", str(subnet), "--label", "k=v",
                     net)
        assert created.returncode == 0, created.stderr
        listed = dy(engine, "network", "ls", "--filter", "label=k=v", "--format",
                    "{{.Name}} {{.Driver}}")
        assert listed.stdout.decode().split("\n") == [f"{net} bridge", ""]
        p = dy(engine, "run", "-d", "--name", name, "--network", net, "--ip",
               str(subnet[9]), "-p", f"127.0.0.1:{port}:80", "busybox", "httpd", "-f",
               "-p", "80", "-h", "/etc")
        assert p.returncode == 0, p.stderr
        assert dy(engine, "port", name, "80").stdout.decode() == f"127.0.0.1:{port}\n"
        assert fetch(f"http://127.0.0.1:{port}/hostname").strip() == \
            inspect(engine, name)["Config"]["Hostname"]
        assert ip_of(engine, name, net) == str(subnet[9])
        doc = json.loads(dy(engine, "network", "inspect", net).stdout)[0]
        assert doc["Containers"][inspect(engine, name)["Id"]]["IPv4Address"] == \
            f"{subnet[9]}/{subnet.prefixlen}"
        bad = dy(engine, "run", "--rm", "--ip", "10.0.0.9", "busybox", "true")
        assert bad.returncode == 125 and b"user specified IP address is supported on user " \
            b"defined networks only" in bad.stderr
    finally:
        cleanup(engine, [name], [net])


def test_a_static_address_needs_a_subnet_of_the_users_and_an_ip_range_bounds_the_rest(engine):
    plain, ranged, a, b = unique("sp"), unique("sr"), unique("sa"), unique("sb")
    subnet = random_subnet()
    ip_range = ipaddress.ip_network(f"{subnet.network_address + 64}/26")
    try:
        engine.docker("network", "create", plain)
        p = engine.docker("run", "--rm", "--network", plain, "--ip", "10.9.9.9", "busybox",
                          "true", check=False)
        assert p.returncode == 125 and b"user specified IP address is supported only when " \
            b"connecting to networks with user configured subnets" in p.stderr
        engine.docker("network", "create", "--subnet", str(subnet), "--ip-range",
                      str(ip_range), ranged)
        run(engine, a, "--network", ranged)
        run(engine, b, "--network", ranged, "--ip", str(subnet[9]))  # outside the range
        assert ipaddress.ip_address(ip_of(engine, a, ranged)) in ip_range
        assert ip_of(engine, b, ranged) == str(subnet[9])
        doc = json.loads(engine.docker("network", "inspect", ranged).stdout)[0]
        # as dockerd's default IPAM: without --gateway, the range's first address
        assert doc["IPAM"]["Config"] == [{"Subnet": str(subnet), "IPRange": str(ip_range),
                                          "Gateway": str(ip_range[0])}]
    finally:
        cleanup(engine, [a, b], [plain, ranged])
