"""Tasks: the running side of containers, one shim each.

The supervisor keeps no process state of its own that a restart could lose. A task is a bundle
directory `<state>/tasks/<namespace>/<id>/` (config.json, rootfs, and what the shim writes:
shim.pid, address, init.pid, exit.json) plus the shim serving it. On start, `recover()` walks
the bundles: a shim that answers is taken back as it is; a bundle whose shim is gone is
cleaned (`cleanup_dead`: the runtime's delete --force, rootfs unmounted) and its task kept as
stopped, with the exit status the shim recorded (137 when it recorded none), until deleted.

Each live task has one `events` connection to its shim; the supervisor republishes what comes
on it. When that connection ends and the shim's process is gone, the shim died: the task is
cleaned as above, an exit goes out, and every waiter is answered. Nothing waits forever on a
dead shim.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.shim.aioclient import AsyncShimClient
from dockyard.shim.cleanup import cleanup_dead
from dockyard.shim.client import ShimError
from dockyard.shim.spawn import start_shim, start_zygote

# Published by the manager itself, when the request is answered: the shim's copy would come
# late (or, for a delete, not at all: the shim goes away).
OWN_TOPICS = frozenset({"/tasks/create", "/tasks/start", "/tasks/exec-started", "/tasks/delete"})

Publish = Callable[[str, str, dict[str, Any]], Awaitable[None] | None]


class TaskError(Exception):
    """A task request that cannot be done; `code` is a gRPC status name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def not_found(ns: str, cid: str) -> TaskError:
    return TaskError("not_found", f"task {cid} not found in namespace {ns}: not found")


@dataclass
class Task:
    namespace: str
    id: str
    bundle: Path
    client: AsyncShimClient | None
    pid: int = 0
    exit_status: int | None = None
    exited_at: str | None = None
    watcher: asyncio.Task[None] | None = None
    exited: asyncio.Event = field(default_factory=asyncio.Event)

    def stopped(self, status: int, at: str | None) -> None:
        self.exit_status, self.exited_at = status, at
        self.exited.set()


