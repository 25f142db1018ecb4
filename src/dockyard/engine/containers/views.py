"""The documents the API returns for containers: inspect (GET /containers/{id}/json), the
list entry (GET /containers/json) with its filters, and `docker top`'s table."""

from __future__ import annotations

import asyncio
import re
import shlex
import subprocess
import time
from typing import Any

from dockyard.engine.containers.model import ZERO_TIME, Container, parse_rfc3339
from dockyard.engine.errors import InvalidParameter
from dockyard.units import human_duration

LIST_FILTERS = {"ancestor", "before", "expose", "exited", "health", "id", "isolation",
                "is-task", "label", "name", "network", "publish", "since", "status", "volume"}
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def status_text(c: Container) -> str:
    st = c.state
    now = time.time()
    if st.restarting:
        ago = human_duration(now - parse_rfc3339(st.finished_at))
        return f"Restarting ({st.exit_code}) {ago} ago"
    if st.running:
        up = f"Up {human_duration(now - parse_rfc3339(st.started_at))}"
        if st.paused:
            return f"{up} (Paused)"
        if c.health is not None:
            status = c.health.get("Status", "starting")
            return f"{up} (health: starting)" if status == "starting" else f"{up} ({status})"
        return up
    if st.status == "removing":
        return "Removal In Progress"
    if st.dead:
        return "Dead"
    if st.started_at.startswith("0001-"):
        return "Created"
    if st.finished_at.startswith("0001-"):
        return ""
    return f"Exited ({st.exit_code}) {human_duration(now - parse_rfc3339(st.finished_at))} ago"


def _state_doc(c: Container) -> dict[str, Any]:
    doc = c.state.to_json()
    doc["Running"] = c.state.running or c.state.restarting
    if c.health is not None:
        doc["Health"] = c.health
    return doc


def _mounts(c: Container) -> list[dict[str, Any]]:
    from dockyard.engine.containers import mounts

    return mounts.inspect(c)


def network_name(c: Container) -> str:
    """The network a container is on, by name: NetworkMode "default" (none given) is
    "bridge", as dockerd shows it."""
    mode = c.host_config.get("NetworkMode") or "default"
    return "bridge" if mode == "default" else mode


def _network_id(daemon: Any, name: str) -> str:
    networks = getattr(daemon, "networks", None)
    if networks is None:
        return ""
    try:
        return networks.find(name).id
    except Exception:  # not a network we know (yet): no ID, as for a created container
        return ""


def _network_settings(c: Container, daemon: Any = None) -> dict[str, Any]:
    """NetworkSettings: the endpoints of a running container (networks/endpoints.py), else
    the networks it is configured on, with empty addresses, as dockerd shows a stopped one."""
    from dockyard.engine.networks.endpoints import bridged, configured

    live = c.network_settings or {}
    networks: dict[str, Any] = {}
    if not network_name(c).startswith("container:"):
        names = configured(c) if bridged(c) else {network_name(c): {}}
        for name, cfg in names.items():
            # dockerd names the network's ID once the container has been started
            started = daemon is not None and c.state.started_at not in ("", ZERO_TIME)
            networks[name] = {"IPAMConfig": (cfg or {}).get("IPAMConfig") or None,
                              "Links": (cfg or {}).get("Links") or None,
                              "Aliases": (cfg or {}).get("Aliases") or None,
                              "MacAddress": "", "DriverOpts": None, "GwPriority": 0,
                              "NetworkID": _network_id(daemon, name) if started else "",
                              "EndpointID": "", "Gateway": "", "IPAddress": "",
                              "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
                              "GlobalIPv6PrefixLen": 0, "DNSNames": None}
        networks.update(live.get("Networks") or {})
    first = next(iter((live.get("Networks") or {}).values()), None) \
        if network_name(c) == "bridge" else None
    ports: dict[str, Any] = live.get("Ports") or {}
    if not ports and c.state.running and bridged(c):
        ports = {p: None for p in c.config.get("ExposedPorts") or {}}
    return {"Bridge": "", "SandboxID": live.get("SandboxID", ""),
            "SandboxKey": live.get("SandboxKey", ""), "Ports": ports,
            "HairpinMode": False, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
            "EndpointID": (first or {}).get("EndpointID", ""),
            "Gateway": (first or {}).get("Gateway", ""),
            "GlobalIPv6Address": (first or {}).get("GlobalIPv6Address", ""),
            "GlobalIPv6PrefixLen": (first or {}).get("GlobalIPv6PrefixLen", 0),
            "IPAddress": (first or {}).get("IPAddress", ""),
            "IPPrefixLen": (first or {}).get("IPPrefixLen", 0),
            "IPv6Gateway": (first or {}).get("IPv6Gateway", ""),
            "MacAddress": (first or {}).get("MacAddress", ""),
            "Networks": networks}


