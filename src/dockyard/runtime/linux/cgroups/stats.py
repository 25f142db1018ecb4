"""`runc events --stats` data: runc's types.Stats as the JSON it prints.

Go's `omitempty` drops zero numbers and empty lists or maps but never a nested struct, so
"usage" and "throttling" are always there while "usage.total" may not be; fields without
omitempty (memory "limit" and "failcnt", cpu "kernel" and "user", the cpuset flags) always
are.  v2 values are mapped onto the v1 shape as runc does: microseconds become
nanoseconds, "max" becomes 2^64-1, swap is reported as memory+swap.
"""

from __future__ import annotations

import os

from dockyard.runtime.linux.cgroups import files

MAX_UINT64 = 18446744073709551615
_CLK_TCK = 100  # USER_HZ; cpuacct.stat counts in it


def _omit(d: dict) -> dict:
    """Drop omitempty fields that are zero or empty."""
    return {k: v for k, v in d.items() if v not in (0, None, [], {}, "")}


def _kv(text: str | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return out


def _num(text: str | None) -> int:
    if text is None:
        return 0
    t = text.strip()
    if t == "max":
        return MAX_UINT64
    try:
        return int(t.split()[0]) if t else 0
    except ValueError:
        return 0


def _cpulist(text: str | None) -> list[int]:
    out: list[int] = []
    for part in (text or "").strip().split(","):
        if "-" in part:
            lo, _, hi = part.partition("-")
            out += range(int(lo), int(hi) + 1)
        elif part:
            out.append(int(part))
    return out


def _entry(limit: int, usage: int, peak: int, failcnt: int) -> dict:
    return {"limit": limit, **_omit({"usage": usage, "max": peak}), "failcnt": failcnt}


def empty() -> dict:
    return {
        "cpu": {"usage": {"kernel": 0, "user": 0}, "throttling": {}},
        "cpuset": _cpuset(None),
        "memory": {"usage": _entry(0, 0, 0, 0), "swap": _entry(0, 0, 0, 0),
                   "kernel": _entry(0, 0, 0, 0), "kernelTCP": _entry(0, 0, 0, 0)},
        "pids": {}, "blkio": {}, "hugetlb": {}, "intel_rdt": {}, "network_interfaces": None,
    }


def _cpuset(d: str | None) -> dict:
    def n(name: str) -> int:
        return _num(files.read_or_none(d, name)) if d else 0

    return {**_omit({"cpus": _cpulist(files.read_or_none(d, "cpuset.cpus") if d else None)}),
            "cpu_exclusive": n("cpuset.cpu_exclusive"),
            **_omit({"mems": _cpulist(files.read_or_none(d, "cpuset.mems") if d else None)}),
            "mem_hardwall": n("cpuset.mem_hardwall"), "mem_exclusive": n("cpuset.mem_exclusive"),
            "memory_migrate": n("cpuset.memory_migrate"),
            "memory_spread_page": n("cpuset.memory_spread_page"),
            "memory_spread_slab": n("cpuset.memory_spread_slab"),
            "memory_pressure": n("cpuset.memory_pressure"),
            "sched_load_balance": n("cpuset.sched_load_balance"),
            "sched_relax_domain_level": n("cpuset.sched_relax_domain_level")}


def _hugepage_sizes() -> list[str]:
    """"hugepages-2048kB" -> "2MB", as runc names them."""
    out = []
    try:
        names = os.listdir("/sys/kernel/mm/hugepages")
    except OSError:
        return out
    for name in sorted(names):
        kb = int(name.split("-")[1][:-2])
        for unit, size in (("GB", 1 << 20), ("MB", 1 << 10), ("KB", 1)):
            if kb % size == 0:
                out.append(f"{kb // size}{unit}")
                break
    return out


# ---- v1 ----

def _v1_cpu(s: dict, cpu: str | None, acct: str | None) -> None:
    if cpu:
        t = _kv(files.read_or_none(cpu, "cpu.stat"))
        s["cpu"]["throttling"] = _omit({"periods": t.get("nr_periods", 0),
                                        "throttledPeriods": t.get("nr_throttled", 0),
                                        "throttledTime": t.get("throttled_time", 0)})
    if acct:
        u = s["cpu"]["usage"]
        st = _kv(files.read_or_none(acct, "cpuacct.stat"))
        u["kernel"] = st.get("system", 0) * (1_000_000_000 // _CLK_TCK)
        u["user"] = st.get("user", 0) * (1_000_000_000 // _CLK_TCK)
        total = _num(files.read_or_none(acct, "cpuacct.usage"))
        percpu = [int(x) for x in (files.read_or_none(acct, "cpuacct.usage_percpu")
                                   or "").split()]
        pk, pu = [], []
        for line in (files.read_or_none(acct, "cpuacct.usage_all") or "").splitlines()[1:]:
            parts = line.split()
            if len(parts) == 3:
                pu.append(int(parts[1]))
                pk.append(int(parts[2]))
        s["cpu"]["usage"] = {**_omit({"total": total, "percpu": percpu, "percpu_kernel": pk,
                                      "percpu_user": pu}),
                             "kernel": u["kernel"], "user": u["user"]}


def _v1_memory_entry(d: str, prefix: str) -> dict | None:
    usage = files.read_or_none(d, prefix + ".usage_in_bytes")
    if usage is None:
        return None
    return _entry(_num(files.read_or_none(d, prefix + ".limit_in_bytes")), _num(usage),
                  _num(files.read_or_none(d, prefix + ".max_usage_in_bytes")),
                  _num(files.read_or_none(d, prefix + ".failcnt")))


def _v1_memory(s: dict, d: str) -> None:
    m = s["memory"]
    raw = _kv(files.read_or_none(d, "memory.stat"))
    for key, prefix in (("usage", "memory"), ("swap", "memory.memsw"),
                        ("kernel", "memory.kmem"), ("kernelTCP", "memory.kmem.tcp")):
        e = _v1_memory_entry(d, prefix)
        if e is not None:
            m[key] = e
    s["memory"] = {**_omit({"cache": raw.get("cache", 0)}), **m, **_omit({"raw": raw})}


def _v1_blkio(d: str) -> dict:
    """runc tries BFQ, then CFQ, then the throttle files: the first present set wins."""
    groups = (
        (("ioServicedRecursive", "blkio.bfq.io_serviced_recursive"),
         ("ioServiceBytesRecursive", "blkio.bfq.io_service_bytes_recursive")),
        (("ioServicedRecursive", "blkio.io_serviced_recursive"),
         ("ioServiceBytesRecursive", "blkio.io_service_bytes_recursive"),
         ("sectorsRecursive", "blkio.sectors_recursive"),
         ("ioServiceTimeRecursive", "blkio.io_service_time_recursive"),
         ("ioWaitTimeRecursive", "blkio.io_wait_time_recursive"),
         ("ioMergedRecursive", "blkio.io_merged_recursive"),
         ("ioQueueRecursive", "blkio.io_queued_recursive"),
         ("ioTimeRecursive", "blkio.time_recursive")),
        (("ioServicedRecursive", "blkio.throttle.io_serviced_recursive"),
         ("ioServiceBytesRecursive", "blkio.throttle.io_service_bytes_recursive")),
    )
    for group in groups:
        if files.read_or_none(d, group[0][1]) is None:
            continue
        return _omit({key: _blkio_entries(files.read_or_none(d, name)) for key, name in group})
    return {}


def _blkio_entries(text: str | None) -> list[dict]:
    out = []
    for line in (text or "").splitlines():
        f = line.replace(":", " ").split()
        if len(f) < 3 or f[0] == "Total":
            continue
        op, value = (f[2], f[3]) if len(f) == 4 else ("", f[2])
        out.append(_omit({"major": int(f[0]), "minor": int(f[1]), "op": op,
                          "value": int(value)}))
    return out


def _pids(d: str) -> dict:
    limit = files.read_or_none(d, "pids.max")
    return _omit({"current": _num(files.read_or_none(d, "pids.current")),
                  "limit": 0 if (limit or "").strip() == "max" else _num(limit)})


def v1(paths: dict[str, str]) -> dict:
    s = empty()
    _v1_cpu(s, paths.get("cpu"), paths.get("cpuacct"))
    if "cpuset" in paths:
        s["cpuset"] = _cpuset(paths["cpuset"])
    if "memory" in paths:
        _v1_memory(s, paths["memory"])
    if "pids" in paths:
        s["pids"] = _pids(paths["pids"])
    if "blkio" in paths:
        s["blkio"] = _v1_blkio(paths["blkio"])
    if "hugetlb" in paths:
        d = paths["hugetlb"]
        s["hugetlb"] = {size: {**_omit({
            "usage": _num(files.read_or_none(d, f"hugetlb.{size}.usage_in_bytes")),
            "max": _num(files.read_or_none(d, f"hugetlb.{size}.max_usage_in_bytes"))}),
            "failcnt": _num(files.read_or_none(d, f"hugetlb.{size}.failcnt"))}
            for size in _hugepage_sizes()}
    return s


# ---- v2 ----

def _v2_cpu(s: dict, d: str) -> None:
    t = _kv(files.read_or_none(d, "cpu.stat"))
    s["cpu"]["usage"] = {**_omit({"total": t.get("usage_usec", 0) * 1000}),
                         "kernel": t.get("system_usec", 0) * 1000,
                         "user": t.get("user_usec", 0) * 1000}
    s["cpu"]["throttling"] = _omit({"periods": t.get("nr_periods", 0),
                                    "throttledPeriods": t.get("nr_throttled", 0),
                                    "throttledTime": t.get("throttled_usec", 0) * 1000})


def _v2_memory(s: dict, d: str) -> None:
    current = files.read_or_none(d, "memory.current")
    if current is None:
        return
    raw = _kv(files.read_or_none(d, "memory.stat"))
    events = _kv(files.read_or_none(d, "memory.events"))
    usage = _num(current)
    limit = _num(files.read_or_none(d, "memory.max"))
    m: dict = {**_omit({"cache": raw.get("file", 0)}),
               "usage": _entry(limit, usage, _num(files.read_or_none(d, "memory.peak")),
                               events.get("max", 0))}
    swap = files.read_or_none(d, "memory.swap.current")
    if swap is not None:
        slimit = _num(files.read_or_none(d, "memory.swap.max"))
        if slimit != MAX_UINT64:
            slimit = min(slimit + limit, MAX_UINT64)
        m["swap"] = _entry(slimit, _num(swap) + usage, 0, 0)
    else:
        m["swap"] = _entry(0, 0, 0, 0)
    m["kernel"] = _entry(0, 0, 0, 0)
    m["kernelTCP"] = _entry(0, 0, 0, 0)
    s["memory"] = {**m, **_omit({"raw": raw})}


def _v2_io(d: str) -> dict:
    serviced, nbytes = [], []
    for line in (files.read_or_none(d, "io.stat") or "").splitlines():
        parts = line.split()
        if not parts or ":" not in parts[0]:
            continue
        ma, _, mi = parts[0].partition(":")
        kv = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        for key, op, table in (("rbytes", "Read", nbytes), ("wbytes", "Write", nbytes),
                               ("rios", "Read", serviced), ("wios", "Write", serviced)):
            if key in kv:
                table.append(_omit({"major": int(ma), "minor": int(mi), "op": op,
                                    "value": int(kv[key])}))
    return _omit({"ioServiceBytesRecursive": nbytes, "ioServicedRecursive": serviced})


def v2(d: str) -> dict:
    s = empty()
    _v2_cpu(s, d)
    if files.read_or_none(d, "cpuset.cpus.effective") is not None:
        s["cpuset"] = _cpuset(d)
    _v2_memory(s, d)
    if files.read_or_none(d, "pids.current") is not None:
        s["pids"] = _pids(d)
    s["blkio"] = _v2_io(d)
    sizes = [z for z in _hugepage_sizes() if files.read_or_none(d, f"hugetlb.{z}.current")
             is not None]
    s["hugetlb"] = {z: {**_omit({
        "usage": _num(files.read_or_none(d, f"hugetlb.{z}.current"))}),
        "failcnt": _kv(files.read_or_none(d, f"hugetlb.{z}.events")).get("max", 0)}
        for z in sizes}
    return s