class TaskManager:
    """Tasks of every namespace, each behind its shim."""

    def __init__(self, state: Path, publish: Publish, *, runtime: Sequence[str] | None = None,
                 debug: bool = False) -> None:
        self.state_dir = Path(state)
        self.tasks_dir = self.state_dir / "tasks"
        self.publish = publish
        self.runtime = list(runtime) if runtime else None
        self.debug = debug
        self._tasks: dict[tuple[str, str], Task] = {}
        self._lock = asyncio.Lock()
        self.zygote: Path | None = None  # the shims' fork server, once started
        self._zygote_proc: subprocess.Popen | None = None

    def start_zygote(self) -> None:
        """Start the shims' fork server (from the thread that lives as long as the
        supervisor: it dies with that thread). Without it, shims are started by exec."""
        self._zygote_proc, self.zygote = start_zygote(self.state_dir)

    def runtime_root(self, namespace: str) -> Path:
        return self.state_dir / "runc" / namespace

    def bundle(self, namespace: str, cid: str) -> Path:
        return self.tasks_dir / namespace / cid

    # -- lookup ----------------------------------------------------------------------------

    def get(self, namespace: str, cid: str) -> Task:
        task = self._tasks.get((namespace, cid))
        if task is None:
            raise not_found(namespace, cid)
        return task

    def list(self, namespace: str) -> list[Task]:
        return [t for (ns, _), t in sorted(self._tasks.items()) if ns == namespace]

    def live(self, namespace: str, cid: str) -> AsyncShimClient:
        task = self.get(namespace, cid)
        if task.client is None:
            raise TaskError("failed_precondition", f"task {cid} is stopped: its shim is gone")
        return task.client

    # -- lifecycle ---------------------------------------------------------------------------

    async def create(self, namespace: str, cid: str, spec: dict[str, Any],
                     rootfs: Sequence[dict[str, Any]], *, terminal: bool = False,
                     stdin: bool = False, log: dict[str, Any] | None = None) -> Task:
        async with self._lock:
            if (namespace, cid) in self._tasks:
                raise TaskError("already_exists", f"task {cid}: already exists")
            bundle = self.bundle(namespace, cid)
            try:
                bundle.mkdir(parents=True, mode=0o711)
            except FileExistsError:
                raise TaskError("already_exists", f"task {cid}: already exists") from None
            task = Task(namespace, cid, bundle, None)
            self._tasks[(namespace, cid)] = task
        try:
            (bundle / "rootfs").mkdir(mode=0o711)
            with open(bundle / "config.json", "w") as f:
                f.write(json.dumps(spec))  # one write: json.dump writes chunk by chunk
            address = await asyncio.to_thread(
                start_shim, namespace, cid, bundle, state_dir=self.state_dir, runtime=self.runtime,
                runtime_root=self.runtime_root(namespace), debug=self.debug,
                zygote=self.zygote)
            task.client = AsyncShimClient(address)
            created = await task.client.create(
                rootfs=list(rootfs), terminal=terminal, stdin=stdin,
                log=log or {"path": None, "max_size": 0, "max_file": 1})
            task.pid = created["pid"]
        except BaseException:
            await self._discard(task)
            raise
        task.watcher = asyncio.create_task(self._watch(task))
        await self._publish(namespace, "/tasks/create", {
            "container_id": cid, "bundle": str(bundle), "rootfs": list(rootfs),
            "io": {"terminal": terminal, "stdin": stdin}, "pid": task.pid})
        return task

    async def _discard(self, task: Task) -> None:
        """Undo a create that failed half way: the shim (if any) goes, the bundle too."""
        if task.client is not None:
            with contextlib.suppress(Exception):
                await task.client.delete()
            with contextlib.suppress(Exception):
                await task.client.shutdown()
            await task.client.close()
        await asyncio.to_thread(self._remove_bundle, task)
        self._tasks.pop((task.namespace, task.id), None)

    def _remove_bundle(self, task: Task) -> None:
        with contextlib.suppress(Exception):
            cleanup_dead(task.bundle, task.id, runtime=self.runtime,
                         runtime_root=self.runtime_root(task.namespace))
        shutil.rmtree(task.bundle, ignore_errors=True)

    async def start(self, namespace: str, cid: str, exec_id: str = "") -> int:
        client = self.live(namespace, cid)
        pid = (await client.start(exec_id=exec_id))["pid"]
        topic = "/tasks/exec-started" if exec_id else "/tasks/start"
        await self._publish(namespace, topic, {"container_id": cid, "exec_id": exec_id,
                                               "pid": pid})
        return pid

    async def delete(self, namespace: str, cid: str, exec_id: str = "") -> dict[str, Any]:
        task = self.get(namespace, cid)
        if exec_id:
            return await self.live(namespace, cid).delete(exec_id=exec_id)
        if task.client is not None:
            done = await task.client.delete()
            with contextlib.suppress(Exception):
                await task.client.shutdown()
        else:
            done = {"pid": task.pid, "exit_status": task.exit_status,
                    "exited_at": task.exited_at}
        await self._forget(task)
        await self._publish(namespace, "/tasks/delete", {
            "container_id": cid, "pid": done.get("pid", task.pid),
            "exit_status": done.get("exit_status"), "exited_at": done.get("exited_at")})
        return done

    async def _forget(self, task: Task) -> None:
        if task.watcher is not None:
            task.watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task.watcher
        if task.client is not None:
            await task.client.close()
            task.client = None
        await asyncio.to_thread(shutil.rmtree, task.bundle, True)
        self._tasks.pop((task.namespace, task.id), None)

    async def wait(self, namespace: str, cid: str, exec_id: str = "") -> dict[str, Any]:
        task = self.get(namespace, cid)
        if exec_id:
            return await self.live(namespace, cid).wait(exec_id=exec_id)
        await task.exited.wait()
        return {"exit_status": task.exit_status, "exited_at": task.exited_at}

    async def state(self, namespace: str, cid: str, exec_id: str = "") -> dict[str, Any]:
        task = self.get(namespace, cid)
        if task.client is None:
            return {"id": cid, "exec_id": exec_id, "pid": task.pid, "status": "stopped",
                    "exit_status": task.exit_status, "exited_at": task.exited_at,
                    "terminal": False, "stdin": False}
        return await task.client.state(exec_id=exec_id)

    # -- watching the shim -------------------------------------------------------------------

    async def _watch(self, task: Task) -> None:
        """Republish the shim's events; when the stream ends, find out whether the shim
        died, and if so clean up after it."""
        assert task.client is not None
        try:
            async for event in task.client.events():
                topic = event.pop("topic", "")
                if topic in OWN_TOPICS:
                    continue
                if topic == "/tasks/exit" and not event.get("exec_id"):
                    task.stopped(event.get("exit_status", 255), event.get("exited_at"))
                await self._publish(task.namespace, topic,
                                    {"container_id": task.id, **event})
        except asyncio.CancelledError:
            raise
        except (OSError, ShimError, asyncio.IncompleteReadError):
            pass
        if self._tasks.get((task.namespace, task.id)) is task and not _shim_alive(task.bundle):
            await self._shim_died(task)

    async def _shim_died(self, task: Task) -> None:
        exit_ = await asyncio.to_thread(
            cleanup_dead, task.bundle, task.id, runtime=self.runtime,
            runtime_root=self.runtime_root(task.namespace))
        if task.client is not None:
            await task.client.close()
            task.client = None
        if not task.exited.is_set():
            task.stopped(exit_["exit_status"], exit_["exited_at"])
            await self._publish(task.namespace, "/tasks/exit", {
                "container_id": task.id, "id": task.id, "exec_id": "", "pid": task.pid,
                "exit_status": task.exit_status, "exited_at": task.exited_at})

    # -- restart recovery --------------------------------------------------------------------

    async def recover(self) -> list[Task]:
        """Take back every bundle under tasks/: live shims as they are, dead ones cleaned and
        kept as stopped tasks. Returns the tasks found."""
        found = []
        if not self.tasks_dir.is_dir():
            return found
        for ns_dir in sorted(self.tasks_dir.iterdir()):
            for bundle in sorted(ns_dir.iterdir()):
                task = Task(ns_dir.name, bundle.name, bundle, None)
                self._tasks[(task.namespace, task.id)] = task
                found.append(task)
                address = _read(bundle / "address")
                if address and _shim_alive(bundle):
                    client = AsyncShimClient(address)
                    try:
                        hello = await client.connect()
                        state = await client.state()
                    except (OSError, ShimError):
                        await client.close()
                    else:
                        task.client, task.pid = client, hello.get("task_pid") or 0
                        if state.get("status") == "stopped":
                            task.stopped(state.get("exit_status", 255), state.get("exited_at"))
                        task.watcher = asyncio.create_task(self._watch(task))
                        continue
                pid = _read(bundle / "init.pid")  # the runtime's record outlives the shim
                task.pid = int(pid) if pid.isdigit() else 0
                await self._shim_died(task)
        return found

    async def close(self) -> None:
        """Let go of every shim (they keep running): the supervisor is stopping."""
        if self._zygote_proc is not None:
            self._zygote_proc.kill()
            await asyncio.to_thread(self._zygote_proc.wait)
            self._zygote_proc = None
        for task in list(self._tasks.values()):
            if task.watcher is not None:
                task.watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task.watcher
            if task.client is not None:
                await task.client.close()

    async def _publish(self, namespace: str, topic: str, event: dict[str, Any]) -> None:
        done = self.publish(namespace, topic, event)
        if done is not None:
            await done


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _shim_alive(bundle: Path) -> bool:
    """The shim of `bundle` runs: its pid file names a live, non-zombie dockyard-shim."""
    text = _read(bundle / "shim.pid")
    if not text.isdigit():
        return False
    pid = int(text)
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return False
    state = stat.rpartition(")")[2].split()[0]
    return state not in ("Z", "X") and b"dockyard-shim" in cmdline \
        and bundle.name.encode() in cmdline