def inspect(c: Container, daemon: Any, size: tuple[int, int] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "Id": c.id, "Created": c.created, "Path": c.path, "Args": c.args,
        "State": _state_doc(c), "Image": c.image, "ResolvConfPath": c.resolv_conf_path,
        "HostnamePath": c.hostname_path, "HostsPath": c.hosts_path, "LogPath": c.log_path,
        "Name": f"/{c.name}", "RestartCount": c.restart_count, "Driver": "overlayfs",
        "Platform": "linux", "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "",
        "ExecIDs": list(c.exec_ids) or None, "HostConfig": c.host_config,
        "GraphDriver": {"Data": None, "Name": "overlayfs"}, "Mounts": _mounts(c),
        "Config": c.config, "NetworkSettings": _network_settings(c, daemon),
    }
    if size is not None:
        doc["SizeRw"], doc["SizeRootFs"] = size
    return doc


def _list_ports(c: Container) -> list[dict[str, Any]]:
    from dockyard.engine.networks import ports
    from dockyard.engine.networks.endpoints import bindings_of

    held = bindings_of((c.network_settings or {}).get("Ports") or {})
    return ports.list_ports(c.config, held) if c.state.running else []


def list_entry(c: Container, size: tuple[int, int] | None = None) -> dict[str, Any]:
    # dockerd's way: the path, then the arguments, those with a space in single quotes
    command = " ".join([c.path, *(f"'{a}'" if " " in a else a for a in c.args)])
    status = "running" if c.state.running and not c.state.paused else c.state.status
    entry: dict[str, Any] = {
        "Id": c.id, "Names": [f"/{c.name}"], "Image": c.config.get("Image") or c.image_ref,
        "ImageID": c.image, "Command": command, "Created": int(parse_rfc3339(c.created)),
        "Ports": _list_ports(c), "Labels": c.config.get("Labels") or {}, "State": status,
        "Status": status_text(c),
        "HostConfig": {"NetworkMode": c.host_config.get("NetworkMode") or "default"},
        "NetworkSettings": {"Networks": _network_settings(c)["Networks"]},
        "Mounts": _mounts(c),
    }
    if size is not None:
        entry["SizeRw"], entry["SizeRootFs"] = size
    return entry


def _label_match(labels: dict[str, str], wanted: list[str]) -> bool:
    for w in wanted:
        k, sep, v = w.partition("=")
        if k not in labels or (sep and labels[k] != v):
            return False
    return True


