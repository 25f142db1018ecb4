"""The mounts of a Docker container's spec: Docker's defaults (oci/defaults.go: /proc, /dev,
/dev/pts, /sys, /sys/fs/cgroup, /dev/mqueue, /dev/shm of ShmSize; /sys and the cgroups
read-write only when privileged), docker-init for Init, then the caller's mounts (volumes,
binds, the /etc files, a shared /dev/shm) and HostConfig.Tmpfs, sorted by depth as dockerd
sorts them (stable: same depth keeps the given order). A caller's mount replaces the default
at the same destination; one on /dev replaces every default below /dev.
"""

from __future__ import annotations

import posixpath
import shutil
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dockyard.engine.errors import InvalidParameter

if TYPE_CHECKING:
    from dockyard.engine.containers.spec import SpecInput

DEFAULT_SHM_SIZE = 64 * 1024 * 1024
INIT_IN_CONTAINER = "/sbin/docker-init"
INIT_SEARCH_PATH = ("/usr/local/bin", "/usr/bin", "/usr/local/libexec/docker",
                    "/usr/libexec/docker", "/usr/local/lib/docker", "/usr/lib/docker")

_TMPFS_FLAGS = {  # option -> the flag it sets or clears (one of each pair survives)
    "ro": "rdonly", "rw": "rdonly", "suid": "nosuid", "nosuid": "nosuid", "dev": "nodev",
    "nodev": "nodev", "exec": "noexec", "noexec": "noexec", "sync": "sync", "async": "sync",
    "dirsync": "dirsync", "remount": "remount", "mand": "mand", "nomand": "mand",
    "atime": "noatime", "noatime": "noatime", "diratime": "nodiratime",
    "nodiratime": "nodiratime", "bind": "bind", "rbind": "bind", "relatime": "relatime",
    "norelatime": "relatime", "strictatime": "strictatime", "nostrictatime": "strictatime",
    "private": "propagation", "rprivate": "propagation", "shared": "propagation",
    "rshared": "propagation", "slave": "propagation", "rslave": "propagation",
    "unbindable": "propagation", "runbindable": "propagation",
}
_TMPFS_DATA = frozenset({"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol"})


def init_binary(i: SpecInput) -> str:
    if i.init_path:
        return i.init_path
    for path in (shutil.which("docker-init"),
                 *(shutil.which("docker-init", path=d) for d in INIT_SEARCH_PATH)):
        if path:
            return path
    raise InvalidParameter("--init: no init binary on this host (docker-init was not found "
                           "in PATH nor in " + ", ".join(INIT_SEARCH_PATH) + "); install "
                           "one (tini as docker-init) or set the daemon's init-path")


def default_mounts(i: SpecInput, writable_cgroups: bool = False) -> list[dict[str, Any]]:
    hc = i.host_config
    privileged = bool(hc.get("Privileged"))
    ro = [] if privileged else ["ro"]
    cgroups_ro = [] if privileged or writable_cgroups else ["ro"]
    out = [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", *ro]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": [*cgroups_ro, "nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
    ]
    ipc = hc.get("IpcMode") or ""
    if ipc in ("", "private", "shareable"):
        size = int(hc.get("ShmSize") or 0) or DEFAULT_SHM_SIZE
        out.append({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                    "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={size}"]})
    if hc.get("Init"):
        out.append({"destination": INIT_IN_CONTAINER, "type": "bind",
                    "source": init_binary(i), "options": ["bind", "ro"]})
    return out


def tmpfs_mounts(tmpfs: Mapping[str, str] | None) -> list[dict[str, Any]]:
    out = []
    for dest, data in (tmpfs or {}).items():
        if not posixpath.isabs(dest):
            raise InvalidParameter(f'invalid mount config for type "tmpfs": invalid mount '
                                   f"path: '{dest}' mount path must be absolute")
        options = ["noexec", "nosuid", "nodev", "rprivate", *(data.split(",") if data else [])]
        out.append({"destination": dest, "type": "tmpfs", "source": "tmpfs",
                    "options": merge_tmpfs_options(options)})
    return out


def merge_tmpfs_options(options: Sequence[str]) -> list[str]:
    """Later options win over earlier ones for the same flag or key, order kept otherwise."""
    flags: set[str] = set()
    keys: set[str] = set()
    merged: list[str] = []
    for option in reversed(options):
        if option == "defaults":
            continue
        if option in _TMPFS_FLAGS:
            if _TMPFS_FLAGS[option] not in flags:
                flags.add(_TMPFS_FLAGS[option])
                merged.insert(0, option)
            continue
        key, found, _ = option.partition("=")
        if not found or key not in _TMPFS_DATA:
            raise InvalidParameter(f'Invalid tmpfs option ["{option}"]')
        if key not in keys:
            keys.add(key)
            merged.insert(0, option)
    return merged


def _depth(m: Mapping[str, Any]) -> int:
    return posixpath.normpath(m["destination"]).count("/")


def mounts(i: SpecInput, writable_cgroups: bool = False) -> list[dict[str, Any]]:
    hc = i.host_config
    user = [dict(m) for m in i.mounts]
    if hc.get("IpcMode") == "host" and not any(m["destination"] == "/dev/shm" for m in user):
        user.append({"destination": "/dev/shm", "type": "bind", "source": "/dev/shm",
                     "options": ["rbind", "rprivate"]})
    user += tmpfs_mounts(hc.get("Tmpfs"))
    taken = {posixpath.normpath(m["destination"]) for m in user}
    defaults = [m for m in default_mounts(i, writable_cgroups) if m["destination"] not in taken
                and not ("/dev" in taken and m["destination"].startswith("/dev/"))]
    if hc.get("ReadonlyRootfs"):
        for m in defaults:
            if m["destination"] not in ("/proc", "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev") \
                    and "ro" not in m["options"]:
                m["options"].append("ro")
    return defaults + sorted(user, key=_depth)
