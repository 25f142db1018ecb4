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


def image_path(rootfs_mounts: list[Any]) -> Callable[[str], Path | None]:
    """Where the image has a destination's content (the topmost layer that has it)."""
    dirs = layer_dirs(rootfs_mounts)

    def find(destination: str) -> Path | None:
        for d in dirs:
            p = Path(d) / destination.lstrip("/")
            if os.path.lexists(p):
                return p if p.is_dir() and not p.is_symlink() else None
        return None

    return find


async def prepare(daemon: Any, c: Container, rootfs_mounts: list[Any]) -> None:
    volumes = getattr(daemon, "volumes", None)
    if volumes is None:
        return
    from dockyard.engine.volumes.mountpoints import plan

    points = plan(c.host_config, None, c.config.get("Volumes"))
    await volumes.prepare(c.id, points, image_path(rootfs_mounts))
    c.mount_points = [mp.record() for mp in points]


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
