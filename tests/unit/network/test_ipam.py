"""IPAM: default pools, explicit subnets with Docker's validation, sequential addresses that
wrap around, static addresses, persistence across a restart, dual stack."""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path

import pytest

from dockyard.network import ipam
from dockyard.network.ipam import (
    AddressSpace,
    Forbidden,
    InvalidParameter,
    IpamError,
    NotFound,
    PoolSpec,
    Unavailable,
    mac_address,
    parse_config,
)


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def net(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text)


@pytest.fixture
def space(tmp_path: Path) -> AddressSpace:
    return AddressSpace(tmp_path)


# --- default pools


def test_default_pools_are_dockerds_31_subnets_in_order(space: AddressSpace) -> None:
    got = [str(space.request_pool().subnet) for _ in range(31)]
    assert got[:3] == ["172.17.0.0/16", "172.18.0.0/16", "172.19.0.0/16"]
    assert got[14] == "172.31.0.0/16"
    assert got[15:] == [f"192.168.{16 * i}.0/20" for i in range(16)]
    with pytest.raises(InvalidParameter, match="all predefined address pools have been fully"):
        space.request_pool()


def test_first_pool_is_the_default_bridge_with_gateway_first_host(space: AddressSpace) -> None:
    pool = space.request_pool()
    assert pool.subnet == net("172.17.0.0/16")
    assert pool.ip_range is None
    assert pool.gateway == ip("172.17.0.1")


def test_default_pool_skips_host_routes_and_ignores_the_default_route(space: AddressSpace) -> None:
    pool = space.request_pool(reserved=["0.0.0.0/0", "172.17.0.0/16", "172.18.5.0/24", "::/0"])
    assert pool.subnet == net("172.19.0.0/16")


def test_default_pool_skips_a_route_covering_several_candidates(space: AddressSpace) -> None:
    # 172.16.0.0/12 covers every 172.x /16: the next candidates are 192.168's /20s
    pool = space.request_pool(reserved=[net("172.16.0.0/12"), "192.168.1.7/32"])
    assert pool.subnet == net("192.168.16.0/20")


def test_default_pool_skips_explicit_networks_and_reuses_released_ones(space: AddressSpace) -> None:
    space.request_pool("172.17.0.0/16")
    space.request_pool("172.18.128.0/24")
    assert space.request_pool().subnet == net("172.19.0.0/16")
    space.release_pool("172.17.0.0/16")
    assert space.request_pool().subnet == net("172.17.0.0/16")


def test_no_default_ipv6_pool_unless_configured(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="fully subnetted"):
        AddressSpace(tmp_path).request_pool(v6=True)
    pools = (*ipam.DEFAULT_POOLS, PoolSpec.parse("fd00::/8", 64))
    space = AddressSpace(tmp_path / "b", default_pools=pools)
    first = space.request_pool(v6=True)
    assert first.subnet == net("fd00::/64")
    assert first.gateway == ip("fd00::1")
    # a reserved /48 is skipped in one jump, not 65536 steps
    assert space.request_pool(v6=True, reserved=["fd00::/48"]).subnet == net("fd00:0:1::/64")
    assert space.request_pool().subnet == net("172.17.0.0/16")


def test_pool_spec_size_must_fit_its_base() -> None:
    with pytest.raises(InvalidParameter, match="invalid pools size: 8"):
        PoolSpec.parse("10.0.0.0/16", 8)


# --- explicit subnets and validation


def test_explicit_subnet_range_and_gateway(space: AddressSpace) -> None:
    pool = space.request_pool("10.10.0.0/16", "10.10.5.0/24", "10.10.0.254")
    assert (str(pool.subnet), str(pool.ip_range), str(pool.gateway)) == (
        "10.10.0.0/16",
        "10.10.5.0/24",
        "10.10.0.254",
    )
    # the explicit gateway is static: dynamic addresses start at the range's start
    assert space.request_address("10.10.0.0/16") == ip("10.10.5.0")


def test_gateway_defaults_to_the_first_free_address_of_the_range(space: AddressSpace) -> None:
    pool = space.request_pool("10.10.0.0/16", "10.10.5.0/24")
    assert pool.gateway == ip("10.10.5.0")
    pool = space.request_pool("10.20.0.0/16", "10.20.0.0/24")
    assert pool.gateway == ip("10.20.0.1")


