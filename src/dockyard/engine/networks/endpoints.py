"""A container's place on its networks: its sandbox (network namespace), one endpoint per
network, its published ports and, on user-defined networks, its embedded DNS server.

Made at each start, before the task exists (the runtime joins the sandbox by path), and
undone at each exit, as dockerd releases a stopped container's addresses and ports:

    attach   the sandbox is made; addresses (IPAM, persisted) taken under the service's
             lock, the DNS names registered, hosts/resolv.conf written (the task bind-mounts
             them), everything recorded in the container's NetworkSettings; then, while the
             task is being created, the rest: a veth per network, host ports (held sockets)
             and the firewall recomputed when ports are published, a resolver bound to
             127.0.0.11:53 inside the sandbox
    ready    waits for that rest: the task starts only once it is done (its process never
             runs without its network), and a failure there fails the start
    detach   the same, backwards; each step tolerates what is already gone, so a detach
             after a crash, a kill -9 or a half-made attach leaves nothing; the released
             addresses' connection-tracking entries go FORGET_DELAY later (`forget`)
    restore  after a daemon restart, for a container still running: its addresses and
             ports taken again exactly, its names and resolver back; for one that is not,
             a detach

Endpoint names: the host end of a veth is `veth` + the endpoint ID's first 7 hex digits, so
the container's record alone says what to delete.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockyard.engine.errors import (
    EngineError,
    Forbidden,
    InvalidParameter,
    with_status,
)
from dockyard.engine.networks import plumbing, ports
from dockyard.engine.networks.model import Network
from dockyard.network import ipam, netlink

if TYPE_CHECKING:
    from dockyard.engine.containers.model import Container
    from dockyard.engine.networks.service import NetworkService

log = logging.getLogger("dockyard.engine")
DNS_ADDRESS = "127.0.0.11"
FORGET_DELAY = 0.25  # seconds from a release to the deletion of its conntrack entries
SHARED_MODES = ("host", "none")


def veth_name(endpoint_id: str) -> str:
    return "veth" + endpoint_id[:7]


def bridged(c: Container) -> bool:
    """Whether the container gets a sandbox of its own on bridge networks."""
    mode = c.host_config.get("NetworkMode") or "default"
    return mode not in SHARED_MODES and not mode.startswith("container:")


def configured(c: Container) -> dict[str, dict[str, Any]]:
    """The networks the container is to be on (name -> EndpointSettings as given at create
    or connect), its NetworkMode's first."""
    mode = c.host_config.get("NetworkMode") or "default"
    first = "bridge" if mode == "default" else mode
    given = dict((c.networking_config or {}).get("EndpointsConfig") or {})
    out = {first: given.pop(first, None) or given.pop("default", None) or {}}
    out.update({name: cfg or {} for name, cfg in given.items()})
    return out


def check_config(host_config: dict[str, Any], networking_config: dict[str, Any]) -> None:
    """What dockerd refuses at create: addresses and aliases on networks that have no
    such thing (the default bridge, host, none)."""
    mode = host_config.get("NetworkMode") or "default"
    for name, cfg in ((networking_config or {}).get("EndpointsConfig") or {}).items():
        cfg = cfg or {}
        ipam_cfg = cfg.get("IPAMConfig") or {}
        predefined = name in ("bridge", "host", "none", "default") or (
            name == mode and mode in ("bridge", "default"))
        if not predefined:
            continue
        if ipam_cfg.get("IPv4Address") or ipam_cfg.get("IPv6Address"):
            raise InvalidParameter("user specified IP address is supported on user defined "
                                   "networks only")
        if cfg.get("Aliases"):
            raise InvalidParameter("network-scoped alias is supported only for containers "
                                   "in user defined networks")


