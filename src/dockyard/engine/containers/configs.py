"""The body of POST /containers/create: checked field by field (Go's words for a wrong type,
as dockerd's decoder gives them), merged with the image's config as dockerd merges it, and
validated with dockerd's messages.
"""

from __future__ import annotations

import copy
from typing import Any

from dockyard.engine.errors import InvalidParameter

# Go's type per field, as its decoder names it in "cannot unmarshal X into … of type T".
_STR, _BOOL, _INT, _OBJ = "string", "bool", "int64", "object"
_LIST, _SLICE = "[]string", "strslice.StrSlice"
CONFIG_TYPES = {
    "Hostname": _STR, "Domainname": _STR, "User": _STR, "AttachStdin": _BOOL,
    "AttachStdout": _BOOL, "AttachStderr": _BOOL, "ExposedPorts": "nat.PortSet",
    "Tty": _BOOL, "OpenStdin": _BOOL, "StdinOnce": _BOOL, "Env": _LIST, "Cmd": _SLICE,
    "Healthcheck": "container.HealthConfig", "ArgsEscaped": _BOOL, "Image": _STR,
    "Volumes": "map[string]struct {}", "WorkingDir": _STR, "Entrypoint": _SLICE,
    "NetworkDisabled": _BOOL, "MacAddress": _STR, "OnBuild": _LIST,
    "Labels": "map[string]string", "StopSignal": _STR, "StopTimeout": "int",
    "Shell": _SLICE,
}
HOST_CONFIG_TYPES = {
    "Binds": _LIST, "ContainerIDFile": _STR, "LogConfig": "container.LogConfig",
    "NetworkMode": "container.NetworkMode", "PortBindings": "nat.PortMap",
    "RestartPolicy": "container.RestartPolicy", "AutoRemove": _BOOL, "VolumeDriver": _STR,
    "VolumesFrom": _LIST, "CapAdd": _SLICE, "CapDrop": _SLICE, "Dns": _LIST,
    "DnsOptions": _LIST, "DnsSearch": _LIST, "ExtraHosts": _LIST, "GroupAdd": _LIST,
    "IpcMode": "container.IpcMode", "Cgroup": "container.CgroupSpec", "Links": _LIST,
    "OomScoreAdj": "int", "PidMode": "container.PidMode", "Privileged": _BOOL,
    "PublishAllPorts": _BOOL, "ReadonlyRootfs": _BOOL, "SecurityOpt": _LIST,
    "Tmpfs": "map[string]string", "UTSMode": "container.UTSMode", "ShmSize": _INT,
    "Sysctls": "map[string]string", "Runtime": _STR, "CgroupParent": _STR,
    "CpuShares": _INT, "Memory": _INT, "NanoCpus": _INT, "CpuPeriod": _INT,
    "CpuQuota": _INT, "CpusetCpus": _STR, "CpusetMems": _STR, "MemoryReservation": _INT,
    "MemorySwap": _INT, "PidsLimit": _INT, "Init": _BOOL, "Mounts": "[]mount.Mount",
    "Devices": "[]container.DeviceMapping", "Ulimits": "[]*container.Ulimit",
    "OomKillDisable": _BOOL, "BlkioWeight": "uint16", "CgroupnsMode": _STR,
    "MemorySwappiness": _INT, "Isolation": _STR, "ConsoleSize": "[2]uint",
}
# Every field dockerd's HostConfig struct has (Engine API 1.51, Resources included): dockerd
# decodes into its structs, so any other key of a body is dropped, never stored.
HOST_CONFIG_FIELDS = frozenset(HOST_CONFIG_TYPES) | {
    "BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps", "BlkioDeviceReadIOps",
    "BlkioDeviceWriteIOps", "CpuRealtimePeriod", "CpuRealtimeRuntime", "DeviceCgroupRules",
    "DeviceRequests", "KernelMemory", "KernelMemoryTCP", "CpuCount", "CpuPercent",
    "IOMaximumIOps", "IOMaximumBandwidth", "Annotations", "UsernsMode", "StorageOpt",
    "MaskedPaths", "ReadonlyPaths"}