def select(containers: list[Container], filters: dict[str, list[str]], *, all_: bool,
           limit: int | None, lookup: Any, image_ids: dict[str, str]) -> list[Container]:
    """The containers `docker ps` shows: newest first, filtered as dockerd filters."""
    for key in filters:
        if key not in LIST_FILTERS:
            raise InvalidParameter(f"invalid filter '{key}'")
    for s in filters.get("status", []):
        if s not in STATUSES:
            raise InvalidParameter(f"invalid filter 'status={s}'")
    for e in filters.get("exited", []):
        if not e.lstrip("-").isdigit():
            raise InvalidParameter(f"invalid filter 'exited={e}'")
    for h in filters.get("health", []):
        if h not in ("starting", "healthy", "unhealthy", "none"):
            raise InvalidParameter(f"Unrecognized filter value for health: {h}")
    before = [parse_rfc3339(lookup(b).created) for b in filters.get("before", [])]
    since = [parse_rfc3339(lookup(s).created) for s in filters.get("since", [])]
    if filters.get("exited") or filters.get("status"):
        all_ = True
    out = []
    for c in containers:
        status = "running" if c.state.running and not c.state.paused else c.state.status
        if not all_ and not c.state.running and not c.state.restarting:
            continue
        if "id" in filters and not any(c.id.startswith(i) for i in filters["id"]):
            continue
        if "name" in filters and not any(re.search(n.lstrip("/"), c.name)
                                         for n in filters["name"]):
            continue
        if "label" in filters and not _label_match(c.config.get("Labels") or {},
                                                   filters["label"]):
            continue
        if "status" in filters and status not in filters["status"]:
            continue
        if "exited" in filters and (c.state.running or status != "exited" or
                                    str(c.state.exit_code) not in filters["exited"]):
            continue
        if "health" in filters and (c.health or {}).get("Status", "none") \
                not in filters["health"]:
            continue
        if "ancestor" in filters and not any(
                a in (c.config.get("Image"), c.image, c.image_ref)
                or image_ids.get(a) == c.image for a in filters["ancestor"]):
            continue
        if "network" in filters and network_name(c) not in filters["network"]:
            continue
        if "volume" in filters and not any(
                m.get("source") in filters["volume"] or m.get("destination") in filters["volume"]
                for m in c.mount_points):
            continue
        if "expose" in filters and not any(
                p in (c.config.get("ExposedPorts") or {}) or f"{p}/tcp" in
                (c.config.get("ExposedPorts") or {}) for p in filters["expose"]):
            continue
        if "publish" in filters:  # no ports are published until networking lands
            continue
        if "is-task" in filters and "true" in filters["is-task"]:
            continue  # no swarm tasks here
        created = parse_rfc3339(c.created)
        if before and not all(created < b for b in before):
            continue
        if since and not all(created > s for s in since):
            continue
        out.append(c)
    if limit is not None and limit > 0:
        out = out[:limit]
    return out


def prune_matches(c: Container, filters: dict[str, list[str]]) -> bool:
    for key in filters:
        if key not in ("until", "label", "label!"):
            raise InvalidParameter(f"invalid filter '{key}'")
    if "label" in filters and not _label_match(c.config.get("Labels") or {},
                                               filters["label"]):
        return False
    if "label!" in filters and _label_match(c.config.get("Labels") or {}, filters["label!"]):
        return False
    for until in filters.get("until", []):
        limit = until_time(until)
        if parse_rfc3339(c.created) >= limit:
            return False
    return True


def until_time(value: str) -> float:
    m = re.fullmatch(r"(\d+)([smh])", value)
    if m:
        return time.time() - int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]
    try:
        return float(value)
    except ValueError:
        try:
            return parse_rfc3339(value)
        except ValueError:
            raise InvalidParameter(f"failed to parse value as time or duration: "
                                   f"\"{value}\"") from None


async def top(pids: list[int], ps_args: str) -> dict[str, Any]:
    """`ps <ps_args>` on the host, keeping the rows of the container's processes (dockerd's
    way: the PID column found by its title)."""
    args = shlex.split(ps_args or "-ef")
    proc = await asyncio.create_subprocess_exec(
        "ps", *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise InvalidParameter(f"Error running ps: exit status {proc.returncode}: "
                               f"{err.decode(errors='replace').strip()}")
    lines = out.decode(errors="replace").splitlines()
    if not lines:
        return {"Titles": [], "Processes": []}
    titles = lines[0].split()
    try:
        pid_col = titles.index("PID")
    except ValueError:
        raise InvalidParameter("Couldn't find PID field in ps output") from None
    wanted = set(pids)
    processes = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) <= pid_col:
            continue
        try:
            pid = int(fields[pid_col])
        except ValueError:
            continue
        if pid in wanted:
            processes.append(fields)
    return {"Titles": titles, "Processes": processes}