class Endpoints:
    def __init__(self, service: NetworkService) -> None:
        self.service = service
        self.resolvers: dict[str, Any] = {}  # container id -> its DNSServer
        self.background: set[asyncio.Task[None]] = set()
        self.plumbing: dict[str, asyncio.Task[None]] = {}  # container id -> attach's rest
        self.forgetting: set[str] = set()  # released; their conntrack entries not deleted yet
        self.forget_lock = asyncio.Lock()

    @property
    def netns_dir(self) -> Path:
        return Path(self.service.daemon.exec_root) / "netns"

    # -- attach ------------------------------------------------------------------------

    async def attach(self, c: Container) -> str | None:
        """Make the container's sandbox, take its addresses and write its files; start
        making the rest (module docstring), which `ready` waits for. The sandbox path for its
        spec (None for host, none and container:<id>, whose namespaces the spec sets up
        itself)."""
        if c.network_settings:  # a previous run's, not released yet
            await self.detach(c)
        if not bridged(c):
            return None
        svc = self.service
        wanted = [(svc.find_for_container(name), cfg) for name, cfg in configured(c).items()]
        path = str(self.netns_dir / c.id)
        settings: dict[str, Any] = {"SandboxID": secrets.token_hex(32), "SandboxKey": path,
                                    "Ports": {}, "Networks": {}}
        c.network_settings = settings
        try:
            await asyncio.to_thread(plumbing.sandbox_up, path)
            links = []
            for index, (net, cfg) in enumerate(wanted):
                links.append(await self._address(c, net, cfg, index))
                self._names(c, net, cfg)
            await asyncio.to_thread(self.service.write_files, c)
            self.plumbing[c.id] = asyncio.create_task(
                self._plumb(c, links, wanted[0][0] if wanted else None))
        except BaseException:
            with contextlib.suppress(Exception):
                await self.detach(c)
            raise
        return path

    async def _plumb(self, c: Container, links: list[tuple[Any, ...]],
                     first: Network | None) -> None:
        """What attach leaves to be done while the task is made: links, ports, resolver."""
        await asyncio.to_thread(_links_up, links)
        await self._publish(c, first)
        await self._resolver(c)

    async def ready(self, c: Container) -> None:
        """Wait for the rest of attach; its error, if it failed (the caller detaches).
        Cancelled, the rest goes on, and a detach waits for it."""
        task = self.plumbing.get(c.id)
        if task is None:
            return
        await asyncio.wait([task])
        self.plumbing.pop(c.id, None)
        task.result()

    async def _settle(self, c: Container) -> None:
        """Let the rest of an attach finish, whatever its outcome, before undoing it: its
        threads cannot be interrupted half way."""
        task = self.plumbing.pop(c.id, None)
        if task is not None:
            await asyncio.wait([task])
            if not task.cancelled():
                task.exception()  # retrieved: the caller of ready, if any, saw it

    async def _endpoint(self, c: Container, net: Network, cfg: dict[str, Any],
                        index: int) -> dict[str, Any]:
        """Address, veth and names of `c` on `net` (its index-th network: eth<index>)."""
        link = await self._address(c, net, cfg, index)
        await asyncio.to_thread(_links_up, [link])
        return self._names(c, net, cfg)

    async def _address(self, c: Container, net: Network, cfg: dict[str, Any],
                       index: int) -> tuple[Any, ...]:
        """The addresses of `c` on `net` taken and recorded in its NetworkSettings; the
        arguments of plumbing.endpoint_up that makes its link, eth<index>."""
        svc = self.service
        if net.driver != "bridge":
            raise Forbidden(f"container cannot be connected to network {net.name} of "
                            f"driver {net.driver}")
        if net.name in c.network_settings["Networks"]:
            raise Forbidden(f"endpoint with name {c.name} already exists in network "
                            f"{net.name}")
        ipam_cfg = cfg.get("IPAMConfig") or {}
        if (ipam_cfg.get("IPv4Address") or ipam_cfg.get("IPv6Address")) and \
                not net.subnets_given:
            raise InvalidParameter("user specified IP address is supported only when "
                                   "connecting to networks with user configured subnets")
        endpoint: dict[str, Any] = {
            "IPAMConfig": ipam_cfg or None, "Links": cfg.get("Links") or None,
            "Aliases": cfg.get("Aliases") or None, "MacAddress": "", "DriverOpts":
            cfg.get("DriverOpts") or None, "GwPriority": 0, "NetworkID": net.id,
            "EndpointID": secrets.token_hex(32), "Gateway": "", "IPAddress": "",
            "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "DNSNames": None}
        interfaces: list[plumbing.Interface] = []
        gateways: list[plumbing.Address] = []
        async with svc.lock:
            try:
                for subnet in net.subnets():
                    v6 = subnet.version == 6
                    if v6 and not net.ipv6:
                        continue
                    want = ipam_cfg.get("IPv6Address" if v6 else "IPv4Address") or None
                    addr = svc.ipam.request_address(subnet, want)
                    gw = next(p.gateway for p in svc.ipam.pools() if p.subnet == subnet)
                    interfaces.append(ipaddress.ip_interface(f"{addr}/{subnet.prefixlen}"))
                    gateways.append(gw)
                    if v6:
                        endpoint.update(GlobalIPv6Address=str(addr), IPv6Gateway=str(gw),
                                        GlobalIPv6PrefixLen=subnet.prefixlen)
                    else:
                        endpoint.update(IPAddress=str(addr), Gateway=str(gw),
                                        IPPrefixLen=subnet.prefixlen,
                                        MacAddress=cfg.get("MacAddress")
                                        or ipam.mac_address(addr))
            except ipam.IpamError as e:
                self._release_addresses(endpoint)
                raise with_status(e.status, e.message) from None
        c.network_settings["Networks"][net.name] = endpoint
        await self._forget_before_reuse([a for _, a in held(endpoint)])
        routed = not net.internal and not any(
            e.get("Gateway") and n != net.name for n, e in c.network_settings["Networks"].items()
            if not svc.find_for_container(n).internal)
        return (veth_name(endpoint["EndpointID"]), net.bridge, c.network_settings["SandboxKey"],
                f"eth{index}", net.mtu, endpoint["MacAddress"] or None, interfaces,
                gateways if routed else [])

    def _names(self, c: Container, net: Network, cfg: dict[str, Any]) -> dict[str, Any]:
        """The DNS names of `c` on a user-defined `net`; its endpoint."""
        endpoint = c.network_settings["Networks"][net.name]
        if net.user_defined:
            names = [c.name, *(cfg.get("Aliases") or []), c.id[:12]]
            endpoint["DNSNames"] = list(dict.fromkeys(names))
            self._register(c, net, endpoint)
        return endpoint

    def _register(self, c: Container, net: Network, endpoint: dict[str, Any]) -> None:
        table = self.service.names
        table.set_domain(net.id, net.name)
        addresses = [a for _, a in held(endpoint)]
        for name in endpoint.get("DNSNames") or []:
            table.add(net.id, name, addresses)
        for link in c.host_config.get("Links") or []:
            target, alias = parse_link(link)
            with contextlib.suppress(EngineError):
                other = self.service.daemon.containers.lookup(target)
                theirs = (other.network_settings.get("Networks") or {}).get(net.name) or {}
                if theirs.get("IPAddress"):
                    table.add(f"links:{c.id}", alias, [theirs["IPAddress"]], ptr=False)

    def _unregister(self, c: Container, net_id: str, endpoint: dict[str, Any]) -> None:
        addresses = [a for _, a in held(endpoint)]
        for name in endpoint.get("DNSNames") or []:
            self.service.names.remove(net_id, name, addresses)

    async def _publish(self, c: Container, net: Network | None) -> None:
        """Hold the host ports and DNAT them to the first network's address."""
        reqs = ports.requests(c.config, c.host_config)
        if not reqs or net is None:
            return
        endpoint = c.network_settings["Networks"][net.name]
        svc = self.service
        async with svc.lock:
            try:
                held = svc.ports.allocate(c.id, reqs,
                                          ipv6=bool(endpoint["GlobalIPv6Address"]),
                                          container_ip=endpoint["IPAddress"],
                                          container_ip6=endpoint["GlobalIPv6Address"])
            except EngineError as e:
                raise EngineError(f"failed to set up container networking: driver failed "
                                  f"programming external connectivity on endpoint {c.name} "
                                  f"({endpoint['EndpointID']}): {e.message}") from None
        c.network_settings["Ports"] = ports.ports_document(c.config, held)
        await svc.reconcile_firewall()

    async def _resolver(self, c: Container) -> None:
        """The container's DNS server, inside its sandbox, for its user-defined networks."""
        from dockyard.network import dns

        svc = self.service
        nets = [svc.find_for_container(n) for n in c.network_settings["Networks"]]
        ids = [n.id for n in nets if n.user_defined]
        if not ids:
            return
        server = dns.DNSServer(svc.names, networks=[f"links:{c.id}", *ids],
                               upstreams=[dns.Upstream(a) for a in svc.upstreams(c)])
        udp, tcp = await asyncio.to_thread(netlink.in_netns, c.network_settings["SandboxKey"],
                                           _bind_resolver)
        try:
            await server.start(udp_sock=udp, tcp_sock=tcp)
        except BaseException:
            udp.close()
            tcp.close()
            raise
        self.resolvers[c.id] = server

    # -- detach ------------------------------------------------------------------------

    async def detach(self, c: Container) -> None:
        """Undo attach; what is already gone is skipped."""
        await self._settle(c)
        settings = c.network_settings
        if not settings:
            return
        server = self.resolvers.pop(c.id, None)
        if server is not None:
            with contextlib.suppress(Exception):
                await server.close()
        self.service.names.remove_network(f"links:{c.id}")
        svc = self.service
        addresses = [a for e in (settings.get("Networks") or {}).values()
                     for _, a in held(e)]
        async with svc.lock:
            published = bool(svc.ports.held(c.id))
            svc.ports.release(c.id)
            for endpoint in (settings.get("Networks") or {}).values():
                self._unregister(c, endpoint.get("NetworkID", ""), endpoint)
                self._release_addresses(endpoint)
        path = settings.get("SandboxKey") or str(self.netns_dir / c.id)
        with contextlib.suppress(netlink.NetlinkError):
            await asyncio.to_thread(plumbing.sandbox_down, path)
        self.forget(addresses)
        c.network_settings = {}
        if published:
            await svc.reconcile_firewall()

    def forget(self, addresses: list[str]) -> None:
        """The connection-tracking entries of released addresses, deleted in the background
        (plumbing.forget_connections), FORGET_DELAY later, with those of every address
        released meanwhile: each deletion walks the kernel's whole table (~10 ms of CPU
        that nothing can interrupt, the same for one address or many), so it waits until the
        exit that released them (and its `docker run --rm`) is done, and serves a burst of
        exits with one walk. An address handed out again before that waits for it
        (`_forget_before_reuse`). The service waits for these at close."""
        if not addresses:
            return
        self.forgetting.update(addresses)
        task = asyncio.create_task(self._forget_after(FORGET_DELAY))
        self.background.add(task)
        task.add_done_callback(self._forgotten)

    async def _forget_after(self, delay: float) -> None:
        """Delete the entries of every address waiting for it (none: nothing to do)."""
        await asyncio.sleep(delay)
        async with self.forget_lock:
            batch = sorted(self.forgetting)
            if not batch:
                return
            try:
                await asyncio.to_thread(plumbing.forget_connections, batch)
            finally:  # done, or failed (logged): either way not waited for again
                self.forgetting.difference_update(batch)

    async def _forget_before_reuse(self, addresses: list[str]) -> None:
        """Before addresses are used again: their old entries deleted, now if not yet."""
        if any(a in self.forgetting for a in addresses):
            try:
                await self._forget_after(0)
            except netlink.NetlinkError as e:
                log.warning("deleting connection-tracking entries: %s", e)

    def _forgotten(self, task: asyncio.Task[None]) -> None:
        self.background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("deleting connection-tracking entries: %s", task.exception())

    def _release_addresses(self, endpoint: dict[str, Any]) -> None:
        for subnet, address in held(endpoint):
            with contextlib.suppress(ipam.IpamError):
                self.service.ipam.release_address(subnet, address)

    # -- connect / disconnect a running container ---------------------------------------

    async def connect(self, c: Container, net: Network, cfg: dict[str, Any]) -> None:
        index = len(c.network_settings.get("Networks") or {})
        # the next free eth<N>: names of disconnected endpoints are not reused
        used = {int(n[3:]) for n in await asyncio.to_thread(
            _links_in, c.network_settings["SandboxKey"]) if n[3:].isdigit()}
        while index in used:
            index += 1
        await self._endpoint(c, net, cfg, index)
        server = self.resolvers.get(c.id)
        if server is not None:
            if net.user_defined:
                server.networks = [*server.networks, net.id]
        else:
            await self._resolver(c)
        await asyncio.to_thread(self.service.write_files, c)

    async def disconnect(self, c: Container, net: Network) -> None:
        endpoint = c.network_settings["Networks"].pop(net.name)
        svc = self.service
        async with svc.lock:
            self._unregister(c, net.id, endpoint)
            self._release_addresses(endpoint)
        with contextlib.suppress(netlink.NetlinkError):
            await asyncio.to_thread(plumbing.endpoint_down, veth_name(endpoint["EndpointID"]))
        self.forget([a for _, a in held(endpoint)])
        server = self.resolvers.get(c.id)
        if server is not None:
            server.networks = [n for n in server.networks if n != net.id]
        await asyncio.to_thread(self.service.write_files, c)

    # -- after a daemon restart ----------------------------------------------------------

    async def restore(self, c: Container) -> None:
        """Take back what a running container holds; a stopped one's leftovers go."""
        if not c.network_settings:
            return
        if not c.state.running:
            await self.detach(c)
            return
        svc = self.service
        async with svc.lock:
            for name, endpoint in (c.network_settings.get("Networks") or {}).items():
                for subnet, address in held(endpoint):
                    with contextlib.suppress(ipam.IpamError):
                        svc.ipam.request_address(subnet, address)
                with contextlib.suppress(EngineError):
                    net = svc.find_for_container(name)
                    if net.user_defined:
                        self._register(c, net, endpoint)
            svc.ports.restore(c.id, bindings_of(c.network_settings.get("Ports") or {}))
        with contextlib.suppress(Exception):
            await self._resolver(c)

    def in_use(self) -> dict[str, set[str]]:
        """Subnet -> addresses the running containers hold (the IPAM's reconcile)."""
        out: dict[str, set[str]] = {}
        for c in self.service.containers():
            for endpoint in (c.network_settings.get("Networks") or {}).values():
                for subnet, address in held(endpoint):
                    out.setdefault(str(subnet), set()).add(address)
        return out


def held(endpoint: dict[str, Any]) -> list[tuple[Any, str]]:
    """(subnet, address) of each address an endpoint holds, IPv4 then IPv6."""
    out = []
    for key, plen in (("IPAddress", "IPPrefixLen"), ("GlobalIPv6Address", "GlobalIPv6PrefixLen")):
        if endpoint.get(key):
            out.append((ipaddress.ip_interface(f"{endpoint[key]}/{endpoint[plen]}").network,
                        endpoint[key]))
    return out


def bindings_of(doc: dict[str, Any]) -> list[ports.Binding]:
    """The bindings a NetworkSettings.Ports document records."""
    out: list[ports.Binding] = []
    for key, entries in doc.items():
        port, _, proto = key.partition("/")
        for entry in entries or []:
            out.append(ports.Binding(proto=proto or "tcp", container_port=int(port),
                                     host_ip=entry.get("HostIp") or "0.0.0.0",
                                     host_port=int(entry["HostPort"])))
    return out


def parse_link(link: str) -> tuple[str, str]:
    """("other", "alias") of "other:alias", "/other:/me/alias" or "other"."""
    name, _, alias = link.partition(":")
    name = name.lstrip("/")
    alias = alias.rsplit("/", 1)[-1] if alias else name
    return name, alias


def _links_up(links: list[tuple[Any, ...]]) -> None:
    for link in links:
        plumbing.endpoint_up(*link)


def _bind_resolver() -> tuple[socket.socket, socket.socket]:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        udp.bind((DNS_ADDRESS, 53))
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind((DNS_ADDRESS, 53))
    except BaseException:
        udp.close()
        tcp.close()
        raise
    return udp, tcp


def _links_in(netns: str) -> list[str]:
    from pyroute2 import IPRoute

    def names() -> list[str]:
        with IPRoute() as ipr:
            return [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()]

    return netlink.in_netns(netns, names)

