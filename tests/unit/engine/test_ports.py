"""Published ports: HostConfig parsed and checked as dockerd does, host ports reserved by bound
sockets, and the documents the API shows. Ports come from a block below the kernel's ephemeral
range that each test checks is free; every socket is closed at teardown."""

from __future__ import annotations

import ipaddress
import random
import socket

import pytest

from dockyard.engine.errors import EngineError, InvalidParameter
from dockyard.engine.networks.portalloc import PortAllocator, dynamic_port_range, v6_listenable
from dockyard.engine.networks.ports import (
    Binding,
    PortRequest,
    check,
    list_ports,
    nft_mappings,
    ports_document,
    requests,
)
from dockyard.network.nftrules import PortMapping

CIP = "172.17.0.2"


IPV6 = v6_listenable()


def _free(port: int) -> bool:
    families = [(socket.AF_INET, "0.0.0.0")] + ([(socket.AF_INET6, "::")] if IPV6 else [])
    for family, address in families:
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            with socket.socket(family, kind) as s:
                if family == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                try:
                    s.bind((address, port))
                except OSError:
                    return False
    return True


@pytest.fixture
def block():
    """Five consecutive ports, free for TCP and UDP on every address."""
    for _ in range(200):
        start = random.randrange(20000, 30000)
        if all(_free(p) for p in range(start, start + 5)):
            return list(range(start, start + 5))
    pytest.skip("no free block of ports")


@pytest.fixture
def allocator(block):
    pa = PortAllocator(port_range=(block[0], block[-1]))
    yield pa
    pa.close()


@pytest.fixture
def sockets():
    """Sockets a test opens to play "another program"; closed at teardown."""
    opened: list[socket.socket] = []

    def open_(port: int, kind: int = socket.SOCK_STREAM, address: str = "0.0.0.0",
              listen: bool = True) -> socket.socket:
        s = socket.socket(socket.AF_INET, kind)
        opened.append(s)
        s.bind((address, port))
        if listen and kind == socket.SOCK_STREAM:
            s.listen()
        return s

    yield open_
    for s in opened:
        s.close()


def _bindable(port: int, kind: int = socket.SOCK_STREAM, address: str = "0.0.0.0") -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind((address, port))
        except OSError:
            return False
    return True


# --- parsing and checking HostConfig ---------------------------------------------------------

def test_port_bindings_become_requests():
    host_config = {"PortBindings": {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "127.0.0.1", "HostPort": ""}],
        "53/UDP": [{"HostIp": "[::1]", "HostPort": "5353"}],
        "9000": [{"HostPort": "9000-9010"}],
        "8000-8002/tcp": [{"HostIp": "::ffff:10.0.0.1", "HostPort": "7000-7002"}],
    }}
    check(host_config)
    assert requests({}, host_config) == [
        PortRequest("udp", 53, None, "::1", 5353, None),
        PortRequest("tcp", 80, None, "", 8080, None),
        PortRequest("tcp", 80, None, "127.0.0.1", 0, None),
        PortRequest("tcp", 8000, 8002, "10.0.0.1", 7000, 7002),
        PortRequest("tcp", 9000, None, "", 9000, 9010),
    ]


def test_publish_all_gives_unbound_exposed_ports_a_random_port():
    config = {"ExposedPorts": {"80/tcp": {}, "443/tcp": {}, "53/udp": {}}}
    host_config = {"PublishAllPorts": True,
                   "PortBindings": {"80/tcp": [{"HostPort": "8080"}], "53/udp": []}}
    assert requests(config, host_config) == [
        PortRequest("udp", 53), PortRequest("tcp", 80, host_port=8080), PortRequest("tcp", 443)]


def test_without_publish_all_exposed_ports_are_not_published():
    config = {"ExposedPorts": {"80/tcp": {}}}
    assert requests(config, {"PortBindings": {"443/tcp": None}}) == []
    assert requests(config, {}) == []


@pytest.mark.parametrize(("bindings", "message"), [
    ({"abc/tcp": []}, 'invalid port specification: "abc"'),
    ({"/tcp": []}, 'invalid port specification: ""'),
    ({"0/tcp": []}, 'invalid port specification: "0"'),
    ({"70000/tcp": []}, 'invalid port specification: "70000"'),
    ({"80/foo": []}, "invalid proto: foo"),
    ({"80/tcp": [{"HostPort": "abc"}]}, 'invalid port specification: "abc"'),
    ({"80/tcp": [{"HostPort": "65536"}]}, 'invalid port specification: "65536"'),
    ({"80/tcp": [{"HostPort": "9-8"}]}, 'invalid port specification: "9-8"'),
    ({"80/tcp": [{"HostPort": "+80"}]}, 'invalid port specification: "+80"'),
    ({"80/tcp": [{"HostIp": "localhost", "HostPort": "80"}]},
     "invalid IP address: localhost"),
    ({"8000-8002/tcp": [{"HostPort": "9000-9005"}]},
     "invalid ranges specified for container and host Ports: 8000-8002 and 9000-9005"),
    ({"8000-8002/tcp": [{"HostPort": "9000"}]},
     "invalid ranges specified for container and host Ports: 8000-8002 and 9000"),
])
def test_bad_port_bindings_are_refused_with_dockerds_words(bindings, message):
    with pytest.raises(InvalidParameter) as e:
        check({"PortBindings": bindings})
    assert e.value.message == message
    assert e.value.status == 400


