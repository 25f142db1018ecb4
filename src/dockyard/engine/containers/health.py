"""Healthchecks, as dockerd runs them: a probe (Config.Healthcheck.Test, an exec in the
container) every Interval after each start; a probe that exits 0 makes the container
"healthy", Retries failures in a row "unhealthy" (failures within StartPeriod do not count
while it is still "starting"); a probe that outlasts Timeout fails. State.Health keeps the
last five results; each change of status is a "health_status: <status>" event.

    Test: ["NONE"]                  no healthcheck (the image's disabled)
          ["CMD", "prog", "arg"]    exec'd as is
          ["CMD-SHELL", "cmd"]      run by /bin/sh -c
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from dockyard.engine.containers.model import Container
from dockyard.engine.errors import EngineError
from dockyard.units import rfc3339nano

log = logging.getLogger("dockyard.engine")
NS = 1_000_000_000
DEFAULT_INTERVAL = 30 * NS
DEFAULT_TIMEOUT = 30 * NS
DEFAULT_START_INTERVAL = 5 * NS
DEFAULT_RETRIES = 3
MAX_OUTPUT = 4096
MAX_LOG = 5


def probe_command(config: dict[str, Any]) -> list[str] | None:
    test = (config.get("Healthcheck") or {}).get("Test") or []
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD":
        return list(test[1:]) or None
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(test[1:])]
    return list(test)  # the API allows a bare command, as CMD


def _seconds(hc: dict[str, Any], key: str, default: int) -> float:
    return (hc.get(key) or default) / NS


class HealthMonitor:
    """One probe loop per running container that has a healthcheck."""

    def __init__(self, daemon: Any, publish: Any) -> None:
        self.daemon = daemon
        self.publish = publish
        self.loops: dict[str, asyncio.Task[None]] = {}

    def start(self, c: Container) -> None:
        self.stop(c)
        cmd = probe_command(c.config)
        if cmd is None:
            return
        c.health = {"Status": "starting", "FailingStreak": 0, "Log": []}
        self.loops[c.id] = asyncio.create_task(self._loop(c, cmd))

    def stop(self, c: Container) -> None:
        task = self.loops.pop(c.id, None)
        if task is not None:
            task.cancel()

    def close(self) -> None:
        for task in self.loops.values():
            task.cancel()
        self.loops.clear()

    async def _loop(self, c: Container, cmd: list[str]) -> None:
        hc = c.config.get("Healthcheck") or {}
        interval = _seconds(hc, "Interval", DEFAULT_INTERVAL)
        start_interval = _seconds(hc, "StartInterval", DEFAULT_START_INTERVAL)
        start_period = _seconds(hc, "StartPeriod", 0)
        began = time.monotonic()
        while c.state.running:
            in_start = time.monotonic() - began < start_period
            await asyncio.sleep(start_interval if in_start and hc.get("StartInterval")
                                else interval)
            if not c.state.running:
                return
            if c.state.paused:
                continue
            try:
                await self._probe(c, cmd, hc, time.monotonic() - began < start_period)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a probe that cannot run is a failed probe
                log.debug("healthcheck of %s: %s", c.id, e)

    async def _probe(self, c: Container, cmd: list[str], hc: dict[str, Any],
                     in_start_period: bool) -> None:
        timeout = _seconds(hc, "Timeout", DEFAULT_TIMEOUT)
        started = rfc3339nano()
        code, output = await self._run(c, cmd, timeout)
        entry = {"Start": started, "End": rfc3339nano(), "ExitCode": code, "Output": output}
        health = c.health or {"Status": "starting", "FailingStreak": 0, "Log": []}
        health["Log"] = [*health.get("Log", []), entry][-MAX_LOG:]
        before = health["Status"]
        if code == 0:
            health["FailingStreak"] = 0
            health["Status"] = "healthy"
        elif not (in_start_period and before == "starting"):
            health["FailingStreak"] = health.get("FailingStreak", 0) + 1
            if health["FailingStreak"] >= (hc.get("Retries") or DEFAULT_RETRIES):
                health["Status"] = "unhealthy"
        c.health = health
        if health["Status"] != before:
            self.publish(c, f"health_status: {health['Status']}")

    async def _run(self, c: Container, cmd: list[str], timeout: float) -> tuple[int, str]:
        streams = getattr(self.daemon, "streams", None)
        if streams is None:
            return -1, "healthcheck: no exec service"
        execs = streams.execs
        try:
            ex = await execs.create(c, {"Cmd": cmd, "AttachStdout": True,
                                        "AttachStderr": True})
            call = await execs.start(ex, attach=True)
        except EngineError as e:
            return -1, e.message
        out = bytearray()

        async def read() -> None:
            while (got := await call.read()) is not None:
                if len(out) < MAX_OUTPUT:
                    out.extend(got[1][:MAX_OUTPUT - len(out)])
            await execs.exited(ex)

        try:
            await asyncio.wait_for(read(), timeout)
        except TimeoutError:
            call.cancel()
            with contextlib.suppress(Exception):
                sup = self.daemon.supervisor
                from dockyard.api.services.tasks.v1 import tasks_pb2

                await sup.call(sup.tasks.Kill, tasks_pb2.KillRequest(
                    container_id=c.id, exec_id=ex.id, signal=9))
            return -1, f"Health check exceeded timeout ({timeout:g}s)"
        return int(ex.exit_code if ex.exit_code is not None else -1), \
            out.decode(errors="replace")
