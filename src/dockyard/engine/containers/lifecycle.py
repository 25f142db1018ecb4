"""Running containers: start, stop, kill, pause, restart, wait, and what happens at an exit.

Exits come from the supervisor's events (/tasks/exit), and from the Tasks.Wait that a stop
makes; whichever comes first is recorded (`record_exit` is idempotent: it acts only on a running
container whose pid matches). An exit then: deletes the task and the container record, stores
the state, publishes "die", answers waiters, and either schedules a restart (the policy, with
restart.py's backoff) or removes an AutoRemove container.

A start: the networks' attach (sandbox, addresses, files) -> the spec (runspec.py) ->
container record -> Tasks.Create (the shim writes the json-file log; meanwhile the networks
make links, ports and resolver) -> task_hooks (attach before any output) -> the networks
ready -> Tasks.Start -> state "running".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal as signals
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from dockyard.engine.containers import restart as policy
from dockyard.engine.containers import rootview, runspec
from dockyard.engine.containers.logs import size_bytes
from dockyard.engine.containers.model import Container, parse_rfc3339
from dockyard.engine.containers.runtime import parse_signal
from dockyard.engine.errors import (
    Conflict,
    EngineError,
    InvalidParameter,
    NotModified,
)

if TYPE_CHECKING:
    from dockyard.engine.containers.health import HealthMonitor
    from dockyard.engine.containers.runtime import Runtime
    from dockyard.engine.containers.store import ContainerStore

log = logging.getLogger("dockyard.engine")
DEFAULT_STOP_TIMEOUT = 10
CONDITIONS = ("not-running", "next-exit", "removed")


def start_exit_code(message: str) -> int:
    """dockerd's exit code for a start that failed: 127 command not found, 126 not
    executable, else 128."""
    if "executable file not found" in message or "no such file or directory" in message:
        return 127
    if "permission denied" in message or "is a directory" in message:
        return 126
    return 128


class Lifecycle:
    # What ContainerService (service.py) provides.
    daemon: Any
    by_id: dict[str, Container]
    task_hooks: list[Any]
    store: ContainerStore
    health: HealthMonitor
    runtime: Runtime
    publish: Callable[..., None]
    lookup: Callable[[str], Container]
    remove: Callable[..., Awaitable[None]]

    def __init__(self) -> None:
        self.closing = False
        self.watcher: asyncio.Task[None] | None = None
        self._backoff: dict[str, policy.Backoff] = {}
        self._background: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Any) -> None:
        t = asyncio.create_task(coro)
        self._background.add(t)
        t.add_done_callback(self._background.discard)

    # -- start -------------------------------------------------------------------------------

    async def start_container(self, c: Container) -> None:
        async with c.lock:
            if c.state.status == "removing" or c.id not in self.by_id:
                raise Conflict("container is marked for removal and cannot be started")
            if c.state.paused:
                raise Conflict("cannot start a paused container, try unpause instead")
            if c.state.running:
                raise NotModified("container already started")
            c.restart_task = None
            c.state.restarting = False
            try:
                await self._run(c)
            except EngineError:
                if c.host_config.get("AutoRemove"):  # as dockerd: gone when it cannot start
                    self.spawn(self.auto_remove(c))
                raise

    async def _run(self, c: Container) -> None:
        """Under c.lock: make the task and start it. A failure is recorded in the state
        (Error, and dockerd's exit code for it) and raised."""
        rt = self.runtime
        try:
            mounts = await rt.mounts(c.id)
            if c.build_step:
                mounts = rootview.volatile(mounts)
            peer = self._network_peer(c)
            netns = await self.daemon.networks.attach(c)
            spec = await asyncio.to_thread(runspec.make, c, self.daemon.config.cgroup_parent,
                                           peer, mounts, netns)
            opts = {**self.daemon.config.log_opts,
                    **(c.host_config.get("LogConfig") or {}).get("Config", {})}
            await rt.create_record(c.id, c.image_ref, spec)
            await rt.create_task(c.id, mounts, terminal=bool(c.config.get("Tty")),
                                 stdin=bool(c.config.get("OpenStdin")), log_path=c.log_path,
                                 max_size=size_bytes(opts.get("max-size", "")),
                                 max_file=int(opts.get("max-file") or 1))
            for hook in list(self.task_hooks):
                await hook(c)
            await self.daemon.networks.ready(c)  # attach made the rest while we created
            pid = await rt.start_task(c.id)
        except BaseException as e:
            with contextlib.suppress(Exception):
                await rt.delete_task(c.id)
            with contextlib.suppress(Exception):
                await rt.delete_record(c.id)
            with contextlib.suppress(Exception):
                await self.daemon.networks.detach(c)
            if isinstance(e, EngineError):
                c.state.error = e.message
                c.state.exit_code = start_exit_code(e.message)
                c.state.restarting = False
                if c.state.status == "restarting":
                    c.state.status = "exited"
                await self.store.commit(c)
            raise
        c.state.set_running(pid)
        c.has_been_started = True
        c.manually_stopped = False
        self.health.start(c)
        await self.store.commit(c)
        self.publish(c, "start")

    def _network_peer(self, c: Container) -> Container | None:
        """The container whose network namespace `c` joins (container:<id>)."""
        mode = c.host_config.get("NetworkMode") or ""
        if mode.startswith("container:"):
            return self.lookup(mode.partition(":")[2])
        return None

    # -- exits -------------------------------------------------------------------------------

    async def record_exit(self, c: Container, status: int, at: str, pid: int = 0,
                      oom: bool = False) -> bool:
        async with c.lock:
            if not c.state.running or (pid and c.state.pid and pid != c.state.pid):
                return False
            rt = self.runtime
            try:
                await rt.delete_task(c.id)
                await rt.delete_record(c.id)
            except EngineError as e:
                log.warning("deleting the task of %s: %s", c.id, e.message)
            try:
                await self.daemon.networks.detach(c)
            except Exception as e:  # what is left goes at the next start
                log.warning("releasing the networks of %s: %s", c.id, e)
            ran_for = time.time() - parse_rfc3339(c.state.started_at)
            c.state.set_stopped(status, at or None)
            c.state.oom_killed = oom
            self.health.stop(c)
            again = (not self.closing and policy.should_restart(
                c.restart_policy, status, c.restart_count, c.manually_stopped))
            if again:
                c.state.status, c.state.restarting = "restarting", True
                delay = self._backoff.setdefault(c.id, policy.Backoff()).next(ran_for)
                c.restart_task = asyncio.create_task(self._restart_later(c, delay))
            if c.id in self.by_id:
                await self.store.commit(c)
        if oom:
            self.publish(c, "oom")
        self.publish(c, "die", {"exitCode": str(status),
                                "execDuration": str(int(ran_for))})
        c.notify("exit")
        if not again and c.host_config.get("AutoRemove") and not self.closing:
            self.spawn(self.auto_remove(c))
        return True

    async def auto_remove(self, c: Container) -> None:
        with contextlib.suppress(EngineError):
            await self.remove(c, force=True)

    async def _restart_later(self, c: Container, delay: float) -> None:
        await asyncio.sleep(delay)
        async with c.lock:
            if not c.state.restarting or c.id not in self.by_id:
                return
            if c.manually_stopped:  # stopped while the exit was being recorded
                self._cancel_restart(c)
                await self.store.commit(c)
                return
            c.restart_task = None
            c.restart_count += 1
            try:
                await self._run(c)
            except EngineError as e:
                log.warning("restarting %s: %s", c.id, e.message)

    # -- stop, kill, pause -------------------------------------------------------------------

    def _cancel_restart(self, c: Container) -> bool:
        """A pending restart called off (its task, when it wakes, finds nothing to do)."""
        if not c.state.restarting:
            return False
        c.restart_task = None
        c.state.restarting, c.state.status = False, "exited"
        return True

    async def stop(self, c: Container, timeout: int | None = None, signal: str | None = None,
                   *, manual: bool = True) -> None:
        async with c.lock:  # not in the middle of a start
            if manual:
                c.manually_stopped = True
            cancelled = self._cancel_restart(c)
        if cancelled:
            await self.store.commit(c)
            c.notify("exit")
            self.publish(c, "stop")
            return
        if not c.state.running:
            raise NotModified("container already stopped")
        if manual:
            await self.store.commit(c)
        sig = parse_signal(signal or c.config.get("StopSignal") or "SIGTERM")
        if timeout is None:
            timeout = c.config.get("StopTimeout")
            if timeout is None:
                timeout = DEFAULT_STOP_TIMEOUT
        rt = self.runtime
        got = None
        with contextlib.suppress(EngineError):
            await self._signal(c, sig)
            got = await rt.wait(c.id, None if timeout < 0 else max(timeout, 0) or 0.001)
        if got is None:
            with contextlib.suppress(EngineError):
                await self._signal(c, signals.SIGKILL, all_=True)
            got = await rt.wait(c.id, 30)
        if got is not None:
            await self.record_exit(c, *got)
        if manual and self._cancel_restart(c):  # the exit came first and chose a restart
            await self.store.commit(c)
        self.publish(c, "stop")

    async def _signal(self, c: Container, sig: int, *, all_: bool = False) -> None:
        rt = self.runtime
        await rt.kill(c.id, sig, all_=all_)
        self.publish(c, "kill", {"signal": str(sig)})
        if c.state.paused and sig in (signals.SIGKILL, signals.SIGTERM):
            with contextlib.suppress(EngineError):
                await rt.resume(c.id)
            c.state.paused, c.state.status = False, "running"

    async def kill_and_wait(self, c: Container) -> None:
        async with c.lock:
            c.manually_stopped = True
            if self._cancel_restart(c):
                return
        with contextlib.suppress(EngineError):
            await self._signal(c, signals.SIGKILL, all_=True)
        got = await self.runtime.wait(c.id, 30)
        if got is not None:
            await self.record_exit(c, *got)

    async def kill(self, c: Container, signal: str | None = None) -> None:
        sig = parse_signal(signal, signals.SIGKILL)
        if not c.state.running and not c.state.restarting:
            raise Conflict(f"Container {c.id} is not running")
        async with c.lock:
            if sig in (signals.SIGKILL, parse_signal(c.config.get("StopSignal") or "TERM")):
                c.manually_stopped = True
            cancelled = self._cancel_restart(c)
        if cancelled:
            await self.store.commit(c)
            return
        await self._signal(c, sig)
        if sig == signals.SIGKILL:
            got = await self.runtime.wait(c.id, 10)
            if got is not None:
                await self.record_exit(c, *got)

    async def pause(self, c: Container) -> None:
        async with c.lock:
            if not c.state.running:
                raise Conflict(f"Container {c.id} is not running")
            if c.state.paused:
                raise Conflict(f"Container {c.id} is already paused")
            await self.runtime.pause(c.id)
            c.state.paused, c.state.status = True, "paused"
            await self.store.commit(c)
        self.publish(c, "pause")

    async def unpause(self, c: Container) -> None:
        async with c.lock:
            if not c.state.paused:
                raise Conflict(f"Container {c.id} is not paused")
            await self.runtime.resume(c.id)
            c.state.paused, c.state.status = False, "running"
            await self.store.commit(c)
        self.publish(c, "unpause")

    async def restart(self, c: Container, timeout: int | None = None,
                      signal: str | None = None) -> None:
        if c.state.running or c.state.restarting:
            with contextlib.suppress(NotModified):
                await self.stop(c, timeout, signal)
        await self.start_container(c)
        self.publish(c, "restart")

    async def wait(self, c: Container, condition: str = "not-running") -> dict[str, Any]:
        condition = condition or "not-running"
        if condition not in CONDITIONS:
            raise InvalidParameter(f"invalid condition: \"{condition}\"")
        if condition == "not-running" and not c.state.running and not c.state.restarting:
            return {"StatusCode": c.state.exit_code, "Error": None}
        if condition == "removed" and c.id not in self.by_id:
            return {"StatusCode": c.state.exit_code, "Error": None}
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        c.waiters.append((condition, fut))
        try:
            return await fut
        finally:
            if not fut.done():
                c.waiters = [w for w in c.waiters if w[1] is not fut]

    async def close(self, *, stop_containers: bool) -> None:
        self.closing = True
        self.health.close()
        if self.watcher is not None:
            self.watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.watcher
        for c in self.by_id.values():
            if c.restart_task is not None:
                c.restart_task.cancel()
        if stop_containers:
            running = [c for c in self.by_id.values() if c.state.running]
            results = await asyncio.gather(*(self.stop(c, manual=False) for c in running),
                                           return_exceptions=True)
            for c, r in zip(running, results, strict=True):
                if isinstance(r, BaseException):
                    log.warning("stopping %s: %s", c.id, r)
        for t in list(self._background):
            t.cancel()
