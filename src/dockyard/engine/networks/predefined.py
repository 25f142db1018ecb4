"""Docker's predefined networks as data, and the IDs and creation times that keep them the
same networks across restarts.

    <data-root>/network/
      predefined.json     {"bridge": {"Id": <64 hex>, "Created": <RFC 3339>}, "host": …, "none": …}
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockyard.fsutil import write_atomic

# name -> driver, in the order dockerd lists them
DRIVERS = {"bridge": "bridge", "host": "host", "none": "null"}
DEFAULT_BRIDGE = "docker0"


@dataclass(frozen=True)
class Network:
    name: str
    id: str
    created: str
    driver: str
    options: dict[str, str]

    def document(self, containers: dict[str, Any]) -> dict[str, Any]:
        """GET /networks/{id}, as dockerd writes it for this network."""
        return {"Name": self.name, "Id": self.id, "Created": self.created, "Scope": "local",
                "Driver": self.driver, "EnableIPv4": True, "EnableIPv6": False,
                "IPAM": {"Driver": "default", "Options": None, "Config": []},
                "Internal": False, "Attachable": False, "Ingress": False,
                "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
                "Containers": containers, "Options": dict(self.options), "Labels": {}}


def bridge_options(bridge_name: str = DEFAULT_BRIDGE) -> dict[str, str]:
    """The options dockerd gives its default bridge network."""
    return {"com.docker.network.bridge.default_bridge": "true",
            "com.docker.network.bridge.enable_icc": "true",
            "com.docker.network.bridge.enable_ip_masquerade": "true",
            "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
            "com.docker.network.bridge.name": bridge_name,
            "com.docker.network.driver.mtu": "1500"}


def _now() -> str:
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + \
        f".{ns % 10**9:09d}Z"


def load(root: Path, bridge_name: str = DEFAULT_BRIDGE) -> list[Network]:
    """The predefined networks, their IDs read from `root` (made and saved the first time)."""
    path = root / "predefined.json"
    try:
        saved = json.loads(path.read_text())
        if not isinstance(saved, dict):
            saved = {}
    except (OSError, ValueError):
        saved = {}
    changed = False
    for name in DRIVERS:
        entry = saved.get(name)
        if not (isinstance(entry, dict) and _is_id(entry.get("Id"))
                and isinstance(entry.get("Created"), str)):
            saved[name] = {"Id": secrets.token_hex(32), "Created": _now()}
            changed = True
    if changed:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(path, json.dumps(saved, indent=1), sync_dir=True)
    return [Network(name, saved[name]["Id"], saved[name]["Created"], driver,
                    bridge_options(bridge_name) if name == "bridge" else {})
            for name, driver in DRIVERS.items()]


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and \
        all(c in "0123456789abcdef" for c in value)
