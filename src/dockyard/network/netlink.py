"""Netlink plumbing for the bridge driver: bridges, network namespaces, veth pairs.

A small typed wrapper over pyroute2's `IPRoute`: the driver computes a `BridgeSpec` or a
`VethSpec` (pure data) and one function here performs it. Every failure, whether netlink,
mount or /proc/sys, is a `NetlinkError` carrying the operation, the object and errno;
pyroute2's own exceptions never reach a caller.

Network namespaces are files, as containerd and docker make them: a fresh namespace is
bind-mounted at a path the caller chooses (e.g. ``<exec-root>/netns/<id>``), so it outlives
the thread that made it. The runtime joins it through the OCI spec's namespace path, so it
must exist (with ``lo`` up and eth0 configured) before the container starts::

    create_netns(path)              thread: unshare(CLONE_NEWNET)
                                    mount --bind /proc/thread-self/ns/net <path>
                                    ip link set lo up;  the thread then exits
    create_veth(VethSpec(...))      host:  ip link add <host> master <bridge> mtu M
                                              type veth peer eth0 address <mac> netns <path>
                                    ns:    addresses; up; default routes via the gateways
                                    host:  <host> up
    delete_veth(host)               deleting either end deletes both
    delete_netns(path)              umount2(path, MNT_DETACH); unlink(path)

Work inside a namespace runs on a short-lived thread that `setns`es into it: a netlink socket
stays in the namespace it was created in, and the thread (never the process) changes
namespace, so the rest of the daemon is unaffected. No process is forked. Every function
blocks (a few netlink round trips): the asyncio engine calls them via `asyncio.to_thread`.

The bind mount is private to the engine's mount namespace (no shared propagation of the
netns directory as iproute2 does for /run/netns): only the engine and the runtime it starts
need the path.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno as errnos
import fcntl
import ipaddress
import os
import socket
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError as _PyrouteNetlinkError

Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
T = TypeVar("T")

IFNAMSIZ = 16  # including the terminating NUL: names have at most 15 characters
CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MNT_DETACH = 2
IFA_F_NODAD = 0x02
AF_INET = 2
AF_INET6 = 10


class NetlinkError(Exception):
    """A netlink, namespace or sysctl operation failed.

    `op` names the operation ("add bridge", "create netns", ...), `target` the link name or
    path, `errno` the error number (None when the failure is not a system error), and the
    message reads like "add bridge dyt0: File exists".
    """

    def __init__(self, op: str, target: str, err: int | None, detail: str = "") -> None:
        self.op = op
        self.target = target
        self.errno = err
        self.strerror = detail or (os.strerror(err) if err else "failed")
        super().__init__(f"{op} {target}: {self.strerror}")


@dataclass(frozen=True)
class BridgeSpec:
    """A bridge: its name, MTU and gateway addresses (IPv4 and/or IPv6, with prefix)."""

    name: str
    mtu: int = 1500
    addresses: tuple[Interface, ...] = ()


@dataclass(frozen=True)
class VethSpec:
    """A veth pair: `host` on `bridge`; its peer moved into the namespace at `netns`,
    renamed `peer_name`, with `mac`, `addresses` and default routes via `gateways`."""

    host: str
    bridge: str
    netns: Path
    peer_name: str = "eth0"
    mtu: int = 1500
    mac: str | None = None
    addresses: tuple[Interface, ...] = ()
    gateways: tuple[Address, ...] = ()


# -- errors ------------------------------------------------------------------------------


@contextlib.contextmanager
def _failing(op: str, target: str | os.PathLike[str]) -> Iterator[None]:
    """Translate pyroute2's and the OS's exceptions into a NetlinkError for `op`."""
    try:
        yield
    except NetlinkError:
        raise
    except _PyrouteNetlinkError as e:
        code = abs(e.code) if isinstance(e.code, int) else None
        raise NetlinkError(op, str(target), code) from None
    except OSError as e:
        raise NetlinkError(op, str(target), e.errno, e.strerror or "") from None
    except (ValueError, TypeError, KeyError, TimeoutError) as e:  # pyroute2 argument errors
        raise NetlinkError(op, str(target), None, str(e) or type(e).__name__) from None


def _check_name(op: str, name: str) -> None:
    if not name or len(name) >= IFNAMSIZ or "/" in name or name.strip() != name:
        raise NetlinkError(op, name, errnos.EINVAL,
                           f"invalid interface name {name!r} (1-{IFNAMSIZ - 1} characters)")


# -- system calls (Python 3.11's os lacks setns, unshare and mount) ----------------------

_libc = ctypes.CDLL(None, use_errno=True)


def _syscall_check(ret: int, op: str, target: str) -> None:
    if ret != 0:
        raise NetlinkError(op, target, ctypes.get_errno())


def _unshare_net() -> None:
    _syscall_check(_libc.unshare(CLONE_NEWNET), "unshare", "CLONE_NEWNET")


def _setns(fd: int, path: str) -> None:
    _syscall_check(_libc.setns(fd, CLONE_NEWNET), "setns", path)


def _bind_mount(source: str, target: str) -> None:
    ret = _libc.mount(source.encode(), target.encode(), None, MS_BIND, None)
    _syscall_check(ret, "bind mount netns at", target)


def _detach(target: str) -> None:
    _syscall_check(_libc.umount2(target.encode(), MNT_DETACH), "unmount netns", target)


SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def _loopback_up() -> None:
    """`ip link set lo up` in the calling thread's namespace, by ioctl: no netlink socket
    (an IPRoute costs ~1 ms to open and query) for one flag."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = struct.pack("16sh22x", b"lo", 0)
        flags = struct.unpack("16sh22x", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, ifr))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", flags | IFF_UP))


