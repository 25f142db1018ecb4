"""Which dumped ctnetlink entries a release deletes, and what it sends back to name them."""

from __future__ import annotations

import ipaddress
import struct

from dockyard.network import conntrack

NESTED = 0x8000


def attr(kind: int, payload: bytes) -> bytes:
    data = struct.pack("=HH", 4 + len(payload), kind) + payload
    return data + b"\0" * (-len(data) % 4)


def tuple_(src: str, dst: str) -> bytes:
    ip = attr(NESTED | conntrack.CTA_TUPLE_IP,
              attr(conntrack.CTA_IP_V4_SRC, ipaddress.ip_address(src).packed)
              + attr(conntrack.CTA_IP_V4_DST, ipaddress.ip_address(dst).packed))
    proto = attr(NESTED | 2, attr(1, b"\x06"))  # CTA_TUPLE_PROTO: CTA_PROTO_NUM tcp
    return ip + proto


def message(orig: tuple[str, str], reply: tuple[str, str], zone: bytes = b"") -> bytes:
    body = struct.pack("=BBH", 2, 0, 0)
    body += attr(NESTED | conntrack.CTA_TUPLE_ORIG, tuple_(*orig))
    body += attr(NESTED | conntrack.CTA_TUPLE_REPLY, tuple_(*reply))
    body += attr(3, b"\0\0\0\x01")  # CTA_STATUS: not part of the key
    if zone:
        body += attr(conntrack.CTA_ZONE, zone)
    return struct.pack("=IHHII", 16 + len(body), 0x100, 2, 1, 0) + body


WANTED = frozenset({ipaddress.ip_address("10.0.0.7").packed})


def test_from_to_and_dnated_to_the_address_match():
    for orig, reply in ((("10.0.0.7", "1.1.1.1"), ("1.1.1.1", "10.0.0.7")),
                        (("10.0.0.8", "10.0.0.7"), ("10.0.0.7", "10.0.0.8")),
                        (("8.8.8.8", "192.168.1.2"), ("10.0.0.7", "8.8.8.8"))):
        assert conntrack.matching(message(orig, reply), WANTED) is not None, orig


def test_others_do_not():
    # the address only as the reply's destination: SNATed by someone else, not ours
    assert conntrack.matching(message(("10.0.0.8", "1.1.1.1"), ("1.1.1.1", "10.0.0.7")),
                              WANTED) is None
    assert conntrack.matching(b"\0" * 10, WANTED) is None


def test_the_key_is_the_original_tuple_and_the_zone_as_dumped():
    orig = tuple_("10.0.0.7", "1.1.1.1")
    zone = b"\0\x05\0\0"
    family, key = conntrack.matching(message(("10.0.0.7", "1.1.1.1"), ("1.1.1.1", "10.0.0.7"),
                                             zone), WANTED)
    assert family == 2
    assert key == attr(NESTED | conntrack.CTA_TUPLE_ORIG, orig) + attr(conntrack.CTA_ZONE, zone)
