"""A container's state on disk, and its status derived from the living system.

    <root>/                       --root (default /run/dockyard-runc), mode 0700
      <id>/                       one directory a container, mode 0711
        state.json                written once by create (atomically: temp file + rename) and
                                  rewritten by `update`; never holds the status itself
        exec.fifo                 exists from create until start: the init blocks opening it

The status is never stored: it is read off the system each time, as runc does, so a crash at
any moment leaves nothing stale. stopped: the init pid is gone, a zombie, or a different
process (start time differs); created: exec.fifo still exists; paused: the cgroup is frozen;
otherwise running.
"""

from __future__ import annotations

import os
import time

from dockyard.runtime import jsonio
from dockyard.runtime.errors import AlreadyExists, ConfigError, NotFound

TYPE_CHECKING = False  # not from typing: importing typing costs ~9 ms
if TYPE_CHECKING:
    from typing import Any

DEFAULT_ROOT = "/run/dockyard-runc"
STATE_FILE = "state.json"
FIFO = "exec.fifo"
OCI_VERSION = "1.2.0"
_ID_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def check_id(cid: str) -> None:
    if not cid:
        raise ConfigError("container id cannot be empty")
    if cid in (".", "..") or not set(cid) <= _ID_OK:
        raise ConfigError(f"invalid container id format: {cid}")


def proc_start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat, or None if the process is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rfind(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def rfc3339(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


class State:
    """What create recorded about a container; `status()` asks the system."""

    __slots__ = ("dir", "doc")

    def __init__(self, dir: str, doc: dict[str, Any]) -> None:
        self.dir = dir
        self.doc = doc

    id = property(lambda self: self.doc["id"])
    pid = property(lambda self: self.doc["pid"])
    bundle = property(lambda self: self.doc["bundle"])
    rootfs = property(lambda self: self.doc["rootfs"])
    config = property(lambda self: self.doc["config"])
    cgroup_paths = property(lambda self: self.doc.get("cgroup_paths") or {})

    @property
    def fifo(self) -> str:
        return os.path.join(self.dir, FIFO)

    def alive(self) -> bool:
        pid = self.doc.get("pid") or 0
        return pid > 0 and proc_start_time(pid) == self.doc.get("pid_start")

    def status(self) -> str:
        if not self.alive():
            return "stopped"
        if not self.doc.get("ready", True):
            return "creating"
        if self.cgroup_paths:  # before the fifo: a created container can be paused too
            from dockyard.runtime.linux import cgroups

            try:
                if cgroups.load(self.cgroup_paths).frozen():
                    return "paused"
            except OSError:
                pass
        if os.path.exists(self.fifo):
            return "created"
        return "running"

    def oci(self, status: str | None = None) -> dict[str, Any]:
        """The state as runc's `state` prints it (and as hooks receive it)."""
        status = status or self.status()
        out: dict[str, Any] = {
            "ociVersion": OCI_VERSION,
            "id": self.id,
            "pid": self.pid if status != "stopped" else 0,
            "status": status,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.doc["created"],
            "owner": self.doc.get("owner", ""),
        }
        if self.doc.get("annotations"):
            out["annotations"] = self.doc["annotations"]
        return out

    def save(self) -> None:
        path = os.path.join(self.dir, STATE_FILE)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(jsonio.dumps(self.doc))
        os.rename(tmp, path)


def container_dir(root: str, cid: str) -> str:
    return os.path.join(root, cid)


def make_dir(root: str, cid: str) -> str:
    """The container's directory, made exclusively: two creates of one id cannot both win."""
    check_id(cid)
    os.makedirs(root, mode=0o700, exist_ok=True)
    d = container_dir(root, cid)
    try:
        os.mkdir(d, 0o711)
    except FileExistsError:
        raise AlreadyExists(f"container with id exists: {cid}") from None
    return d


def remove_dir(d: str) -> None:
    """The container's directory holds only files: no shutil (~5 ms of imports) needed."""
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return
    for name in names:
        try:
            os.unlink(os.path.join(d, name))
        except FileNotFoundError:
            pass
    try:
        os.rmdir(d)
    except FileNotFoundError:
        pass


def load(root: str, cid: str) -> State:
    check_id(cid)
    d = container_dir(root, cid)
    try:
        with open(os.path.join(d, STATE_FILE), "rb") as f:
            doc = jsonio.loads(f.read())
    except FileNotFoundError:
        raise NotFound("container does not exist") from None
    except jsonio.DecodeError as e:
        raise NotFound(f"container state is unreadable: {e}") from None
    return State(d, doc)


def list_ids(root: str) -> list[str]:
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if os.path.isfile(os.path.join(root, n, STATE_FILE)))
