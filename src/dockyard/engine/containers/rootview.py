"""Where the engine reaches a container's files, with no help from the shim:

    running (or paused)   /proc/<pid>/root: the container's own view, its volumes, binds
                          and tmpfs mounts included (what `docker cp` sees); the process
                          checked to be the container's first (open_live)
    read-only view        the snapshot's directories, all as overlay lower layers
                          (upper first), mounted read-only in a private directory: never
                          in conflict with the live overlay of a running container (export)
    read-write            a stopped container's snapshot mounted as the shim would mount it,
                          under the container's lock so that no start mounts it meanwhile
    + mount points        for a stopped container (docker cp), its binds and volumes bound
                          on their destinations in either (bind_mount_points)

Mounts go in <data-root>/tmp/rootfs-*/ and are undone (detached) when the block ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockyard.engine.containers.model import Container
from dockyard.engine.containers.mounts import layer_dirs
from dockyard.engine.containers.runtime import Runtime
from dockyard.engine.errors import EngineError
from dockyard.image.errors import InvalidArgument
from dockyard.image.layers.safepath import clean


@dataclass(frozen=True)
class _Mount:
    type: str
    source: str
    options: tuple[str, ...] = ()


def view_mounts(rootfs: list[Any]) -> list[_Mount]:
    """A read-only mount of what `rootfs` (the snapshot's mounts) shows."""
    dirs = layer_dirs(rootfs)
    if len(dirs) == 1:
        return [_Mount("bind", dirs[0], ("rbind", "ro"))]
    return [_Mount("overlay", "overlay", ("ro", "lowerdir=" + ":".join(dirs)))]


def volatile(mounts: list[Any]) -> list[Any]:
    """`mounts` with a read-write overlay told not to sync (overlayfs's `volatile`).

    Unmounting an overlay makes the kernel sync the whole file system under its upper dir:
    every dirty page of it, not just the layer's, some 20 ms for 10 MB here. A builder's
    step mounts a snapshot only to write its files and commit them: they then need to
    outlive a power cut no more than the files of a layer unpacked from a pull (written
    without a sync either), and the layer's blob is synced in the content store. The upper
    dir so mounted must not be mounted read-write again (overlayfs refuses): a committed
    snapshot is only ever a lower dir, a removed one is gone."""
    out: list[Any] = []
    for m in mounts:
        options = tuple(m.options)
        if m.type == "overlay" and any(o.startswith("upperdir=") for o in options) and \
                "volatile" not in options:
            if hasattr(m, "CopyFrom"):  # the supervisor's Mount message, for a task
                m, original = type(m)(), m
                m.CopyFrom(original)
                m.options.append("volatile")
            else:
                m = _Mount(m.type, m.source, (*options, "volatile"))
        out.append(m)
    return out


def _scratch(daemon: Any) -> str:
    base = Path(daemon.data_root) / "tmp"
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    return tempfile.mkdtemp(prefix="rootfs-", dir=base)


@contextlib.asynccontextmanager
async def mounted(daemon: Any, mounts: list[Any]) -> AsyncIterator[str]:
    from dockyard.mounting import mount_all, unmount_all
    from dockyard.runtime.linux.syscalls import MNT_DETACH

    target = await asyncio.to_thread(_scratch, daemon)
    try:
        await asyncio.to_thread(mount_all, mounts, target)
        try:
            yield target
        finally:
            await asyncio.to_thread(unmount_all, target, MNT_DETACH)
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(target)


def open_live(c: Container) -> int | None:
    """A descriptor of a running container's root directory, None for one that does not
    run. The process is checked to be the container's (its cgroup names the container) through
    a descriptor of its /proc directory, and the root opened from that same descriptor: a
    PID reused by a host process in between cannot hand us the host's "/"."""
    pid = c.state.pid
    if not (c.state.running and not c.state.restarting and pid > 0):
        return None
    try:
        proc = os.open(f"/proc/{pid}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fd = os.open("cgroup", os.O_RDONLY | os.O_CLOEXEC, dir_fd=proc)
        with os.fdopen(fd, "rb") as f:
            if c.id.encode() not in f.read(1 << 16):
                return None
        return os.open("root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=proc)
    except OSError:
        return None
    finally:
        os.close(proc)


@contextlib.asynccontextmanager
async def _live(c: Container) -> AsyncIterator[str | None]:
    fd = await asyncio.to_thread(open_live, c)
    try:
        yield f"/proc/self/fd/{fd}" if fd is not None else None
    finally:
        if fd is not None:
            os.close(fd)


def mount_points(c: Container, *, everything: bool = False) -> list[Any]:
    """The container's binds and volumes, outermost first (with `everything`, its tmpfs
    mounts too: they hold nothing while it is stopped)."""
    from dockyard.engine.volumes.mountpoints import MountPoint

    points = [MountPoint.from_record(r) for r in c.mount_points]
    if not everything:
        points = [p for p in points if p.type != "tmpfs" and p.path]
    return sorted(points, key=lambda p: len(clean(p.destination)))


def bind_mount_points(root: str, points: list[Any], *, read_only: bool) -> None:
    """Each mount point's host path bound on its destination inside `root` (already
    mounted), the destination resolved inside `root` and mounted on by descriptor, so that
    a symlink the container left cannot send the mount elsewhere. A missing destination (a
    container never started) is made in a writable root (as a start would make it) and
    skipped in a read-only one; a file's bind is skipped."""
    from dockyard.image.layers.safepath import Root
    from dockyard.runtime.linux.syscalls import LINUX, MS_BIND, MS_RDONLY, MS_REC, MS_REMOUNT

    for p in points:
        tree = Root(root)
        try:
            try:
                found = tree.dir(clean(p.destination), not read_only)
            except (InvalidArgument, OSError):
                found = None
            if found is None:
                continue
            LINUX.mount(p.path, f"/proc/self/fd/{found[0]}", None, MS_BIND | MS_REC, None)
            if read_only or not p.rw:  # on the new mount: the name again, from its parent
                dest = clean(p.destination)
                parent = tree.dir(dest[:-1], False) if dest else None
                if parent is None:
                    raise OSError(errno.ENOENT, "mount point gone", p.destination)
                fd = os.open(dest[-1], os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW |
                             os.O_CLOEXEC, dir_fd=parent[0])
                try:
                    LINUX.mount(None, f"/proc/self/fd/{fd}", None,
                                MS_REMOUNT | MS_BIND | MS_RDONLY, None)
                finally:
                    os.close(fd)
        finally:
            tree.close()


@contextlib.asynccontextmanager
async def read_view(daemon: Any, c: Container, *, volumes: bool = False
                    ) -> AsyncIterator[str]:
    """The read-only view of the container's snapshot (with its binds and volumes, also
    read-only, if `volumes`)."""
    rootfs = await Runtime(daemon.supervisor).mounts(c.id)
    async with mounted(daemon, view_mounts(rootfs)) as path:
        if volumes:
            await asyncio.to_thread(bind_mount_points, path, mount_points(c), read_only=True)
        yield path


@contextlib.asynccontextmanager
async def readable(daemon: Any, c: Container) -> AsyncIterator[str]:
    """The container's root for reading: its own while it runs, else the snapshot's view
    with its volumes."""
    async with _live(c) as live:
        if live is not None:
            yield live
            return
    async with read_view(daemon, c, volumes=True) as path:
        yield path


@contextlib.asynccontextmanager
async def writable(daemon: Any, c: Container) -> AsyncIterator[str]:
    """The container's root for writing: its own while it runs, else its snapshot mounted
    read-write with its volumes, under the container's lock (no start while we write)."""
    async with _live(c) as live:
        if live is not None:
            yield live
            return
    async with c.lock:
        async with _live(c) as live:
            if live is not None:
                yield live
                return
        rootfs = await Runtime(daemon.supervisor).mounts(c.id)
        async with mounted(daemon, rootfs) as path:
            await asyncio.to_thread(bind_mount_points, path, mount_points(c), read_only=False)
            yield path


def check_writable(c: Container, path: str) -> None:
    """dockerd's checks before an extraction: a path in a read-only volume, or outside any
    volume of a container with a read-only rootfs, is refused."""
    parts = clean(path)
    in_volume = False
    for p in reversed(mount_points(c, everything=True)):
        dest = clean(p.destination)
        if parts[:len(dest)] == dest:
            if not p.rw:
                raise EngineError("mounted volume is marked read-only")
            in_volume = True
            break
    if not in_volume and c.host_config.get("ReadonlyRootfs"):
        raise EngineError("container rootfs is marked read-only")
