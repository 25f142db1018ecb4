"""ContainerService: the containers of the engine, found by ID, ID prefix or name; created,
removed, renamed and updated here; run by lifecycle.py.

Create, in the order that a kill -9 can interrupt anywhere (store.py says how each step is
found again at the next start):
    1. the name is reserved (memory only)
    2. the snapshot <id> is prepared on the image's chain ID
    3. <data-root>/containers/<id>/ gets hostconfig.json, hostname, hosts, resolv.conf
    4. config.v2.json is written: the container exists
A start that finds a directory without config.v2.json removes it and its snapshot; a snapshot
with no container is removed too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from dockyard.engine.containers import configs, mounts, names, recovery, runspec
from dockyard.engine.containers.health import HealthMonitor
from dockyard.engine.containers.lifecycle import Lifecycle
from dockyard.engine.containers.model import Container, parse_rfc3339
from dockyard.engine.containers.runtime import Runtime
from dockyard.engine.containers.store import ContainerStore, write_network_files
from dockyard.engine.errors import Conflict, EngineError, InvalidParameter, NotFound
from dockyard.units import rfc3339nano

log = logging.getLogger("dockyard.engine")


class ContainerService(Lifecycle):
    def __init__(self, daemon: Any) -> None:
        super().__init__()
        self.daemon = daemon
        self.store = ContainerStore(daemon.data_root / "containers")
        self.by_id: dict[str, Container] = {}
        self.names: dict[str, str] = {}  # name -> id
        self.task_hooks: list[Any] = []
        self.health = HealthMonitor(daemon, self.publish)
        self._create_lock = asyncio.Lock()

    @property
    def runtime(self) -> Runtime:
        return Runtime(self.daemon.supervisor)

    async def start(self) -> None:
        found, broken = await asyncio.to_thread(self.store.load_all)
        for c in found:
            self.by_id[c.id] = c
            self.names[c.name] = c.id
            mounts.restore(self.daemon, c)
        keys = await self.runtime.snapshot_keys()
        for key in keys:
            if key not in self.by_id:  # a create or a removal cut short
                log.info("removing what is left of container %s", key)
                with contextlib.suppress(EngineError):
                    await self.runtime.kill(key, 9, all_=True)
                    await self.runtime.wait(key, 10)
                with contextlib.suppress(EngineError):
                    await self.runtime.delete_task(key)
                await self.runtime.delete_record(key)
                await self.runtime.remove_snapshot(key)
        del broken
        await recovery.restore(self)
        await self.daemon.networks.restore()

    async def counts(self) -> dict[str, int]:
        cs = list(self.by_id.values())
        running = sum(1 for c in cs if c.state.running and not c.state.paused)
        paused = sum(1 for c in cs if c.state.paused)
        return {"containers": len(cs), "running": running, "paused": paused,
                "stopped": len(cs) - running - paused}

    # -- lookup ------------------------------------------------------------------------------

    async def get(self, name_or_id: str) -> Container:
        return self.lookup(name_or_id)

    def lookup(self, name_or_id: str) -> Container:
        if not name_or_id:
            raise NotFound("No such container: ")
        c = self.by_id.get(name_or_id)
        if c is not None:
            return c
        c = self.by_id.get(self.names.get(name_or_id.lstrip("/"), ""))
        if c is not None:  # (a name reserved by a create in progress names nothing yet)
            return c
        found = [c for i, c in self.by_id.items() if i.startswith(name_or_id)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise InvalidParameter(f"multiple IDs found with provided prefix: {name_or_id}")
        raise NotFound(f"No such container: {name_or_id}")

    def all(self) -> list[Container]:
        return sorted(self.by_id.values(), key=lambda c: parse_rfc3339(c.created),
                      reverse=True)

    # -- create ------------------------------------------------------------------------------

    def _reserve(self, name: str, cid: str) -> None:
        other = self.names.get(name)
        if other is not None:
            raise Conflict(f'Conflict. The container name "/{name}" is already in use by '
                           f'container "{other}". You have to remove (or rename) that '
                           f'container to be able to reuse that name.')
        self.names[name] = cid

    async def create(self, body: Any, name: str = "") -> tuple[Container, list[str]]:
        if body is None:
            raise InvalidParameter("config cannot be empty in order to create a container")
        config, host_config, net = configs.parse_create(body)
        name = names.check_name(name) if name else ""
        image_ref = config.get("Image") or ""
        if not image_ref:
            raise InvalidParameter("Config.Image: image name is required")
        warnings = configs.check_host_config(host_config)
        from dockyard.engine.networks.endpoints import check_config

        check_config(host_config, net)
        # The network (or the container to share one with) is looked for at start, as
        # dockerd does: a 404 here would make the docker CLI pull the image.
        image = await self.daemon.images.get(image_ref)
        configs.merge_image(config, image.run_config)
        configs.check_healthcheck(config)
        path, args = configs.command(config)
        cid = names.new_id()
        async with self._create_lock:
            if not name:
                name = names.random_name()
                while name in self.names:
                    name = names.random_name(1)
            self._reserve(name, cid)
        try:
            c = Container(id=cid, name=name, created=rfc3339nano(), image=image.id,
                          image_ref=image_ref, config=config, host_config=host_config,
                          networking_config=net, path=path, args=args)
            if not config.get("Hostname"):
                config["Hostname"] = runspec.hostname(c)
            runspec.check(c)
            rootfs = await self.runtime.prepare_snapshot(cid, image.chain_id)
            try:
                c.directory = str(await asyncio.to_thread(self.store.prepare, cid))
                await mounts.prepare(self.daemon, c, rootfs)
                await asyncio.to_thread(self._write_files, c)
            except BaseException:
                with contextlib.suppress(Exception):
                    await mounts.release(self.daemon, c, True)
                await asyncio.to_thread(self.store.remove, cid)
                await self.runtime.remove_snapshot(cid)
                raise
        except BaseException:
            self.names.pop(name, None)
            raise
        self.by_id[cid] = c
        self.publish(c, "create")
        return c, warnings

    def _write_files(self, c: Container) -> None:
        write_network_files(c, self.daemon.networks,
                            c.host_config.get("NetworkMode") == "host")
        self.store.save(c, host_config=True)

    # -- remove, rename, update --------------------------------------------------------------

    async def remove(self, c: Container, *, force: bool = False, volumes: bool = False) -> None:
        if c.state.status == "removing":
            raise Conflict(f"removal of container {c.id} is already in progress")
        if c.state.running or c.state.restarting:
            if not force:
                what = "restarting" if c.state.restarting else \
                    "paused" if c.state.paused else "running"
                hint = "unpause" if what == "paused" else "stop"
                raise Conflict(f'cannot remove container "/{c.name}": container is {what}: '
                               f'{hint} the container before removing or force remove')
            await self.kill_and_wait(c)
        async with c.lock:
            if c.id not in self.by_id:
                return
            c.state.status = "removing"
            c.state.restarting = False
            await self.daemon.networks.detach(c)
            await self.runtime.delete_task(c.id)
            await self.runtime.delete_record(c.id)
            await self.runtime.remove_snapshot(c.id)
            await asyncio.to_thread(self.store.remove, c.id)
            await mounts.release(self.daemon, c, volumes)
            self.by_id.pop(c.id, None)
            if self.names.get(c.name) == c.id:
                self.names.pop(c.name)
        self.publish(c, "destroy")
        c.notify("removed")

    async def rename(self, c: Container, new: str) -> None:
        if not new:
            raise InvalidParameter("Neither old nor new names may be empty")
        new = names.check_name(new)
        if new == c.name:
            raise InvalidParameter("Renaming a container with the same name as its current "
                                   "name")
        old = c.name
        try:
            self._reserve(new, c.id)
        except Conflict as e:
            raise Conflict(f"Error when allocating new name: {e.message}") from None
        c.name = new
        try:
            await self.store.commit(c)
        except BaseException:
            c.name = old
            self.names.pop(new, None)
            raise
        self.names.pop(old, None)
        self.publish(c, "rename", {"oldName": f"/{old}"})

    async def update(self, c: Container, body: Any) -> list[str]:
        if c.state.status == "removing":
            raise Conflict(f"Container {c.id} is marked for removal and cannot be updated.")
        host = dict(c.host_config)
        warnings = configs.update_host_config(host, body)
        from dockyard.engine.containers import resources as limits

        limits.validate(host)
        if c.state.running:
            await self.runtime.update(c.id, limits.resources(host))
        c.host_config = host
        await self.store.commit(c, host_config=True)
        self.publish(c, "update")
        return warnings

    async def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        from dockyard.engine.containers.views import prune_matches

        deleted, reclaimed = [], 0
        for c in list(self.by_id.values()):
            if c.state.running or c.state.restarting or c.state.status == "removing":
                continue
            if not prune_matches(c, filters):
                continue
            size = await self.runtime.usage(c.id)
            with contextlib.suppress(NotFound, Conflict):
                await self.remove(c)
                deleted.append(c.id)
                reclaimed += size
        self.daemon.events.publish("container", "prune", "",
                                   {"reclaimed": str(reclaimed)})
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    def publish(self, c: Container, action: str, extra: dict[str, str] | None = None) -> None:
        attrs = {**(c.config.get("Labels") or {}), "image": c.config.get("Image") or c.image_ref,
                 "name": c.name, **(extra or {})}
        self.daemon.events.publish("container", action, c.id, attrs)
