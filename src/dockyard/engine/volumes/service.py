"""VolumeService: named and anonymous volumes (the local driver), and the mount points a
container gets, with their reference counts.

A container's mount points are planned (mountpoints.plan), then `prepare`d at create: volumes
made where missing, bind sources made for -v, and a new volume that is empty receives what the
image has at its destination (Docker's copy-up). The containers service keeps the prepared
points in its own record and hands them back with `restore` when the engine starts again, so
that "in use" survives a restart. `release` drops a container's references (and its
anonymous volumes, for `docker rm -v`).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from dockyard.engine.errors import Conflict, InvalidParameter, NotFound
from dockyard.engine.volumes.local import LocalDriver
from dockyard.engine.volumes.mountpoints import MountPoint, _valid_volume_name

VOLUME_FILTERS = {"dangling", "driver", "label", "name"}


class VolumeService:
    def __init__(self, daemon: Any) -> None:
        self.daemon = daemon
        self.driver = LocalDriver(Path(daemon.config.data_root) / "volumes")
        self.refs: dict[str, set[str]] = {}
        self.lock = asyncio.Lock()

    async def start(self) -> None:
        pass

    async def close(self, *, stop_containers: bool = False) -> None:
        pass

    # -- documents ------------------------------------------------------------------------

    def _doc(self, meta: Mapping[str, Any], size: bool = False) -> dict[str, Any]:
        name = meta["Name"]
        doc: dict[str, Any] = {"CreatedAt": meta.get("CreatedAt", ""), "Driver": "local",
                               "Labels": meta.get("Labels") or {},
                               "Mountpoint": str(self.driver.data(name)), "Name": name,
                               "Options": meta.get("Options") or {}, "Scope": "local"}
        if meta.get("Anonymous"):
            doc["Labels"] = {**doc["Labels"], "com.docker.volume.anonymous": ""}
        if size:
            doc["UsageData"] = {"Size": self.driver.usage(name),
                                "RefCount": len(self.refs.get(name, ()))}
        return doc

    def _publish(self, action: str, name: str, **attrs: str) -> None:
        self.daemon.events.publish("volume", action, name, {"driver": "local", **attrs})

    # -- the API's operations ---------------------------------------------------------------

    async def create(self, name: str = "", driver: str = "local",
                     options: Mapping[str, str] | None = None,
                     labels: Mapping[str, str] | None = None) -> dict[str, Any]:
        if driver not in ("", "local"):
            raise NotFound(f"error looking up volume plugin {driver}: plugin \"{driver}\" "
                           "not found")
        for what, m in (("DriverOpts", options), ("Labels", labels)):
            if m is not None and (not isinstance(m, Mapping)
                                  or not all(isinstance(v, str) for v in m.values())):
                raise InvalidParameter(f"invalid {what}: a map of strings")
        anonymous = not name
        name = name or uuid.uuid4().hex + uuid.uuid4().hex
        if not _valid_volume_name(name):
            raise InvalidParameter(f"create {name}: \"{name}\" includes invalid characters for "
                                   "a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are "
                                   "allowed. If you intended to pass a host directory, use "
                                   "absolute path")
        async with self.lock:
            try:
                return self._doc(self.driver.read(name))
            except NotFound:
                pass
            meta = await asyncio.to_thread(self.driver.create, name, options or {},
                                           labels or {}, anonymous)
        self._publish("create", name)
        return self._doc(meta)

    async def inspect(self, name: str) -> dict[str, Any]:
        return self._doc(self.driver.read(name))

    async def list(self, filters: Mapping[str, list[str]]) -> list[dict[str, Any]]:
        for key in filters:
            if key not in VOLUME_FILTERS:
                raise InvalidParameter(f"invalid filter '{key}'")
        out = []
        for name in self.driver.names():
            try:
                meta = self.driver.read(name)
            except NotFound:
                continue
            if _matches(meta, filters, in_use=bool(self.refs.get(name))):
                out.append(self._doc(meta))
        return out

    async def remove(self, name: str, force: bool = False) -> None:
        async with self.lock:
            users = self.refs.get(name)
            if users:
                raise Conflict(f"remove {name}: volume is in use - [{', '.join(sorted(users))}]")
            try:
                await asyncio.to_thread(self.driver.remove, name)
            except NotFound:
                if force:
                    return
                raise
        self._publish("destroy", name)

    async def prune(self, filters: Mapping[str, list[str]]) -> dict[str, Any]:
        everything = "true" in (filters.get("all") or [])
        rest = {k: v for k, v in filters.items() if k != "all"}
        for key in rest:
            if key not in ("label", "label!"):
                raise InvalidParameter(f"invalid filter '{key}'")
        deleted, reclaimed = [], 0
        for name in self.driver.names():
            try:
                meta = self.driver.read(name)
            except NotFound:
                continue
            if self.refs.get(name) or not (everything or meta.get("Anonymous")):
                continue
            if not _labels_match(meta.get("Labels") or {}, rest):
                continue
            size = self.driver.usage(name)
            try:
                await self.remove(name)
            except (Conflict, NotFound):
                continue
            deleted.append(name)
            reclaimed += size
        return {"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed}

    async def usage(self) -> list[dict[str, Any]]:
        return [self._doc(self.driver.read(n), size=True) for n in self.driver.names()]

    # -- containers' mount points ---------------------------------------------------------

    async def prepare(self, cid: str, points: list[MountPoint],
                      image_path: Callable[[str], Path | None] | None = None) -> None:
        """Make what `points` need and take references for `cid`; fills each point's
        `path`. `image_path(destination)`, when given, is where the image's content for that
        destination can be read (a mounted view of the container's rootfs): a new or empty
        volume receives a copy of it."""
        for mp in points:
            if mp.type == "bind":
                if not os.path.exists(mp.source):
                    if not mp.create_source:
                        raise InvalidParameter(f"invalid mount config for type \"bind\": bind "
                                               f"source path does not exist: {mp.source}")
                    os.makedirs(mp.source, mode=0o755, exist_ok=True)
                mp.path = mp.source
            elif mp.type == "volume":
                doc = await self.create(mp.source, "local", mp.driver_options,
                                        mp.volume_labels)
                if not mp.source:
                    mp.source, mp.created_anonymous = doc["Name"], True
                mp.path = doc["Mountpoint"]
                self.refs.setdefault(mp.source, set()).add(cid)
                await asyncio.to_thread(self.driver.mount, mp.source)
                if mp.copy and image_path is not None:
                    src = image_path(mp.destination)
                    if src is not None:
                        await asyncio.to_thread(copy_up, src, Path(mp.path))

    def restore(self, cid: str, points: Iterable[MountPoint]) -> None:
        for mp in points:
            if mp.type == "volume" and mp.source:
                self.refs.setdefault(mp.source, set()).add(cid)

    async def release(self, cid: str, points: Iterable[MountPoint],
                      remove_anonymous: bool = False) -> None:
        for mp in points:
            if mp.type != "volume" or not mp.source:
                continue
            users = self.refs.get(mp.source)
            if users is not None:
                users.discard(cid)
                if not users:
                    del self.refs[mp.source]
                    await asyncio.to_thread(self.driver.unmount, mp.source)
            if remove_anonymous and mp.created_anonymous:
                try:
                    await self.remove(mp.source)
                except (Conflict, NotFound):
                    pass

    async def volume_users(self, name: str) -> list[str]:
        return sorted(self.refs.get(name, ()))


def copy_up(src: Path, dest: Path) -> None:
    """The image's content at a volume's destination into the volume, if the volume is
    empty (as Docker does it: owners, modes, links and all; the volume directory takes the
    source directory's owner and mode)."""
    if not src.is_dir() or src.is_symlink() or any(dest.iterdir()):
        return
    done = subprocess.run(["cp", "-a", "--", f"{src}/.", f"{dest}/"], capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise InvalidParameter(f"copying the image's {src.name} into the volume: "
                               f"{done.stderr.strip()}")
    st = src.stat()
    os.chown(dest, st.st_uid, st.st_gid)
    os.chmod(dest, st.st_mode & 0o7777)


def _labels_match(labels: Mapping[str, str], filters: Mapping[str, list[str]]) -> bool:
    for want in filters.get("label", []):
        k, sep, v = want.partition("=")
        if k not in labels or (sep and labels[k] != v):
            return False
    for want in filters.get("label!", []):
        k, sep, v = want.partition("=")
        if k in labels and (not sep or labels[k] == v):
            return False
    return True


def _matches(meta: Mapping[str, Any], filters: Mapping[str, list[str]], in_use: bool) -> bool:
    if "name" in filters and not any(v in meta["Name"] for v in filters["name"]):
        return False
    if "driver" in filters and "local" not in filters["driver"]:
        return False
    if "dangling" in filters:
        want = filters["dangling"][0].lower() in ("1", "true")
        if want == in_use:
            return False
    return _labels_match(meta.get("Labels") or {}, filters)