def test_dynamic_port_range_falls_back_to_dockerds(tmp_path):
    good = tmp_path / "good"
    good.write_text("32768\t60999\n")
    assert dynamic_port_range(good) == (32768, 60999)
    assert dynamic_port_range(tmp_path / "missing") == (49153, 65535)


# --- reserving host ports --------------------------------------------------------------------

def test_a_fixed_port_is_reserved_until_released(allocator, block):
    port = block[0]
    got = allocator.allocate("c1", [PortRequest("tcp", 80, host_port=port)])
    assert got == [Binding("tcp", 80, "0.0.0.0", port)]
    assert allocator.held("c1") == got
    assert not _bindable(port)
    allocator.release("c1")
    assert allocator.held("c1") == []
    assert _bindable(port)


def test_udp_ports_are_reserved_too(allocator, block):
    allocator.allocate("c1", [PortRequest("udp", 53, host_port=block[0])])
    assert not _bindable(block[0], socket.SOCK_DGRAM)
    assert _bindable(block[0], socket.SOCK_STREAM)


def test_random_ports_go_round_robin_through_the_range(allocator, block):
    first = allocator.allocate("c1", [PortRequest("tcp", 80)])
    second = allocator.allocate("c2", [PortRequest("tcp", 80)])
    assert [b.host_port for b in first + second] == block[:2]
    allocator.release("c1")
    third = allocator.allocate("c3", [PortRequest("tcp", 80)])
    assert third[0].host_port == block[2]


def test_a_host_range_takes_its_first_free_port(allocator, block, sockets):
    sockets(block[1])
    allocator.allocate("c1", [PortRequest("tcp", 80, host_port=block[0])])
    got = allocator.allocate("c2", [PortRequest("tcp", 80, host_port=block[0],
                                                host_port_end=block[3])])
    assert got == [Binding("tcp", 80, "0.0.0.0", block[2])]


def test_a_container_range_maps_port_for_port(allocator, block):
    got = allocator.allocate("c1", [PortRequest("tcp", 8000, 8002, "", block[0], block[2])])
    assert [(b.container_port, b.host_port) for b in got] == list(zip([8000, 8001, 8002],
                                                                      block[:3], strict=True))


def test_a_port_another_program_holds_is_refused_with_the_kernels_answer(allocator, block,
                                                                         sockets):
    sockets(block[0])
    with pytest.raises(EngineError) as e:
        allocator.allocate("c1", [PortRequest("tcp", 80, host_port=block[0])],
                           container_ip=CIP)
    assert e.value.message == \
        f"failed to bind host port for 0.0.0.0:{block[0]}:{CIP}:80/tcp: address already in use"
    assert e.value.status == 500


def test_a_udp_port_another_program_holds_is_refused(allocator, block, sockets):
    sockets(block[0], socket.SOCK_DGRAM, "127.0.0.1")
    with pytest.raises(EngineError, match="address already in use"):
        allocator.allocate("c1", [PortRequest("udp", 53, host_port=block[0])])


def test_a_busy_host_range_names_the_last_port_tried(allocator, block, sockets):
    for port in block[:3]:
        sockets(port)
    with pytest.raises(EngineError) as e:
        allocator.allocate("c1", [PortRequest("tcp", 80, None, "", block[0], block[2])],
                           container_ip=CIP)
    assert e.value.message == (f"failed to bind host port {block[2]} for "
                               f"0.0.0.0:{block[0]}-{block[2]}:{CIP}:80/tcp: "
                               "address already in use")


def test_two_owners_cannot_have_one_port(allocator, block):
    allocator.allocate("c1", [PortRequest("tcp", 80, host_port=block[0])])
    with pytest.raises(EngineError) as e:
        allocator.allocate("c2", [PortRequest("tcp", 80, host_port=block[0])])
    assert e.value.message == f"Bind for 0.0.0.0:{block[0]} failed: port is already allocated"
    # SO_REUSEADDR would let the kernel accept a second non-listening socket: the table refuses
    with pytest.raises(EngineError, match=f"Bind for 0.0.0.0:{block[0]} failed"):
        allocator.allocate("c2", [PortRequest("tcp", 81, host_ip="127.0.0.1",
                                              host_port=block[0])])
    # the same port of another protocol is another port
    assert allocator.allocate("c2", [PortRequest("udp", 80, host_port=block[0])])


