"""The container's rootfs: the mounts create is given, performed on <bundle>/rootfs.

Mounts are performed by dockyard.mounting.mount_all, the one place that does; it imports
nothing beyond the runtime's syscall and option modules, so the shim does it in-process (a
forked child importing the snapshot types cost 20 ms and 3.5 MB here before).

Unmounting is umount(2) until the target is no longer a mount point (mount.unmount_all's
loop), done here directly: it needs nothing but the syscall.
"""

from __future__ import annotations

import errno
import time

from dockyard.shim.protocol import ShimError

TYPE_CHECKING = False  # not from typing, nor collections.abc at run time: memory
if TYPE_CHECKING:
    pass

MNT_DETACH = 2


def check(mounts: object) -> list[dict]:
    if not isinstance(mounts, list) or not all(
            isinstance(m, dict) and isinstance(m.get("type"), str)
            and isinstance(m.get("source", ""), str)
            and isinstance(m.get("options", []), list) for m in mounts):
        raise ShimError("invalid_argument",
                        "rootfs must be a list of {type, source, options} mounts")
    return mounts


class _Mount:
    """A mount as dockyard.mounting wants it (type, source, options), without the snapshot
    types' imports."""

    __slots__ = ("options", "source", "type")

    def __init__(self, m: dict) -> None:
        self.type, self.source = m["type"], m.get("source", "")
        self.options = tuple(m.get("options") or ())


def mount(mounts: list[dict], target: str) -> None:
    """Mount `mounts` on `target`; ShimError with the reason when one fails (those done are
    undone by mount_all)."""
    from dockyard.mounting import mount_all

    try:
        mount_all([_Mount(m) for m in mounts], target)
    except Exception as e:
        raise ShimError("internal", f"failed to mount rootfs component: {e}") from None


def unmount(target: str) -> int:
    """Unmount everything stacked on `target`; how many. EBUSY is retried briefly (the
    container's last processes may still be dying), then the mount is detached."""
    from dockyard.runtime.linux.syscalls import LINUX

    count = 0
    busy_until = time.monotonic() + 1.0
    while True:
        try:
            LINUX.umount(target, 0)
        except OSError as e:
            if e.errno in (errno.EINVAL, errno.ENOENT):
                return count
            if e.errno != errno.EBUSY:
                raise
            if time.monotonic() < busy_until:
                time.sleep(0.01)
                continue
            LINUX.umount(target, MNT_DETACH)
        count += 1
