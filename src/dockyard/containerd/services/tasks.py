"""Tasks service: containerd's Tasks API over the task manager (taskmanager.py) and the shims.

A task is made for a container record: its spec (the OCI runtime spec as JSON in an Any, as
containerd stores it) becomes the bundle's config.json, and its rootfs is the request's mounts
or, when none are given, the mounts of the container's snapshot (containerd does the same).
Process specs (Exec) and resources (Update) are JSON in an Any too.

Attach is ours (containerd hands FIFOs to the shim instead): a bidirectional stream whose first
message says what to attach to; an empty message of stream 0 says the attach is in place (a
client starts the task after it, and loses no output), then output comes back as (stream,
data) messages, 1 for stdout and 2 for stderr (a terminal's output is all 1). Later messages
carry stdin data, and `close_stdin` ends the container's stdin.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal as signals
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import grpc
from google.protobuf import any_pb2, empty_pb2, struct_pb2, timestamp_pb2

from dockyard.api.services.tasks.v1 import tasks_pb2 as pb
from dockyard.api.services.tasks.v1 import tasks_pb2_grpc as rpc
from dockyard.api.types import metrics_pb2, task_pb2
from dockyard.containerd import requestmeta
from dockyard.containerd.errors import FailedPrecondition, InvalidArgument, Unimplemented
from dockyard.containerd.protoconv import timestamp
from dockyard.containerd.service import Registration, blocking
from dockyard.containerd.services.taskmanager import TaskManager
from dockyard.containerd.supervisor import Supervisor
from dockyard.shim.protocol import ShimError

log = logging.getLogger("dockyard.containerd")

STATUS = {"created": task_pb2.CREATED, "running": task_pb2.RUNNING,
          "stopped": task_pb2.STOPPED, "paused": task_pb2.PAUSED,
          "pausing": task_pb2.PAUSING}
ATTACH_HEADER = 8  # Docker's multiplexed frame header: stream, 3 zero bytes, length


def json_any(value: any_pb2.Any, what: str) -> Any:
    try:
        return json.loads(value.value)
    except (UnicodeDecodeError, ValueError) as e:
        raise InvalidArgument(f"{what} is not JSON: {e}") from None


def stamp(text: str | None) -> timestamp_pb2.Timestamp | None:
    """A shim's RFC 3339 time (nanoseconds, "Z") as a Timestamp; None for none."""
    if not text:
        return None
    out = timestamp_pb2.Timestamp()
    out.FromJsonString(text)
    return out


