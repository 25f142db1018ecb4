"""/_ping, /version, /info and /events."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import time
from typing import Any

from aiohttp import web

from dockyard import __version__
from dockyard.engine import events as events_mod
from dockyard.engine.api.server import (
    API_VERSION,
    DAEMON,
    MIN_API_VERSION,
    Route,
    add_headers,
    check_filters,
    query_filters,
    query_time,
)
from dockyard.engine.errors import InvalidParameter

EVENT_FILTERS = {"config", "container", "daemon", "event", "image", "label", "network",
                 "node", "plugin", "scope", "secret", "service", "type", "volume"}


async def ping(request: web.Request) -> web.Response:
    response = web.Response(text="" if request.method == "HEAD" else "OK",
                            content_type="text/plain")
    response.headers["Builder-Version"] = "1"
    response.headers["Swarm"] = "inactive"
    response.headers["Cache-Control"] = "no-cache, no-store, must-revalidate"
    response.headers["Pragma"] = "no-cache"
    return response


def _go_arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


def version_doc() -> dict[str, Any]:
    kernel = platform.release()
    details = {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
               "GitCommit": "dockyard", "GoVersion": f"python{platform.python_version()}",
               "Os": "linux", "Arch": _go_arch(), "KernelVersion": kernel,
               "Experimental": "false", "BuildTime": ""}
    return {
        "Platform": {"Name": "Dockyard Engine"},
        "Components": [
            {"Name": "Engine", "Version": __version__, "Details": details},
            {"Name": "containerd", "Version": __version__,
             "Details": {"GitCommit": "dockyard-containerd"}},
            {"Name": "runc", "Version": __version__, "Details": {"GitCommit": "dockyard-runc"}},
        ],
        "Version": __version__, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "dockyard", "GoVersion": f"python{platform.python_version()}",
        "Os": "linux", "Arch": _go_arch(), "KernelVersion": kernel, "BuildTime": "",
    }


async def version(request: web.Request) -> web.Response:
    return web.json_response(version_doc())


def _cgroup_version() -> str:
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                parts = line.split()
                if parts[4] == "/sys/fs/cgroup":
                    return "2" if " - cgroup2 " in line else "1"
    except OSError:
        pass
    return "1"


async def info(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    counts = await daemon.counts()
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    cfg = daemon.config
    doc = {
        "ID": daemon.engine_id, "Containers": counts.get("containers", 0),
        "ContainersRunning": counts.get("running", 0),
        "ContainersPaused": counts.get("paused", 0),
        "ContainersStopped": counts.get("stopped", 0), "Images": counts.get("images", 0),
        "Driver": "overlayfs", "DriverStatus": [["driver-type", "io.containerd.snapshotter.v1"]],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none", "null"],
                    "Authorization": None, "Log": ["json-file"]},
        "MemoryLimit": True, "SwapLimit": True, "CpuCfsPeriod": True, "CpuCfsQuota": True,
        "CPUShares": True, "CPUSet": True, "PidsLimit": True, "IPv4Forwarding": True,
        "Debug": cfg.debug, "NFd": len(os.listdir("/proc/self/fd")),
        "OomKillDisable": False, "NGoroutines": len(asyncio.all_tasks()),
        "SystemTime": time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime()),
        "LoggingDriver": cfg.log_driver, "CgroupDriver": "cgroupfs",
        "CgroupVersion": _cgroup_version(), "NEventsListener": len(daemon.events.queues),
        "KernelVersion": platform.release(), "OperatingSystem": _os_name(),
        "OSVersion": "", "OSType": "linux", "Architecture": platform.machine(),
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"InsecureRegistryCIDRs": ["127.0.0.0/8"],
                           "IndexConfigs": {}, "Mirrors": list(cfg.registry_mirrors)},
        "NCPU": os.cpu_count() or 1, "MemTotal": mem, "DockerRootDir": cfg.data_root,
        "HttpProxy": "", "HttpsProxy": "", "NoProxy": "", "Name": platform.node(),
        "Labels": [], "ExperimentalBuild": False, "ServerVersion": __version__,
        "Runtimes": {"runc": {"path": "dockyard-runc"}}, "DefaultRuntime": "runc",
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                  "ControlAvailable": False, "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": cfg.live_restore, "Isolation": "", "InitBinary": "",
        "ContainerdCommit": {"ID": "dockyard"}, "RuncCommit": {"ID": "dockyard"},
        "InitCommit": {"ID": ""}, "SecurityOptions": ["name=seccomp,profile=builtin"],
        "Warnings": None,
    }
    return web.json_response(doc)


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.partition("=")[2].strip().strip('"')
    except OSError:
        pass
    return "Linux"


async def events(request: web.Request) -> web.StreamResponse:
    daemon = request.app[DAEMON]
    filters = query_filters(request)
    check_filters(filters, EVENT_FILTERS)
    since = query_time(request, "since")
    until = query_time(request, "until")
    if since is not None and until is not None and until < since:
        raise InvalidParameter("`since` time must be before `until` time")
    queue = daemon.events.subscribe()
    response = web.StreamResponse()
    response.content_type = "application/json"
    add_headers(response)
    try:
        await response.prepare(request)
        backlog = daemon.events.since(since, until) if since is not None else []
        seen = {e["timeNano"] for e in backlog}
        for e in backlog:
            if events_mod.matches(e, filters):
                await response.write(json.dumps(e).encode() + b"\n")
        while True:
            timeout = None
            if until is not None:
                timeout = (until - time.time_ns()) / 1e9
                if timeout <= 0:
                    break
            try:
                e = await asyncio.wait_for(queue.get(), timeout)
            except TimeoutError:
                break
            if e["timeNano"] in seen:
                continue
            if until is not None and e["timeNano"] > until:
                break
            if events_mod.matches(e, filters):
                await response.write(json.dumps(e).encode() + b"\n")
    finally:
        daemon.events.unsubscribe(queue)
    return response


def routes(daemon: object) -> list[Route]:
    return [Route("GET", "/_ping", ping), Route("HEAD", "/_ping", ping),
            Route("GET", "/version", version), Route("GET", "/info", info),
            Route("GET", "/events", events)]
