"""The cgroup v2 manager: one directory in the unified tree (see paths.py for the layout).

A controller's files appear in a cgroup only when its parent lists the controller in
cgroup.subtree_control, and so on up to the root; set() switches on, level by level, the
controllers its writes need (only those the root offers, and only the missing ones: a
level that already has them is not written, which matters for parents we do not own).
The "no internal processes" rule means a parent that holds processes cannot hand domain
controllers (memory, io) down; the kernel says EBUSY and the write that needed the
controller then fails with a clear message.

Freezing is synchronous in intent but not in fact: cgroup.freeze=1 starts it and
cgroup.events turns to "frozen 1" when every task has stopped; we wait for that.
SIGKILL for the whole cgroup is one write to cgroup.kill (Linux 5.14+), which also reaches
tasks forked meanwhile; other signals freeze, list, signal and thaw as on v1.

Devices have no files on v2: the policy is an eBPF program attached to the directory
(bpf.py).
"""

from __future__ import annotations

import errno
import os
import time

from dockyard.runtime.errors import ConfigError
from dockyard.runtime.linux.cgroups import base, files, resources, stats
from dockyard.runtime.linux.cgroups.files import CgroupError

SIGKILL = 9
FREEZE_TIMEOUT = 10.0


class Manager(base.Manager):
    __slots__ = ("path",)
    version = "v2"

    def __init__(self, path: str) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"v2.Manager({self.path!r})"

    @property
    def paths(self) -> dict[str, str]:
        return {"": self.path}

    def _probe(self, _ctl: str, name: str) -> str | None:
        return files.read_or_none(self.path, name)

    def _levels(self) -> list[str]:
        """Directories from the mount root down to our parent (subtree_control owners)."""
        chain = []
        p = os.path.dirname(self.path)
        while os.path.exists(os.path.join(p, "cgroup.controllers")):
            chain.append(p)
            parent = os.path.dirname(p)
            if parent == p:
                break
            p = parent
        chain.reverse()
        return chain

    # ---- lifecycle ----

    def create(self) -> None:
        try:
            os.makedirs(self.path, 0o755, exist_ok=True)
        except OSError as e:
            raise CgroupError(f"mkdir {self.path}: {files.strerror(e)}") from None

    def apply(self, pid: int) -> None:
        files.join(self.path, pid)

    def set(self, res: dict) -> None:
        res = res or {}
        writes = resources.v2_writes(res, self._probe)
        self.enable(resources.v2_controllers(writes))
        files.perform(writes, lambda _c: self.path, self._explain)
        from dockyard.runtime.linux.cgroups import bpf  # ctypes: only when setting limits

        bpf.apply_rules(self.path, res.get("devices"))

    def enable(self, controllers: list[str]) -> None:
        """Switch controllers on from the root down to our parent, where they are missing."""
        levels = self._levels()
        if not controllers or not levels:
            return
        offered = set((files.read_or_none(levels[0], "cgroup.controllers") or "").split())
        want = [c for c in controllers if c in offered]
        for level in levels:
            have = set((files.read_or_none(level, "cgroup.subtree_control") or "").split())
            missing = [c for c in want if c not in have]
            if not missing:
                continue
            try:
                files.write(level, "cgroup.subtree_control", " ".join("+" + c for c in missing))
            except OSError:
                for c in missing:  # one by one: enable what can be
                    try:
                        files.write(level, "cgroup.subtree_control", "+" + c)
                    except OSError:
                        pass

    def _explain(self, d: str, ctl: str, name: str, value: str, e: OSError) -> Exception:
        if e.errno in (errno.ENOENT, errno.EPERM, errno.EACCES):
            c = name.split(".", 1)[0]
            have = (files.read_or_none(d, "cgroup.controllers") or "").split()
            if c not in have and c != "cgroup":
                if ctl == "unified":
                    return ConfigError(f"unified resource {files.quote(name)} can't be set: "
                                       f"controller {files.quote(c)} not available")
                return ConfigError(f"cannot set {name} to {files.quote(value)}: controller "
                                   f"{files.quote(c)} not available in {d}")
        if ctl == "unified":
            return ConfigError(f"unable to set unified resource {files.quote(name)}: "
                               f"{files.write_error(d, name, value, e)}")
        return ConfigError(files.write_error(d, name, value, e))

    def exists(self) -> bool:
        return os.path.isdir(self.path)

    def destroy(self) -> None:
        files.remove(self.path)

    # ---- freezer ----

    def freeze(self) -> None:
        self._set_freeze("1")
        deadline = time.monotonic() + FREEZE_TIMEOUT
        delay = 0.0005
        while not self._events_frozen():
            if time.monotonic() > deadline:
                self._set_freeze("0")
                raise CgroupError("unable to freeze")
            time.sleep(delay)
            delay = min(delay * 2, 0.02)

    def thaw(self) -> None:
        self._set_freeze("0")

    def frozen(self) -> bool:
        return (files.read_or_none(self.path, "cgroup.freeze") or "0").strip() == "1"

    def _set_freeze(self, value: str) -> None:
        try:
            files.write(self.path, "cgroup.freeze", value)
        except FileNotFoundError:
            if value == "1":
                raise CgroupError("freezer not supported: no cgroup.freeze in "
                                  f"{self.path}") from None

    def _events_frozen(self) -> bool:
        for line in (files.read_or_none(self.path, "cgroup.events") or "").splitlines():
            if line.startswith("frozen "):
                return line.split()[1] == "1"
        return False

    # ---- processes ----

    def pids(self) -> list[int]:
        return files.all_procs(self.path)

    def kill_all(self, sig: int) -> None:
        """cgroup.kill for SIGKILL; otherwise freeze, list, signal, thaw (see v1)."""
        if sig == SIGKILL and os.path.exists(os.path.join(self.path, "cgroup.kill")):
            files.write(self.path, "cgroup.kill", "1")
            return
        was_frozen = self.frozen()
        froze = False
        if not was_frozen:
            try:
                self.freeze()
                froze = True
            except (CgroupError, OSError):
                pass
        try:
            files.kill_pids(self.pids(), sig)
        finally:
            if froze or (was_frozen and sig == SIGKILL):
                self.thaw()

    # ---- accounting ----

    def stats(self) -> dict:
        return stats.v2(self.path)

    def oom_kill_count(self) -> int:
        for line in (files.read_or_none(self.path, "memory.events") or "").splitlines():
            k, _, v = line.partition(" ")
            if k == "oom_kill":
                return int(v)
        return 0
