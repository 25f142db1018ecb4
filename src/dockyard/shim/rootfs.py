"""The container's rootfs: the mounts create is given, performed on <bundle>/rootfs.

Mounts are performed by dockyard.image.snapshots.mount.mount_all, the one place that does, in
a forked child: importing it pulls in dataclasses, enum and datetime (about 3.5 MB of resident
memory and 18 ms), which a shim that lives as long as its container should not carry. The
child reports a failure on a pipe and exits; the mounts stay, since it shares our mount
namespace.

Unmounting is umount(2) until the target is no longer a mount point (mount.unmount_all's
loop), done here directly: it needs nothing but the syscall.
"""

from __future__ import annotations

import errno
import os
import time

from dockyard.shim.loop import Loop
from dockyard.shim.protocol import ShimError

TYPE_CHECKING = False  # not from typing, nor collections.abc at run time: memory
if TYPE_CHECKING:
    from collections.abc import Generator

MNT_DETACH = 2


def check(mounts: object) -> list[dict]:
    if not isinstance(mounts, list) or not all(
            isinstance(m, dict) and isinstance(m.get("type"), str)
            and isinstance(m.get("source", ""), str)
            and isinstance(m.get("options", []), list) for m in mounts):
        raise ShimError("invalid_argument",
                        "rootfs must be a list of {type, source, options} mounts")
    return mounts


def mount(loop: Loop, mounts: list[dict], target: str) -> Generator:
    """Mount `mounts` on `target` in a forked child; ShimError with its reason on failure."""
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # the child: no return from here
        code = 0
        try:
            os.close(r)
            from dockyard.image.snapshots import Mount
            from dockyard.image.snapshots.mount import mount_all

            mount_all([Mount.from_json(m) for m in mounts], target)
        except BaseException as e:
            code = 1
            try:
                os.write(w, f"{e}".encode()[:4000] or type(e).__name__.encode())
            except BaseException:
                pass
        os._exit(code)
    os.close(w)
    try:
        code = yield loop.child_exit(pid)
        reason = os.read(r, 4096).decode(errors="replace")
    finally:
        os.close(r)
    if code != 0:
        raise ShimError("internal", f"failed to mount rootfs component: {reason or code}")


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
