"""GET /containers/{id}/export: the container's whole root filesystem as a tar, read from a
read-only view of its snapshot (rootview.read_view): never its volumes, and never in the
way of the running container's own overlay."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import IO, Any

from dockyard.engine.containers.archive import ContainerFS
from dockyard.engine.containers.model import Container
from dockyard.engine.containers.rootview import read_view


@contextlib.asynccontextmanager
async def opened(daemon: Any, c: Container) -> AsyncIterator[ContainerFS]:
    import asyncio

    async with read_view(daemon, c) as root:
        fs = await asyncio.to_thread(ContainerFS, root, c.name)
        try:
            yield fs
        finally:
            fs.close()


def write(fs: ContainerFS, out: IO[bytes]) -> None:
    fs.export(out)
