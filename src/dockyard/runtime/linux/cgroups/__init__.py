"""The cgroup manager of dockyard-runc: runc's cgroupfs driver ("fs" on v1, "fs2" on v2).

    detect()                      "v1" or "v2" (a hybrid host counts as v1)
    manager_for(path, id)         a Manager for a new container (paths computed, nothing made)
    load(manager.paths)           the same Manager again, in a later process (from state.json)
    Manager: create  apply(pid)  set(resources)  freeze  thaw  frozen  pids  stats
             oom_kill_count  kill_all(sig)  destroy  exists  paths
    resources_from_update_flags, merge_resources: `runc update`

Modules: base (the interface), paths (where), resources + devrules (what to write, pure),
files (the writes), v1 / v2 (the managers), bpf (v2 device programs), stats, update.
Importing this package costs little more than os: the managers are imported when first
asked for, ctypes only for v2 devices.
"""

from __future__ import annotations

from dockyard.runtime.errors import ConfigError
from dockyard.runtime.linux.cgroups import paths as _paths
from dockyard.runtime.linux.cgroups.base import Manager
from dockyard.runtime.linux.cgroups.files import CgroupError
from dockyard.runtime.linux.cgroups.update import merge_resources, resources_from_update_flags

__all__ = ["CgroupError", "Manager", "detect", "load", "manager_for", "merge_resources",
           "resources_from_update_flags"]


def detect() -> str:
    """"v2" when /sys/fs/cgroup is cgroup2 (unified); otherwise "v1" (also for hybrid)."""
    return "v2" if _paths.mode(_paths.host_mounts()) == "v2" else "v1"


def manager_for(cgroups_path: str | None, container_id: str, *,
                systemd: bool = False) -> Manager:
    """runc's fs driver paths: absolute cgroupsPath from each hierarchy's root, relative
    (and empty: the container id) under our own cgroup (on v2, under its parent)."""
    if systemd:
        raise ConfigError("systemd cgroup driver is not supported")
    if cgroups_path is not None and not isinstance(cgroups_path, str):
        raise ConfigError("linux.cgroupsPath must be a string")
    inner = _paths.inner_path(cgroups_path, container_id)
    if inner in ("", ".", "/"):
        raise ConfigError(f"invalid cgroupsPath {cgroups_path!r}: it names the root cgroup")
    mounts = _paths.host_mounts()
    own = _paths.parse_proc_cgroup(_paths.read_text(_paths.PROC_CGROUP))
    if _paths.mode(mounts) == "v2":
        from dockyard.runtime.linux.cgroups import v2

        mnt = _paths.unified_mountpoint(mounts) or _paths.DEFAULT_ROOT
        return v2.Manager(_paths.v2_path(mnt, own.get("", "/"), inner))
    from dockyard.runtime.linux.cgroups import v1

    found = _paths.v1_paths(mounts, own, inner)
    if "devices" not in found:
        # Without the devices controller the container could open any device node.
        raise ConfigError("cgroup: devices subsystem is not mounted")
    return v1.Manager(found)


def load(paths: dict) -> Manager:
    """Re-create the Manager whose .paths were saved (v2: {"": dir})."""
    if not isinstance(paths, dict) or not paths:
        raise ConfigError("no cgroup paths recorded for this container")
    if "" in paths:
        from dockyard.runtime.linux.cgroups import v2

        return v2.Manager(paths[""])
    from dockyard.runtime.linux.cgroups import v1

    return v1.Manager(paths)
