"""nft.py against the kernel: our table is applied, read back, replaced atomically and deleted,
and nothing of it is left, whatever a test does. Each test owns a table "dyt_" + 8 hex digits;
the fixture removes it with nft itself (not the code under test) and checks it is gone."""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from ipaddress import ip_address, ip_network

import pytest

from dockyard.network import nft
from dockyard.network.nftrules import Network, PortMapping, script

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(shutil.which("nft") is None, reason="needs nft (nftables)")]


def inet_tables() -> set[str]:
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True,
                         check=True).stdout
    return {line.split()[2] for line in out.splitlines() if line.startswith("table inet ")}


@pytest.fixture
def table() -> Iterator[str]:
    name = "dyt_" + secrets.token_hex(4)
    try:
        yield name
    finally:
        subprocess.run(["nft", "delete", "table", "inet", name], capture_output=True)
    assert name not in inet_tables()


def rules_text(name: str) -> str:
    return subprocess.run(["nft", "list", "table", "inet", name], capture_output=True,
                          text=True, check=True).stdout


NET = Network("dyt-br0", (ip_network("10.250.0.0/24"),))
WEB = PortMapping("tcp", ip_address("10.250.0.2"), 80, 18080)


def test_applied_table_reads_back_with_its_chains_and_rules(table: str) -> None:
    nft.apply(script(table, [NET], [WEB]))

    assert table in nft.tables()
    document = nft.read_table(table)
    assert document is not None
    chains = nft.chains(document)
    assert set(chains) == {"guard", "forward", "fwd-in-dyt-br0", "prerouting", "output",
                           "ports", "postrouting"}
    assert len(chains["ports"]) == 1
    assert "dnat ip to 10.250.0.2:80" in rules_text(table)


def test_reapplying_replaces_the_whole_table(table: str) -> None:
    nft.apply(script(table, [NET], [WEB]))
    other = Network("dyt-br1", (ip_network("10.251.0.0/24"),), icc=False)
    db = PortMapping("tcp", ip_address("10.251.0.2"), 5432, 15432)

    nft.apply(script(table, [other], [db]))

    text = rules_text(table)
    assert "dyt-br0" not in text and "10.250.0.2" not in text
    assert "dnat ip to 10.251.0.2:5432" in text
    assert 'iifname "dyt-br1" drop' in text
    assert inet_tables() >= {table}


def test_a_failing_script_changes_nothing(table: str) -> None:
    nft.apply(script(table, [NET], [WEB]))
    before = rules_text(table)
    broken = script(table, [], []).replace("policy accept;", "policy acept;", 1)

    with pytest.raises(nft.NftError) as caught:
        nft.apply(broken)

    assert "acept" in caught.value.message
    assert rules_text(table) == before


def test_check_mode_changes_nothing(table: str) -> None:
    nft.apply(script(table, [NET], [WEB]), check=True)
    assert table not in inet_tables()


def test_delete_removes_the_table_and_is_idempotent(table: str) -> None:
    nft.apply(script(table, [NET], [WEB]))

    nft.delete_table(table)
    nft.delete_table(table)

    assert table not in inet_tables()
    assert nft.read_table(table) is None


def test_nft_errors_carry_nfts_message() -> None:
    with pytest.raises(nft.NftError) as caught:
        nft.apply("this is not nft\n")
    assert "syntax error" in caught.value.message
    assert caught.value.returncode not in (None, 0)

    with pytest.raises(nft.NftError, match="No such file"):
        nft.apply("", nft="/nonexistent/nft")


