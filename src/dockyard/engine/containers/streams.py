"""StreamService: attaching clients to a process's stdio (container attach, exec start), and
the execs (execs.py).

A client's stream is one supervisor Attach call (a bidirectional gRPC stream): its first
message names the process and streams, the supervisor's first answer (stream 0) says the
attach is in place, then output comes as (stream, data) and stdin goes the other way.

    docker run:  create ─► attach (101 sent, the client waits) ─► start
                                     │                              │ Tasks.Create
                                     │ pending on the container ◄── task hook: Attach, ready
                                     │                              │ Tasks.Start
                                     └─ pump: output ─► the client, the client ─► stdin

An attach to a container whose task exists (created, running, paused) connects at once;
otherwise it waits for the task hook of the container's next start, so that no output of
that start is lost. `pump` then copies both ways until the output ends (the process exited),
the client detaches (the detach keys) or goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc

from dockyard.api.services.tasks.v1 import tasks_pb2 as pb
from dockyard.api.types import task_pb2
from dockyard.engine.containers.stdcopy import DetachKeys, frame
from dockyard.engine.errors import EngineError, from_grpc

log = logging.getLogger("dockyard.engine")
LIVE = (task_pb2.CREATED, task_pb2.RUNNING, task_pb2.PAUSED, task_pb2.PAUSING)


class AttachCall:
    """One supervisor Attach stream whose ready message has been read."""

    def __init__(self, call: Any, streams: set[int]) -> None:
        self.call = call
        self.streams = streams

    @classmethod
    async def open(cls, sup: Any, cid: str, exec_id: str = "", *, stdin: bool, stdout: bool,
                   stderr: bool, stdin_once: bool = False) -> AttachCall:
        """`stdin_once`: the end of this attach's stdin closes the process's (Docker's
        StdinOnce); otherwise the next attach may write to it."""
        call = sup.stream(sup.tasks.Attach, None)
        try:
            await call.write(pb.AttachRequest(container_id=cid, exec_id=exec_id, stdin=stdin,
                                              stdout=stdout, stderr=stderr,
                                              stdin_once=stdin_once))
            first = await call.read()
        except grpc.RpcError as e:
            call.cancel()
            raise from_grpc(e) from None
        except BaseException:
            call.cancel()
            raise
        if first is grpc.aio.EOF or first.stream != 0:
            call.cancel()
            raise EngineError(f"attach to {exec_id or cid}: the supervisor did not attach")
        streams = {n for n, on in ((1, stdout), (2, stderr)) if on}
        return cls(call, streams)

    async def send(self, data: bytes) -> None:
        await self.call.write(pb.AttachRequest(data=data))

    async def close_stdin(self) -> None:
        with contextlib.suppress(grpc.RpcError, asyncio.InvalidStateError):
            await self.call.write(pb.AttachRequest(close_stdin=True))
            await self.call.done_writing()

    async def read(self) -> tuple[int, bytes] | None:
        """(stream, data) of the output; None once it has ended."""
        try:
            msg = await self.call.read()
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.CANCELLED:
                return None
            raise from_grpc(e) from None
        if msg is grpc.aio.EOF:
            return None
        return msg.stream, msg.data

    def cancel(self) -> None:
        self.call.cancel()


class Connection(Protocol):
    """What pump needs of the client's side (a hijacked connection, a websocket)."""

    lost: asyncio.Future[None]

    async def read(self) -> bytes: ...

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...


async def pump(conn: Connection, attach: AttachCall, *, tty: bool, stdin: bool,
               close_stdin: bool, detach_keys: bytes = b"", frames: bool | None = None) -> str:
    """Copy output to the client (in frames unless `tty`, or as `frames` says) and the
    client's bytes to stdin; "ended" when the output ended, "detached" on the detach keys,
    "lost" when the client went away."""
    framed = not tty if frames is None else frames

    async def output() -> None:
        while (got := await attach.read()) is not None:
            stream, data = got
            if stream not in attach.streams and not tty:
                continue
            conn.write(frame(stream, data) if framed else data)
            await conn.drain()

    async def input_() -> str:
        keys = DetachKeys(detach_keys if tty else b"")  # as dockerd: keys need a terminal
        while data := await conn.read():
            data, detached = keys.feed(data)
            if data:
                await attach.send(data)
            if detached:
                return "detached"
        if close_stdin:
            await attach.close_stdin()
        return "eof"

    out = asyncio.create_task(output())
    ins = asyncio.create_task(input_()) if stdin else None
    waiting: set[asyncio.Future[Any]] = {out, conn.lost}
    if ins is not None:
        waiting.add(ins)
    result = "ended"
    try:
        while True:
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if out in done:
                if out.exception() is not None:
                    log.warning("attach output: %s", out.exception())
                break
            if conn.lost in done:
                result = "lost"
                break
            if ins is not None and ins in done:
                waiting.discard(ins)  # stdin's end (or its failure): the output goes on
                if ins.exception() is None and ins.result() == "detached":
                    result = "detached"
                    break
    finally:
        for task in (out, ins):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        attach.cancel()
    return result


