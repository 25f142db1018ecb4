"""Connection-tracking entries of released addresses, deleted over ctnetlink in-process.

What `conntrack -D -f <family> --orig-src A`, `--orig-dst A` and `--reply-src A` do for each
address A, in one pass:

    dump    IPCTNL_MSG_CT_GET with NLM_F_DUMP (every family); each entry's original and
            reply tuples are read: a match when the original source or destination, or
            the reply source, is one of the addresses
    delete  IPCTNL_MSG_CT_DELETE of each match by its original tuple (and zone), sent back
            as the kernel gave it; ENOENT (it timed out, or another pass took it) is fine

Why not the conntrack tool: each of its runs makes the kernel walk the whole table, every
bucket (262144 on a 24 GiB host: ~10 ms of CPU, empty or not), and its three runs per
address cost three walks and three processes; one dump here costs one walk for every
address of a release. The parsing is a few struct reads an entry.
"""

from __future__ import annotations

import errno as errnos
import ipaddress
import os
import socket
import struct
from collections.abc import Iterable, Iterator

NETLINK_NETFILTER = 12
NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_GET = 1
IPCTNL_MSG_CT_DELETE = 2
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x2, 0x4, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED and NLA_F_NET_BYTEORDER
CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_ZONE = 1, 2, 18
CTA_TUPLE_IP = 1
CTA_IP_V4_SRC, CTA_IP_V4_DST, CTA_IP_V6_SRC, CTA_IP_V6_DST = 1, 2, 3, 4

_NLMSGHDR = struct.Struct("=IHHII")  # length, type, flags, seq, pid
_NFGENMSG = struct.Struct("=BBH")  # family, version, res_id (big endian, unused: 0)
_NLATTR = struct.Struct("=HH")
_ERRNO = struct.Struct("=i")


class ConntrackError(OSError):
    """A ctnetlink request failed: errno and what was asked."""


def _align(n: int) -> int:
    return (n + 3) & ~3


def _attrs(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(type, offset of the attribute, offset of its payload, end of its payload)."""
    while start + _NLATTR.size <= end:
        length, kind = _NLATTR.unpack_from(data, start)
        if length < _NLATTR.size or start + length > end:
            return
        yield kind & NLA_TYPE_MASK, start, start + _NLATTR.size, start + length
        start += _align(length)


def _addresses(data: bytes, start: int, end: int) -> tuple[bytes, bytes]:
    """(source, destination) of a CTA_TUPLE_* payload, as packed addresses."""
    src = dst = b""
    for kind, _at, body, stop in _attrs(data, start, end):
        if kind == CTA_TUPLE_IP:
            for ip_kind, _a, ip_body, ip_stop in _attrs(data, body, stop):
                if ip_kind in (CTA_IP_V4_SRC, CTA_IP_V6_SRC):
                    src = data[ip_body:ip_stop]
                elif ip_kind in (CTA_IP_V4_DST, CTA_IP_V6_DST):
                    dst = data[ip_body:ip_stop]
    return src, dst


def matching(message: bytes, wanted: frozenset[bytes]) -> tuple[int, bytes] | None:
    """(family, the attributes that name it for a delete) of one dumped entry when its
    original source or destination, or its reply source, is wanted; else None. Pure."""
    if len(message) < _NLMSGHDR.size + _NFGENMSG.size:
        return None
    family = message[_NLMSGHDR.size]
    start, end = _NLMSGHDR.size + _NFGENMSG.size, len(message)
    key, hit = b"", False
    for kind, at, body, stop in _attrs(message, start, end):
        if kind == CTA_TUPLE_ORIG:
            src, dst = _addresses(message, body, stop)
            hit |= src in wanted or dst in wanted
            key += message[at:stop] + b"\0" * (_align(stop - at) - (stop - at))
        elif kind == CTA_TUPLE_REPLY:
            src, _dst = _addresses(message, body, stop)
            hit |= src in wanted
        elif kind == CTA_ZONE:
            key += message[at:stop] + b"\0" * (_align(stop - at) - (stop - at))
    return (family, key) if hit and key else None


def _request(kind: int, flags: int, family: int, attrs: bytes, seq: int) -> bytes:
    body = _NFGENMSG.pack(family, 0, 0) + attrs
    msg_type = (NFNL_SUBSYS_CTNETLINK << 8) | kind
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), msg_type, NLM_F_REQUEST | flags, seq,
                          0) + body


def _messages(sock: socket.socket, seq: int) -> Iterator[bytes]:
    """The replies to request `seq` until NLMSG_DONE (a dump) or its NLMSG_ERROR (an ack,
    raised as ConntrackError when it carries an error)."""
    while True:
        data = sock.recv(1 << 16)
        offset = 0
        while offset + _NLMSGHDR.size <= len(data):
            length, kind, _flags, got_seq, _pid = _NLMSGHDR.unpack_from(data, offset)
            if length < _NLMSGHDR.size:
                return
            if got_seq == seq:
                if kind == NLMSG_DONE:
                    return
                if kind == NLMSG_ERROR:
                    code = -_ERRNO.unpack_from(data, offset + _NLMSGHDR.size)[0]
                    if code:
                        raise ConntrackError(code, os.strerror(code))
                    return
                yield data[offset:offset + length]
            offset += _align(length)


def delete_entries(addresses: Iterable[str]) -> int:
    """Delete the entries from, to and DNATed to `addresses` (IPv4 or IPv6); how many."""
    wanted = frozenset(ipaddress.ip_address(a).packed for a in addresses)
    if not wanted:
        return 0
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                             NETLINK_NETFILTER)
    except OSError as e:
        raise ConntrackError(e.errno, f"open ctnetlink: {e.strerror}") from None
    with sock:
        sock.bind((0, 0))
        sock.sendall(_request(IPCTNL_MSG_CT_GET, NLM_F_DUMP, socket.AF_UNSPEC, b"", 1))
        found = [hit for message in _messages(sock, 1)
                 if (hit := matching(message, wanted)) is not None]
        deleted = 0
        for seq, (family, key) in enumerate(found, start=2):
            sock.sendall(_request(IPCTNL_MSG_CT_DELETE, NLM_F_ACK, family, key, seq))
            try:
                for _ in _messages(sock, seq):
                    pass
            except ConntrackError as e:
                if e.errno != errnos.ENOENT:
                    raise
                continue
            deleted += 1
        return deleted