def test_overlapping_subnets_are_refused(space: AddressSpace) -> None:
    space.request_pool("10.0.0.0/16")
    for subnet in ("10.0.0.0/16", "10.0.3.0/24", "10.0.0.0/8"):
        with pytest.raises(Forbidden) as e:
            space.request_pool(subnet)
        assert e.value.message == (
            "invalid pool request: Pool overlaps with other one on this address space"
        )
        assert e.value.status == 403
    space.request_pool("10.1.0.0/16")


@pytest.mark.parametrize(
    "subnet, ip_range, gateway, message",
    [
        ("10.0.0.0", None, None, "invalid subnet 10.0.0.0: invalid CIDR block notation"),
        ("bogus/8", None, None, "invalid subnet bogus/8: invalid CIDR block notation"),
        (
            "10.0.0.0/255.0.0.0",
            None,
            None,
            "invalid subnet 10.0.0.0/255.0.0.0: invalid CIDR block notation",
        ),
        ("10.0.0.1/8", None, None, "invalid subnet 10.0.0.1/8: it should be 10.0.0.0/8"),
        (
            "10.0.0.0/24",
            "10.0.0.0/16",
            None,
            "invalid ip-range 10.0.0.0/16: CIDR block is bigger than its parent subnet 10.0.0.0/24",
        ),
        (
            "10.0.0.0/16",
            "10.0.1.1/24",
            None,
            "invalid ip-range 10.0.1.1/24: it should be 10.0.1.0/24",
        ),
        (
            "10.0.0.0/16",
            "10.1.0.0/24",
            None,
            "invalid ip-range 10.1.0.0/24: parent subnet 10.0.0.0/16 doesn't contain ip-range",
        ),
        (
            "10.0.0.0/16",
            "fd00::/64",
            None,
            "invalid ip-range fd00::/64: parent subnet is an IPv4 block",
        ),
        (
            "10.0.0.0/16",
            None,
            "10.1.0.1",
            "invalid gateway 10.1.0.1: parent subnet 10.0.0.0/16 doesn't contain this address",
        ),
        ("10.0.0.0/16", None, "fd00::1", "invalid gateway fd00::1: parent subnet is an IPv4 block"),
        ("10.0.0.0/16", None, "nonsense", "invalid gateway nonsense: invalid address"),
        ("fd00::/64", None, "10.0.0.1", "invalid gateway 10.0.0.1: parent subnet is an IPv6 block"),
    ],
)
def test_config_validation_has_dockers_messages(
    subnet: str, ip_range: str | None, gateway: str | None, message: str
) -> None:
    with pytest.raises(InvalidParameter) as e:
        parse_config(subnet, ip_range, gateway)
    assert e.value.message == f"invalid network config:\n{message}"
    assert e.value.status == 400


def test_several_config_errors_are_reported_together() -> None:
    with pytest.raises(InvalidParameter) as e:
        parse_config("10.0.0.1/16", "10.0.1.1/24", "10.9.0.1")
    assert e.value.message == (
        "invalid network config:\n"
        "* invalid subnet 10.0.0.1/16: it should be 10.0.0.0/16\n"
        "* invalid ip-range 10.0.1.1/24: it should be 10.0.1.0/24\n"
        "* invalid gateway 10.9.0.1: parent subnet 10.0.0.0/16 doesn't contain this address"
    )


def test_range_or_gateway_without_subnet_is_refused(space: AddressSpace) -> None:
    with pytest.raises(InvalidParameter, match="must have a corresponding subnet"):
        space.request_pool(gateway="10.0.0.1")


def test_a_refused_request_changes_nothing(space: AddressSpace, tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter):
        space.request_pool("10.0.0.1/8")
    with pytest.raises(Forbidden, match=r"failed to allocate gateway \(10.0.0.0\): Address"):
        space.request_pool("10.0.0.0/24", gateway="10.0.0.0")
    assert space.pools() == []
    assert AddressSpace(tmp_path).pools() == []


# --- addresses


def test_addresses_are_sequential_and_skip_network_gateway_broadcast(space: AddressSpace) -> None:
    space.request_pool("10.0.0.0/29")
    got = [str(space.request_address("10.0.0.0/29")) for _ in range(5)]
    assert got == ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]
    with pytest.raises(Unavailable) as e:
        space.request_address("10.0.0.0/29")
    assert e.value.message == "no available addresses on this pool"


