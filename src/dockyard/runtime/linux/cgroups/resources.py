"""linux.resources -> the cgroup files to write, as data: [(controller, file, value), ...].

Computing is pure: the few facts a plan depends on (does memory.memsw.limit_in_bytes exist,
what is the current memory limit, the current devices.list) come through `probe(controller,
file) -> text | None`; tests pass a dict.  files.perform() then writes the list in order.

Order matters where the kernel checks one file against another at every moment:

- v1 memory: memory.limit_in_bytes <= memory.memsw.limit_in_bytes must always hold, so when
  raising both, memsw goes first; when lowering, memory goes first (runc: setMemoryAndSwap).
- v1 cpu: a new cfs_period can be refused (EINVAL) while the old quota/period ratio exceeds
  the parent's; cfs_burst must stay <= quota; rt_runtime must stay <= rt_period.  Such a
  write appears twice, before and after its partner: a write that fails with EINVAL is
  tolerated when the same file is written again later in the plan (files.perform).
- v2 cpu.max.burst vs cpu.max likewise.
- `unified` goes last on v2, so that it overrides what the typed fields wrote.

The v1 controller names are hierarchy keys of Manager.paths; on v2 every file is in one
directory and the controller is the name to switch on in the parents' subtree_control
("unified" for raw unified keys).
"""

from __future__ import annotations

from dockyard.runtime.errors import ConfigError
from dockyard.runtime.linux.cgroups import devrules

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    Probe = Callable[[str, str], "str | None"]
    Write = tuple[str, str, str]

MAX_UINT64 = 18446744073709551615


def _section(res: dict, name: str) -> dict:
    v = res.get(name)
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise ConfigError(f"linux.resources.{name} must be an object")
    return v


def _int(sec: dict, path: str, key: str, *, minimum: int | None = None) -> int | None:
    v = sec.get(key)
    if v is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool):
        raise ConfigError(f"linux.resources.{path}.{key} must be an integer")
    if minimum is not None and v < minimum:
        raise ConfigError(f"linux.resources.{path}.{key} must be >= {minimum}, got {v}")
    return v


def _list(sec: dict, path: str, key: str) -> list:
    v = sec.get(key)
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
        raise ConfigError(f"linux.resources.{path}.{key} must be an array of objects")
    return v


def _uint(probe_text: str | None) -> int:
    try:
        return int((probe_text or "0").split()[0])
    except (ValueError, IndexError):
        return 0


# ---- conversions (runc libcontainer/cgroups/utils.go, v1.1) ----

def shares_to_weight(shares: int) -> int:
    """cpu.shares [2, 262144] -> cpu.weight [1, 10000]; 0 stays "unset"."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_to_io_weight(weight: int) -> int:
    """blkio.weight [10, 1000] -> io.weight [1, 10000]."""
    if weight == 0:
        return 0
    return 1 + ((weight - 10) * 9999) // 990


def swap_to_v2(swap: int, memory: int) -> int:
    """OCI swap is memory+swap (v1 memsw); v2's memory.swap.max is swap alone."""
    if swap in (-1, 0):
        return swap
    if memory in (0, -1):
        raise ConfigError("unable to set swap limit without memory limit")
    if swap < memory:
        raise ConfigError("memory+swap limit should be >= memory limit")
    return swap - memory


def v2_num(v: int) -> str:
    """-1 (v1's "unlimited") is "max" on v2; 0 means "not set" and is never written."""
    return "max" if v == -1 else str(v)


def hugepage_size(size: object) -> str:
    """"2MB", "1GB", "64KB": the name in hugetlb.<size>.* files."""
    if not isinstance(size, str) or len(size) < 3 or size[-2:] not in ("KB", "MB", "GB") \
            or not size[:-2].isdigit():
        raise ConfigError(f"invalid hugepage size {size!r} (want e.g. 2MB or 1GB)")
    return size


# ---- memory ----

def _check_usage(limit: int, swap: int, usage: int, swap_usage: int) -> None:
    """memory.checkBeforeUpdate: refuse a limit at or below the current usage (runc's
    wording) instead of letting the kernel reclaim or OOM-kill to fit."""
    if swap > 0 and swap <= swap_usage:
        raise ConfigError(f"rejecting memory+swap limit {swap} <= usage {swap_usage}")
    if limit > 0 and limit <= usage:
        raise ConfigError(f"rejecting memory limit {limit} <= usage {usage}")


