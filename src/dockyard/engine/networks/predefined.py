"""Docker's predefined networks, and the IDs and creation times that keep them the same
networks across restarts.

    <data-root>/network/
      predefined.json     {"bridge": {"Id": <64 hex>, "Created": <RFC 3339>}, "host": …, "none": …}

The default bridge network's bridge, subnet and options come from the daemon's configuration
at every start (`bridge`, `bip`, `fixed-cidr`, `mtu`, `icc`, `ip-masq`); with `bridge: none`
there is no default bridge network, as with dockerd's `-b none`.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from dockyard.engine.networks.model import BRIDGE_NAME, Network
from dockyard.fsutil import write_atomic
from dockyard.units import rfc3339nano

# name -> driver, in the order dockerd lists them
DRIVERS = {"bridge": "bridge", "host": "host", "none": "null"}
DEFAULT_BRIDGE = "dockyard0"


def bridge_options(bridge_name: str = DEFAULT_BRIDGE, *, icc: bool = True,
                   masquerade: bool = True, mtu: int = 1500) -> dict[str, str]:
    """The options dockerd gives its default bridge network."""
    return {"com.docker.network.bridge.default_bridge": "true",
            "com.docker.network.bridge.enable_icc": str(icc).lower(),
            "com.docker.network.bridge.enable_ip_masquerade": str(masquerade).lower(),
            "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
            BRIDGE_NAME: bridge_name,
            "com.docker.network.driver.mtu": str(mtu)}


def load(root: Path, config: Any = None) -> list[Network]:
    """The predefined networks, their IDs read from `root` (made and saved the first time);
    `config` (the daemon's) shapes the default bridge."""
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
            saved[name] = {"Id": secrets.token_hex(32), "Created": rfc3339nano()}
            changed = True
    if changed:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(path, json.dumps(saved, indent=1), sync_dir=True)
    bridge = getattr(config, "bridge", DEFAULT_BRIDGE) or DEFAULT_BRIDGE
    out: list[Network] = []
    for name, driver in DRIVERS.items():
        if name == "bridge" and bridge == "none":
            continue
        options = {} if name != "bridge" else bridge_options(
            bridge, icc=getattr(config, "icc", True),
            masquerade=getattr(config, "ip_masq", True), mtu=getattr(config, "mtu", 1500))
        out.append(Network(name, saved[name]["Id"], saved[name]["Created"], driver,
                           options, predefined=True))
    return out


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and \
        all(c in "0123456789abcdef" for c in value)