def test_released_address_is_not_reused_until_the_allocator_wraps(space: AddressSpace) -> None:
    space.request_pool("10.0.0.0/29")
    a, b = space.request_address("10.0.0.0/29"), space.request_address("10.0.0.0/29")
    space.release_address("10.0.0.0/29", a)
    assert space.request_address("10.0.0.0/29") == ip("10.0.0.4")
    assert space.request_address("10.0.0.0/29") == ip("10.0.0.5")
    assert space.request_address("10.0.0.0/29") == ip("10.0.0.6")
    # past the end: wrap around, skip broadcast, network, gateway and b, reuse a
    assert space.request_address("10.0.0.0/29") == a
    assert b == ip("10.0.0.3")


def test_dynamic_addresses_stay_in_the_ip_range(space: AddressSpace) -> None:
    space.request_pool("10.0.0.0/24", "10.0.0.8/30", "10.0.0.1")
    got = [str(space.request_address("10.0.0.0/24")) for _ in range(4)]
    assert got == ["10.0.0.8", "10.0.0.9", "10.0.0.10", "10.0.0.11"]
    with pytest.raises(Unavailable):
        space.request_address("10.0.0.0/24")
    # a static address outside the range but in the subnet is still fine
    assert space.request_address("10.0.0.0/24", "10.0.0.200") == ip("10.0.0.200")


def test_static_address_must_be_free_and_in_the_subnet(space: AddressSpace) -> None:
    space.request_pool("10.0.0.0/24")
    assert space.request_address("10.0.0.0/24", "10.0.0.50") == ip("10.0.0.50")
    for taken in ("10.0.0.50", "10.0.0.1", "10.0.0.0", "10.0.0.255"):
        with pytest.raises(Forbidden, match=r"^Address already in use$"):
            space.request_address("10.0.0.0/24", taken)
    for outside in ("10.0.1.1", "fd00::1"):
        with pytest.raises(InvalidParameter, match="requested address is out of range"):
            space.request_address("10.0.0.0/24", outside)
    with pytest.raises(InvalidParameter, match="invalid address: nope"):
        space.request_address("10.0.0.0/24", "nope")
    # a static address does not move the sequential allocator
    assert space.request_address("10.0.0.0/24") == ip("10.0.0.2")


def test_sequential_allocation_skips_static_addresses(space: AddressSpace) -> None:
    space.request_pool("10.0.0.0/24")
    space.request_address("10.0.0.0/24", "10.0.0.2")
    assert space.request_address("10.0.0.0/24") == ip("10.0.0.3")


def test_release_and_lookup_errors(space: AddressSpace) -> None:
    with pytest.raises(NotFound, match=r"cannot find address pool for 10\.0\.0\.0/24"):
        space.request_address("10.0.0.0/24")
    space.request_pool("10.0.0.0/24")
    space.release_address("10.0.0.0/24", "10.0.0.77")  # never handed out: no error
    with pytest.raises(InvalidParameter, match="out of range"):
        space.release_address("10.0.0.0/24", "10.9.0.1")
    space.release_pool("10.0.0.0/24")
    with pytest.raises(NotFound):
        space.release_pool("10.0.0.0/24")


def test_point_to_point_subnets_use_every_address(space: AddressSpace) -> None:
    pool = space.request_pool("10.0.0.0/31")
    assert pool.gateway == ip("10.0.0.0")
    assert space.request_address("10.0.0.0/31") == ip("10.0.0.1")
    with pytest.raises(Unavailable):
        space.request_address("10.0.0.0/31")


def test_mac_is_02_42_and_the_ipv4_bytes() -> None:
    assert mac_address(ipaddress.IPv4Address("172.17.0.2")) == "02:42:ac:11:00:02"
    assert mac_address(ipaddress.IPv4Address("10.255.1.200")) == "02:42:0a:ff:01:c8"


# --- IPv6 and dual stack


def test_ipv6_pool_skips_only_the_subnet_router_anycast(space: AddressSpace) -> None:
    pool = space.request_pool("fd00:1::/126")
    assert pool.gateway == ip("fd00:1::1")
    assert space.request_address("fd00:1::/126") == ip("fd00:1::2")
    assert space.request_address("fd00:1::/126") == ip("fd00:1::3")  # no broadcast in v6
    with pytest.raises(Unavailable):
        space.request_address("fd00:1::/126")