def _memory_v1(res: dict, probe: Probe) -> list[Write]:
    m = _section(res, "memory")
    limit = _int(m, "memory", "limit", minimum=-1) or 0
    swap = _int(m, "memory", "swap", minimum=-1) or 0
    reservation = _int(m, "memory", "reservation", minimum=-1) or 0
    swappiness = _int(m, "memory", "swappiness")
    if m.get("checkBeforeUpdate") is True:
        _check_usage(limit, swap, _uint(probe("memory", "memory.usage_in_bytes")),
                     _uint(probe("memory", "memory.memsw.usage_in_bytes")))
    memsw = probe("memory", "memory.memsw.limit_in_bytes")
    if limit == -1 and swap == 0 and memsw is not None:
        swap = -1  # "unlimited memory" means unlimited memory+swap too
    w_mem = ("memory", "memory.limit_in_bytes", str(limit))
    w_swap = ("memory", "memory.memsw.limit_in_bytes", str(swap))
    if limit and swap:
        raising = swap == -1 or _uint(probe("memory", "memory.limit_in_bytes")) < swap
        out = [w_swap, w_mem] if raising else [w_mem, w_swap]
    else:
        out = ([w_mem] if limit else []) + ([w_swap] if swap else [])
    if reservation:
        out.append(("memory", "memory.soft_limit_in_bytes", str(reservation)))
    if m.get("disableOOMKiller") is True:
        out.append(("memory", "memory.oom_control", "1"))
    if swappiness is not None and swappiness != -1:
        if not 0 <= swappiness <= 100:
            raise ConfigError(f"invalid value:{swappiness}. valid memory swappiness range "
                              "is 0-100")
        out.append(("memory", "memory.swappiness", str(swappiness)))
    # kernel and kernelTCP are ignored, as by runc >= 1.0 (kmem limits are deprecated
    # and refused by current kernels); useHierarchy is always 1 on kernels >= 5.x.
    return out


def _memory_v2(res: dict, probe: Probe) -> list[Write]:
    m = _section(res, "memory")
    limit = _int(m, "memory", "limit", minimum=-1) or 0
    swap = _int(m, "memory", "swap", minimum=-1) or 0
    reservation = _int(m, "memory", "reservation", minimum=-1) or 0
    if not (limit or swap or reservation):
        return []
    if m.get("checkBeforeUpdate") is True:
        usage = _uint(probe("memory", "memory.current"))
        _check_usage(limit, swap, usage, usage + _uint(probe("memory", "memory.swap.current")))
    out = []
    v2swap = swap_to_v2(swap, limit)
    # swap == limit writes 0 (no swap at all); "max" is skipped without swap accounting.
    no_swap_file = v2swap == -1 and probe("memory", "memory.swap.max") is None
    if (v2swap or swap > 0) and not no_swap_file:
        out.append(("memory", "memory.swap.max", v2_num(v2swap)))
    if limit:
        out.append(("memory", "memory.max", v2_num(limit)))
    if reservation:
        out.append(("memory", "memory.low", v2_num(reservation)))
    return out


# ---- cpu and cpuset ----

def _twice(first: list[Write], middle: list[Write]) -> list[Write]:
    """first, middle, first again: see "Order matters" above."""
    return first + middle + first if middle and first else first + middle


def _cpu_fields(res: dict) -> dict:
    c = _section(res, "cpu")
    return {
        "shares": _int(c, "cpu", "shares", minimum=0) or 0,
        "quota": _int(c, "cpu", "quota", minimum=-1) or 0,
        "period": _int(c, "cpu", "period", minimum=0) or 0,
        "burst": _int(c, "cpu", "burst", minimum=0),
        "rt_runtime": _int(c, "cpu", "realtimeRuntime", minimum=-1) or 0,
        "rt_period": _int(c, "cpu", "realtimePeriod", minimum=0) or 0,
        "idle": _int(c, "cpu", "idle"),
        "cpus": c.get("cpus") or "",
        "mems": c.get("mems") or "",
    }


def _cpu_v1(res: dict) -> list[Write]:
    f = _cpu_fields(res)
    out: list[Write] = []
    if f["shares"]:
        out.append(("cpu", "cpu.shares", str(f["shares"])))
    first = [("cpu", "cpu.cfs_period_us", str(f["period"]))] if f["period"] else []
    if f["burst"] is not None:
        first.append(("cpu", "cpu.cfs_burst_us", str(f["burst"])))
    quota = [("cpu", "cpu.cfs_quota_us", str(f["quota"]))] if f["quota"] else []
    out += _twice(first, quota)
    out += rt_writes(f["rt_period"], f["rt_runtime"])
    if f["idle"] is not None:
        out.append(("cpu", "cpu.idle", str(f["idle"])))
    return out


def rt_writes(period: int, runtime: int) -> list[Write]:
    """cpu.rt_period_us / cpu.rt_runtime_us (v1 only). Apply() of runc writes these before
    the process joins too: a SCHED_RR process cannot join a cgroup without rt bandwidth."""
    first = [("cpu", "cpu.rt_period_us", str(period))] if period else []
    rt = [("cpu", "cpu.rt_runtime_us", str(runtime))] if runtime else []
    return _twice(first, rt)


