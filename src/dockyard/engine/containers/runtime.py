"""The engine's calls to dockyard-containerd for one container, each mapping gRPC errors to the
engine's once: the snapshot (key = container id), the container record (made at start with
the spec of that start, deleted at exit, as dockerd's libcontainerd does), the task.
"""

from __future__ import annotations

import json
import signal as signals
from typing import Any

import grpc
from google.protobuf import any_pb2

from dockyard.api.services.containers.v1 import containers_pb2 as containers_pb
from dockyard.api.services.snapshots.v1 import snapshots_pb2 as snapshots_pb
from dockyard.api.services.tasks.v1 import tasks_pb2 as tasks_pb
from dockyard.engine.errors import InvalidParameter, from_grpc

SNAPSHOTTER = "overlayfs"
SPEC_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/Spec"
RESOURCES_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources"
RUNTIME = "io.containerd.runc.v2"
OWNER_LABEL = "dockyard.container"  # on a container's snapshot: its id


def _code(e: grpc.RpcError) -> grpc.StatusCode:
    return e.code()


class Runtime:
    def __init__(self, sup: Any) -> None:
        self.sup = sup

    async def _call(self, method: Any, request: Any, *, missing_ok: bool = False,
                    timeout: float | None = None) -> Any:
        try:
            return await self.sup.call(method, request, timeout=timeout)
        except grpc.RpcError as e:
            if missing_ok and _code(e) == grpc.StatusCode.NOT_FOUND:
                return None
            raise from_grpc(e) from None

    # -- snapshot ----------------------------------------------------------------------------

    async def prepare_snapshot(self, cid: str, parent: str) -> list[Any]:
        r = await self._call(self.sup.snapshots.Prepare, snapshots_pb.PrepareSnapshotRequest(
            snapshotter=SNAPSHOTTER, key=cid, parent=parent, labels={OWNER_LABEL: cid}))
        return list(r.mounts)

    async def mounts(self, cid: str) -> list[Any]:
        r = await self._call(self.sup.snapshots.Mounts, snapshots_pb.MountsRequest(
            snapshotter=SNAPSHOTTER, key=cid))
        return list(r.mounts)

    async def remove_snapshot(self, cid: str) -> None:
        await self._call(self.sup.snapshots.Remove, snapshots_pb.RemoveSnapshotRequest(
            snapshotter=SNAPSHOTTER, key=cid), missing_ok=True)

    async def snapshot_keys(self) -> list[str]:
        """The keys of the snapshots made for containers (by their label)."""
        keys: list[str] = []
        try:
            async for r in self.sup.stream(self.sup.snapshots.List,
                                           snapshots_pb.ListSnapshotsRequest(
                                               snapshotter=SNAPSHOTTER)):
                keys += [info.name for info in r.info
                         if info.labels.get(OWNER_LABEL) == info.name]
        except grpc.RpcError as e:
            raise from_grpc(e) from None
        return keys

    async def usage(self, cid: str) -> int:
        r = await self._call(self.sup.snapshots.Usage, snapshots_pb.UsageRequest(
            snapshotter=SNAPSHOTTER, key=cid), missing_ok=True)
        return int(r.size) if r is not None else 0

    # -- container record --------------------------------------------------------------------

    async def create_record(self, cid: str, image: str, spec: dict[str, Any]) -> None:
        """The record of this start. One left by a start or exit that did not finish (the
        daemon killed in between) is replaced: looked for only when the create finds it,
        not with a delete before every create."""
        packed = any_pb2.Any(type_url=SPEC_TYPE, value=json.dumps(spec).encode())
        request = containers_pb.CreateContainerRequest(container=containers_pb.Container(
            id=cid, image=image, spec=packed, snapshotter=SNAPSHOTTER, snapshot_key=cid,
            runtime=containers_pb.Container.Runtime(name=RUNTIME)))
        try:
            await self.sup.call(self.sup.containers.Create, request)
            return
        except grpc.RpcError as e:
            if _code(e) != grpc.StatusCode.ALREADY_EXISTS:
                raise from_grpc(e) from None
        await self._call(self.sup.containers.Delete,
                         containers_pb.DeleteContainerRequest(id=cid), missing_ok=True)
        await self._call(self.sup.containers.Create, request)

    async def delete_record(self, cid: str) -> None:
        await self._call(self.sup.containers.Delete,
                         containers_pb.DeleteContainerRequest(id=cid), missing_ok=True)

    # -- task --------------------------------------------------------------------------------

    async def create_task(self, cid: str, mounts: list[Any], *, terminal: bool, stdin: bool,
                          log_path: str, max_size: int, max_file: int) -> int:
        r = await self._call(self.sup.tasks.Create, tasks_pb.CreateTaskRequest(
            container_id=cid, rootfs=mounts, terminal=terminal, stdin=stdin,
            log_path=log_path, log_max_size=max_size, log_max_file=max_file))
        return int(r.pid)

    async def start_task(self, cid: str) -> int:
        return int((await self._call(self.sup.tasks.Start,
                                     tasks_pb.StartRequest(container_id=cid))).pid)

    async def delete_task(self, cid: str) -> tuple[int, str] | None:
        """(exit status, exited at) of the deleted task; None when there was none."""
        r = await self._call(self.sup.tasks.Delete,
                             tasks_pb.DeleteTaskRequest(container_id=cid), missing_ok=True)
        if r is None:
            return None
        return int(r.exit_status), stamp(r.exited_at)

    async def kill(self, cid: str, sig: int, *, all_: bool = False) -> None:
        await self._call(self.sup.tasks.Kill, tasks_pb.KillRequest(
            container_id=cid, signal=sig, all=all_))

    async def wait(self, cid: str, timeout: float | None) -> tuple[int, str] | None:
        """(exit status, exited at) once the task exits; None after `timeout` seconds."""
        try:
            r = await self.sup.call(self.sup.tasks.Wait, tasks_pb.WaitRequest(container_id=cid),
                                    timeout=timeout)
        except grpc.RpcError as e:
            if _code(e) == grpc.StatusCode.DEADLINE_EXCEEDED:
                return None
            if _code(e) == grpc.StatusCode.NOT_FOUND:
                return (255, "")
            raise from_grpc(e) from None
        return int(r.exit_status), stamp(r.exited_at)

    async def pause(self, cid: str) -> None:
        await self._call(self.sup.tasks.Pause, tasks_pb.PauseTaskRequest(container_id=cid))

    async def resume(self, cid: str) -> None:
        await self._call(self.sup.tasks.Resume, tasks_pb.ResumeTaskRequest(container_id=cid))

    async def pids(self, cid: str) -> list[int]:
        r = await self._call(self.sup.tasks.ListPids,
                             tasks_pb.ListPidsRequest(container_id=cid))
        return [int(p.pid) for p in r.processes]

    async def update(self, cid: str, resources: dict[str, Any]) -> None:
        packed = any_pb2.Any(type_url=RESOURCES_TYPE, value=json.dumps(resources).encode())
        await self._call(self.sup.tasks.Update, tasks_pb.UpdateTaskRequest(
            container_id=cid, resources=packed))

    async def tasks(self) -> dict[str, Any]:
        """Every task of our namespace by container id (its init process)."""
        r = await self._call(self.sup.tasks.List, tasks_pb.ListTasksRequest())
        return {p.container_id: p for p in r.tasks if not p.id or p.id == p.container_id}


