"""`linux.resources` and `linux.devices` of a Docker container's spec: cgroup limits from
HostConfig (checked as dockerd checks them when it creates a container), Docker's default
device cgroup rules, `Devices` (host device nodes, looked up on the host) and
`DeviceCgroupRules`, and for `--privileged` every device of the host."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dockyard.engine.errors import InvalidParameter

MIN_MEMORY = 6 * 1024 * 1024
DEFAULT_CPU_PERIOD = 100_000

# Deny everything, then what every container may use: null, zero, full, random, urandom,
# tty, console, and never /dev/net/tun's neighbour 10:229 (fuse) unless asked for.
DEFAULT_DEVICE_RULES: tuple[dict[str, Any], ...] = (
    {"allow": False, "access": "rwm"},
    *({"allow": True, "type": "c", "major": ma, "minor": mi, "access": "rwm"}
      for ma, mi in ((1, 5), (1, 3), (1, 9), (1, 8), (5, 0), (5, 1))),
    {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
)

_RULE = re.compile(r"^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$")
# Directories of /dev that dockerd (runc's HostDevices) does not look into.
_SKIP_DIRS = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"}


def _int(hc: Mapping[str, Any], key: str) -> int:
    value = hc.get(key)
    return int(value) if value else 0


@dataclass(frozen=True)
class CgroupSupport:
    """What the host's cgroups can limit; dockerd discards (with a warning) the settings
    the kernel cannot apply instead of failing the start."""
    blkio_weight: bool = True
    blkio_weight_device: bool = True
    blkio_throttle: bool = True
    swap: bool = True
    swappiness: bool = True
    oom_kill_disable: bool = True

    @classmethod
    def probe(cls, root: str = "/sys/fs/cgroup") -> CgroupSupport:
        if os.path.exists(os.path.join(root, "cgroup.controllers")):  # v2
            return cls(swappiness=False, oom_kill_disable=False)

        def has(controller: str, name: str) -> bool:
            return os.path.exists(os.path.join(root, controller, name))

        return cls(blkio_weight=has("blkio", "blkio.weight"),
                   blkio_weight_device=has("blkio", "blkio.weight_device"),
                   blkio_throttle=has("blkio", "blkio.throttle.read_bps_device"),
                   swap=has("memory", "memory.memsw.limit_in_bytes"),
                   swappiness=has("memory", "memory.swappiness"),
                   oom_kill_disable=has("memory", "memory.oom_control"))


THROTTLES = ("BlkioDeviceReadBps", "BlkioDeviceWriteBps", "BlkioDeviceReadIOps",
             "BlkioDeviceWriteIOps")


def adapt(hc: Mapping[str, Any], support: CgroupSupport) -> dict[str, Any]:
    """HostConfig with what this host cannot limit taken out, as dockerd does."""
    out = dict(hc)
    if not support.swap and (_int(out, "Memory") > 0 or _int(out, "MemorySwap") > 0):
        out["MemorySwap"] = -1  # "Memory limited without swap."
    if not support.swappiness:
        out["MemorySwappiness"] = None
    if not support.oom_kill_disable:
        out["OomKillDisable"] = False
    if not support.blkio_weight:
        out["BlkioWeight"] = 0
    if not support.blkio_weight_device:
        out["BlkioWeightDevice"] = []
    if not support.blkio_throttle:
        out.update({key: [] for key in THROTTLES})
    return out


def validate(hc: Mapping[str, Any], ncpu: int | None = None) -> None:
    """The resource checks dockerd makes at create time, with its messages."""
    memory, swap = _int(hc, "Memory"), _int(hc, "MemorySwap")
    if 0 < memory < MIN_MEMORY:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    if swap > 0 and memory == 0:
        raise InvalidParameter("You should always set the Memory limit when using Memoryswap "
                               "limit, see usage")
    if memory > 0 and swap > 0 and swap < memory:
        raise InvalidParameter("Minimum memoryswap limit should be larger than memory limit, "
                               "see usage")
    swappiness = hc.get("MemorySwappiness")
    if swappiness is not None and swappiness != -1 and not 0 <= swappiness <= 100:
        raise InvalidParameter(f"Invalid value: {swappiness}, valid memory swappiness range "
                               "is 0-100")
    reservation = _int(hc, "MemoryReservation")
    if 0 < reservation < MIN_MEMORY:
        raise InvalidParameter("Minimum memory reservation allowed is 6MB")
    if memory > 0 and reservation > 0 and memory < reservation:
        raise InvalidParameter("Minimum memory limit can not be less than memory reservation "
                               "limit, see usage")
    nano, period, quota = _int(hc, "NanoCpus"), _int(hc, "CpuPeriod"), _int(hc, "CpuQuota")
    if nano and period:
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Period cannot both be "
                               "set")
    if nano and quota:
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Quota cannot both be "
                               "set")
    ncpu = ncpu or os.cpu_count() or 1
    if nano < 0 or nano > ncpu * 10**9:
        raise InvalidParameter(f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only "
                               f"{ncpu} CPUs available")
    if period and not 1000 <= period <= 1_000_000:
        raise InvalidParameter("CPU cfs period can not be less than 1ms (i.e. 1000) or larger "
                               "than 1s (i.e. 1000000)")
    if quota > 0 and quota < 1000:
        raise InvalidParameter("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    weight = _int(hc, "BlkioWeight")
    if weight and not 10 <= weight <= 1000:
        raise InvalidParameter("Range of blkio weight is from 10 to 1000")
    adj = _int(hc, "OomScoreAdj")
    if not -1000 <= adj <= 1000:
        raise InvalidParameter(f"Invalid value {adj}, range for oom score adj is "
                               "[-1000, 1000]")


def resources(hc: Mapping[str, Any]) -> dict[str, Any]:
    """`linux.resources` without devices. KernelMemory is ignored, as current dockerd does
    (the kernel dropped kmem limits)."""
    memory: dict[str, Any] = {}
    for key, field in (("Memory", "limit"), ("MemoryReservation", "reservation"),
                       ("MemorySwap", "swap")):
        if _int(hc, key) > 0:
            memory[field] = _int(hc, key)
    if "limit" in memory and not _int(hc, "MemorySwap"):
        memory["swap"] = 2 * memory["limit"]  # dockerd's default: as much swap as memory
    if _int(hc, "KernelMemoryTCP") > 0:
        memory["kernelTCP"] = _int(hc, "KernelMemoryTCP")
    swappiness = hc.get("MemorySwappiness")
    if swappiness is not None and swappiness != -1:
        memory["swappiness"] = int(swappiness)
    memory["disableOOMKiller"] = bool(hc.get("OomKillDisable"))
    cpu: dict[str, Any] = {"shares": _int(hc, "CpuShares")}
    nano = _int(hc, "NanoCpus")
    if nano:
        cpu["quota"] = nano * DEFAULT_CPU_PERIOD // 10**9
        cpu["period"] = DEFAULT_CPU_PERIOD
    if _int(hc, "CpuPeriod"):
        cpu["period"] = _int(hc, "CpuPeriod")
    if _int(hc, "CpuQuota"):
        cpu["quota"] = _int(hc, "CpuQuota")
    for key, field in (("CpuRealtimePeriod", "realtimePeriod"),
                       ("CpuRealtimeRuntime", "realtimeRuntime")):
        if _int(hc, key):
            cpu[field] = _int(hc, key)
    if hc.get("CpusetCpus"):
        cpu["cpus"] = hc["CpusetCpus"]
    if hc.get("CpusetMems"):
        cpu["mems"] = hc["CpusetMems"]
    out: dict[str, Any] = {"memory": memory, "cpu": cpu}
    if _int(hc, "PidsLimit") > 0:
        out["pids"] = {"limit": _int(hc, "PidsLimit")}
    out["blockIO"] = _block_io(hc)
    return out


def _block_io(hc: Mapping[str, Any]) -> dict[str, Any]:
    blkio: dict[str, Any] = {"weight": _int(hc, "BlkioWeight")}
    weights = []
    for d in hc.get("BlkioWeightDevice") or ():
        major, minor = _device_numbers(d.get("Path", ""))
        weights.append({"major": major, "minor": minor, "weight": int(d.get("Weight", 0))})
    if weights:
        blkio["weightDevice"] = weights
    for key, field in zip(THROTTLES, ("throttleReadBpsDevice", "throttleWriteBpsDevice",
                                      "throttleReadIOPSDevice", "throttleWriteIOPSDevice"),
                          strict=True):
        rates = []
        for d in hc.get(key) or ():
            major, minor = _device_numbers(d.get("Path", ""))
            rates.append({"major": major, "minor": minor, "rate": int(d.get("Rate", 0))})
        if rates:
            blkio[field] = rates
    return blkio


def _device_numbers(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError as e:
        raise InvalidParameter(f"stat {path}: {e.strerror.lower()}") from None
    return os.major(st.st_rdev), os.minor(st.st_rdev)


def device_node(host_path: str, container_path: str) -> dict[str, Any] | None:
    """A host device as an OCI `linux.devices` entry; None when `host_path` is no device."""
    try:
        st = os.stat(host_path)
    except OSError:
        return None
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        return None
    return {"path": container_path, "type": kind, "major": os.major(st.st_rdev),
            "minor": os.minor(st.st_rdev), "fileMode": stat.S_IMODE(st.st_mode) | 0,
            "uid": st.st_uid, "gid": st.st_gid}


def user_devices(hc: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`Devices`: (linux.devices, their cgroup rules). A directory brings every device in
    it, mapped under the container path."""
    nodes: list[dict[str, Any]] = []
    rules: list[dict[str, Any]] = []
    for d in hc.get("Devices") or ():
        host = d.get("PathOnHost", "")
        inside = d.get("PathInContainer") or host
        access = d.get("CgroupPermissions") or "rwm"
        if not host:
            raise InvalidParameter("invalid device mapping: empty PathOnHost")
        found = []
        if os.path.isdir(host):
            prefix = host.rstrip("/")
            for path in _walk(prefix):
                node = device_node(path, inside.rstrip("/") + path[len(prefix):])
                if node is not None:
                    found.append(node)
        else:
            node = device_node(host, inside)
            if node is None:
                raise InvalidParameter(f"error gathering device information while adding "
                                       f"custom device \"{host}\": not a device node")
            found.append(node)
        for node in found:
            nodes.append(node)
            rules.append({"allow": True, "type": node["type"], "major": node["major"],
                          "minor": node["minor"], "access": access})
    return nodes, rules