def _cpuset(res: dict, controller: str) -> list[Write]:
    f = _cpu_fields(res)
    out = []
    for key, name in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
        if not isinstance(f[key], str):
            raise ConfigError(f"linux.resources.cpu.{key} must be a string")
        if f[key]:
            out.append((controller, name, f[key]))
    return out


def _cpu_v2(res: dict) -> list[Write]:
    f = _cpu_fields(res)
    if f["rt_runtime"] or f["rt_period"]:
        raise ConfigError("realtime scheduling (cpu.realtimeRuntime, cpu.realtimePeriod) "
                          "is not supported on cgroup v2")
    out: list[Write] = []
    if f["shares"]:
        out.append(("cpu", "cpu.weight", str(shares_to_weight(f["shares"]))))
    quota = []
    if f["quota"] or f["period"]:
        q = str(f["quota"]) if f["quota"] > 0 else "max"
        quota = [("cpu", "cpu.max", f"{q} {f['period'] or 100000}")]
    burst = [("cpu", "cpu.max.burst", str(f["burst"]))] if f["burst"] is not None else []
    out += _twice(burst, quota)
    if f["idle"] is not None:
        out.append(("cpu", "cpu.idle", str(f["idle"])))
    return out


# ---- pids, blkio/io, hugetlb, network, rdma ----

def _pids(res: dict) -> list[Write]:
    p = _section(res, "pids")
    limit = _int(p, "pids", "limit")
    if not limit:
        return []
    return [("pids", "pids.max", str(limit) if limit > 0 else "max")]


def _device(d: dict, path: str) -> str:
    for k in ("major", "minor"):
        if not isinstance(d.get(k), int) or isinstance(d.get(k), bool) or d[k] < 0:
            raise ConfigError(f"linux.resources.blockIO.{path}: {k} must be a "
                              "non-negative integer")
    return f"{d['major']}:{d['minor']}"


_THROTTLE = (("throttleReadBpsDevice", "read_bps_device", "rbps"),
             ("throttleWriteBpsDevice", "write_bps_device", "wbps"),
             ("throttleReadIOPSDevice", "read_iops_device", "riops"),
             ("throttleWriteIOPSDevice", "write_iops_device", "wiops"))


def _rate(d: dict, key: str) -> int:
    rate = d.get("rate")
    if not isinstance(rate, int) or isinstance(rate, bool) or rate < 0:
        raise ConfigError(f"linux.resources.blockIO.{key}: rate must be a non-negative integer")
    return rate


def _blkio_v1(res: dict, probe: Probe) -> list[Write]:
    b = _section(res, "blockIO")
    out = []
    # Kernels with blk-mq only have BFQ's files (blkio.bfq.weight and friends).
    bfq = probe("blkio", "blkio.weight") is None and probe("blkio", "blkio.bfq.weight") is not None
    weight_file = "blkio.bfq.weight" if bfq else "blkio.weight"
    weight = _int(b, "blockIO", "weight", minimum=0)
    if weight:
        out.append(("blkio", weight_file, str(weight)))
    leaf = _int(b, "blockIO", "leafWeight", minimum=0)
    if leaf:
        out.append(("blkio", "blkio.leaf_weight", str(leaf)))
    for d in _list(b, "blockIO", "weightDevice"):
        dev = _device(d, "weightDevice")
        if _int(d, "blockIO.weightDevice", "weight", minimum=0):
            out.append(("blkio", weight_file + "_device", f"{dev} {d['weight']}"))
        if _int(d, "blockIO.weightDevice", "leafWeight", minimum=0):
            out.append(("blkio", "blkio.leaf_weight_device", f"{dev} {d['leafWeight']}"))
    for key, name, _ in _THROTTLE:
        for d in _list(b, "blockIO", key):
            out.append(("blkio", "blkio.throttle." + name, f"{_device(d, key)} {_rate(d, key)}"))
    return out


def _io_v2(res: dict, probe: Probe) -> list[Write]:
    b = _section(res, "blockIO")
    out = []
    bfq = probe("io", "io.bfq.weight") is not None
    weight = _int(b, "blockIO", "weight", minimum=0)
    if weight:
        out.append(("io", "io.bfq.weight", str(weight)) if bfq
                   else ("io", "io.weight", str(blkio_to_io_weight(weight))))
    for d in _list(b, "blockIO", "weightDevice"):
        if _int(d, "blockIO.weightDevice", "weight", minimum=0):
            if not bfq:
                raise ConfigError("blockIO.weightDevice needs the BFQ I/O scheduler "
                                  "(io.bfq.weight) on cgroup v2")
            out.append(("io", "io.bfq.weight", f"{_device(d, 'weightDevice')} {d['weight']}"))
    for key, _, op in _THROTTLE:
        for d in _list(b, "blockIO", key):
            out.append(("io", "io.max", f"{_device(d, key)} {op}={_rate(d, key)}"))
    return out


