"""A container's mount points (binds, volumes, tmpfs) through the volumes service: planned and
prepared at create, their references taken back at engine start and dropped at removal, and
turned into the spec's mounts at each start. Without a volumes service, nothing is mounted.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dockyard.engine.containers.model import Container


def _points(c: Container) -> list[Any]:
    from dockyard.engine.volumes.mountpoints import MountPoint

    return [MountPoint.from_record(r) for r in c.mount_points]


def layer_dirs(rootfs_mounts: list[Any]) -> list[str]:
    """The directories of a snapshot's mounts, top first (overlay upper, then lowers; a
    copying snapshot's bind source), read as the rootfs without mounting it."""
    dirs: list[str] = []
    for m in rootfs_mounts:
        if m.type == "overlay":
            for opt in m.options:
                key, _, value = opt.partition("=")
                if key == "upperdir":
                    dirs.insert(0, value)
                elif key == "lowerdir":
                    dirs += value.split(":")
        elif m.type in ("bind", "rbind") or "bind" in m.options or "rbind" in m.options:
            dirs.append(m.source)
    return dirs


def _image_dir(root: str) -> Callable[[str], Path | None]:
    """Where, in a mounted view of the image at `root`, a destination's directory is; None
    when there is none, or when its path leads out of the view (a symlink in the image)."""
    real_root = os.path.realpath(root)

    def find(destination: str) -> Path | None:
        p = Path(root) / destination.lstrip("/")
        real = os.path.realpath(p)
        if not real.startswith(real_root + "/") or not os.path.isdir(real):
            return None
        return Path(real)

    return find


async def prepare(daemon: Any, c: Container, rootfs_mounts: list[Any]) -> None:
    volumes = getattr(daemon, "volumes", None)
    if volumes is None:
        return
    from dockyard.engine.volumes.mountpoints import plan

    points = plan(c.host_config, None, c.config.get("Volumes"))
    points += await volumes_from(daemon, c, {mp.destination for mp in points})
    if not any(mp.type == "volume" and mp.copy for mp in points):
        await volumes.prepare(c.id, points)
    else:  # a new volume gets what the image has there: read it through a view of all layers
        from dockyard.engine.containers.rootview import mounted, view_mounts

        async with mounted(daemon, view_mounts(rootfs_mounts)) as root:
            await volumes.prepare(c.id, points, _image_dir(root))
    c.mount_points = [mp.record() for mp in points]


async def volumes_from(daemon: Any, c: Container, taken: set[str]) -> list[Any]:
    """The binds and volumes of each --volumes-from container ("name[:ro|rw]"), at the
    destinations the container's own mounts leave free; shared, never copied into."""
    from dockyard.engine.errors import InvalidParameter

    out: list[Any] = []
    for entry in c.host_config.get("VolumesFrom") or []:
        name, _, mode = str(entry).partition(":")
        if mode not in ("", "ro", "rw"):
            raise InvalidParameter(f"invalid mode for volumes-from: {mode}")
        source = await daemon.containers.get(name)
        for mp in _points(source) if source.mount_points else []:
            if mp.type == "tmpfs" or mp.destination in taken:
                continue
            if mode:
                mp.rw = mode == "rw"
            mp.copy, mp.created_anonymous = False, False
            taken.add(mp.destination)
            out.append(mp)
    return out


def restore(daemon: Any, c: Container) -> None:
    volumes = getattr(daemon, "volumes", None)
    if volumes is not None and c.mount_points:
        volumes.restore(c.id, _points(c))


async def release(daemon: Any, c: Container, remove_anonymous: bool) -> None:
    volumes = getattr(daemon, "volumes", None)
    if volumes is not None and c.mount_points:
        await volumes.release(c.id, _points(c), remove_anonymous)


def oci(c: Container) -> list[dict[str, Any]]:
    return [mp.oci() for mp in _points(c)] if c.mount_points else []


def inspect(c: Container) -> list[dict[str, Any]]:
    return [mp.inspect() for mp in _points(c)] if c.mount_points else []