def _on_thread(fn: Callable[[], T]) -> T:
    """Run fn on a fresh OS thread that exits afterwards (taking any namespace with it)."""
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as e:
            error.append(e)

    thread = threading.Thread(target=run, name="dockyard-netns")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def in_netns(path: str | os.PathLike[str], fn: Callable[[], T]) -> T:
    """Run fn inside the network namespace at `path` (on its own thread) and return its
    result. Sockets fn creates stay in that namespace."""
    target = os.fspath(path)
    with _failing("open netns", target):
        fd = os.open(target, os.O_RDONLY | os.O_CLOEXEC)

    def enter_and_run() -> T:
        try:
            _setns(fd, target)
        finally:
            os.close(fd)
        return fn()

    return _on_thread(enter_and_run)


# -- links (shared by bridges and veths) -------------------------------------------------


def _index(name: str) -> int | None:
    """The index of link `name` in the calling thread's namespace, None if there is none:
    one ioctl (SIOCGIFINDEX), where pyroute2's link_lookup dumps every link of the host
    and parses them in Python (~1 ms, more with every container)."""
    try:
        return socket.if_nametoindex(name)
    except OSError:  # "no interface with this name" (if_nametoindex gives no errno)
        return None


def _require(op: str, name: str) -> int:
    index = _index(name)
    if index is None:
        raise NetlinkError(op, name, errnos.ENODEV, "no such link")
    return index


def _kind(ipr: IPRoute, index: int) -> str | None:
    link = ipr.link("get", index=index)[0]
    info = link.get_attr("IFLA_LINKINFO")
    return info.get_attr("IFLA_INFO_KIND") if info is not None else None


def _add_addresses(ipr: IPRoute, index: int, addresses: Sequence[Interface]) -> None:
    """Add each address (no duplicate address detection: the engine owns the subnet);
    an address already there is kept."""
    for iface in addresses:
        try:
            ipr.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen,
                     family=AF_INET6 if iface.version == 6 else AF_INET,
                     flags=IFA_F_NODAD if iface.version == 6 else 0)
        except _PyrouteNetlinkError as e:
            if e.code != errnos.EEXIST:
                raise


def link_exists(name: str, netns: str | os.PathLike[str] | None = None) -> bool:
    """Whether a link called `name` exists on the host (or in the namespace at `netns`)."""
    def lookup() -> bool:
        with _failing("look up link", name):
            return _index(name) is not None

    return lookup() if netns is None else in_netns(netns, lookup)


def _delete_link(op: str, name: str, missing_ok: bool) -> None:
    with _failing(op, name):
        index = _index(name)
        if index is None:
            if missing_ok:
                return
            raise NetlinkError(op, name, errnos.ENODEV, "no such link")
        with IPRoute() as ipr:
            ipr.link("del", index=index)


