"""GET /containers/{id}/stats: Docker's stats document from the container's cgroup
statistics (the supervisor's task Metrics: runc's `events --stats` shape, cgroup v1 and v2
alike), the host's CPU time (/proc/stat) and the container's interfaces (/proc/<pid>/net/dev).

    sample()   one reading: the cgroup numbers, the host's CPU time, when it was read
    document() Docker's JSON of a reading and the one before it (precpu_stats, preread)

Streaming sends one document a second while the container runs (none while it does not, as
dockerd's collector), each with the previous reading as its "pre"; a one-shot answer has no
"pre"; a non-streamed answer waits a second for a second reading, as dockerd does, so that
`docker stats --no-stream` can print a CPU percentage; a container that does not run gets
a document of zeroes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import grpc

from dockyard.api.services.tasks.v1 import tasks_pb2 as tasks_pb
from dockyard.engine.containers.model import ZERO_TIME, Container
from dockyard.engine.errors import from_grpc
from dockyard.units import rfc3339nano

MAX_UINT64 = (1 << 64) - 1
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_BLKIO = (("io_service_bytes_recursive", "ioServiceBytesRecursive"),
          ("io_serviced_recursive", "ioServicedRecursive"),
          ("io_queue_recursive", "ioQueueRecursive"),
          ("io_service_time_recursive", "ioServiceTimeRecursive"),
          ("io_wait_time_recursive", "ioWaitTimeRecursive"),
          ("io_merged_recursive", "ioMergedRecursive"),
          ("io_time_recursive", "ioTimeRecursive"),
          ("sectors_recursive", "sectorsRecursive"))


@dataclass
class Sample:
    read: str = ZERO_TIME
    cgroup: dict[str, Any] = field(default_factory=dict)
    system_cpu: int = 0
    networks: dict[str, Any] | None = None


def _ints(value: Any) -> Any:
    """A protobuf Struct's numbers (doubles) back as integers."""
    if isinstance(value, float):
        return MAX_UINT64 if value >= MAX_UINT64 else int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


def system_cpu_usage(text: str | None = None) -> int:
    """The host's CPU time in nanoseconds (dockerd's getSystemCPUUsage)."""
    if text is None:
        with open("/proc/stat") as f:
            text = f.read()
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == "cpu":
            ticks = sum(int(x) for x in parts[1:8])
            return ticks * 1_000_000_000 // _CLK_TCK
    return 0


def host_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def networks(text: str) -> dict[str, Any] | None:
    """/proc/<pid>/net/dev as Docker's `networks` (the loopback left out)."""
    out: dict[str, Any] = {}
    for line in text.splitlines()[2:]:
        name, _, rest = line.partition(":")
        name = name.strip()
        v = rest.split()
        if name == "lo" or len(v) < 16:
            continue
        n = [int(x) for x in v[:16]]
        out[name] = {"rx_bytes": n[0], "rx_packets": n[1], "rx_errors": n[2],
                     "rx_dropped": n[3], "tx_bytes": n[8], "tx_packets": n[9],
                     "tx_errors": n[10], "tx_dropped": n[11]}
    return out or None


async def sample(sup: Any, c: Container) -> Sample:
    try:
        r = await sup.call(sup.tasks.Metrics, tasks_pb.MetricsRequest(filters=[f"id=={c.id}"]))
    except grpc.RpcError as e:
        raise from_grpc(e) from None
    cgroup: dict[str, Any] = {}
    for m in r.metrics:
        if m.id == c.id:
            from google.protobuf import json_format, struct_pb2

            data = struct_pb2.Struct()
            if m.data.Is(struct_pb2.Struct.DESCRIPTOR):
                m.data.Unpack(data)
                cgroup = _ints(json_format.MessageToDict(data))
            else:
                cgroup = json.loads(m.data.value or b"{}")
    nets = None
    if c.state.pid and c.host_config.get("NetworkMode") != "host":
        try:
            with open(f"/proc/{c.state.pid}/net/dev") as f:
                nets = networks(f.read())
        except OSError:
            pass
    return Sample(read=rfc3339nano(), cgroup=cgroup, system_cpu=system_cpu_usage(),
                  networks=nets)


def _cpu(s: Sample | None, online: int) -> dict[str, Any]:
    if s is None or not s.cgroup:
        return {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0,
                              "usage_in_usermode": 0},
                "throttling_data": {"periods": 0, "throttled_periods": 0,
                                    "throttled_time": 0}}
    cpu = s.cgroup.get("cpu") or {}
    usage = cpu.get("usage") or {}
    throttling = cpu.get("throttling") or {}
    percpu = usage.get("percpu") or []
    out_usage: dict[str, Any] = {"total_usage": usage.get("total", 0)}
    if percpu:
        out_usage["percpu_usage"] = percpu
    out_usage.update(usage_in_kernelmode=usage.get("kernel", 0),
                     usage_in_usermode=usage.get("user", 0))
    return {"cpu_usage": out_usage, "system_cpu_usage": s.system_cpu,
            "online_cpus": online or len(percpu),
            "throttling_data": {"periods": throttling.get("periods", 0),
                                "throttled_periods": throttling.get("throttledPeriods", 0),
                                "throttled_time": throttling.get("throttledTime", 0)}}


def _memory(cgroup: dict[str, Any], host_mem: int) -> dict[str, Any]:
    mem = cgroup.get("memory") or {}
    if not mem:
        return {}
    usage = mem.get("usage") or {}
    limit = usage.get("limit", 0) or MAX_UINT64
    out: dict[str, Any] = {"usage": usage.get("usage", 0)}
    if usage.get("max"):
        out["max_usage"] = usage["max"]
    out["stats"] = dict(mem.get("raw") or {})
    if usage.get("failcnt"):
        out["failcnt"] = usage["failcnt"]
    out["limit"] = min(limit, host_mem) if host_mem else limit
    return out


def _blkio(cgroup: dict[str, Any]) -> dict[str, Any]:
    """Lists (empty ones too) for a reading; null for none, as dockerd on cgroup v1."""
    blkio = cgroup.get("blkio") or {}
    return {ours: [{"major": e.get("major", 0), "minor": e.get("minor", 0),
                    "op": e.get("op", ""), "value": e.get("value", 0)}
                   for e in blkio.get(theirs) or []] if cgroup else None
            for ours, theirs in _BLKIO}


def document(c: Container, now: Sample | None, pre: Sample | None, *, online: int,
             host_mem: int) -> dict[str, Any]:
    """Docker's stats document of reading `now` after `pre` (None: a container that does not
    run, or the first reading)."""
    cgroup = now.cgroup if now is not None else {}
    pids = cgroup.get("pids") or {}
    doc: dict[str, Any] = {
        "read": now.read if now is not None else ZERO_TIME,
        "preread": pre.read if pre is not None else ZERO_TIME,
        "pids_stats": {k: pids[k] for k in ("current", "limit") if pids.get(k)},
        "blkio_stats": _blkio(cgroup),
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": _cpu(now, online) if now is not None else _cpu(None, 0),
        "precpu_stats": _cpu(pre, online) if pre is not None else _cpu(None, 0),
        "memory_stats": _memory(cgroup, host_mem),
        "name": f"/{c.name}",
        "id": c.id,
    }
    if now is not None and now.networks:
        doc["networks"] = now.networks
    return doc


def online_cpus() -> int:
    try:
        return int(os.sysconf("SC_NPROCESSORS_ONLN"))
    except (ValueError, OSError):
        return os.cpu_count() or 1


def running(c: Container) -> bool:
    return c.state.running and not c.state.restarting
