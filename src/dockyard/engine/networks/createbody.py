"""The body of POST /networks/create, checked and turned into a Network, before anything is
reserved: a request dockerd refuses takes no IPAM pool, writes no record and makes no bridge.

The order of the checks decides which error a body with several faults gets (a predefined
name is Forbidden before a bad name is refused, a bad driver before a bad scope): keep it.
What needs the other networks or the IPAM (a name or bridge in use, the subnets) is the
service's, under its lock.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Collection
from typing import Any

from dockyard.engine.errors import Forbidden, InvalidParameter, NotFound
from dockyard.engine.networks import model as netmodel
from dockyard.engine.networks.model import Network
from dockyard.network import nftrules
from dockyard.units import rfc3339nano

OTHER_DRIVERS = {"ipvlan", "macvlan", "overlay"}  # dockerd's, not ours
NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
BRIDGE_OPTIONS = {netmodel.BRIDGE_NAME, netmodel.ICC, netmodel.MASQUERADE, netmodel.MTU,
                  netmodel.HOST_BINDING, "com.docker.network.bridge.default_bridge",
                  "com.docker.network.enable_ipv6", "com.docker.network.bridge.inhibit_ipv4",
                  "com.docker.network.container_iface_prefix"}


def parse_create(body: Any,
                 predefined_names: Collection[str]) -> tuple[Network, list[dict[str, Any]]]:
    """A new bridge network (fresh ID, no IPAM config yet) and the IPAM.Config entries asked
    for; InvalidParameter, Forbidden or NotFound in dockerd's words otherwise."""
    if not isinstance(body, dict):
        raise InvalidParameter("invalid JSON: the body must be an object")
    name, driver = body.get("Name") or "", body.get("Driver") or "bridge"
    if not isinstance(name, str) or not isinstance(driver, str):
        raise InvalidParameter("invalid JSON: Name and Driver are strings")
    if not name:
        raise InvalidParameter("invalid name: ")
    if name in predefined_names:
        raise Forbidden(f"operation is not permitted on predefined {name} network ")
    if not NAME.fullmatch(name):
        raise InvalidParameter(f"invalid network name \"{name}\": only [a-zA-Z0-9]"
                               "[a-zA-Z0-9_.-] are allowed")
    if driver in ("host", "null"):
        raise Forbidden(f"only one instance of \"{driver}\" network is allowed")
    if driver != "bridge":
        raise NotFound(f"plugin \"{driver}\" not found")
    if body.get("Ingress"):
        raise Forbidden("only swarm scoped networks can be ingress networks")
    if body.get("Scope") not in (None, "", "local"):
        raise InvalidParameter(f"scope {body['Scope']} is not supported by the bridge "
                               "driver: local only")
    options = _strings(body.get("Options") or {}, "Options")
    labels = _strings(body.get("Labels") or {}, "Labels")
    ipam_body = body.get("IPAM") or {}
    if not isinstance(ipam_body, dict):
        raise InvalidParameter("invalid JSON: IPAM is an object")
    if (ipam_body.get("Driver") or "default") != "default":
        raise NotFound(f"plugin \"{ipam_body['Driver']}\" not found")
    configs = ipam_body.get("Config") or []
    if not isinstance(configs, list) or not all(isinstance(c, dict) for c in configs):
        raise InvalidParameter("invalid JSON: IPAM.Config is a list of objects")
    net = Network(name=name, id=secrets.token_hex(32), created=rfc3339nano(), driver="bridge",
                  options=options, labels=labels, internal=bool(body.get("Internal")),
                  attachable=bool(body.get("Attachable")), ipv6=bool(body.get("EnableIPv6")),
                  ipam_options=ipam_body.get("Options") or None,
                  subnets_given=any(c.get("Subnet") for c in configs))
    try:
        nftrules.Network(net.bridge, ())
    except ValueError:
        raise InvalidParameter(f"invalid bridge name {net.bridge!r}") from None
    return net, configs


def _strings(value: Any, what: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidParameter(f"invalid JSON: {what} is an object of strings")
    return dict(value)