def stamp(ts: Any) -> str:
    """A protobuf Timestamp as Docker's RFC3339Nano; "" for none."""
    if ts is None or (not ts.seconds and not ts.nanos):
        return ""
    from dockyard.units import rfc3339nano

    return rfc3339nano(ts.seconds * 1_000_000_000 + ts.nanos)


def parse_signal(value: str | int | None, default: int = signals.SIGKILL) -> int:
    """A signal by number or name ("9", "KILL", "SIGKILL"), as dockerd's signal.ParseSignal."""
    if value is None or value == "":
        return default
    if isinstance(value, int):
        number = value
    elif value.isdigit():
        number = int(value)
    else:
        name = value.upper()
        name = name if name.startswith("SIG") else f"SIG{name}"
        try:
            number = int(signals.Signals[name])
        except KeyError:
            if name.startswith("SIGRTMIN") or name.startswith("SIGRTMAX"):
                return _rt_signal(name, value)
            raise InvalidParameter(f"Invalid signal: {value}") from None
    if not 0 < number <= 64:
        raise InvalidParameter(f"Invalid signal: {value}")
    return number


def _rt_signal(name: str, value: str) -> int:
    base, _, offset = name.partition("+") if "+" in name else name.partition("-")
    n = int(signals.SIGRTMIN) if base == "SIGRTMIN" else int(signals.SIGRTMAX)
    try:
        delta = int(offset) if offset else 0
    except ValueError:
        raise InvalidParameter(f"Invalid signal: {value}") from None
    return n + delta if "+" in name else n - delta