def _hugetlb(res: dict, suffix: str) -> list[Write]:
    v = res.get("hugepageLimits")
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
        raise ConfigError("linux.resources.hugepageLimits must be an array of objects")
    out = []
    for h in v:
        limit = _int(h, "hugepageLimits", "limit", minimum=0)
        if limit is None:
            raise ConfigError("linux.resources.hugepageLimits: limit is required")
        out.append(("hugetlb", f"hugetlb.{hugepage_size(h.get('pagesize'))}.{suffix}",
                    str(limit)))
    return out


def _network_v1(res: dict) -> list[Write]:
    n = _section(res, "network")
    out = []
    cid = _int(n, "network", "classID", minimum=0)
    if cid:
        out.append(("net_cls", "net_cls.classid", str(cid)))
    for p in _list(n, "network", "priorities"):
        name, prio = p.get("name"), p.get("priority")
        if not isinstance(name, str) or not name or not isinstance(prio, int):
            raise ConfigError("linux.resources.network.priorities: want {name, priority}")
        out.append(("net_prio", "net_prio.ifpriomap", f"{name} {prio}"))
    return out


def _rdma(res: dict) -> list[Write]:
    r = res.get("rdma")
    if not r:
        return []
    if not isinstance(r, dict):
        raise ConfigError("linux.resources.rdma must be an object")
    out = []
    for dev, lim in r.items():
        if not isinstance(lim, dict):
            raise ConfigError(f"linux.resources.rdma.{dev} must be an object")
        line = dev
        for key, name in (("hcaHandles", "hca_handle"), ("hcaObjects", "hca_object")):
            n = _int(lim, f"rdma.{dev}", key, minimum=0)
            if n is not None:
                line += f" {name}={n}"
        out.append(("rdma", "rdma.max", line))
    return out


def _unified(res: dict) -> list[Write]:
    u = res.get("unified")
    if not u:
        return []
    if not isinstance(u, dict):
        raise ConfigError("linux.resources.unified must be an object")
    out = []
    for k, v in u.items():
        if "/" in k or k in ("", ".", ".."):
            raise ConfigError(f'unified resource "{k}" must be a file name (no slashes)')
        if "." not in k:
            raise ConfigError(f'unified resource "{k}" must be in the form '
                              "CONTROLLER.PARAMETER")
        if not isinstance(v, str):
            raise ConfigError(f"unified resource {k!r}: value must be a string")
        out.append(("unified", k, v))
    return out


# ---- the two plans ----

def v1_writes(res: dict, probe: Probe) -> list[Write]:
    """Every v1 write for `res`, in runc's subsystem order (devices before memory etc.)."""
    if not isinstance(res, dict):
        raise ConfigError("linux.resources must be an object")
    if res.get("unified"):
        raise ConfigError("invalid configuration: cannot use unified on cgroup v1")
    out = _cpuset(res, "cpuset")
    out += device_writes_v1(res, probe)
    out += _memory_v1(res, probe)
    out += _cpu_v1(res)
    out += _pids(res)
    out += _blkio_v1(res, probe)
    out += _hugetlb(res, "limit_in_bytes")
    out += _network_v1(res)
    out += _rdma(res)
    return out


def device_writes_v1(res: dict, probe: Probe) -> list[Write]:
    target = devrules.fold(devrules.parse_rules(res.get("devices")))
    listing = probe("devices", "devices.list")
    current = devrules.parse_list(listing) if listing is not None else None
    return devrules.v1_writes(target, current)


def v2_writes(res: dict, probe: Probe) -> list[Write]:
    """Every v2 file write for `res` (devices are an eBPF program, not a file: see bpf.py)."""
    if not isinstance(res, dict):
        raise ConfigError("linux.resources must be an object")
    n = _section(res, "network")
    if n.get("classID") or n.get("priorities"):
        raise ConfigError("network.classID and network.priorities (net_cls, net_prio) "
                          "are not supported on cgroup v2")
    out = _pids(res)
    out += _memory_v2(res, probe)
    out += _io_v2(res, probe)
    out += _cpu_v2(res)
    out += _cpuset(res, "cpuset")
    out += _hugetlb(res, "max")
    out += _rdma(res)
    out += _unified(res)
    return out


def v2_controllers(writes: list[Write]) -> list[str]:
    """The controllers the writes need switched on in every parent's subtree_control."""
    need: list[str] = []
    for c, name, _ in writes:
        ctl = name.split(".", 1)[0] if c == "unified" else c
        if ctl not in need and ctl != "cgroup":
            need.append(ctl)
    return need