RESOURCE_KEYS = ("CpuShares", "Memory", "NanoCpus", "CpuPeriod", "CpuQuota", "CpusetCpus",
                 "CpusetMems", "MemoryReservation", "MemorySwap", "PidsLimit", "BlkioWeight",
                 "MemorySwappiness", "OomKillDisable", "Ulimits", "Devices")
POLICIES = ("no", "always", "on-failure", "unless-stopped")


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _fits(gotype: str, value: Any) -> bool:
    if value is None:
        return True
    kind = _json_kind(value)
    if gotype == _STR or (gotype.startswith("container.") and gotype.endswith("Mode")) \
            or gotype in ("container.CgroupSpec",):
        return kind == "string"
    if gotype == _BOOL:
        return kind == "bool"
    if gotype in (_INT, "int", "uint16"):
        return kind == "number" and float(value).is_integer()
    if gotype == _SLICE:
        return kind == "string" or (kind == "array" and all(isinstance(v, str) for v in value))
    if gotype == _LIST:
        return kind == "array" and all(isinstance(v, str) for v in value)
    if gotype.startswith("map[string]string"):
        return kind == "object" and all(isinstance(v, str) for v in value.values())
    if gotype.startswith("[]") or gotype.startswith("[2]"):
        return kind == "array"
    return kind == "object"


def _check(doc: dict[str, Any], types: dict[str, str], where: str) -> None:
    for key, gotype in types.items():
        if key in doc and not _fits(gotype, doc[key]):
            shown = _json_kind(doc[key])
            if gotype in (_LIST, _SLICE) and shown == "array":
                shown, gotype = _json_kind(next(v for v in doc[key] if not isinstance(v, str))), \
                    "string"
            raise InvalidParameter(f"json: cannot unmarshal {shown} into Go struct field "
                                   f"{where}.{key} of type {gotype}")


