"""A network as the engine keeps it, and the record a user-defined one is saved as.

Docker's predefined networks (bridge, host, none) keep only their IDs on disk
(predefined.py): everything else about them comes from the daemon's configuration at each
start. A user-defined network is one JSON file, written once at create and removed at rm:

    <data-root>/network/networks/<id>.json   {"Name", "Id", "Created", "Driver", "Options",
                                              "Labels", "Internal", "Attachable",
                                              "EnableIPv6", "IPAM": {"Driver", "Options",
                                              "Config": [{"Subnet", "IPRange", "Gateway"}]},
                                              "SubnetsGiven"}

A network's addresses are not here: the IPAM's own document (network/ipam.py) has them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

BRIDGE_NAME = "com.docker.network.bridge.name"
ICC = "com.docker.network.bridge.enable_icc"
MASQUERADE = "com.docker.network.bridge.enable_ip_masquerade"
MTU = "com.docker.network.driver.mtu"
HOST_BINDING = "com.docker.network.bridge.host_binding_ipv4"


@dataclass
class Network:
    name: str
    id: str
    created: str
    driver: str  # bridge | host | null
    options: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    internal: bool = False
    attachable: bool = False
    ipv6: bool = False
    ipam_config: list[dict[str, Any]] = field(default_factory=list)
    ipam_options: dict[str, str] | None = None
    predefined: bool = False
    subnets_given: bool = False  # --subnet: only then may endpoints ask for --ip

    @property
    def bridge(self) -> str:
        """The Linux bridge of a bridge network ("" for host and none)."""
        if self.driver != "bridge":
            return ""
        return self.options.get(BRIDGE_NAME) or f"br-{self.id[:12]}"

    @property
    def icc(self) -> bool:
        return self.options.get(ICC, "true") != "false"

    @property
    def masquerade(self) -> bool:
        return self.options.get(MASQUERADE, "true") != "false"

    @property
    def mtu(self) -> int:
        try:
            return int(self.options.get(MTU) or 1500)
        except ValueError:
            return 1500

    @property
    def user_defined(self) -> bool:
        """Containers on it find each other by name (the embedded DNS)."""
        return self.driver == "bridge" and not self.predefined

    def subnets(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(c["Subnet"]) for c in self.ipam_config
                if c.get("Subnet")]

    def document(self, containers: dict[str, Any]) -> dict[str, Any]:
        """GET /networks/{id}, as dockerd writes it."""
        config = [{k: v for k, v in c.items() if v} for c in self.ipam_config]
        return {"Name": self.name, "Id": self.id, "Created": self.created, "Scope": "local",
                "Driver": self.driver, "EnableIPv4": True, "EnableIPv6": self.ipv6,
                "IPAM": {"Driver": "default", "Options": self.ipam_options,
                         "Config": config},
                "Internal": self.internal, "Attachable": self.attachable, "Ingress": False,
                "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
                "Containers": containers, "Options": dict(self.options),
                "Labels": dict(self.labels)}

    def to_json(self) -> dict[str, Any]:
        return {"Name": self.name, "Id": self.id, "Created": self.created,
                "Driver": self.driver, "Options": self.options, "Labels": self.labels,
                "Internal": self.internal, "Attachable": self.attachable,
                "EnableIPv6": self.ipv6,
                "IPAM": {"Driver": "default", "Options": self.ipam_options,
                         "Config": self.ipam_config}, "SubnetsGiven": self.subnets_given}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Network:
        ipam = doc.get("IPAM") or {}
        return cls(name=doc["Name"], id=doc["Id"], created=doc["Created"],
                   driver=doc.get("Driver") or "bridge", options=doc.get("Options") or {},
                   labels=doc.get("Labels") or {}, internal=bool(doc.get("Internal")),
                   attachable=bool(doc.get("Attachable")), ipv6=bool(doc.get("EnableIPv6")),
                   ipam_config=list(ipam.get("Config") or []),
                   ipam_options=ipam.get("Options"),
                   subnets_given=bool(doc.get("SubnetsGiven")))
