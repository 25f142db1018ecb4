"""A container as the engine keeps it: Docker's Config and HostConfig documents as given (merged
with the image), its State, and what it was made from. `to_disk`/`from_disk` give the
config.v2.json document (Docker's field names, plus the State) that store.py writes.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from dockyard.units import rfc3339nano

ZERO_TIME = "0001-01-01T00:00:00Z"


def parse_rfc3339(text: str) -> float:
    """Seconds since the epoch of an RFC3339 time (0 for Go's zero time)."""
    import calendar

    if not text or text.startswith("0001-"):
        return 0.0
    head, _, frac = text.rstrip("Z").partition(".")
    secs = calendar.timegm(time.strptime(head[:19], "%Y-%m-%dT%H:%M:%S"))
    return secs + (float(f"0.{frac}") if frac.isdigit() else 0.0)


@dataclass
class State:
    status: str = "created"  # created running paused restarting removing exited dead
    running: bool = False
    paused: bool = False
    restarting: bool = False
    oom_killed: bool = False
    dead: bool = False
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME

    def to_json(self) -> dict[str, Any]:
        return {"Status": self.status, "Running": self.running, "Paused": self.paused,
                "Restarting": self.restarting, "OOMKilled": self.oom_killed,
                "Dead": self.dead, "Pid": self.pid, "ExitCode": self.exit_code,
                "Error": self.error, "StartedAt": self.started_at,
                "FinishedAt": self.finished_at}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> State:
        return cls(status=doc.get("Status", "created"), running=bool(doc.get("Running")),
                   paused=bool(doc.get("Paused")), restarting=bool(doc.get("Restarting")),
                   oom_killed=bool(doc.get("OOMKilled")), dead=bool(doc.get("Dead")),
                   pid=int(doc.get("Pid") or 0), exit_code=int(doc.get("ExitCode") or 0),
                   error=doc.get("Error") or "", started_at=doc.get("StartedAt") or ZERO_TIME,
                   finished_at=doc.get("FinishedAt") or ZERO_TIME)

    def set_running(self, pid: int) -> None:
        self.status, self.running, self.paused, self.restarting = "running", True, False, False
        self.pid, self.exit_code, self.error, self.oom_killed = pid, 0, "", False
        self.started_at = rfc3339nano()

    def set_stopped(self, exit_code: int, finished_at: str | None = None) -> None:
        self.status, self.running, self.paused, self.restarting = "exited", False, False, False
        self.pid, self.exit_code = 0, exit_code
        self.finished_at = finished_at or rfc3339nano()


@dataclass
class Container:
    id: str
    name: str  # without the leading "/"
    created: str
    image: str  # the image ID (sha256:…)
    image_ref: str  # what the client asked for ("busybox")
    config: dict[str, Any]
    host_config: dict[str, Any]
    networking_config: dict[str, Any] = field(default_factory=dict)
    state: State = field(default_factory=State)
    path: str = ""
    args: list[str] = field(default_factory=list)
    restart_count: int = 0
    manually_stopped: bool = False
    has_been_started: bool = False
    exec_ids: list[str] = field(default_factory=list)
    directory: str = ""
    mount_points: list[dict[str, Any]] = field(default_factory=list)  # MountPoint records
    health: dict[str, Any] | None = None  # State.Health, with a healthcheck (health.py)
    # While it runs on a bridge network: SandboxKey, Ports (bindings held), Networks
    # (name -> EndpointSettings); networks/endpoints.py fills and empties it.
    network_settings: dict[str, Any] = field(default_factory=dict)
    # Not on disk: the exit waiters, and a lock held by every state change.
    # A builder's RUN container: started once, its snapshot then committed as a layer or
    # removed; its root file system is mounted volatile (rootview.volatile).
    build_step: bool = False
    waiters: list[tuple[str, asyncio.Future[dict[str, Any]]]] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    restart_task: asyncio.Task[None] | None = None
    save_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    save_asked: int = 0
    save_done: int = 0

    @property
    def log_path(self) -> str:
        return f"{self.directory}/{self.id}-json.log"

    @property
    def hostname_path(self) -> str:
        return f"{self.directory}/hostname"

    @property
    def hosts_path(self) -> str:
        return f"{self.directory}/hosts"

    @property
    def resolv_conf_path(self) -> str:
        return f"{self.directory}/resolv.conf"

    @property
    def restart_policy(self) -> dict[str, Any]:
        return self.host_config.get("RestartPolicy") or {"Name": "no", "MaximumRetryCount": 0}

    def to_disk(self) -> dict[str, Any]:
        return {"ID": self.id, "Name": f"/{self.name}", "Created": self.created,
                "Image": self.image, "ImageRef": self.image_ref, "Config": self.config,
                "NetworkingConfig": self.networking_config, "State": self.state.to_json(),
                "Path": self.path, "Args": self.args, "RestartCount": self.restart_count,
                "HasBeenManuallyStopped": self.manually_stopped,
                "HasBeenStartedBefore": self.has_been_started, "Driver": "overlayfs",
                "LogPath": self.log_path, "HostnamePath": self.hostname_path,
                "HostsPath": self.hosts_path, "ResolvConfPath": self.resolv_conf_path,
                "MountPoints": self.mount_points, "Health": self.health,
                "NetworkSettings": self.network_settings}

    @classmethod
    def from_disk(cls, doc: dict[str, Any], host_config: dict[str, Any],
                  directory: str) -> Container:
        return cls(id=doc["ID"], name=doc["Name"].lstrip("/"), created=doc["Created"],
                   image=doc["Image"], image_ref=doc.get("ImageRef") or doc["Image"],
                   config=doc.get("Config") or {}, host_config=host_config,
                   networking_config=doc.get("NetworkingConfig") or {},
                   state=State.from_json(doc.get("State") or {}), path=doc.get("Path", ""),
                   args=list(doc.get("Args") or []),
                   restart_count=int(doc.get("RestartCount") or 0),
                   manually_stopped=bool(doc.get("HasBeenManuallyStopped")),
                   has_been_started=bool(doc.get("HasBeenStartedBefore")),
                   directory=directory, mount_points=list(doc.get("MountPoints") or []),
                   health=doc.get("Health"),
                   network_settings=doc.get("NetworkSettings") or {})

    def notify(self, kind: str) -> None:
        """Answer the waiters of `kind` ("exit" or "removed") with the exit code."""
        answer = {"StatusCode": self.state.exit_code, "Error": None}
        keep = []
        for condition, fut in self.waiters:
            wanted = condition == "removed" if kind == "removed" else condition != "removed"
            if kind == "removed" or wanted:
                if not fut.done():
                    fut.set_result(answer)
            else:
                keep.append((condition, fut))
        self.waiters = keep
