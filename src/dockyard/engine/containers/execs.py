"""Execs: processes added to a running container (`docker exec`), kept in memory as dockerd
keeps them, with Docker's inspect document.

    create ─► exec_create event        (the container must be running, not paused)
    start  ─► exec_start event ─► Tasks.Exec (the container's process spec, changed) ─►
              Attach (when not detached; ready before the start: no output lost) ─►
              Tasks.Start ─► Wait in the background ─► exit code, exec_die, DeleteProcess

A start that fails (no such program) records Docker's exit code (127 not found, 126 not
executable) and gives the runtime's words.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import any_pb2

from dockyard.api.services.containers.v1 import containers_pb2 as containers_pb
from dockyard.api.services.tasks.v1 import tasks_pb2 as pb
from dockyard.engine.errors import Conflict, EngineError, InvalidParameter, NotFound, from_grpc

log = logging.getLogger("dockyard.engine")
PROCESS_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/Process"
EXIT_WAIT = 10.0
KEEP_ENDED = 300.0  # seconds an ended exec stays inspectable (dockerd's GC runs every 5 min)


@dataclass
class Exec:
    id: str
    container_id: str
    entrypoint: str
    arguments: list[str]
    tty: bool = False
    privileged: bool = False
    user: str = ""
    env: list[str] = field(default_factory=list)
    working_dir: str = ""
    open_stdin: bool = False
    open_stdout: bool = False
    open_stderr: bool = False
    detach_keys: str = ""
    console_size: list[int] | None = None
    started: bool = False
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)
    ended_at: float = 0.0

    @classmethod
    def from_body(cls, container_id: str, body: dict[str, Any]) -> Exec:
        cmd = body.get("Cmd")
        if isinstance(cmd, str):
            cmd = [cmd]
        if not cmd or not isinstance(cmd, list) or not all(isinstance(a, str) for a in cmd):
            raise InvalidParameter("No exec command specified")
        env = body.get("Env") or []
        if not isinstance(env, list) or not all(isinstance(e, str) for e in env):
            raise InvalidParameter("invalid Env: a list of strings is expected")
        size = body.get("ConsoleSize")
        if size is not None and (not isinstance(size, list) or len(size) != 2):
            raise InvalidParameter("invalid ConsoleSize: [height, width] is expected")
        return cls(id=secrets.token_hex(32), container_id=container_id, entrypoint=cmd[0],
                   arguments=list(cmd[1:]), tty=bool(body.get("Tty")),
                   privileged=bool(body.get("Privileged")), user=body.get("User") or "",
                   env=list(env), working_dir=body.get("WorkingDir") or "",
                   open_stdin=bool(body.get("AttachStdin")),
                   open_stdout=bool(body.get("AttachStdout")),
                   open_stderr=bool(body.get("AttachStderr")),
                   detach_keys=body.get("DetachKeys") or "", console_size=size)

    @property
    def command(self) -> str:
        return " ".join([self.entrypoint, *self.arguments])

    def to_json(self) -> dict[str, Any]:
        return {"ID": self.id, "Running": self.running, "ExitCode": self.exit_code,
                "ProcessConfig": {"tty": self.tty, "entrypoint": self.entrypoint,
                                  "arguments": self.arguments, "privileged": self.privileged,
                                  **({"user": self.user} if self.user else {})},
                "OpenStdin": self.open_stdin, "OpenStderr": self.open_stderr,
                "OpenStdout": self.open_stdout, "CanRemove": False,
                "ContainerID": self.container_id, "DetachKeys": self.detach_keys,
                "Pid": self.pid}


def start_exit_code(message: str, entrypoint: str) -> int:
    """dockerd's translateContainerdStartErr: 127 for a program not found, 126 for one that
    cannot be run."""
    low = message.lower()
    code = 126
    if entrypoint.lower() in low and ("executable file not found" in low
                                      or "no such file or directory" in low):
        code = 127
    if "permission denied" in low:
        code = 126
    if "not a directory" in low:
        code = 127
    return code


def merge_env(base: list[str], extra: list[str]) -> list[str]:
    """Docker's ReplaceOrAppendEnvValues: a KEY=value replaces KEY, a bare KEY removes it."""
    out = list(base)
    for item in extra:
        key, eq, _ = item.partition("=")
        idx = next((i for i, e in enumerate(out) if e.partition("=")[0] == key), None)
        if not eq:
            if idx is not None:
                del out[idx]
            continue
        if idx is None:
            out.append(item)
        else:
            out[idx] = item
    return out