# -- bridges -----------------------------------------------------------------------------


def bridge_exists(name: str) -> bool:
    """Whether a bridge called `name` exists on the host."""
    with _failing("look up bridge", name):
        index = _index(name)
        if index is None:
            return False
        with IPRoute() as ipr:
            return _kind(ipr, index) == "bridge"


def ensure_bridge(spec: BridgeSpec) -> None:
    """Make the bridge exist, with its MTU and addresses, and up. An existing bridge is
    kept (missing addresses are added); an existing link of another kind is an error."""
    op = "ensure bridge"
    _check_name(op, spec.name)
    with _failing(op, spec.name), IPRoute() as ipr:
        index = _index(spec.name)
        if index is None:
            ipr.link("add", ifname=spec.name, kind="bridge")
            index = _require(op, spec.name)
        elif _kind(ipr, index) != "bridge":
            raise NetlinkError(op, spec.name, errnos.EEXIST, "a link of another kind exists")
        # Set after creation, so the kernel counts it as chosen and keeps it as ports join.
        ipr.link("set", index=index, mtu=spec.mtu)
        _add_addresses(ipr, index, spec.addresses)
        ipr.link("set", index=index, state="up")


def delete_bridge(name: str, *, missing_ok: bool = False) -> None:
    """Delete the bridge (its ports are released, not deleted)."""
    with _failing("delete bridge", name), IPRoute() as ipr:
        index = _index(name)
        if index is not None and _kind(ipr, index) != "bridge":
            raise NetlinkError("delete bridge", name, errnos.EINVAL, "not a bridge")
    _delete_link("delete bridge", name, missing_ok)


# -- network namespaces ------------------------------------------------------------------


def create_netns(path: str | os.PathLike[str],
                 sysctls: Sequence[tuple[str, str]] = ()) -> None:
    """Create a fresh network namespace bound at `path` (its directory is created) with
    `lo` up and `sysctls` (/proc/sys paths, values) written inside. The path must not exist
    yet."""
    target = os.fspath(path)
    op = "create netns"
    with _failing(op, target):
        os.makedirs(os.path.dirname(target) or ".", mode=0o711, exist_ok=True)
        os.close(os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444))

    def make() -> None:
        _unshare_net()
        _bind_mount("/proc/thread-self/ns/net", target)
        with _failing("set lo up in netns", target):
            _loopback_up()
        for key, value in sysctls:
            with _failing("write sysctl", key), open(key, "w") as f:
                f.write(value)

    try:
        _on_thread(make)
    except BaseException:
        with contextlib.suppress(NetlinkError):
            _detach(target)
        with contextlib.suppress(OSError):
            os.unlink(target)
        raise


def attach_netns(pid: int, path: str | os.PathLike[str]) -> None:
    """Bind the network namespace of process `pid` at `path` (as `ip netns attach`)."""
    target = os.fspath(path)
    with _failing("attach netns", target):
        os.makedirs(os.path.dirname(target) or ".", mode=0o711, exist_ok=True)
        os.close(os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444))
    try:
        _bind_mount(f"/proc/{pid}/ns/net", target)
    except NetlinkError:
        os.unlink(target)
        raise


def delete_netns(path: str | os.PathLike[str], *, missing_ok: bool = False) -> None:
    """Unmount and unlink the namespace at `path`. The namespace itself goes when its last
    user (a container's process, an open descriptor) is gone, and its links with it."""
    target = os.fspath(path)
    if not os.path.lexists(target):
        if missing_ok:
            return
        raise NetlinkError("delete netns", target, errnos.ENOENT)
    try:
        _detach(target)
    except NetlinkError as e:
        if e.errno != errnos.EINVAL:  # EINVAL: not a mount point (a half-made namespace)
            raise NetlinkError("delete netns", target, e.errno) from None
    with _failing("delete netns", target):
        os.unlink(target)


# -- veth pairs --------------------------------------------------------------------------


