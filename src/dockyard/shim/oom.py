"""OOM notices for a container on cgroup v1: an eventfd registered on memory.oom_control.

    fd = eventfd();  write "<fd> <memory.oom_control fd>" to cgroup.event_control

The kernel signals the eventfd on each OOM in the cgroup, and once more when the cgroup is
removed; the oom_kill counter (or under_oom) in memory.oom_control tells the two apart. A
host with only cgroup v2 gets no notices here (memory.events would need inotify).
"""

from __future__ import annotations

import os

from dockyard.shim.loop import Loop

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


def memory_cgroup(pid: int) -> str | None:
    """The directory of `pid`'s cgroup v1 memory controller, or None."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = f.read().splitlines()
        with open("/proc/self/mountinfo") as f:
            mounts = f.read().splitlines()
    except OSError:
        return None
    rel = next((line.split(":", 2)[2] for line in lines
                if "memory" in line.split(":", 2)[1].split(",")), None)
    if rel is None:
        return None
    for m in mounts:
        fields = m.split(" ")
        try:
            sep = fields.index("-")
        except ValueError:
            continue
        if fields[sep + 1] != "cgroup" or "memory" not in fields[sep + 3].split(","):
            continue
        root, point = fields[3], fields[4]
        if root != "/" and rel.startswith(root):
            rel = rel[len(root):] or "/"
        return point + rel if rel != "/" else point
    return None


def _counters(fd: int) -> tuple[int, int] | None:
    try:
        text = os.pread(fd, 4096, 0).decode()
    except OSError:
        return None
    values = dict(line.split(" ", 1) for line in text.splitlines() if " " in line)
    try:
        return int(values.get("under_oom", "0")), int(values.get("oom_kill", "0"))
    except ValueError:
        return None


class OomWatch:
    def __init__(self, loop: Loop, cgroup: str, on_oom: Callable[[], None]) -> None:
        self.loop, self.cgroup, self.on_oom = loop, cgroup, on_oom
        self.efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self.cfd = -1
        try:
            self.cfd = os.open(os.path.join(cgroup, "memory.oom_control"),
                               os.O_RDONLY | os.O_CLOEXEC)
            with open(os.path.join(cgroup, "cgroup.event_control"), "w") as f:
                f.write(f"{self.efd} {self.cfd}")
        except OSError:
            self.close()
            raise
        under, self.kills = _counters(self.cfd) or (0, 0)
        self.under = bool(under)
        loop.watch_reader(self.efd, self.check)

    def check(self) -> None:
        """Publish an OOM the counters show and we have not told yet. The loop calls it when
        the eventfd is ready; the service also calls it when the init exits, since the
        notice may come after the exit it caused."""
        if self.efd < 0:
            return
        try:
            os.eventfd_read(self.efd)
        except BlockingIOError:
            pass
        counters = _counters(self.cfd)
        if counters is None or not os.path.isdir(self.cgroup):
            self.close()  # the cgroup is gone
            return
        under, kills = counters
        if kills > self.kills or (under and not self.under):
            self.on_oom()
        self.under, self.kills = bool(under), kills

    def close(self) -> None:
        if self.efd >= 0:
            self.loop.forget(self.efd)
            os.close(self.efd)
            self.efd = -1
        if self.cfd >= 0:
            os.close(self.cfd)
            self.cfd = -1


def watch(loop: Loop, pid: int, on_oom: Callable[[], None]) -> OomWatch | None:
    cgroup = memory_cgroup(pid)
    if cgroup is None or not os.path.exists(os.path.join(cgroup, "cgroup.event_control")):
        return None
    try:
        return OomWatch(loop, cgroup, on_oom)
    except OSError:
        return None
