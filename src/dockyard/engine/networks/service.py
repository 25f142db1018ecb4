"""NetworkService: the networks the API lists, inspects, creates, connects, removes and
prunes, and the host state behind them.

Drivers: `bridge` (the default network and user-defined ones), `host` and `null` (one each,
predefined). What a network is made of on the host:

    IPAM        <data-root>/network/ipam/local.json   its subnet, gateway and addresses
    record      <data-root>/network/networks/<id>.json (user-defined networks)
    bridge      its Linux bridge, with the gateway addresses
    firewall    its chains in the one nftables table (`nft-table`), with every published port

At start every network's bridge is made (again) and the firewall computed from what exists;
containers' endpoints come back with the containers (endpoints.py). A daemon that stops
without live-restore takes its bridges and its table down: the host keeps nothing of ours.
Create writes the IPAM pool, then the record, then the bridge; rm goes backwards; a crash
in between leaves at most a pool without a record, which the next start frees.

This module orchestrates; the checks are elsewhere: a create body in createbody.py, the list
and prune filters in filters.py, published ports in ports.py and their host ports in
portalloc.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dockyard.engine.containers.views import network_name
from dockyard.engine.errors import (
    Conflict,
    EngineError,
    Forbidden,
    InvalidParameter,
    NotFound,
    with_status,
)
from dockyard.engine.networks import filters as netfilters
from dockyard.engine.networks import plumbing, portalloc, ports, predefined
from dockyard.engine.networks.createbody import parse_create
from dockyard.engine.networks.endpoints import Endpoints, bridged, configured
from dockyard.engine.networks.model import Network
from dockyard.fsutil import write_atomic
from dockyard.network import ipam, netlink, nft, nftrules
from dockyard.network.dns import NameTable

log = logging.getLogger("dockyard.engine")


class NetworkService:
    def __init__(self, daemon: Any) -> None:
        self.daemon = daemon
        self.config = daemon.config
        self.root = Path(daemon.data_root) / "network"
        self.networks: list[Network] = predefined.load(self.root, self.config)
        self.lock = asyncio.Lock()  # the IPAM, the held ports, the records
        self._firewall_lock = asyncio.Lock()
        self.names = NameTable()
        self.ports = portalloc.PortAllocator()
        self.endpoints = Endpoints(self)
        self._ipam: ipam.AddressSpace | None = None
        self.started = False

    @property
    def ipam(self) -> ipam.AddressSpace:
        if self._ipam is None:
            pools = [ipam.PoolSpec.parse(p["base"], int(p["size"]))
                     for p in self.config.default_address_pools] or ipam.DEFAULT_POOLS
            self._ipam = ipam.AddressSpace(self.root / "ipam", default_pools=pools)
        return self._ipam

    @property
    def table(self) -> str:
        return self.config.nft_table

    # -- start and stop ------------------------------------------------------------------

    async def start(self) -> None:
        records = self.root / "networks"
        for path in sorted(records.glob("*.json")) if records.is_dir() else []:
            try:
                self.networks.append(Network.from_json(json.loads(path.read_text())))
            except (OSError, ValueError, KeyError) as e:
                log.warning("skipping network record %s: %s", path, e)
        async with self.lock:
            await asyncio.to_thread(self._pools)
        if self.config.ip_forward and any(n.driver == "bridge" for n in self.networks):
            await asyncio.to_thread(plumbing.enable_forwarding)
        for net in self.networks:
            if net.driver == "bridge":
                await asyncio.to_thread(self._bridge_up, net)
        self.started = True
        await self.reconcile_firewall()

    def _pools(self) -> None:
        """Every bridge network's pool in the IPAM; pools of no network freed."""
        space = self.ipam
        for net in self.networks:
            if net.driver != "bridge":
                continue
            if net.predefined:
                net.ipam_config = self._default_bridge_pool()
                continue
            have = {p.subnet for p in space.pools()}
            for cfg in net.ipam_config:
                if ipaddress.ip_network(cfg["Subnet"]) not in have:
                    space.request_pool(cfg["Subnet"], cfg.get("IPRange") or None,
                                       cfg.get("Gateway") or None)
        wanted = {s for n in self.networks for s in n.subnets()}
        for pool in space.pools():
            if pool.subnet not in wanted:
                space.release_pool(pool.subnet)

    def _default_bridge_pool(self) -> list[dict[str, Any]]:
        """The default bridge's subnet: `bip` (gateway/prefix) and `fixed-cidr`, else the
        first free default pool; kept as it was when the configuration is unchanged."""
        space, cfg = self.ipam, self.config
        bip = ipaddress.ip_interface(cfg.bip) if cfg.bip else None
        fixed = cfg.fixed_cidr or None
        pools = [p for p in space.pools() if p.subnet.version == 4]
        mine = self._default_pool_subnet()
        current = next((p for p in pools if str(p.subnet) == mine), None)
        if current is not None and (bip is None or (
                current.subnet == bip.network and current.gateway == bip.ip)):
            return [_config_of(current)]
        if current is not None:
            space.release_pool(current.subnet)
        if bip is not None:
            pool = space.request_pool(str(bip.network), fixed, str(bip.ip))
        else:
            pool = space.request_pool(None, None, None, reserved=plumbing.host_routes())
        write_atomic(self.root / "default-bridge.json",
                     json.dumps({"Subnet": str(pool.subnet)}), sync_dir=True)
        return [_config_of(pool)]

    def _default_pool_subnet(self) -> str:
        try:
            return json.loads((self.root / "default-bridge.json").read_text())["Subnet"]
        except (OSError, ValueError, KeyError, TypeError):
            return ""

    def _bridge_up(self, net: Network) -> None:
        if not net.icc and self.config.iptables:
            plumbing.enable_bridge_netfilter()
        gateways = []
        for cfg in net.ipam_config:
            subnet = ipaddress.ip_network(cfg["Subnet"])
            if subnet.version == 6 and not net.ipv6:
                continue
            gateways.append(ipaddress.ip_interface(f"{cfg['Gateway']}/{subnet.prefixlen}"))
        plumbing.network_up(net.bridge, net.mtu, gateways)

    async def close(self, *, stop_containers: bool = False) -> None:
        for server in list(self.endpoints.resolvers.values()):
            with contextlib.suppress(Exception):
                await server.close()
        self.endpoints.resolvers.clear()
        # live restore: bridges, sandboxes and rules stay with the containers
        if stop_containers and self.started:
            for c in self.containers():
                with contextlib.suppress(Exception):
                    await self.endpoints.detach(c)
            for net in self.networks:
                if net.driver == "bridge":
                    with contextlib.suppress(netlink.NetlinkError):
                        await asyncio.to_thread(plumbing.network_down, net.bridge)
            if self.config.iptables:
                with contextlib.suppress(nft.NftError):
                    await asyncio.to_thread(plumbing.firewall_down, self.table)
        if self.endpoints.background:
            await asyncio.wait(list(self.endpoints.background), timeout=10)

    async def restore(self) -> None:
        """After the containers are back: running ones take their endpoints back, stopped
        ones lose theirs, and addresses nobody holds are freed."""
        for c in self.containers():
            with contextlib.suppress(Exception):
                await self.endpoints.restore(c)
        held = self.endpoints.in_use()
        async with self.lock:
            for pool in self.ipam.pools():
                for address in self.ipam.in_use(pool.subnet):
                    if address != pool.gateway and \
                            str(address) not in held.get(str(pool.subnet), set()):
                        self.ipam.release_address(pool.subnet, address)
        await self.reconcile_firewall()

    async def reconcile_firewall(self) -> None:
        """Replace the nftables table with what the networks and held ports say now."""
        if not self.config.iptables or not self.started:
            return
        async with self._firewall_lock:
            nets = [nftrules.Network(n.bridge, tuple(n.subnets()), internal=n.internal,
                                     icc=n.icc, masquerade=n.masquerade)
                    for n in self.networks if n.driver == "bridge"]
            mappings: list[nftrules.PortMapping] = []
            for c in self.containers():
                doc = c.network_settings.get("Ports") or {}
                if not doc:
                    continue
                first = next(iter(c.network_settings.get("Networks", {}).values()), {})
                if not first.get("IPAddress"):
                    continue
                mappings += ports.nft_mappings(
                    self.ports.held(c.id), first["IPAddress"],
                    first.get("GlobalIPv6Address") or None)
            try:
                await asyncio.to_thread(plumbing.firewall, self.table, nets, mappings)
            except nft.NftError as e:
                raise EngineError(f"programming the firewall: {e.message}") from None

    # -- what the containers service calls -------------------------------------------------

    def containers(self) -> list[Any]:
        service = getattr(self.daemon, "containers", None)
        return service.all() if service is not None else []

    def find_for_container(self, ref: str) -> Network:
        try:
            return self.find(ref)
        except NotFound:
            raise NotFound(f"network {ref} not found") from None

    async def attach(self, c: Any) -> str | None:
        return await self.endpoints.attach(c)

    async def ready(self, c: Any) -> None:
        """Before the task starts: the container's network is complete (attach left links,
        ports and resolver to be made while the task was created)."""
        await self.endpoints.ready(c)

    async def detach(self, c: Any) -> None:
        await self.endpoints.detach(c)

    def upstreams(self, c: Any) -> list[str]:
        """The resolvers the embedded DNS forwards to: the container's --dns, the
        daemon's dns, else the host's."""
        from dockyard.engine.containers import hostfiles

        servers = list(c.host_config.get("Dns") or []) or list(self.config.dns)
        if servers:
            return servers
        from dockyard.engine.containers.store import read_host_file

        return hostfiles.embedded_dns_upstreams(read_host_file(self.config.resolv_conf, ""))

    def host_gateway(self) -> str | None:
        if self.config.host_gateway_ip:
            return self.config.host_gateway_ip
        bridge = next((n for n in self.networks if n.predefined and n.driver == "bridge"),
                      None)
        if bridge is None or not bridge.ipam_config:
            return None
        return bridge.ipam_config[0].get("Gateway") or None

    def write_files(self, c: Any) -> None:
        from dockyard.engine.containers.store import write_network_files

        write_network_files(c, self, c.host_config.get("NetworkMode") == "host")

    # -- looking up ----------------------------------------------------------------------

    def find(self, ref: str) -> Network:
        """By full ID, then exact name, then unique ID prefix, as dockerd looks them up."""
        for n in self.networks:
            if ref == n.id:
                return n
        for n in self.networks:
            if ref == n.name:
                return n
        found = [n for n in self.networks if ref and n.id.startswith(ref)]
        if len(found) > 1:
            raise InvalidParameter(f"network {ref} is ambiguous ({len(found)} matches found "
                                   "on name)")
        if not found:
            raise NotFound(f"network {ref} not found")
        return found[0]

    def attached(self, net: Network) -> dict[str, Any]:
        """The running containers on `net`, as dockerd's inspect lists their endpoints."""
        out: dict[str, Any] = {}
        for c in self.containers():
            if not (c.state.running or c.state.restarting):
                continue
            endpoint = (c.network_settings.get("Networks") or {}).get(net.name)
            if endpoint is not None:
                v4 = f"{endpoint['IPAddress']}/{endpoint['IPPrefixLen']}" \
                    if endpoint.get("IPAddress") else ""
                v6 = f"{endpoint['GlobalIPv6Address']}/{endpoint['GlobalIPv6PrefixLen']}" \
                    if endpoint.get("GlobalIPv6Address") else ""
                out[c.id] = {"Name": c.name, "EndpointID": endpoint["EndpointID"],
                             "MacAddress": endpoint.get("MacAddress") or "",
                             "IPv4Address": v4, "IPv6Address": v6}
            elif net.driver != "bridge" and network_name(c) == net.name:
                out[c.id] = {"Name": c.name, "EndpointID": "", "MacAddress": "",
                             "IPv4Address": "", "IPv6Address": ""}
        return out

    def document(self, net: Network) -> dict[str, Any]:
        return net.document(self.attached(net))

    # -- the API's operations -------------------------------------------------------------

    async def list(self, filters: Mapping[str, list[str]]) -> list[dict[str, Any]]:
        dangling = netfilters.check_list_filters(filters)
        out = []
        for n in self.networks:
            doc = self.document(n)
            if netfilters.matches(n, doc, filters, dangling, self._used(n)):
                out.append(doc)
        return out

    def _used(self, net: Network) -> bool:
        """Whether any container (running or not) is configured on `net`."""
        return any(net.name in configured(c) or net.id in configured(c)
                   for c in self.containers() if bridged(c))

    async def inspect(self, ref: str, scope: str = "") -> dict[str, Any]:
        net = self.find(ref)
        if scope and scope != "local":
            raise NotFound(f"network {ref} not found")
        return self.document(net)

    async def create(self, body: Any) -> dict[str, Any]:
        net, configs = parse_create(body, {n.name for n in self.networks if n.predefined})
        name, net_id, bridge_name = net.name, net.id, net.bridge
        reserved = await asyncio.to_thread(plumbing.host_routes)
        async with self.lock:
            if name in {n.name for n in self.networks}:
                raise Conflict(f"network with name {name} already exists")
            if any(n.bridge == bridge_name for n in self.networks):
                raise Forbidden(f"bridge {bridge_name} is already in use by another network")
            taken: list[ipam.Pool] = []
            try:
                for cfg in configs:
                    taken.append(self.ipam.request_pool(
                        cfg.get("Subnet") or None, cfg.get("IPRange") or None,
                        cfg.get("Gateway") or None,
                        v6=":" in (cfg.get("Subnet") or ""), reserved=reserved))
                if not any(p.subnet.version == 4 for p in taken):
                    taken.append(self.ipam.request_pool(reserved=reserved))
                if net.ipv6 and not any(p.subnet.version == 6 for p in taken):
                    raise InvalidParameter("no IPv6 subnet given: --ipv6 needs a --subnet "
                                           "of the network's IPv6 prefix (there is no "
                                           "default IPv6 pool)")
                net.ipam_config = [{**_config_of(p), **({"IPRange": c["IPRange"]}
                                   if c.get("IPRange") else {})}
                                   for p, c in zip(taken, [*configs, {}], strict=False)]
                (self.root / "networks").mkdir(parents=True, exist_ok=True, mode=0o700)
                write_atomic(self.root / "networks" / f"{net_id}.json",
                             json.dumps(net.to_json(), indent=1), sync_dir=True)
                self.networks.append(net)
            except ipam.IpamError as e:
                for p in taken:
                    with contextlib.suppress(ipam.IpamError):
                        self.ipam.release_pool(p.subnet)
                raise with_status(e.status, e.message) from None
            except BaseException:
                for p in taken:
                    with contextlib.suppress(ipam.IpamError):
                        self.ipam.release_pool(p.subnet)
                raise
        try:
            await asyncio.to_thread(self._bridge_up, net)
            await self.reconcile_firewall()
        except (netlink.NetlinkError, EngineError) as e:
            with contextlib.suppress(EngineError):
                await self.remove(net_id)
            raise EngineError(f"failed to create network {name}: {e}") from None
        self._publish(net, "create", {"type": "bridge"})
        return {"Id": net_id, "Warning": ""}

    async def connect(self, ref: str, body: Any, *, connect: bool) -> None:
        if not isinstance(body, dict) or not isinstance(body.get("Container"), str):
            raise InvalidParameter("invalid JSON: Container is a string")
        c = self.daemon.containers.lookup(body["Container"])
        net = self.find(ref)
        mode = c.host_config.get("NetworkMode") or "default"
        if net.name == "host" or (not connect and mode == "host"):
            raise InvalidParameter("container cannot be disconnected from host network or "
                                   "connected to host network")
        if connect and (mode == "host" or mode.startswith("container:")):
            raise InvalidParameter("container sharing network namespace with another "
                                   "container or host cannot be connected to any other "
                                   "network")
        if connect and (net.driver == "null" or mode == "none"):
            raise InvalidParameter("container cannot be connected to multiple networks with "
                                   "one of the networks in private (none) mode")
        async with c.lock:
            if connect:
                await self._connect(c, net, body.get("EndpointConfig") or {})
            else:
                await self._disconnect(c, net, bool(body.get("Force")))
            await self.daemon.containers.store.commit(c)
        self._publish(net, "connect" if connect else "disconnect", {"container": c.id})

    async def _connect(self, c: Any, net: Network, cfg: dict[str, Any]) -> None:
        if not isinstance(cfg, dict):
            raise InvalidParameter("invalid JSON: EndpointConfig is an object")
        if net.name in configured(c) or net.id in configured(c):
            raise Forbidden(f"endpoint with name {c.name} already exists in network "
                            f"{net.name}")
        if c.state.running:
            await self.endpoints.connect(c, net, cfg)
        endpoints = c.networking_config.setdefault("EndpointsConfig", {})
        endpoints[net.name] = cfg

    async def _disconnect(self, c: Any, net: Network, force: bool) -> None:
        names = configured(c)
        if net.name not in names and net.id not in names:
            raise Forbidden(f"container {c.id} is not connected to network {net.name}")
        if c.state.running and net.name in (c.network_settings.get("Networks") or {}):
            await self.endpoints.disconnect(c, net)
        endpoints = c.networking_config.setdefault("EndpointsConfig", {})
        endpoints.pop(net.name, None)
        endpoints.pop(net.id, None)
        if network_name(c) == net.name:
            c.host_config["NetworkMode"] = "none" if not endpoints else next(iter(endpoints))
        del force

    async def remove(self, ref: str) -> None:
        net = self.find(ref)
        if net.predefined:
            raise Forbidden(f"{net.name} is a pre-defined network and cannot be removed")
        active = [c for c in self.containers()
                  if net.name in (c.network_settings.get("Networks") or {})]
        if active:
            raise Forbidden(f"error while removing network: network {net.name} id {net.id} "
                            "has active endpoints")
        with contextlib.suppress(netlink.NetlinkError):
            await asyncio.to_thread(plumbing.network_down, net.bridge)
        async with self.lock:
            with contextlib.suppress(OSError):
                (self.root / "networks" / f"{net.id}.json").unlink()
            for subnet in net.subnets():
                with contextlib.suppress(ipam.IpamError):
                    self.ipam.release_pool(subnet)
            self.networks = [n for n in self.networks if n.id != net.id]
            self.names.remove_network(net.id)
        with contextlib.suppress(EngineError):
            await self.reconcile_firewall()
        self._publish(net, "destroy", {"type": "bridge"})

    async def prune(self, filters: Mapping[str, list[str]]) -> dict[str, Any]:
        from dockyard.engine.containers.views import until_time

        netfilters.check_prune_filters(filters)
        limits = [until_time(v) for v in filters.get("until", [])]
        until = min(limits) if limits else None
        deleted = []
        for net in list(self.networks):
            if net.predefined or self._used(net):
                continue
            if until is not None and _created(net) >= until:
                continue
            if not netfilters.labels_match(net.labels, filters.get("label", []), True) or \
                    not netfilters.labels_match(net.labels, filters.get("label!", []), False):
                continue
            with contextlib.suppress(EngineError):
                await self.remove(net.id)
                deleted.append(net.name)
        return {"NetworksDeleted": deleted or None}

    def _publish(self, net: Network, action: str, extra: dict[str, str]) -> None:
        events = getattr(self.daemon, "events", None)
        if events is not None:
            events.publish("network", action, net.id, {"name": net.name, **extra})


def _config_of(pool: ipam.Pool) -> dict[str, Any]:
    out: dict[str, Any] = {"Subnet": str(pool.subnet), "Gateway": str(pool.gateway)}
    if pool.ip_range is not None:
        out["IPRange"] = str(pool.ip_range)
    return out


def _created(net: Network) -> float:
    from dockyard.engine.containers.model import parse_rfc3339

    return parse_rfc3339(net.created)