def privileged_caps() -> list[str]:
    """Every capability the kernel knows (dockerd's "all") that the engine itself holds in
    its bounding set: a process cannot be given one its parents lost (capset: EPERM)."""
    from dockyard.engine.containers.capabilities import host_caps

    bounding = -1
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    bounding = int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return [c for n, c in enumerate(host_caps()) if bounding >> n & 1]


def _read_in_container(pid: int, *names: str) -> str | None:
    """A file of the container's rootfs (through /proc/<pid>/root), never following a
    symbolic link: one could point out of the container."""
    fds: list[int] = []
    try:
        fds.append(os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY))
        for name in names[:-1]:
            fds.append(os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW,
                               dir_fd=fds[-1]))
        fds.append(os.open(names[-1], os.O_RDONLY | os.O_NOFOLLOW, dir_fd=fds[-1]))
        return os.read(fds[-1], 1 << 20).decode("utf-8", "replace")
    except OSError:
        return None
    finally:
        for fd in fds:
            os.close(fd)


def exec_user(pid: int, user: str) -> dict[str, Any]:
    """The OCI user of `docker exec -u`: "name", "uid", "name:group", "uid:gid", looked up in
    the container's /etc/passwd and /etc/group (a number needs no entry)."""
    from dockyard.engine.containers.users import parse_group, parse_passwd

    passwd = parse_passwd(_read_in_container(pid, "etc", "passwd"))
    groups = parse_group(_read_in_container(pid, "etc", "group"))
    name, _, group = user.partition(":")
    uid, gid, login = 0, 0, ""
    entry = next((e for e in passwd if e.name == name
                  or (name.isdigit() and e.id == int(name))), None)
    if entry is not None:
        uid, gid, login = entry.id, entry.gid, entry.name
    elif name.isdigit():
        uid = int(name)
    else:
        raise EngineError(f"unable to find user {name}: no matching entries in passwd file")
    extra: list[int] = []
    if group:
        g = next((e for e in groups if e.name == group
                  or (group.isdigit() and e.id == int(group))), None)
        if g is None and not group.isdigit():
            raise EngineError(f"unable to find group {group}: no matching entries in group "
                              f"file")
        gid = g.id if g is not None else int(group)
    elif login:
        extra = [e.id for e in groups if login in e.members]
    return {"uid": uid, "gid": gid, "additionalGids": extra or [gid]}