def test_locally_generated_traffic_to_127_0_0_1_is_dnated(table: str) -> None:
    """The output chain at work: 127.0.0.1:<published> reaches the target's port. The target
    is a listener on loopback here, so that no bridge or namespace is needed."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        target = server.getsockname()[1]
        published = target + 1 if target < 65535 else target - 1
        mapping = PortMapping("tcp", ip_address("127.0.0.1"), target, published,
                              host_ip=ip_address("127.0.0.1"))
        nft.apply(script(table, [NET], [mapping]))
        server.settimeout(5)
        accepted: list[bytes] = []

        def serve() -> None:
            conn, _ = server.accept()
            with conn:
                accepted.append(conn.recv(16))

        thread = threading.Thread(target=serve)
        thread.start()
        with socket.create_connection(("127.0.0.1", published), timeout=5) as client:
            client.sendall(b"ping")
        thread.join(10)

    assert accepted == [b"ping"]


# -- traffic ----------------------------------------------------------------------------------
# The rules at work, in namespaces of our own: a "host" namespace H (its own nftables, its own
# sysctls) with bridges b0 (10.250.0.0/24, containers c1 and c2) and b1 (10.251.0.0/24,
# container c3). Deleting the namespaces removes links, table and all.

SERVER = """
import socket, sys
server = socket.create_server(("0.0.0.0", int(sys.argv[1])))
print("ready", flush=True)
while True:
    conn, peer = server.accept()
    conn.sendall(peer[0].encode())
    conn.close()
"""

CLIENT = """
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2) as conn:
        print(conn.recv(64).decode())
except OSError as e:
    print("failed:", e)
