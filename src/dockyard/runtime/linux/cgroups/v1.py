"""The cgroup v1 manager: one directory per mounted hierarchy (see paths.py for the layout).

create() makes the directories; set() writes the plan of resources.py; apply() writes the
pid to every hierarchy's cgroup.procs.  cpuset is the odd one: a new cpuset cgroup starts
with *empty* cpuset.cpus/mems and refuses tasks until they are filled, so every level we
create gets its parent's values copied in (unless the config names its own).

The freezer is asynchronous on v1: writing FROZEN starts freezing, and freezer.state says
FREEZING until every task has stopped; tasks that fork meanwhile can keep it there.  We
re-write FROZEN and re-read, thawing briefly now and then, as runc does, and give up with
"unable to freeze" (after thawing, so nothing is left half-frozen).
"""

from __future__ import annotations

import errno
import os
import time

from dockyard.runtime.errors import ConfigError
from dockyard.runtime.linux.cgroups import base, files, resources, stats
from dockyard.runtime.linux.cgroups.files import CgroupError

SIGKILL = 9


class Manager(base.Manager):
    __slots__ = ("_paths",)
    version = "v1"

    def __init__(self, paths: dict[str, str]) -> None:
        self._paths = dict(paths)

    @property
    def paths(self) -> dict[str, str]:
        return self._paths

    def __repr__(self) -> str:
        return f"v1.Manager({self.paths!r})"

    def _dirs(self) -> list[str]:
        """Unique directories: co-mounted controllers (cpu,cpuacct) share one."""
        out: list[str] = []
        for d in self.paths.values():
            if d not in out:
                out.append(d)
        return out

    def _probe(self, ctl: str, name: str) -> str | None:
        d = self.paths.get(ctl)
        return files.read_or_none(d, name) if d else None

    # ---- lifecycle ----

    def create(self) -> None:
        for key, d in self.paths.items():
            try:
                if key == "cpuset":
                    _cpuset_create(d)
                else:
                    os.makedirs(d, 0o755, exist_ok=True)
            except OSError as e:
                raise CgroupError(f"mkdir {d}: {files.strerror(e)}") from None

    def apply(self, pid: int) -> None:
        for d in self._dirs():
            files.join(d, pid)

    def join_files(self) -> list[str]:
        return [os.path.join(d, "tasks") for d in self._dirs()]

    def set(self, res: dict) -> None:
        writes = resources.v1_writes(res or {}, self._probe)
        files.perform(writes, self.paths.get, _explain)
        self._check_shares(res or {})

    def _check_shares(self, res: dict) -> None:
        """The kernel clamps cpu.shares silently; runc reads it back and says so."""
        shares = (res.get("cpu") or {}).get("shares")
        if not shares or "cpu" not in self.paths:
            return
        got = int(files.read(self.paths["cpu"], "cpu.shares"))
        if shares > got:
            raise ConfigError(f"the maximum allowed cpu-shares is {got}")
        if shares < got:
            raise ConfigError(f"the minimum allowed cpu-shares is {got}")

    def exists(self) -> bool:
        d = self.paths.get("devices") or next(iter(self.paths.values()), None)
        return bool(d) and os.path.isdir(d)

    def destroy(self) -> None:
        for d in self._dirs():
            files.remove(d)

    # ---- freezer ----

    def freeze(self) -> None:
        d = self.paths.get("freezer")
        if d is None:
            raise CgroupError("cannot toggle freezer: cgroups not configured for container")
        try:
            _freeze(d)
        except BaseException:
            try:
                files.write(d, "freezer.state", "THAWED")  # never leave it half-frozen
            except OSError:
                pass
            raise

    def thaw(self) -> None:
        d = self.paths.get("freezer")
        if d is None:
            raise CgroupError("cannot toggle freezer: cgroups not configured for container")
        files.write(d, "freezer.state", "THAWED")

    def frozen(self) -> bool:
        """Frozen by us, not merely because an ancestor is (freezer.self_freezing)."""
        d = self.paths.get("freezer")
        if d is None:
            return False
        while True:
            state = (files.read_or_none(d, "freezer.state") or "").strip()
            if state != "FREEZING":
                break
            time.sleep(0.001)
        if state != "FROZEN":
            return False
        return (files.read_or_none(d, "freezer.self_freezing") or "1").strip() == "1"

    # ---- processes ----

    def pids(self) -> list[int]:
        for key in ("pids", "freezer", "devices", "memory"):
            if key in self.paths:
                return files.all_procs(self.paths[key])
        dirs = self._dirs()
        return files.all_procs(dirs[0]) if dirs else []

    def kill_all(self, sig: int) -> None:
        """Freeze, list, signal, thaw: frozen tasks cannot fork, so no child born between
        the listing and the signal escapes it.  A frozen task takes its SIGKILL on thaw."""
        was_frozen = self.frozen()
        froze = False
        if "freezer" in self.paths and not was_frozen:
            try:
                self.freeze()
                froze = True
            except (CgroupError, OSError):
                pass  # signal anyway: better most than none
        try:
            files.kill_pids(self.pids(), sig)
        finally:
            if froze or (was_frozen and sig == SIGKILL):
                try:
                    self.thaw()
                except OSError:
                    pass

    # ---- accounting ----

    def stats(self) -> dict:
        return stats.v1(self.paths)

    def oom_kill_count(self) -> int:
        d = self.paths.get("memory")
        if d is None:
            return 0
        for line in (files.read_or_none(d, "memory.oom_control") or "").splitlines():
            k, _, v = line.partition(" ")
            if k == "oom_kill":
                return int(v)
        return 0


