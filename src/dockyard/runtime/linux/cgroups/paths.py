"""Where a container's cgroup lives: runc's fs/fs2 path rules as pure functions.

The host's cgroup mounts come from /proc/self/mountinfo and our own cgroup from
/proc/self/cgroup; both are read once per process and parsed here without touching
anything else.  The layouts we compute::

    cgroup v1 (one hierarchy per controller, or a few co-mounted: "cpu,cpuacct")
      /sys/fs/cgroup/
        cpu/<inner>/            cpu.shares cpu.cfs_quota_us ... cgroup.procs
        cpuacct/<inner>/        cpuacct.usage ...
        memory/<inner>/         memory.limit_in_bytes memory.memsw.limit_in_bytes ...
        devices/<inner>/        devices.allow devices.deny devices.list
        freezer/<inner>/        freezer.state
        pids/<inner>/ blkio/<inner>/ cpuset/<inner>/ systemd/<inner>/ (name=systemd) ...
      paths = {"cpu": ".../cpu/<inner>", "memory": ".../memory/<inner>", ...,
               "name=systemd": ".../systemd/<inner>"}

    cgroup v2 (one tree; controllers switched on per level in cgroup.subtree_control)
      /sys/fs/cgroup/                 cgroup.controllers cgroup.subtree_control (+memory +pids ..)
        <parent>/                     cgroup.subtree_control
          <inner>/                    memory.max pids.max cpu.max cgroup.freeze cgroup.events
      paths = {"": "/sys/fs/cgroup/<inner>"}

<inner> follows runc: an absolute cgroupsPath is taken from each hierarchy's root; a
relative one is joined under the caller's own cgroup (v1: the cgroup of each hierarchy;
v2: the *parent* of our own cgroup, since our own one holds processes and so cannot enable
controllers for children); an empty one is the container id, a relative path.  Every path
is cleaned first so that "../../x" cannot climb out of the hierarchy.
"""

from __future__ import annotations

import os

from dockyard.runtime.linux.mountinfo import unescape_mountinfo

MOUNTINFO = "/proc/self/mountinfo"
PROC_CGROUP = "/proc/self/cgroup"
DEFAULT_ROOT = "/sys/fs/cgroup"

# runc's subsystem order (fs.go); "name=systemd" is joined but never limited.
SUBSYSTEMS = ("cpuset", "devices", "memory", "cpu", "cpuacct", "pids", "blkio", "hugetlb",
              "net_cls", "net_prio", "perf_event", "freezer", "rdma", "name=systemd")


class Mount:
    """One cgroup filesystem mount: where, which part of the hierarchy, which controllers."""

    __slots__ = ("fstype", "mountpoint", "root", "subsystems")

    def __init__(self, mountpoint: str, root: str, fstype: str, subsystems: tuple) -> None:
        self.mountpoint = mountpoint
        self.root = root
        self.fstype = fstype
        self.subsystems = subsystems

    def __repr__(self) -> str:
        return f"Mount({self.mountpoint!r}, {self.root!r}, {self.fstype!r}, {self.subsystems})"


def parse_mountinfo(text: str) -> list[Mount]:
    """The cgroup and cgroup2 mounts of a mountinfo text, in order."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        try:
            sep = fields.index("-")
        except ValueError:
            continue
        if len(fields) < sep + 4:
            continue
        fstype = fields[sep + 1]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        subs: tuple = ()
        if fstype == "cgroup":
            opts = fields[sep + 3].split(",")
            subs = tuple(o for o in opts if o in SUBSYSTEMS or o.startswith("name=")
                         or o in ("misc", "debug"))
        mounts.append(Mount(unescape_mountinfo(fields[4]), unescape_mountinfo(fields[3]),
                            fstype, subs))
    return mounts


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """/proc/<pid>/cgroup -> {controller: path}; co-mounted controllers get one entry each;
    the v2 line ("0::/x") is under the key ""."""
    own: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            own[""] = parts[2]
            continue
        for name in parts[1].split(","):
            own[name] = parts[2]
    return own


def clean_path(path: str | None) -> str:
    """runc's utils.CleanPath: lexical clean; a relative path cannot climb above its base."""
    if not path:
        return ""
    path = os.path.normpath(path)
    if not path.startswith("/"):
        path = os.path.relpath(os.path.normpath("/" + path), "/")
    return os.path.normpath(path)


def inner_path(cgroups_path: str | None, container_id: str) -> str:
    """The part of the path under the hierarchy (absolute) or own cgroup (relative)."""
    return clean_path(cgroups_path) or clean_path(container_id)


def _join(base: str, inner: str) -> str:
    return os.path.normpath(base + "/" + inner.lstrip("/")) if inner != "." else base


def _own_in_mount(m: Mount, own: str) -> str:
    """Our cgroup relative to what this mount shows (it may show a sub-tree, not the root)."""
    if m.root != "/" and (own == m.root or own.startswith(m.root + "/")):
        own = own[len(m.root):] or "/"
    return own


def v1_paths(mounts: list[Mount], own: dict[str, str], inner: str) -> dict[str, str]:
    """{subsystem: directory} for every mounted v1 subsystem we use."""
    first: dict[str, Mount] = {}
    for m in mounts:
        if m.fstype != "cgroup":
            continue
        for s in m.subsystems:
            # Prefer the mounts under /sys/fs/cgroup (a bind mount elsewhere may show less).
            if s not in first or (not first[s].mountpoint.startswith(DEFAULT_ROOT + "/")
                                  and m.mountpoint.startswith(DEFAULT_ROOT + "/")):
                first[s] = m
    paths = {}
    for s in SUBSYSTEMS:
        m = first.get(s)
        if m is None:
            continue
        if inner.startswith("/"):
            paths[s] = _join(m.mountpoint, inner)
        else:
            base = _join(m.mountpoint, _own_in_mount(m, own.get(s, "/")))
            paths[s] = _join(base, inner)
    return paths


def v2_path(mountpoint: str, own: str, inner: str) -> str:
    """The v2 directory: absolute from the mount, relative from our own cgroup's parent."""
    if inner.startswith("/"):
        return _join(mountpoint, inner)
    return _join(_join(mountpoint, os.path.dirname(own or "/")), inner)


def read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return f.read()


_MOUNTS: list[Mount] | None = None


def host_mounts() -> list[Mount]:
    """The cgroup mounts of this process's mount namespace (read once)."""
    global _MOUNTS
    if _MOUNTS is None:
        _MOUNTS = parse_mountinfo(read_text(MOUNTINFO))
    return _MOUNTS


def unified_mountpoint(mounts: list[Mount]) -> str | None:
    """Where cgroup2 is mounted: /sys/fs/cgroup (pure v2) or e.g. /sys/fs/cgroup/unified."""
    v2 = [m.mountpoint for m in mounts if m.fstype == "cgroup2"]
    if DEFAULT_ROOT in v2:
        return DEFAULT_ROOT
    return v2[0] if v2 else None


def mode(mounts: list[Mount]) -> str:
    """"v2" when /sys/fs/cgroup itself is cgroup2, "hybrid" when v1 hierarchies sit next to
    a cgroup2 mount, else "v1"."""
    if any(m.fstype == "cgroup2" and m.mountpoint == DEFAULT_ROOT for m in mounts):
        return "v2"
    has_v1 = any(m.fstype == "cgroup" for m in mounts)
    if not has_v1:
        return "v2" if any(m.fstype == "cgroup2" for m in mounts) else "v1"
    return "hybrid" if any(m.fstype == "cgroup2" for m in mounts) else "v1"
