"""The engine as one object: its configuration, the supervisor it talks to, the event bus,
and the services (images, containers, volumes) the API modules call. Services are built in a
fixed order, each given the daemon: images first (containers need them), volumes before
containers (which mount them).

    <data-root>/
      engine-id                 this engine's ID (docker info's ID)
      containers/<id>/          each container's configuration and log (containers/)
      volumes/                  the local volume driver (volumes/)
      network/predefined.json   the IDs of the networks bridge, host and none (networks/)
      containerd/               the managed supervisor's root (supervisor.py)
    <exec-root>/
      dockyard.sock             the API socket (unless -H says otherwise)
      dockyardd.pid
      containerd/               the managed supervisor's state and socket
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from pathlib import Path
from typing import Any

from dockyard.engine.config import DaemonConfig
from dockyard.engine.events import EventBus
from dockyard.engine.supervisor import Supervisor, ensure_managed, wait_ready

log = logging.getLogger("dockyard.engine")


class Daemon:
    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.data_root = Path(config.data_root)
        self.exec_root = Path(config.exec_root)
        self.events = EventBus()
        self.sup: Supervisor | None = None
        self.engine_id = ""
        self.services: list[Any] = []
        self._watchdog: asyncio.Task[None] | None = None
        self.images: Any = None
        self.volumes: Any = None
        self.networks: Any = None
        self.containers: Any = None
        self.streams: Any = None

    @property
    def supervisor(self) -> Supervisor:
        assert self.sup is not None, "the daemon has not started"
        return self.sup

    async def start(self) -> None:
        for d in (self.data_root, self.exec_root):
            d.mkdir(parents=True, exist_ok=True, mode=0o711)
        self.engine_id = self._engine_id()
        from dockyard.engine import scratch

        for path in await asyncio.to_thread(scratch.clean, self.data_root / "tmp"):
            log.warning("left in place, still mounted: %s", path)
        address = self.config.containerd or await asyncio.to_thread(
            ensure_managed, str(self.data_root), str(self.exec_root), self.config.log_level)
        self.sup = Supervisor(address)
        await wait_ready(self.sup)
        if not self.config.containerd:
            self._watchdog = asyncio.create_task(self._keep_supervisor())
        for name, factory in self._service_factories():
            service = factory(self)
            setattr(self, name, service)
            self.services.append(service)
            await service.start()

    async def _keep_supervisor(self, every: float = 0.5) -> None:
        """dockerd restarts the containerd it manages when that dies; so do we. The shims
        outlive it and the new one takes them back; our channel reconnects by itself and
        the containers service resubscribes to its events."""
        from dockyard.engine.supervisor import managed_paths
        from dockyard.shim.spawn import answers

        sock = managed_paths(str(self.data_root), str(self.exec_root))[0]
        while True:
            await asyncio.sleep(every)
            if await asyncio.to_thread(answers, sock):
                continue
            log.warning("dockyard-containerd is gone: starting it again")
            try:
                await asyncio.to_thread(ensure_managed, str(self.data_root),
                                        str(self.exec_root), self.config.log_level)
            except Exception as e:  # try again at the next tick
                log.error("restarting dockyard-containerd: %s", e)

    @staticmethod
    def _service_factories() -> list[tuple[str, Any]]:
        """The services, in start order: each takes the daemon; later ones use earlier."""
        from dockyard.engine.containers.service import ContainerService
        from dockyard.engine.containers.streams import StreamService
        from dockyard.engine.images.service import ImageService
        from dockyard.engine.networks.service import NetworkService
        from dockyard.engine.volumes.service import VolumeService

        return [("images", ImageService), ("volumes", VolumeService),
                ("networks", NetworkService), ("containers", ContainerService),
                ("streams", StreamService)]

    def _engine_id(self) -> str:
        path = self.data_root / "engine-id"
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            value = str(uuid.uuid4())
            tmp = path.with_suffix(".tmp")
            tmp.write_text(value)
            os.replace(tmp, path)
            return value

    async def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for service in self.services:
            counts = getattr(service, "counts", None)
            if counts is not None:
                out.update(await counts())
        return out

    async def close(self, *, stop_containers: bool) -> None:
        """Services in reverse order; with `stop_containers` (no live restore) the
        containers service stops what runs, as dockerd does on shutdown."""
        if self._watchdog is not None:
            self._watchdog.cancel()
        for service in reversed(self.services):
            try:
                await service.close(stop_containers=stop_containers)
            except Exception:
                log.exception("closing %s", type(service).__name__)
        if self.sup is not None:
            await self.sup.close()