def test_one_address_conflicts_with_the_unspecified_one(allocator, block):
    allocator.allocate("c1", [PortRequest("tcp", 80, host_ip="127.0.0.1", host_port=block[0])])
    with pytest.raises(EngineError) as e:
        allocator.allocate("c2", [PortRequest("tcp", 80, host_port=block[0])])
    assert e.value.message == \
        f"Bind for 127.0.0.1:{block[0]} failed: port is already allocated"


def test_allocation_is_all_or_nothing(allocator, block, sockets):
    sockets(block[1])
    reqs = [PortRequest("tcp", 80, host_port=block[0]), PortRequest("tcp", 81, host_port=block[1])]
    with pytest.raises(EngineError):
        allocator.allocate("c1", reqs)
    assert allocator.held("c1") == []
    assert _bindable(block[0])
    assert allocator.allocate("c2", [PortRequest("tcp", 80, host_port=block[0])])


def test_random_ports_skip_ports_in_use(allocator, block, sockets):
    sockets(block[0])
    got = allocator.allocate("c1", [PortRequest("tcp", 80)] * 4)
    assert [b.host_port for b in got] == block[1:]
    # the only port left is another program's: dockerd retries it and says why it failed
    with pytest.raises(EngineError) as e:
        allocator.allocate("c2", [PortRequest("tcp", 80)], container_ip=CIP)
    assert e.value.message == \
        f"failed to bind host port for 0.0.0.0::{CIP}:80/tcp: address already in use"


def test_random_ports_run_out(allocator, block):
    allocator.allocate("c1", [PortRequest("tcp", 80)] * len(block))
    with pytest.raises(EngineError) as e:
        allocator.allocate("c2", [PortRequest("tcp", 80)])
    assert e.value.message == "all ports are allocated"
    assert allocator.held("c2") == []


@pytest.mark.skipif(not IPV6, reason="no IPv6 on this host")
def test_every_address_with_ipv6_is_both_families_on_one_port(allocator, block):
    got = allocator.allocate("c1", [PortRequest("tcp", 80)], ipv6=True)
    assert got == [Binding("tcp", 80, "0.0.0.0", block[0]), Binding("tcp", 80, "::", block[0])]
    assert allocator.allocate("c2", [PortRequest("tcp", 80, host_ip="::1")]) == []


def test_restore_takes_exactly_the_same_ports_again(allocator, block):
    wanted = [Binding("tcp", 80, "0.0.0.0", block[3]), Binding("udp", 53, "127.0.0.1", block[4])]
    assert allocator.restore("c1", wanted) == wanted
    assert allocator.held("c1") == wanted
    assert not _bindable(block[3])
    # a port another owner has is left out, the rest is still taken
    other = [Binding("tcp", 80, "0.0.0.0", block[3]), Binding("tcp", 81, "0.0.0.0", block[2])]
    assert allocator.restore("c2", other) == other[1:]


def test_restore_leaves_out_a_port_another_program_took(allocator, block, sockets):
    sockets(block[0])
    assert allocator.restore("c1", [Binding("tcp", 80, "0.0.0.0", block[0])]) == []


# --- documents and rules ---------------------------------------------------------------------

CONFIG = {"ExposedPorts": {"80/tcp": {}, "443/tcp": {}, "53/udp": {}}}
BINDINGS = [Binding("tcp", 80, "::", 32768), Binding("tcp", 80, "0.0.0.0", 32768),
            Binding("udp", 53, "127.0.0.1", 5353)]


def test_network_settings_ports_show_every_exposed_port():
    assert ports_document(CONFIG, BINDINGS) == {
        "443/tcp": None,
        "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}],
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "32768"},
                   {"HostIp": "::", "HostPort": "32768"}],
    }
    assert list(ports_document(CONFIG, BINDINGS)) == ["443/tcp", "53/udp", "80/tcp"]
    assert ports_document({}, []) == {}


def test_container_list_ports():
    assert list_ports(CONFIG, BINDINGS) == [
        {"PrivatePort": 443, "Type": "tcp"},
        {"IP": "127.0.0.1", "PrivatePort": 53, "PublicPort": 5353, "Type": "udp"},
        {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 32768, "Type": "tcp"},
        {"IP": "::", "PrivatePort": 80, "PublicPort": 32768, "Type": "tcp"},
    ]


def test_bindings_become_dnat_mappings():
    v4, v6 = ipaddress.ip_address(CIP), ipaddress.ip_address("fd00::2")
    assert nft_mappings(BINDINGS, CIP) == [
        PortMapping("tcp", v4, 80, 32768),
        PortMapping("udp", v4, 53, 5353, host_ip=ipaddress.ip_address("127.0.0.1")),
    ]
    assert nft_mappings(BINDINGS[:1], CIP, "fd00::2") == [PortMapping("tcp", v6, 80, 32768)]
