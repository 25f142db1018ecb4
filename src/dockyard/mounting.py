"""The one place that performs the mounts snapshotters return (containerd's mount.All), for
the image library, the supervisor and the shim alike.

    bind     mount(source, target, MS_BIND [| MS_REC for "rbind"]), then, for "ro" (or any
             other flag), a remount with MS_REMOUNT | MS_BIND | flags: a bind mount ignores
             MS_RDONLY on its first call
    overlay  mount("overlay", target, "overlay", flags, "lowerdir=...,upperdir=...,...")
    other    mount(source, target, type, flags, data)

Options are OCI options, parsed as the runtime parses them (runtime/linux/mountopts.py).

mount(2) copies at most one page (4 KiB, NUL included) of data, and a long chain of lower
layers does not fit: 128 layers under /var/lib/dockyard/... take some 10 KiB. containerd then
chdirs, in a forked helper, to the layers' common directory and passes relative paths. A
chdir is process-wide and a fork of a threaded daemon is fragile, so here each lower
directory is opened O_PATH instead and named /proc/self/fd/<n>: about 19 bytes a layer, which
fits about 200 layers (the kernel's own limit is 500). The kernel resolves those names when it
mounts, so the descriptors are closed right after; /proc/self/mountinfo then shows the
/proc/self/fd names. Beyond that, InvalidArgument says how many layers and bytes.
"""

from __future__ import annotations

import errno
import os

from dockyard.image.errors import InvalidArgument
from dockyard.runtime.linux import mountopts
from dockyard.runtime.linux.syscalls import (
    LINUX,
    MNT_DETACH,
    MS_BIND,
    MS_REC,
    MS_REMOUNT,
    Syscalls,
)

# Types only: the shim mounts a container's rootfs with this module, and typing, pathlib or
# the snapshot types would cost it milliseconds and megabytes. A mount is anything with
# `type`, `source` and `options`.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from contextlib import ExitStack
    from pathlib import Path

    from dockyard.image.snapshots import Mount

MAX_DATA = os.sysconf("SC_PAGE_SIZE") - 1  # mount(2) data, without its NUL


def mount_all(mounts: Sequence[Mount], target: str | Path, sys: Syscalls = LINUX) -> None:
    """Perform `mounts` in order on `target`, each over the last. If one fails, those done
    are undone before the error is raised, so a failure leaves nothing mounted."""
    done = 0
    try:
        for m in mounts:
            _mount_one(m, str(target), sys)
            done += 1
    except BaseException:
        for _ in range(done):
            try:
                sys.umount(str(target), MNT_DETACH)
            except OSError:
                pass
        raise


def unmount_all(target: str | Path, flags: int = 0, sys: Syscalls = LINUX) -> int:
    """Unmount everything stacked on `target` (containerd's UnmountAll); returns how many.
    A target that is not (or no longer) a mount point is not an error."""
    count = 0
    while True:
        try:
            sys.umount(str(target), flags)
        except OSError as e:
            if e.errno in (errno.EINVAL, errno.ENOENT):
                return count
            raise
        count += 1


def _mount_one(m: Mount, target: str, sys: Syscalls) -> None:
    """One mount and what completes it (the read-only remount of a bind, propagation); if a
    later step fails, the first is undone here, since mount_all counts only whole mounts."""
    flags, _clear, propagation, data, _extra = mountopts.parse(list(m.options))
    bind = m.type == "bind" or bool(flags & MS_BIND)
    rest = flags & ~(MS_BIND | MS_REC) if bind else 0
    if bind:
        sys.mount(m.source, target, None, MS_BIND | (flags & MS_REC), None)
    elif m.type == "overlay" and len(data.encode()) > MAX_DATA:
        from contextlib import ExitStack

        with ExitStack() as fds:
            short = compact_lowerdirs(m.options, fds, target)
            data = mountopts.parse(list(short))[3]
            sys.mount(m.source or "overlay", target, "overlay", flags, data)
    else:
        sys.mount(m.source or m.type, target, m.type, flags, data or None)
    try:
        if rest:
            sys.mount(None, target, None, MS_REMOUNT | MS_BIND | rest, None)
        for p in propagation:
            sys.mount(None, target, None, p, None)
    except BaseException:
        try:
            sys.umount(target, MNT_DETACH)
        except OSError:
            pass
        raise


def compact_lowerdirs(options: Sequence[str], fds: ExitStack, target: str) -> tuple[str, ...]:
    """`options` with each lowerdir named /proc/self/fd/<n> of a descriptor opened O_PATH
    (closed when `fds` closes); InvalidArgument if the data is still more than a page."""
    out: list[str] = []
    layers = 0
    for option in options:
        if option.startswith("lowerdir=") and "\\" not in option:
            names = []
            for path in option[len("lowerdir="):].split(":"):
                fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                fds.callback(os.close, fd)
                names.append(f"/proc/self/fd/{fd}")
            layers = len(names)
            option = "lowerdir=" + ":".join(names)
        out.append(option)
    size = len(mountopts.parse(out)[3].encode())
    if size > MAX_DATA:
        raise InvalidArgument(
            f"overlay on {target}: {layers or 'its'} lower layers need {size} bytes of mount "
            f"options even as /proc/self/fd names; mount(2) takes at most {MAX_DATA}")
    return tuple(out)