@dataclass(eq=False)
class PendingAttach:
    """An attach waiting for the container's task (made by its next start)."""

    cid: str
    stdin: bool
    stdout: bool
    stderr: bool
    stdin_once: bool = False
    future: asyncio.Future[AttachCall] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())


class StreamService:
    def __init__(self, daemon: Any) -> None:
        from dockyard.engine.containers.execs import ExecService

        self.daemon = daemon
        self.pending: dict[str, list[PendingAttach]] = {}
        self.execs = ExecService(daemon, self)
        self.background: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        self.daemon.containers.task_hooks.append(self.task_created)

    async def close(self, *, stop_containers: bool) -> None:
        for waiters in self.pending.values():
            for p in waiters:
                if not p.future.done():
                    p.future.cancel()
        self.pending.clear()
        for task in list(self.background):
            task.cancel()
        for task in list(self.background):
            with contextlib.suppress(BaseException):
                await task

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task

    # -- attach ------------------------------------------------------------------------------

    async def task_created(self, container: Any) -> None:
        """The containers service's hook, between Tasks.Create and Tasks.Start: every attach
        waiting on this container gets its stream now."""
        waiters = self.pending.pop(container.id, [])
        await asyncio.gather(*(self._connect(p) for p in waiters))

    def _claim(self, p: PendingAttach) -> bool:
        waiters = self.pending.get(p.cid, [])
        if p not in waiters:
            return False
        waiters.remove(p)
        if not waiters:
            self.pending.pop(p.cid, None)
        return True

    async def _connect(self, p: PendingAttach) -> None:
        if p.future.done():
            return
        sup = self.daemon.supervisor
        try:
            call = await AttachCall.open(sup, p.cid, stdin=p.stdin, stdout=p.stdout,
                                         stderr=p.stderr, stdin_once=p.stdin_once)
        except Exception as e:
            if not p.future.done():
                p.future.set_exception(e)
            return
        if p.future.done():  # the client went away meanwhile
            call.cancel()
        else:
            p.future.set_result(call)

    async def _task_live(self, cid: str) -> bool:
        sup = self.daemon.supervisor
        try:
            r = await sup.call(sup.tasks.Get, pb.GetRequest(container_id=cid))
        except grpc.RpcError:
            return False
        return r.process.status in LIVE

    async def attach(self, container: Any, *, stdin: bool, stdout: bool,
                     stderr: bool, gone: asyncio.Future[None] | None = None) -> AttachCall:
        """The container's output (and stdin): now if its task exists, else from its next
        start. `gone` (the client's connection lost) cancels the wait."""
        once = bool(container.config.get("StdinOnce")) and not container.config.get("Tty")
        p = PendingAttach(container.id, stdin, stdout, stderr, once)
        self.pending.setdefault(container.id, []).append(p)
        if await self._task_live(container.id) and self._claim(p):
            await self._connect(p)
        waiting: set[asyncio.Future[Any]] = {p.future}
        if gone is not None:
            waiting.add(gone)
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not p.future.done():
                self._claim(p)
                p.future.cancel()
        if p.future.cancelled():
            raise ConnectionResetError("the client went away")
        return p.future.result()

    async def resize(self, cid: str, exec_id: str, height: int, width: int) -> None:
        sup = self.daemon.supervisor
        try:
            await sup.call(sup.tasks.ResizePty, pb.ResizePtyRequest(
                container_id=cid, exec_id=exec_id, width=width, height=height))
        except grpc.RpcError as e:
            if "has no terminal" in (e.details() or ""):
                return  # as containerd's shim: resizing a process without a pty is nothing
            raise from_grpc(e) from None