def parse_create(body: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(Config, HostConfig, NetworkingConfig) of a create body."""
    if not isinstance(body, dict):
        raise InvalidParameter(f"json: cannot unmarshal {_json_kind(body)} into Go value of "
                               f"type container.CreateRequest")
    _check(body, CONFIG_TYPES, "CreateRequest")
    host = body.get("HostConfig")
    if host is not None and not isinstance(host, dict):
        raise InvalidParameter(f"json: cannot unmarshal {_json_kind(host)} into Go struct "
                               f"field CreateRequest.HostConfig of type container.HostConfig")
    _check(host or {}, HOST_CONFIG_TYPES, "CreateRequest.HostConfig")
    net = body.get("NetworkingConfig")
    if net is not None and not isinstance(net, dict):
        raise InvalidParameter(f"json: cannot unmarshal {_json_kind(net)} into Go struct "
                               f"field CreateRequest.NetworkingConfig of type "
                               f"network.NetworkingConfig")
    config = {k: copy.deepcopy(v) for k, v in body.items() if k in CONFIG_TYPES}
    for key in ("Cmd", "Entrypoint", "Shell"):  # a StrSlice may come as one string
        if isinstance(config.get(key), str):
            config[key] = [config[key]]
    host_config = {k: copy.deepcopy(v) for k, v in (host or {}).items()
                   if k in HOST_CONFIG_FIELDS}
    for key in ("CapAdd", "CapDrop"):
        if isinstance(host_config.get(key), str):
            host_config[key] = [host_config[key]]
    return config, host_config, copy.deepcopy(net or {})


def merge_image(config: dict[str, Any], image: dict[str, Any]) -> None:
    """dockerd's merge of the image's config into the container's (runconfig.Merge)."""
    if not config.get("User"):
        config["User"] = image.get("User") or ""
    ports = dict(image.get("ExposedPorts") or {})
    ports.update(config.get("ExposedPorts") or {})
    config.pop("ExposedPorts", None)
    if ports:  # dockerd leaves the key out when there are none
        config["ExposedPorts"] = ports
    env = list(config.get("Env") or [])
    keys = {e.partition("=")[0] for e in env}
    env += [e for e in image.get("Env") or [] if e.partition("=")[0] not in keys]
    config["Env"] = env
    labels = dict(image.get("Labels") or {})
    labels.update(config.get("Labels") or {})
    config["Labels"] = labels
    if not config.get("Entrypoint"):
        if not config.get("Cmd"):
            config["Cmd"] = image.get("Cmd")
            if image.get("Shell"):
                config["Shell"] = image["Shell"]
        if config.get("Entrypoint") is None:
            config["Entrypoint"] = image.get("Entrypoint")
    if config.get("Healthcheck") is None and image.get("Healthcheck"):
        config["Healthcheck"] = image["Healthcheck"]
    elif config.get("Healthcheck") and image.get("Healthcheck"):
        hc, ihc = config["Healthcheck"], image["Healthcheck"]
        if not hc.get("Test"):
            hc["Test"] = ihc.get("Test")
        for k in ("Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"):
            if not hc.get(k):
                hc[k] = ihc.get(k, 0)
    if not config.get("WorkingDir"):
        config["WorkingDir"] = image.get("WorkingDir") or ""
    volumes = dict(image.get("Volumes") or {})
    volumes.update(config.get("Volumes") or {})
    config["Volumes"] = volumes or None
    if not config.get("StopSignal") and image.get("StopSignal"):
        config["StopSignal"] = image["StopSignal"]
    if not config.get("OnBuild"):
        config["OnBuild"] = image.get("OnBuild")
    for key in ("Hostname", "Domainname", "WorkingDir", "User"):
        config.setdefault(key, "")
    for key in ("AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin",
                "StdinOnce"):
        config[key] = bool(config.get(key))
    config.setdefault("Cmd", None)
    config.setdefault("Entrypoint", None)


def check_healthcheck(config: dict[str, Any]) -> None:
    """dockerd's limits on Config.Healthcheck (durations in nanoseconds)."""
    hc = config.get("Healthcheck")
    if not hc:
        return
    for key in ("Interval", "Timeout", "StartPeriod", "StartInterval"):
        value = hc.get(key) or 0
        if not isinstance(value, int) or value < 0 or 0 < value < 1_000_000:
            raise InvalidParameter(f"{key} in Healthcheck cannot be less than 1ms")
    if (hc.get("Retries") or 0) < 0:
        raise InvalidParameter("Retries in Healthcheck cannot be negative")


def command(config: dict[str, Any]) -> tuple[str, list[str]]:
    """(Path, Args): the entrypoint and command joined."""
    argv = [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]
    if not argv:
        raise InvalidParameter("no command specified")
    return argv[0], argv[1:]


def check_restart_policy(policy: dict[str, Any], auto_remove: bool) -> dict[str, Any]:
    if not isinstance(policy, dict):
        raise InvalidParameter("json: cannot unmarshal into Go struct field "
                               "HostConfig.RestartPolicy of type container.RestartPolicy")
    name = policy.get("Name") or "no"
    count = policy.get("MaximumRetryCount") or 0
    if name not in POLICIES:
        raise InvalidParameter(f"invalid restart policy: unknown policy '{name}'; use one of "
                               "'no', 'always', 'on-failure', or 'unless-stopped'")
    if not isinstance(count, int):
        raise InvalidParameter("json: cannot unmarshal into Go struct field "
                               "RestartPolicy.MaximumRetryCount of type int")
    if count < 0:
        raise InvalidParameter("invalid restart policy: maximum retry count cannot be "
                               "negative")
    if count and name != "on-failure":
        raise InvalidParameter("invalid restart policy: maximum retry count can only be "
                               "used with 'on-failure'")
    if auto_remove and name != "no":
        raise InvalidParameter("can't create 'AutoRemove' container with restart policy")
    return {"Name": name, "MaximumRetryCount": count}


def check_host_config(host: dict[str, Any]) -> list[str]:
    """Fill dockerd's defaults in; the warnings; InvalidParameter for what dockerd refuses."""
    host["RestartPolicy"] = check_restart_policy(host.get("RestartPolicy") or {},
                                                 bool(host.get("AutoRemove")))
    memory = host.get("Memory") or 0
    if 0 < memory < 6 * 1024 * 1024:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    if (host.get("CpuShares") or 0) < 0:
        raise InvalidParameter(f"invalid CPU shares ({host['CpuShares']}): value must be a "
                               "positive integer")
    pids = host.get("PidsLimit")
    if pids is not None and pids <= 0:  # unlimited, as dockerd stores it
        host["PidsLimit"] = None
    for key, default in (("IpcMode", "private"), ("CgroupnsMode", _cgroupns_default())):
        if not host.get(key):
            host[key] = default
    if not host.get("Privileged"):
        from dockyard.engine.containers import spec

        if host.get("MaskedPaths") is None:
            host["MaskedPaths"] = list(spec.MASKED_PATHS)
        if host.get("ReadonlyPaths") is None:
            host["ReadonlyPaths"] = list(spec.READONLY_PATHS)
    mode = host.get("NetworkMode") or "bridge"
    host["NetworkMode"] = mode
    if mode.startswith("container:") and not mode.partition(":")[2]:
        raise InvalidParameter("invalid network mode: container:")
    warnings: list[str] = []
    published = any(host.get("PortBindings") or {}) or host.get("PublishAllPorts")
    if published and mode == "host":
        warnings.append("Published ports are discarded when using host network mode")
        host["PortBindings"] = {}
    elif published:
        from dockyard.engine.networks import ports

        ports.check(host)
    if (host.get("LogConfig") or {}).get("Type") not in (None, "", "json-file"):
        raise InvalidParameter(f"logging driver {host['LogConfig']['Type']!r} is not "
                               "supported: json-file only")
    log_config = host.get("LogConfig") or {}
    host["LogConfig"] = {"Type": "json-file", "Config": log_config.get("Config") or {}}
    for key, default in (("Binds", None), ("ShmSize", 67108864), ("AutoRemove", False),
                         ("Privileged", False), ("ReadonlyRootfs", False),
                         ("CgroupParent", ""), ("Dns", []), ("ExtraHosts", None),
                         ("Memory", 0), ("NanoCpus", 0), ("CpuShares", 0),
                         ("PortBindings", {}), ("PidMode", ""), ("Runtime", "runc"),
                         ("ConsoleSize", [0, 0]), ("Isolation", "")):
        if host.get(key) is None or (key == "ShmSize" and not host.get(key)):
            host[key] = default
    return warnings


def update_host_config(host: dict[str, Any], body: Any) -> list[str]:
    """POST /containers/{id}/update: resources and the restart policy."""
    if not isinstance(body, dict):
        raise InvalidParameter(f"json: cannot unmarshal {_json_kind(body)} into Go value of "
                               f"type container.UpdateConfig")
    _check(body, HOST_CONFIG_TYPES, "UpdateConfig")
    if "RestartPolicy" in body and body["RestartPolicy"] is not None:
        if host.get("AutoRemove") and (body["RestartPolicy"].get("Name") or "no") != "no":
            raise InvalidParameter("Restart policy cannot be updated because AutoRemove is "
                                   "enabled for the container")
        host["RestartPolicy"] = check_restart_policy(body["RestartPolicy"], False)
    memory = body.get("Memory") or 0
    if 0 < memory < 6 * 1024 * 1024:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    for key in RESOURCE_KEYS:
        if body.get(key) not in (None, 0, "") or (key in body and key in ("PidsLimit",)):
            host[key] = body[key]
    return []


def _cgroupns_default() -> str:
    """dockerd's default cgroup namespace mode: "private" on cgroup v2, else "host"."""
    import os

    return "private" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "host"