"""


class Hosts:
    def __init__(self) -> None:
        self.prefix = "dyt" + secrets.token_hex(4)
        self.namespaces: list[str] = []
        self.servers: list[subprocess.Popen[str]] = []

    def ns(self, role: str) -> str:
        name = f"{self.prefix}-{role}"
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def run(self, ns: str, *args: str) -> str:
        return sh("ip", "netns", "exec", ns, *args)

    def cleanup(self) -> None:
        for proc in self.servers:
            proc.kill()
            proc.wait()
        for name in self.namespaces:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


def sh(*args: str) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=True, timeout=30).stdout


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    h = Hosts()
    try:
        yield h
    finally:
        h.cleanup()
    left = sh("ip", "netns", "list")
    assert h.prefix not in left


def topology(hosts: Hosts) -> tuple[str, dict[str, str]]:
    host = hosts.ns("h")
    hosts.run(host, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    for bridge, gateway in (("b0", "10.250.0.1/24"), ("b1", "10.251.0.1/24")):
        sh("ip", "-n", host, "link", "add", bridge, "type", "bridge")
        sh("ip", "-n", host, "addr", "add", gateway, "dev", bridge)
        sh("ip", "-n", host, "link", "set", bridge, "up")
        hosts.run(host, "sysctl", "-qw", f"net.ipv4.conf.{bridge}.route_localnet=1")
    containers = {}
    for name, bridge, address in (("c1", "b0", "10.250.0.2"), ("c2", "b0", "10.250.0.3"),
                                  ("c3", "b1", "10.251.0.2")):
        ns = hosts.ns(name)
        containers[name] = ns
        sh("ip", "-n", host, "link", "add", f"v{name}", "type", "veth", "peer", "name", "eth0",
           "netns", ns)
        sh("ip", "-n", host, "link", "set", f"v{name}", "master", bridge, "up")
        sh("ip", "-n", host, "link", "set", f"v{name}", "type", "bridge_slave", "hairpin", "on")
        sh("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        gateway = address.rsplit(".", 1)[0] + ".1"
        sh("ip", "-n", ns, "route", "add", "default", "via", gateway)
    return host, containers


def serve(hosts: Hosts, ns: str, port: int) -> None:
    proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SERVER, str(port)],
                            stdout=subprocess.PIPE, text=True)
    hosts.servers.append(proc)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"


def connect(hosts: Hosts, ns: str, address: str, port: int) -> str:
    return hosts.run(ns, sys.executable, "-c", CLIENT, address, str(port)).strip()


def test_published_ports_hairpin_localhost_and_isolation(hosts: Hosts) -> None:
    host, c = topology(hosts)
    serve(hosts, c["c2"], 80)
    serve(hosts, c["c3"], 80)
    in_ns = ("ip", "netns", "exec", host, "nft")
    networks = [Network("b0", (ip_network("10.250.0.0/24"),)),
                Network("b1", (ip_network("10.251.0.0/24"),))]
    web = PortMapping("tcp", ip_address("10.250.0.3"), 80, 8080)
    # before our table, b1's container reaches b0's directly (the host routes between them)
    assert connect(hosts, c["c3"], "10.250.0.3", 80) == "10.251.0.2"

    nft.apply(script("dockyard", networks, [web]), nft=in_ns)

    # hairpin: c1 reaches c2's published port through a host address, and is masqueraded
    assert connect(hosts, c["c1"], "10.250.0.1", 8080) == "10.250.0.1"
    # a container reaching its own published port (hairpin mode on its bridge port)
    assert connect(hosts, c["c2"], "10.251.0.1", 8080) == "10.250.0.1"
    # the host through 127.0.0.1 (output DNAT, route_localnet, masquerade of 127.0.0.0/8)
    assert connect(hosts, host, "127.0.0.1", 8080) == "10.250.0.1"
    # isolation: no direct traffic between bridges, either way; published ports still answer
    assert connect(hosts, c["c3"], "10.250.0.3", 80).startswith("failed")
    assert connect(hosts, c["c1"], "10.251.0.2", 80).startswith("failed")
    assert connect(hosts, c["c3"], "10.251.0.1", 8080) == "10.250.0.1"
    # a container cannot reach the host's loopback through route_localnet (c1 is made to
    # send 127.0.0.9 out to the host; without the guard rule, that gets through)
    hosts.run(c["c1"], "sysctl", "-qw", "net.ipv4.conf.eth0.route_localnet=1")
    sh("ip", "-n", c["c1"], "route", "del", "local", "127.0.0.0/8", "dev", "lo",
       "table", "local")
    sh("ip", "-n", c["c1"], "route", "add", "127.0.0.9/32", "via", "10.250.0.1")
    unguarded = script("dockyard", networks, [web]).replace(
        "iifname @bridges ip daddr 127.0.0.0/8 drop", "")
    nft.apply(unguarded, nft=in_ns)
    assert not connect(hosts, c["c1"], "127.0.0.9", 8080).startswith("failed")
    nft.apply(script("dockyard", networks, [web]), nft=in_ns)
    assert connect(hosts, c["c1"], "127.0.0.9", 8080).startswith("failed")

    # reconciling without the port: it is gone, nothing else changes
    nft.apply(script("dockyard", networks, []), nft=in_ns)
    assert connect(hosts, c["c1"], "10.250.0.1", 8080).startswith("failed")
    nft.delete_table("dockyard", nft=in_ns)
    assert nft.read_table("dockyard", nft=in_ns) is None


def test_icc_false_leaves_only_published_ports_between_containers_of_a_bridge(
        hosts: Hosts) -> None:
    host, c = topology(hosts)
    setting = "net.bridge.bridge-nf-call-iptables"
    value = subprocess.run(["ip", "netns", "exec", host, "sysctl", "-n", setting],
                           capture_output=True, text=True).stdout.strip()
    if value != "1":
        pytest.skip(f"icc=false needs br_netfilter with {setting}=1 (the caller's setting)")
    serve(hosts, c["c2"], 80)
    in_ns = ("ip", "netns", "exec", host, "nft")
    web = PortMapping("tcp", ip_address("10.250.0.3"), 80, 8080)
    assert connect(hosts, c["c1"], "10.250.0.3", 80) == "10.250.0.2"

    nft.apply(script("dockyard", [Network("b0", (ip_network("10.250.0.0/24"),), icc=False)],
                     [web]), nft=in_ns)

    assert connect(hosts, c["c1"], "10.250.0.3", 80).startswith("failed")
    assert connect(hosts, c["c1"], "10.250.0.1", 8080) == "10.250.0.1"