def cgroup_rules(hc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """`DeviceCgroupRules` ("c 42:* rmw") as OCI device rules; "*" is -1."""
    out = []
    for text in hc.get("DeviceCgroupRules") or ():
        m = _RULE.match(str(text).strip())
        if m is None:
            raise InvalidParameter(f"invalid device cgroup format '{text}'")
        kind, major, minor, access = m.groups()
        out.append({"allow": True, "type": kind,
                    "major": -1 if major == "*" else int(major),
                    "minor": -1 if minor == "*" else int(minor), "access": access})
    return out


def _walk(root: str) -> list[str]:
    """Paths under `root` in runc's order: by name, a directory expanded where it sorts,
    symbolic links and /dev/console left out, private directories (pts, shm…) skipped."""
    out: list[str] = []
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return out
    for entry in entries:
        if entry.is_symlink() or entry.name == "console":
            continue
        if entry.is_dir(follow_symlinks=False):
            if entry.name not in _SKIP_DIRS:
                out += _walk(entry.path)
            continue
        out.append(entry.path)
    return out


def host_devices(root: str = "/dev") -> list[dict[str, Any]]:
    """Every device node of the host, as `--privileged` passes them all."""
    nodes = (device_node(path, path) for path in _walk(root))
    return [n for n in nodes if n is not None]


def devices(hc: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(linux.devices, linux.resources.devices) for the container."""
    if hc.get("Privileged"):
        return host_devices(), [{"allow": True, "access": "rwm"}]
    nodes, rules = user_devices(hc)
    return nodes, [dict(r) for r in DEFAULT_DEVICE_RULES] + rules + cgroup_rules(hc)