class TasksService(rpc.TasksServicer):
    def __init__(self, sup: Supervisor, manager: TaskManager) -> None:
        self.sup, self.tasks = sup, manager

    # -- create, start, delete ----------------------------------------------------------------

    async def Create(self, request: pb.CreateTaskRequest,
                     context: grpc.aio.ServicerContext) -> pb.CreateTaskResponse:
        ns = requestmeta.namespace(context)
        if request.HasField("checkpoint") and request.checkpoint.digest:
            raise Unimplemented("restoring a task from a checkpoint is not supported")
        container = await blocking(self.sup.metadata.get_container, ns, request.container_id)
        if container.spec is None:
            raise FailedPrecondition(f"container {request.container_id!r} has no spec")
        try:
            spec = json.loads(container.spec.value)
        except ValueError as e:
            raise InvalidArgument(f"the spec of container {request.container_id!r}: {e}") from None
        rootfs = [{"type": m.type, "source": m.source, "options": list(m.options)}
                  for m in request.rootfs]
        if not rootfs and container.snapshot_key:
            lib = self.sup.library(ns)
            if lib is None:
                raise FailedPrecondition(f"namespace {ns!r} has no snapshots")
            mounts = await blocking(lib.snapshotter.mounts, container.snapshot_key)
            rootfs = [{"type": m.type, "source": m.source, "options": list(m.options)}
                      for m in mounts]
        log_opts = {"path": request.log_path or None, "max_size": request.log_max_size,
                    "max_file": request.log_max_file or 1}
        task = await self.tasks.create(ns, request.container_id, spec, rootfs,
                                       terminal=request.terminal, stdin=request.stdin,
                                       log=log_opts)
        return pb.CreateTaskResponse(container_id=request.container_id, pid=task.pid)

    async def Start(self, request: pb.StartRequest,
                    context: grpc.aio.ServicerContext) -> pb.StartResponse:
        ns = requestmeta.namespace(context)
        pid = await self.tasks.start(ns, request.container_id, request.exec_id)
        return pb.StartResponse(pid=pid)

    async def Delete(self, request: pb.DeleteTaskRequest,
                     context: grpc.aio.ServicerContext) -> pb.DeleteResponse:
        ns = requestmeta.namespace(context)
        done = await self.tasks.delete(ns, request.container_id)
        return deleted(request.container_id, done)

    async def DeleteProcess(self, request: pb.DeleteProcessRequest,
                            context: grpc.aio.ServicerContext) -> pb.DeleteResponse:
        ns = requestmeta.namespace(context)
        if not request.exec_id:
            raise InvalidArgument("exec_id is required: delete the task with Delete")
        done = await self.tasks.delete(ns, request.container_id, request.exec_id)
        return deleted(request.exec_id, done)

    # -- state --------------------------------------------------------------------------------

    async def _process(self, ns: str, cid: str, exec_id: str = "") -> task_pb2.Process:
        st = await self.tasks.state(ns, cid, exec_id)
        return task_pb2.Process(
            container_id=cid, id=exec_id or cid, pid=st.get("pid") or 0,
            status=STATUS.get(st.get("status", ""), task_pb2.UNKNOWN),
            stdin=bool(st.get("stdin")), terminal=bool(st.get("terminal")),
            exit_status=st.get("exit_status") or 0, exited_at=stamp(st.get("exited_at")))

    async def Get(self, request: pb.GetRequest,
                  context: grpc.aio.ServicerContext) -> pb.GetResponse:
        ns = requestmeta.namespace(context)
        return pb.GetResponse(process=await self._process(ns, request.container_id,
                                                          request.exec_id))

    async def List(self, request: pb.ListTasksRequest,
                   context: grpc.aio.ServicerContext) -> pb.ListTasksResponse:
        ns = requestmeta.namespace(context)
        found = []
        for task in self.tasks.list(ns):
            with contextlib.suppress(ShimError, OSError):
                found.append(await self._process(ns, task.id))
        return pb.ListTasksResponse(tasks=found)

    async def Wait(self, request: pb.WaitRequest,
                   context: grpc.aio.ServicerContext) -> pb.WaitResponse:
        ns = requestmeta.namespace(context)
        done = await self.tasks.wait(ns, request.container_id, request.exec_id)
        return pb.WaitResponse(exit_status=done.get("exit_status") or 0,
                               exited_at=stamp(done.get("exited_at")))

    async def ListPids(self, request: pb.ListPidsRequest,
                       context: grpc.aio.ServicerContext) -> pb.ListPidsResponse:
        ns = requestmeta.namespace(context)
        pids = await self.tasks.live(ns, request.container_id).pids()
        return pb.ListPidsResponse(processes=[task_pb2.ProcessInfo(pid=p["pid"]) for p in pids])

    async def Metrics(self, request: pb.MetricsRequest,
                      context: grpc.aio.ServicerContext) -> pb.MetricsResponse:
        """The cgroup statistics of the tasks named by `filters` (`id==<container id>`, or
        a bare id; none: every task of the namespace), each as JSON in a Struct."""
        ns = requestmeta.namespace(context)
        wanted = {f.removeprefix("id==").strip('"') for f in request.filters}
        out = []
        for task in self.tasks.list(ns):
            if (wanted and task.id not in wanted) or task.client is None:
                continue
            try:
                stats = await task.client.stats()
            except (ShimError, OSError):
                continue
            data = struct_pb2.Struct()
            data.update(stats)
            packed = any_pb2.Any()
            packed.Pack(data)
            out.append(metrics_pb2.Metric(timestamp=timestamp(datetime.now().astimezone()),
                                          id=task.id, data=packed))
        return pb.MetricsResponse(metrics=out)

    # -- signals and changes ------------------------------------------------------------------

    async def Kill(self, request: pb.KillRequest,
                   context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        ns = requestmeta.namespace(context)
        sig = request.signal or signals.SIGTERM
        await self.tasks.live(ns, request.container_id).kill(
            signal=sig, all=request.all, exec_id=request.exec_id)
        return empty_pb2.Empty()

    async def Exec(self, request: pb.ExecProcessRequest,
                   context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        ns = requestmeta.namespace(context)
        if not request.exec_id:
            raise InvalidArgument("exec id must not be empty")
        spec = json_any(request.spec, "the process spec")
        await self.tasks.live(ns, request.container_id).exec(
            request.exec_id, spec, terminal=request.terminal, stdin=request.stdin)
        self.sup.events.publish(ns, "/tasks/exec-added", {
            "container_id": request.container_id, "exec_id": request.exec_id})
        return empty_pb2.Empty()

    async def ResizePty(self, request: pb.ResizePtyRequest,
                        context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        ns = requestmeta.namespace(context)
        await self.tasks.live(ns, request.container_id).resize_pty(
            request.width, request.height, exec_id=request.exec_id)
        return empty_pb2.Empty()

    async def CloseIO(self, request: pb.CloseIORequest,
                      context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        ns = requestmeta.namespace(context)
        if request.stdin:
            await self.tasks.live(ns, request.container_id).close_io(exec_id=request.exec_id)
        return empty_pb2.Empty()

    async def Pause(self, request: pb.PauseTaskRequest,
                    context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        ns = requestmeta.namespace(context)
        await self.tasks.live(ns, request.container_id).pause()
        return empty_pb2.Empty()

    async def Resume(self, request: pb.ResumeTaskRequest,
                     context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        ns = requestmeta.namespace(context)
        await self.tasks.live(ns, request.container_id).resume()
        return empty_pb2.Empty()

    async def Update(self, request: pb.UpdateTaskRequest,
                     context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        ns = requestmeta.namespace(context)
        resources = json_any(request.resources, "the resources")
        if not isinstance(resources, dict):
            raise InvalidArgument("the resources must be a JSON object (OCI linux.resources)")
        await self.tasks.live(ns, request.container_id).update(resources)
        return empty_pb2.Empty()

    async def Checkpoint(self, request: pb.CheckpointTaskRequest,
                         context: grpc.aio.ServicerContext) -> pb.CheckpointTaskResponse:
        raise Unimplemented("checkpoint is not supported")

    # -- attach -------------------------------------------------------------------------------

    async def Attach(self, requests: AsyncIterator[pb.AttachRequest],
                     context: grpc.aio.ServicerContext) -> AsyncIterator[pb.AttachResponse]:
        ns = requestmeta.namespace(context)
        first = await anext(aiter(requests), None)
        if first is None:
            return
        client = self.tasks.live(ns, first.container_id)
        reader, writer = await client.attach(
            exec_id=first.exec_id, stdin=first.stdin, stdout=first.stdout or not first.stderr,
            stderr=first.stderr, stdin_once=first.stdin_once)
        pump = asyncio.create_task(_stdin(first, requests, writer)) if first.stdin else None
        try:
            yield pb.AttachResponse(stream=0)  # attached: output from now on reaches us
            while True:
                try:
                    header = await reader.readexactly(ATTACH_HEADER)
                    data = await reader.readexactly(int.from_bytes(header[4:], "big"))
                except asyncio.IncompleteReadError:
                    return
                yield pb.AttachResponse(stream=header[0], data=data)
        finally:
            if pump is not None:
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pump
            writer.close()


async def _stdin(first: pb.AttachRequest, requests: AsyncIterator[pb.AttachRequest],
                 writer: asyncio.StreamWriter) -> None:
    """Client's messages → the container's stdin; close_stdin (or the client's end of its
    stream) ends this attach's stdin, and with stdin_once the process's."""
    if first.data:
        writer.write(first.data)
        await writer.drain()
    if not first.close_stdin:
        async for msg in requests:
            if msg.data:
                writer.write(msg.data)
                await writer.drain()
            if msg.close_stdin:
                break
    with contextlib.suppress(OSError):
        writer.write_eof()


def deleted(id_: str, done: dict[str, Any]) -> pb.DeleteResponse:
    return pb.DeleteResponse(id=id_, pid=done.get("pid") or 0,
                             exit_status=done.get("exit_status") or 0,
                             exited_at=stamp(done.get("exited_at")))


def service(sup: Supervisor) -> Registration:
    manager = TaskManager(sup.state, sup.events.publish, debug=sup.config.log_level == "debug")
    servicer = TasksService(sup, manager)

    async def start() -> None:
        try:
            manager.start_zygote()
        except ShimError as e:
            log.warning("shims will be started without a fork server: %s", e.message)
        found = await manager.recover()
        if found:
            log.info("recovered %d tasks", len(found))

    return Registration("dockyard.services.tasks.v1.Tasks",
                        lambda server: rpc.add_TasksServicer_to_server(servicer, server),
                        start=start, stop=manager.close)