def _explain(d: str, ctl: str, name: str, value: str, e: OSError) -> Exception:
    """runc's wording for a memory limit below the current usage (EBUSY)."""
    if name == "memory.limit_in_bytes" and e.errno == errno.EBUSY:
        usage = files.read_or_none(d, "memory.usage_in_bytes") or "0"
        peak = files.read_or_none(d, "memory.max_usage_in_bytes") or "0"
        return ConfigError(f"unable to set memory limit to {value} (current usage: "
                           f"{usage.strip()}, peak usage: {peak.strip()})")
    return ConfigError(files.write_error(d, name, value, e))


def _freeze(d: str) -> None:
    delay = 1.0
    for i in range(1000):
        if i % 50 == 49:  # new tasks keep appearing: thaw, let them settle, retry
            files.write(d, "freezer.state", "THAWED")
            time.sleep(0.01)
        files.write(d, "freezer.state", "FROZEN")
        if i % 25 == 24:
            time.sleep(0.00001)
        if i % 200 == 199:
            time.sleep(delay)
            delay *= 2
        state = files.read(d, "freezer.state").strip()
        if state == "FROZEN":
            return
        if state != "FREEZING":
            raise CgroupError(f"unexpected state {state} while freezing")
    raise CgroupError("unable to freeze")


def _cpuset_levels(d: str) -> list[str]:
    """The directories from just below the hierarchy's root down to d."""
    chain = []
    p = d
    while True:
        parent = os.path.dirname(p)
        if parent == p:
            raise CgroupError(f"{d} is not inside a cpuset hierarchy")
        chain.append(p)
        if os.path.exists(os.path.join(parent, "cpuset.cpus")) and not os.path.exists(
                os.path.join(os.path.dirname(parent), "cpuset.cpus")):
            break
        p = parent
    chain.reverse()
    return chain


def _cpuset_create(d: str) -> None:
    for level in _cpuset_levels(d):
        try:
            os.mkdir(level, 0o755)
        except FileExistsError:
            pass
        parent = os.path.dirname(level)
        for name in ("cpuset.cpus", "cpuset.mems"):
            if not files.read(level, name).strip():
                files.write(level, name, files.read(parent, name).strip())