def test_dual_stack_network_gets_one_address_of_each_family(tmp_path: Path) -> None:
    space = AddressSpace(tmp_path)
    v4 = space.request_pool()
    v6 = space.request_pool("2001:db8:1::/64", gateway="2001:db8:1::ffff")
    a4 = space.request_address(v4.subnet)
    a6 = space.request_address(v6.subnet)
    assert (a4, a6) == (ip("172.17.0.2"), ip("2001:db8:1::1"))
    assert isinstance(a4, ipaddress.IPv4Address)
    assert mac_address(a4) == "02:42:ac:11:00:02"
    # the families do not collide: an IPv6 subnet never blocks an IPv4 default
    assert space.request_pool().subnet == net("172.18.0.0/16")
    restarted = AddressSpace(tmp_path)
    assert [p.subnet for p in restarted.pools()] == [
        net("172.17.0.0/16"),
        net("172.18.0.0/16"),
        net("2001:db8:1::/64"),
    ]
    assert restarted.request_address(v6.subnet) == ip("2001:db8:1::2")


# --- persistence


def test_restart_hands_out_no_duplicate_and_reuses_released(tmp_path: Path) -> None:
    space = AddressSpace(tmp_path)
    pool = space.request_pool("10.0.0.0/29")
    handed = {space.request_address(pool.subnet) for _ in range(4)}  # .2 .3 .4 .5
    space.release_address(pool.subnet, "10.0.0.3")

    restarted = AddressSpace(tmp_path)
    assert restarted.pools() == [pool]
    assert restarted.in_use(pool.subnet) == [ip(f"10.0.0.{n}") for n in (1, 2, 4, 5)]
    assert restarted.request_address(pool.subnet) == ip("10.0.0.6")  # continues after .5
    assert restarted.request_address(pool.subnet) == ip("10.0.0.3")  # wraps to the released
    assert ip("10.0.0.3") in handed
    with pytest.raises(Unavailable):
        restarted.request_address(pool.subnet)
    with pytest.raises(Forbidden):
        AddressSpace(tmp_path).request_address(pool.subnet, "10.0.0.4")


def test_restart_keeps_default_pool_allocations(tmp_path: Path) -> None:
    AddressSpace(tmp_path).request_pool()
    assert AddressSpace(tmp_path).request_pool().subnet == net("172.18.0.0/16")


def test_document_is_per_space_json_written_atomically(tmp_path: Path) -> None:
    space = AddressSpace(tmp_path / "ipam", name="local")
    AddressSpace(tmp_path / "ipam", name="global").request_pool("10.0.0.0/24")
    space.request_pool("10.0.0.0/24")  # another space: no overlap
    space.request_address("10.0.0.0/24")
    assert sorted(os.listdir(tmp_path / "ipam")) == ["global.json", "local.json"]
    doc = json.loads((tmp_path / "ipam" / "local.json").read_text())
    assert doc == {
        "version": 1,
        "pools": [
            {
                "subnet": "10.0.0.0/24",
                "ip_range": None,
                "gateway": "10.0.0.1",
                "allocated": ["10.0.0.1", "10.0.0.2"],
                "last": "10.0.0.2",
            }
        ],
    }


def test_failed_write_leaves_memory_and_disk_as_they_were(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    space = AddressSpace(tmp_path)
    space.request_pool("10.0.0.0/24")

    def broken(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ipam.os, "replace", broken)
    with pytest.raises(OSError):
        space.request_address("10.0.0.0/24")
    monkeypatch.undo()
    assert space.in_use("10.0.0.0/24") == [ip("10.0.0.1")]
    assert [p.name for p in tmp_path.iterdir()] == ["local.json"]  # no temporary file left
    assert space.request_address("10.0.0.0/24") == ip("10.0.0.2")


def test_corrupt_document_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "local.json").write_text("{not json")
    with pytest.raises(IpamError, match="corrupt IPAM state"):
        AddressSpace(tmp_path)
    (tmp_path / "local.json").write_text('{"version": 1, "pools": [{"subnet": "x"}]}')
    with pytest.raises(IpamError, match="corrupt IPAM state"):
        AddressSpace(tmp_path)
    (tmp_path / "local.json").write_text(json.dumps({"version": 1, "pools": [{
        "subnet": "10.0.0.0/24", "gateway": "10.0.0.1", "allocated": ["10.0.1.9"]}]}))
    with pytest.raises(IpamError, match=r"10\.0\.1\.9 is not in 10\.0\.0\.0/24"):
        AddressSpace(tmp_path)


def test_space_name_cannot_escape_the_directory(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="invalid address space name"):
        AddressSpace(tmp_path, name="../x")