def create_veth(spec: VethSpec) -> None:
    """Create the veth pair of `spec`: the host end on the bridge and up, the peer made
    inside the namespace (never moved there: moving a link waits for the kernel's RCU grace
    periods, ten times the cost of the rest) with its name, MAC, addresses and default
    routes, and up. Nothing is left behind if a step fails."""
    op = "create veth"
    for name in (spec.host, spec.peer_name):
        _check_name(op, name)
    netns = os.fspath(spec.netns)
    if not os.path.exists(netns):
        raise NetlinkError(op, spec.host, errnos.ENOENT, f"no network namespace at {netns}")
    created = False
    try:
        with _failing(op, spec.host), IPRoute() as ipr:
            bridge = _index(spec.bridge)
            if bridge is None:
                raise NetlinkError(op, spec.host, errnos.ENODEV, f"no bridge {spec.bridge}")
            if _index(spec.host) is not None:
                raise NetlinkError(op, spec.host, errnos.EEXIST)
            _add_veth(ipr, spec, netns, bridge)
            created = True
            in_netns(netns, lambda: _configure_peer(spec))
            ipr.link("set", index=_require(op, spec.host), state="up")
    except BaseException:
        if created:
            with contextlib.suppress(NetlinkError):
                _delete_link(op, spec.host, missing_ok=True)
        raise


def _add_veth(ipr: IPRoute, spec: VethSpec, netns: str, bridge: int) -> None:
    """The pair, its peer made in the namespace. The kernel's EEXIST names no side: when
    the host's end is free (checked before), the namespace already has the peer's name
    (looked up only then: a thread into the namespace, not paid on every create)."""
    fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        peer: dict[str, Any] = {"ifname": spec.peer_name, "mtu": spec.mtu, "net_ns_fd": fd}
        if spec.mac:
            peer["address"] = spec.mac
        ipr.link("add", ifname=spec.host, kind="veth", mtu=spec.mtu, master=bridge,
                 peer=peer)
    except _PyrouteNetlinkError as e:
        if e.code == errnos.EEXIST and _index(spec.host) is None \
                and link_exists(spec.peer_name, netns):
            raise NetlinkError("create veth", spec.peer_name, errnos.EEXIST,
                               "a link with this name already exists in the namespace") from None
        raise
    finally:
        os.close(fd)


def _configure_peer(spec: VethSpec) -> None:
    if any(a.version == 6 for a in spec.addresses):  # whatever the namespace's default says
        with _failing("enable IPv6", spec.peer_name), \
                open(f"/proc/sys/net/ipv6/conf/{spec.peer_name}/disable_ipv6", "w") as f:
            f.write("0")
    with _failing("configure veth peer", spec.peer_name), IPRoute() as ipr:
        index = _require("configure veth peer", spec.peer_name)
        _add_addresses(ipr, index, spec.addresses)
        ipr.link("set", index=index, state="up")
        for gateway in spec.gateways:
            family = AF_INET6 if gateway.version == 6 else AF_INET
            ipr.route("add", dst="default", family=family, gateway=str(gateway), oif=index)


def delete_veth(host: str, *, missing_ok: bool = False) -> None:
    """Delete the veth pair by its host end (its peer goes with it)."""
    _delete_link("delete veth", host, missing_ok)


# -- sysctls: these change the host ------------------------------------------------------


def _write_sysctl(path: str, value: str, netns: str | os.PathLike[str] | None) -> None:
    """Write /proc/sys/<path>; /proc/sys/net shows the namespace of the thread opening it."""
    def write() -> None:
        with _failing("write sysctl", path), open(path, "w") as f:
            f.write(value)

    if netns is None:
        write()
    else:
        in_netns(netns, write)


def enable_ipv4_forwarding(netns: str | os.PathLike[str] | None = None) -> None:
    """Set net.ipv4.ip_forward=1. On the host this changes the whole machine (it routes for
    every interface from then on): call it only when the daemon's configuration asks."""
    _write_sysctl("/proc/sys/net/ipv4/ip_forward", "1", netns)


def enable_route_localnet(bridge: str, netns: str | os.PathLike[str] | None = None) -> None:
    """Set net.ipv4.conf.<bridge>.route_localnet=1, so that 127.0.0.0/8 may be routed to and
    from the bridge (needed to DNAT published ports on localhost). This weakens the host's
    loopback isolation on that bridge: call it only when asked."""
    _check_name("enable route_localnet", bridge)
    _write_sysctl(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet", "1", netns)
