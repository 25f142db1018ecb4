"""nftrules: golden scripts for several configurations, each also checked by `nft -c` (check
mode: parsed and validated by the kernel, nothing changed) when root and nft are there."""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from ipaddress import ip_address, ip_network

import pytest

from dockyard.network.nftrules import Network, PortMapping, delete_script, script

TABLE = "dyt_unit"
CAN_CHECK = os.geteuid() == 0 and shutil.which("nft") is not None


def golden(text: str) -> str:
    """The table's body written with 4-space indents, as nftrules writes it (tabs, one level
    in)."""
    lines = textwrap.dedent(text).lstrip("\n").splitlines(keepends=True)
    return "".join("\t" + line.replace("    ", "\t") for line in lines)


def nft_check(text: str) -> None:
    """`nft -c` on the script when it can run (see test_nft_check_mode_runs for why not)."""
    if not CAN_CHECK:
        return
    proc = subprocess.run(
        ["nft", "-c", "-f", "-"], input=text, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr


HEAD = "table inet dyt_unit\ndelete table inet dyt_unit\ntable inet dyt_unit {\n"

DEFAULT_BRIDGE = Network("dy0", (ip_network("172.17.0.0/16"),))
WEB = PortMapping("tcp", ip_address("172.17.0.2"), 80, 8080)


@pytest.mark.skipif(not CAN_CHECK, reason="nft -c needs root and nft (it asks the kernel "
                    "through netlink): the golden scripts are compared, not checked by nft")
def test_nft_check_mode_runs() -> None:
    nft_check(script(TABLE, []))


def test_no_networks_is_an_empty_table_that_replaces_the_old_one() -> None:
    text = script(TABLE, [])
    assert text == HEAD + golden("""
        set bridges {
            type ifname
        }
        chain guard {
            type filter hook prerouting priority raw; policy accept;
        }
        chain forward {
            type filter hook forward priority filter; policy accept;
        }
        chain prerouting {
            type nat hook prerouting priority dstnat; policy accept;
            fib daddr type local jump ports
        }
        chain output {
            type nat hook output priority -100; policy accept;
            fib daddr type local jump ports
        }
        chain ports {
        }
        chain postrouting {
            type nat hook postrouting priority srcnat; policy accept;
        }
        """) + "}\n"
    nft_check(text)


def test_default_bridge_masquerades_publishes_and_hairpins() -> None:
    text = script(TABLE, [DEFAULT_BRIDGE], [WEB])
    assert text == HEAD + golden("""
        set bridges {
            type ifname
            elements = { "dy0" }
        }
        chain guard {
            type filter hook prerouting priority raw; policy accept;
            iifname @bridges ip daddr 127.0.0.0/8 drop
        }
        chain forward {
            type filter hook forward priority filter; policy accept;
            oifname "dy0" jump fwd-in-dy0
        }
        chain fwd-in-dy0 {
            ct state established,related accept
            iifname "dy0" accept
            ct status dnat ip daddr 172.17.0.2 tcp dport 80 accept
            drop
        }
        chain prerouting {
            type nat hook prerouting priority dstnat; policy accept;
            fib daddr type local jump ports
        }
        chain output {
            type nat hook output priority -100; policy accept;
            fib daddr type local jump ports
        }
        chain ports {
            meta nfproto ipv4 tcp dport 8080 dnat ip to 172.17.0.2:80
        }
        chain postrouting {
            type nat hook postrouting priority srcnat; policy accept;
            ip saddr 172.17.0.0/16 oifname != "dy0" masquerade
            oifname "dy0" ip saddr 127.0.0.0/8 masquerade
            ip saddr 172.17.0.0/16 oifname "dy0" ct status dnat masquerade
        }
        """) + "}\n"
    nft_check(text)


def test_icc_false_drops_same_bridge_traffic_but_published_ports_and_isolates() -> None:
    networks = [DEFAULT_BRIDGE, Network("br-quiet", (ip_network("10.1.0.0/24"),), icc=False)]
    ports = [
        WEB,
        PortMapping("udp", ip_address("10.1.0.3"), 53, 5353, host_ip=ip_address("127.0.0.1")),
        PortMapping("tcp", ip_address("10.1.0.3"), 9000, 8000, 8002, 9002),
    ]
    text = script(TABLE, networks, ports)
    assert text == HEAD + golden("""
        set bridges {
            type ifname
            elements = { "dy0", "br-quiet" }
        }
        chain guard {
            type filter hook prerouting priority raw; policy accept;
            iifname @bridges ip daddr 127.0.0.0/8 drop
        }
        chain forward {
            type filter hook forward priority filter; policy accept;
            oifname "dy0" jump fwd-in-dy0
            oifname "br-quiet" jump fwd-in-br-quiet
        }
        chain fwd-in-dy0 {
            ct state established,related accept
            iifname "dy0" accept
            ct status dnat ip daddr 172.17.0.2 tcp dport 80 accept
            drop
        }
        chain fwd-in-br-quiet {
            ct state established,related accept
            ct status dnat ip daddr 10.1.0.3 udp dport 53 accept
            ct status dnat ip daddr 10.1.0.3 tcp dport 9000-9002 accept
            iifname "br-quiet" drop
            drop
        }
        chain prerouting {
            type nat hook prerouting priority dstnat; policy accept;
            fib daddr type local jump ports
        }
        chain output {
            type nat hook output priority -100; policy accept;
            fib daddr type local jump ports
        }
        chain ports {
            meta nfproto ipv4 tcp dport 8080 dnat ip to 172.17.0.2:80
            ip daddr 127.0.0.1 udp dport 5353 dnat ip to 10.1.0.3:53
            meta nfproto ipv4 tcp dport 8000 dnat ip to 10.1.0.3:9000
            meta nfproto ipv4 tcp dport 8001 dnat ip to 10.1.0.3:9001
            meta nfproto ipv4 tcp dport 8002 dnat ip to 10.1.0.3:9002
        }
        chain postrouting {
            type nat hook postrouting priority srcnat; policy accept;
            ip saddr 172.17.0.0/16 oifname != "dy0" masquerade
            ip saddr 10.1.0.0/24 oifname != "br-quiet" masquerade
            oifname "dy0" ip saddr 127.0.0.0/8 masquerade
            ip saddr 172.17.0.0/16 oifname "dy0" ct status dnat masquerade
            oifname "br-quiet" ip saddr 127.0.0.0/8 masquerade
            ip saddr 10.1.0.0/24 oifname "br-quiet" ct status dnat masquerade
        }
        """) + "}\n"
    nft_check(text)


def test_internal_network_forwards_nothing_in_or_out_and_is_not_masqueraded() -> None:
    networks = [Network("br-int", (ip_network("10.2.0.0/24"),), internal=True)]
    text = script(TABLE, networks)
    assert text == HEAD + golden("""
        set bridges {
            type ifname
            elements = { "br-int" }
        }
        chain guard {
            type filter hook prerouting priority raw; policy accept;
            iifname @bridges ip daddr 127.0.0.0/8 drop
        }
        chain forward {
            type filter hook forward priority filter; policy accept;
            oifname "br-int" jump fwd-in-br-int
            iifname "br-int" jump fwd-out-br-int
        }
        chain fwd-in-br-int {
            ct state established,related accept
            iifname "br-int" accept
            drop
        }
        chain fwd-out-br-int {
            oifname != "br-int" drop
        }
        chain prerouting {
            type nat hook prerouting priority dstnat; policy accept;
            fib daddr type local jump ports
        }
        chain output {
            type nat hook output priority -100; policy accept;
            fib daddr type local jump ports
        }
        chain ports {
        }
        chain postrouting {
            type nat hook postrouting priority srcnat; policy accept;
            oifname "br-int" ip saddr 127.0.0.0/8 masquerade
            ip saddr 10.2.0.0/24 oifname "br-int" ct status dnat masquerade
        }
        """) + "}\n"
    nft_check(text)


def test_dual_stack_network_without_masquerade_publishes_both_families() -> None:
    networks = [
        Network("br-ds", (ip_network("10.3.0.0/24"), ip_network("fd00:3::/64")), masquerade=False)
    ]
    ports = [
        PortMapping("tcp", ip_address("10.3.0.2"), 443, 8443),
        PortMapping("tcp", ip_address("fd00:3::2"), 443, 8443),
        PortMapping(
            "sctp",
            ip_address("fd00:3::2"),
            7000,
            7000,
            7009,
            7009,
            host_ip=ip_address("2001:db8::1"),
        ),
        PortMapping("udp", ip_address("10.3.0.2"), 60, 6000, 6009),
    ]
    text = script(TABLE, networks, ports)
    assert text == HEAD + golden("""
        set bridges {
            type ifname
            elements = { "br-ds" }
        }
        chain guard {
            type filter hook prerouting priority raw; policy accept;
            iifname @bridges ip daddr 127.0.0.0/8 drop
        }
        chain forward {
            type filter hook forward priority filter; policy accept;
            oifname "br-ds" jump fwd-in-br-ds
        }
        chain fwd-in-br-ds {
            ct state established,related accept
            iifname "br-ds" accept
            ct status dnat ip daddr 10.3.0.2 tcp dport 443 accept
            ct status dnat ip6 daddr fd00:3::2 tcp dport 443 accept
            ct status dnat ip6 daddr fd00:3::2 sctp dport 7000-7009 accept
            ct status dnat ip daddr 10.3.0.2 udp dport 60 accept
            drop
        }
        chain prerouting {
            type nat hook prerouting priority dstnat; policy accept;
            fib daddr type local jump ports
        }
        chain output {
            type nat hook output priority -100; policy accept;
            fib daddr type local jump ports
        }
        chain ports {
            meta nfproto ipv4 tcp dport 8443 dnat ip to 10.3.0.2:443
            meta nfproto ipv6 tcp dport 8443 dnat ip6 to [fd00:3::2]:443
            ip6 daddr 2001:db8::1 sctp dport 7000-7009 dnat ip6 to [fd00:3::2]
            meta nfproto ipv4 udp dport 6000-6009 dnat ip to 10.3.0.2:60
        }
        chain postrouting {
            type nat hook postrouting priority srcnat; policy accept;
            oifname "br-ds" ip saddr 127.0.0.0/8 masquerade
            ip saddr 10.3.0.0/24 oifname "br-ds" ct status dnat masquerade
            ip6 saddr fd00:3::/64 oifname "br-ds" ct status dnat masquerade
        }
        """) + "}\n"
    nft_check(text)


def test_delete_script_succeeds_whether_or_not_the_table_exists() -> None:
    text = delete_script(TABLE)
    assert text == "table inet dyt_unit\ndelete table inet dyt_unit\n"
    nft_check(text)


def test_same_input_gives_the_same_script() -> None:
    assert script(TABLE, [DEFAULT_BRIDGE], [WEB]) == script(TABLE, [DEFAULT_BRIDGE], [WEB])


@pytest.mark.parametrize("table", ["", "1abc", "dy t", "dy-t", "a;flush ruleset", "x" * 65])
def test_invalid_table_names_are_refused(table: str) -> None:
    with pytest.raises(ValueError, match="table name"):
        script(table, [])


@pytest.mark.parametrize("bridge", ["", "a" * 16, 'br"0', "br 0", "br/0", "br;0", "-br"])
def test_invalid_bridge_names_are_refused(bridge: str) -> None:
    with pytest.raises(ValueError, match="bridge name"):
        Network(bridge, ())


def test_a_bridge_named_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="named twice"):
        script(TABLE, [DEFAULT_BRIDGE, Network("dy0", (ip_network("10.9.0.0/24"),))])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"proto": "icmp"}, "protocol"),
        ({"host_port": 0}, "invalid port"),
        ({"container_port": 65536}, "invalid port"),
        ({"host_port": 90, "host_port_end": 80}, "range"),
        ({"host_port": 80, "host_port_end": 90, "container_port_end": 85}, "differ in length"),
        ({"host_ip": ip_address("::1")}, "family"),
    ],
)
def test_invalid_port_mappings_are_refused(kwargs: dict, message: str) -> None:
    fields = {
        "proto": "tcp",
        "container_ip": ip_address("172.17.0.2"),
        "container_port": 80,
        "host_port": 8080,
        **kwargs,
    }
    with pytest.raises(ValueError, match=message):
        PortMapping(**fields)