class ExecService:
    def __init__(self, daemon: Any, streams: Any) -> None:
        self.daemon = daemon
        self.streams = streams
        self.by_id: dict[str, Exec] = {}

    def get(self, exec_id: str) -> Exec:
        ex = self.by_id.get(exec_id)
        if ex is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        return ex

    @staticmethod
    def check_running(c: Any) -> None:
        if not c.state.running:
            raise Conflict(f"container {c.id} is not running")
        if c.state.paused:
            raise Conflict(f"Container {c.id} is paused, unpause the container before exec")
        if c.state.restarting:
            raise Conflict(f"container {c.id} is restarting, wait until the container is "
                           f"running")

    async def create(self, c: Any, body: Any) -> Exec:
        if not isinstance(body, dict):
            raise InvalidParameter("config cannot be empty in order to create an exec")
        self.check_running(c)
        self._forget_old()
        ex = Exec.from_body(c.id, body)
        self.by_id[ex.id] = ex
        c.exec_ids.append(ex.id)
        self.daemon.containers.publish(c, f"exec_create: {ex.command}", {"execID": ex.id})
        return ex

    async def _process_spec(self, c: Any, ex: Exec) -> dict[str, Any]:
        sup = self.daemon.supervisor
        try:
            r = await sup.call(sup.containers.Get, containers_pb.GetContainerRequest(id=c.id))
            spec = json.loads(r.container.spec.value)
        except grpc.RpcError as e:
            raise from_grpc(e) from None
        proc = dict(spec.get("process") or {})
        proc["args"] = [ex.entrypoint, *ex.arguments]
        env = merge_env(list(proc.get("env") or []), ex.env)
        if ex.tty and not any(e.startswith("TERM=") for e in env):
            env.append("TERM=xterm")
        proc["env"] = env
        proc["terminal"] = ex.tty
        proc.pop("consoleSize", None)
        if ex.tty and ex.console_size and all(ex.console_size):
            proc["consoleSize"] = {"height": ex.console_size[0], "width": ex.console_size[1]}
        if ex.working_dir:
            proc["cwd"] = ex.working_dir
        if ex.user:
            proc["user"] = exec_user(c.state.pid, ex.user)
        if ex.privileged:
            caps = privileged_caps()
            proc["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps}
        return proc

    async def start(self, ex: Exec, *, attach: bool, tty: bool | None = None,
                    console_size: list[int] | None = None) -> Any:
        """Start the exec; with `attach`, the AttachCall of its output (ready before the
        process runs). Errors are EngineErrors in Docker's words."""
        if ex.running:
            raise Conflict(f"Error: Exec command {ex.id} is already running")
        if ex.started:
            raise Conflict(f"Error: Exec command {ex.id} has already run")
        c = await self.daemon.containers.get(ex.container_id)
        self.check_running(c)
        if tty is not None:
            ex.tty = tty
        if console_size:
            ex.console_size = console_size
        ex.started = True
        sup = self.daemon.supervisor
        try:
            spec = await self._process_spec(c, ex)
        except BaseException:
            self._finish(ex, 126)
            raise
        self.daemon.containers.publish(c, f"exec_start: {ex.command}", {"execID": ex.id})
        packed = any_pb2.Any(type_url=PROCESS_TYPE, value=json.dumps(spec).encode())
        try:
            await sup.call(sup.tasks.Exec, pb.ExecProcessRequest(
                container_id=c.id, exec_id=ex.id, stdin=ex.open_stdin, terminal=ex.tty,
                spec=packed))
        except grpc.RpcError as e:
            self._finish(ex, 126)
            raise from_grpc(e) from None
        call = None
        try:
            if attach:
                from dockyard.engine.containers.streams import AttachCall

                call = await AttachCall.open(sup, c.id, ex.id, stdin=ex.open_stdin,
                                             stdout=ex.open_stdout, stderr=ex.open_stderr,
                                             stdin_once=True)
            r = await sup.call(sup.tasks.Start, pb.StartRequest(container_id=c.id,
                                                                exec_id=ex.id))
        except grpc.RpcError as e:
            if call is not None:
                call.cancel()
            message = e.details() or str(e.code())
            self._finish(ex, start_exit_code(message, ex.entrypoint))
            await self._delete(c.id, ex.id)
            raise EngineError(message) from None
        except BaseException:
            if call is not None:
                call.cancel()
            self._finish(ex, 126)
            await self._delete(c.id, ex.id)
            raise
        ex.pid, ex.running = r.pid, True
        self.streams.spawn(self._wait(c, ex))
        return call

    def _forget_old(self) -> None:
        horizon = time.monotonic() - KEEP_ENDED
        for ex in list(self.by_id.values()):
            if ex.done.is_set() and ex.ended_at < horizon:
                del self.by_id[ex.id]

    def _finish(self, ex: Exec, code: int) -> None:
        """It ended (or never started): its code, and out of the container's ExecIDs (the
        engine keeps it for inspection a while), as dockerd does."""
        ex.running = False
        if ex.exit_code is None:
            ex.exit_code = code
        ex.ended_at = time.monotonic()
        ex.done.set()
        with contextlib.suppress(Exception):
            c = self.daemon.containers.lookup(ex.container_id)
            if ex.id in c.exec_ids:
                c.exec_ids.remove(ex.id)

    async def _delete(self, cid: str, exec_id: str) -> None:
        sup = self.daemon.supervisor
        with contextlib.suppress(grpc.RpcError):
            await sup.call(sup.tasks.DeleteProcess, pb.DeleteProcessRequest(
                container_id=cid, exec_id=exec_id))

    async def _wait(self, c: Any, ex: Exec) -> None:
        sup = self.daemon.supervisor
        code = 137
        try:
            r = await sup.call(sup.tasks.Wait, pb.WaitRequest(container_id=c.id,
                                                              exec_id=ex.id))
            code = r.exit_status
        except grpc.RpcError as e:
            log.warning("waiting for exec %s: %s", ex.id, e.details())
        finally:
            ex.exit_code = code
            self._finish(ex, code)
        self.daemon.containers.publish(c, "exec_die", {"execID": ex.id,
                                                       "exitCode": str(code)})
        await self._delete(c.id, ex.id)

    async def exited(self, ex: Exec, timeout: float = EXIT_WAIT) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(ex.done.wait(), timeout)

    async def resize(self, ex: Exec, height: int, width: int) -> None:
        if not ex.running:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._until_running(ex), 10)
        if not ex.running:
            raise Conflict(f"Exec {ex.id} is not running")
        await self.streams.resize(ex.container_id, ex.id, height, width)

    @staticmethod
    async def _until_running(ex: Exec) -> None:
        while not ex.running and not ex.done.is_set():
            await asyncio.sleep(0.05)
