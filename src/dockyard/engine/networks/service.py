"""NetworkService: the networks the API lists, inspects, creates, connects, removes and prunes.

Until the networking issue lands there are only Docker's predefined networks (bridge, host,
none; predefined.py). Containers are on the network their NetworkMode names ("default" is
bridge; container:<id> shares another's and is on none of its own). Everything a user-defined
network needs is refused: with dockerd's own answer where it has one (a driver that does not
exist, a second host or null network, a predefined name), otherwise with 501 and a message
that says these come with the networking issue. Nothing pretends to succeed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dockyard.engine.errors import (
    Forbidden,
    InvalidParameter,
    NotFound,
    NotImplemented_,
)
from dockyard.engine.networks.predefined import Network, load

LIST_FILTERS = {"dangling", "driver", "id", "label", "name", "scope", "type"}
PRUNE_FILTERS = {"label", "label!", "until"}
# drivers that exist in dockerd and arrive here with the networking issue
FUTURE_DRIVERS = {"bridge", "ipvlan", "macvlan", "overlay"}
LATER = ("user-defined networks are not supported yet: they come with the networking issue "
         "(until then only the predefined networks bridge, host and none exist)")

def network_of(host_config: Mapping[str, Any]) -> str | None:
    """The predefined network a container's NetworkMode puts it on (None for container:…
    and for names of networks that do not exist yet)."""
    mode = host_config.get("NetworkMode") or "default"
    if mode == "default":
        return "bridge"
    if mode in ("bridge", "host", "none"):
        return mode
    return None

class NetworkService:
    def __init__(self, daemon: Any) -> None:
        self.daemon = daemon
        self.root = Path(daemon.data_root) / "network"
        self.networks: list[Network] = load(self.root)

    async def start(self) -> None:
        pass

    async def close(self, *, stop_containers: bool = False) -> None:
        pass

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

    def _containers(self) -> list[Any]:
        service = getattr(self.daemon, "containers", None)
        return service.all() if service is not None else []

    def attached(self, net: Network) -> dict[str, Any]:
        """The running containers on `net`, as dockerd's inspect lists their endpoints."""
        out: dict[str, Any] = {}
        for c in self._containers():
            if not (c.state.running or c.state.restarting):
                continue
            if network_of(c.host_config) != net.name:
                continue
            out[c.id] = {"Name": c.name, "EndpointID": "", "MacAddress": "",
                         "IPv4Address": "", "IPv6Address": ""}
        return out

    def document(self, net: Network) -> dict[str, Any]:
        return net.document(self.attached(net))

    # -- the API's operations -------------------------------------------------------------

    async def list(self, filters: Mapping[str, list[str]]) -> list[dict[str, Any]]:
        for key in filters:
            if key not in LIST_FILTERS:
                raise InvalidParameter(f"invalid filter '{key}'")
        for value in filters.get("type", []):
            if value not in ("custom", "builtin"):
                raise InvalidParameter(f"invalid filter: 'type'='{value}'")
        dangling: bool | None = None
        for value in filters.get("dangling", []):
            if value.lower() in ("true", "1"):
                dangling = True
            elif value.lower() in ("false", "0"):
                dangling = False
            else:
                raise InvalidParameter("invalid value for filter 'dangling', must be "
                                       "\"true\" (or \"1\"), or \"false\" (or \"0\")")
        docs = [self.document(n) for n in self.networks]
        return [d for d in docs if _matches(d, filters, dangling)]

    async def inspect(self, ref: str, scope: str = "") -> dict[str, Any]:
        net = self.find(ref)
        if scope and scope != "local":
            raise NotFound(f"network {ref} not found")
        return self.document(net)

    async def create(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise InvalidParameter("invalid JSON: the body must be an object")
        name, driver = body.get("Name") or "", body.get("Driver") or "bridge"
        if not isinstance(name, str) or not isinstance(driver, str):
            raise InvalidParameter("invalid JSON: Name and Driver are strings")
        if not name:
            raise InvalidParameter("invalid name: ")
        if name in {n.name for n in self.networks}:
            raise Forbidden(f"operation is not permitted on predefined {name} network ")
        if driver in ("host", "null"):
            raise Forbidden(f"only one instance of \"{driver}\" network is allowed")
        if driver not in FUTURE_DRIVERS:
            raise NotFound(f"plugin \"{driver}\" not found")
        raise NotImplemented_(f"network {name} (driver {driver}): {LATER}")

    async def connect(self, ref: str, body: Any, *, connect: bool) -> None:
        if not isinstance(body, dict) or not isinstance(body.get("Container"), str):
            raise InvalidParameter("invalid JSON: Container is a string")
        c = self.daemon.containers.lookup(body["Container"])
        net = self.find(ref)
        mode = c.host_config.get("NetworkMode") or "default"
        if net.name == "host":
            raise InvalidParameter("container cannot be disconnected from host network or "
                                   "connected to host network")
        if connect and (mode == "host" or mode.startswith("container:")):
            raise InvalidParameter("container sharing network namespace with another "
                                   "container or host cannot be connected to any other "
                                   "network")
        verb = "connecting containers to" if connect else "disconnecting containers from"
        raise NotImplemented_(f"{verb} network {net.name}: {LATER}")

    async def remove(self, ref: str) -> None:
        net = self.find(ref)
        raise Forbidden(f"{net.name} is a pre-defined network and cannot be removed")

    async def prune(self, filters: Mapping[str, list[str]]) -> dict[str, Any]:
        for key in filters:
            if key not in PRUNE_FILTERS:
                raise InvalidParameter(f"invalid filter '{key}'")
        # predefined networks are never pruned, and there are no others yet: dockerd's
        # answer when nothing was deleted
        return {"NetworksDeleted": None}

def _matches(doc: Mapping[str, Any], filters: Mapping[str, list[str]],
             dangling: bool | None) -> bool:
    """dockerd's network filters: name and id as regular expressions (or exact), driver and
    scope exactly, label as key or key=value; every network here is builtin."""
    def like(values: list[str], text: str) -> bool:
        return any(v == text or _search(v, text) for v in values)

    if "name" in filters and not like(filters["name"], doc["Name"]):
        return False
    if "id" in filters and not like(filters["id"], doc["Id"]):
        return False
    if "driver" in filters and doc["Driver"] not in filters["driver"]:
        return False
    if "scope" in filters and doc["Scope"] not in filters["scope"]:
        return False
    if "type" in filters and "builtin" not in filters["type"]:
        return False
    if dangling is True:  # predefined networks are never dangling
        return False
    labels = doc.get("Labels") or {}
    for want in filters.get("label", []):
        k, sep, v = want.partition("=")
        if k not in labels or (sep and labels[k] != v):
            return False
    return True

def _search(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return False
