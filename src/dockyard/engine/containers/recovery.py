"""After an engine start, and whenever the supervisor's event stream is (re)opened: what the
store says about each container reconciled with the supervisor's tasks.

    restore      a task still running: the container stays running (its pid taken back);
                 a task that exited, or none left, while the engine was down: the exit is
                 recorded (its status, else 255); then the exit watcher starts, and the
                 containers that restart with the engine (always, unless-stopped) start
    watch_exits  /tasks/exit events for ever; after each (re)subscription, check_exits
                 records the exits that came while unsubscribed
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import grpc

from dockyard.api.events import task_pb2 as task_events
from dockyard.api.services.events.v1 import events_pb2
from dockyard.engine.containers import restart as policy
from dockyard.engine.containers.runtime import stamp
from dockyard.engine.errors import EngineError

if TYPE_CHECKING:
    from dockyard.engine.containers.lifecycle import Lifecycle

log = logging.getLogger("dockyard.engine")


async def watch_exits(svc: Lifecycle) -> None:
    """Follow /tasks/exit for ever (resubscribing when the stream breaks), checking the
    tasks after each (re)subscription for exits that came while unsubscribed."""
    sup = svc.daemon.supervisor
    request = events_pb2.SubscribeRequest(filters=[
        f'topic=="/tasks/exit",namespace=={sup.namespace}'])
    while not svc.closing:
        try:
            stream = sup.stream(sup.events.Subscribe, request)
            checked = asyncio.create_task(check_exits(svc))
            async for env in stream:
                msg = task_events.TaskExit()
                if not env.event.Unpack(msg):
                    continue
                if msg.id and msg.id != msg.container_id:
                    continue  # an exec's
                c = svc.by_id.get(msg.container_id)
                if c is not None:
                    svc.spawn(svc.record_exit(c, msg.exit_status, stamp(msg.exited_at),
                                             msg.pid, oom=msg.exit_reason == 1))
            await checked
        except asyncio.CancelledError:
            raise
        except (grpc.RpcError, EngineError) as e:
            log.debug("event stream: %s", e)
        if not svc.closing:
            await asyncio.sleep(0.5)


async def check_exits(svc: Lifecycle) -> None:
    try:
        tasks = await svc.runtime.tasks()
    except EngineError:
        return
    for c in list(svc.by_id.values()):
        t = tasks.get(c.id)
        if c.state.running and (t is None or t.status == 3):  # STOPPED
            status = int(t.exit_status) if t is not None else 255
            at = stamp(t.exited_at) if t is not None else ""
            svc.spawn(svc.record_exit(c, status, at))


async def restore(svc: Lifecycle) -> None:
    """After a start of the engine: reconcile what the store says with the tasks."""
    rt = svc.runtime
    tasks = await rt.tasks()
    for c in list(svc.by_id.values()):
        t = tasks.get(c.id)
        if t is not None and t.status in (2, 4, 5):  # RUNNING, PAUSED, PAUSING
            if not c.state.running:
                c.state.set_running(int(t.pid))
            c.state.pid = int(t.pid)
            c.state.paused = t.status != 2
            c.state.status = "paused" if c.state.paused else "running"
            svc.health.start(c)
            continue
        if c.state.running:
            status = int(t.exit_status) if t is not None else 255
            c.state.set_stopped(status, stamp(t.exited_at) if t is not None else None)
            svc.publish(c, "die", {"exitCode": str(status)})
        elif c.state.restarting:
            c.state.status, c.state.restarting = "exited", False
        if t is not None:
            with contextlib.suppress(EngineError):
                await rt.delete_task(c.id)
        with contextlib.suppress(EngineError):
            await rt.delete_record(c.id)
        await svc.store.commit(c)
    svc.watcher = asyncio.create_task(watch_exits(svc))
    for c in list(svc.by_id.values()):
        if c.state.running:
            continue
        if c.host_config.get("AutoRemove") and c.has_been_started:
            svc.spawn(svc.auto_remove(c))
        elif c.has_been_started and policy.restarts_with_daemon(c.restart_policy,
                                                                c.manually_stopped):
            try:
                await svc.start_container(c)
            except EngineError as e:
                log.warning("starting %s again: %s", c.id, e.message)
