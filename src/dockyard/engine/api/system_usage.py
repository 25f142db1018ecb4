"""GET /system/df (what images, containers, volumes and the build cache use, with the `type`
query of API 1.42+), so that `docker system df [-v]` works end to end (POST /build/prune is
the builder's: api/build.py).

    LayersSize   the unique layers' sizes (by chain ID), summed
    Images       image summaries with Containers (how many use it) and SharedSize
    Containers   container summaries with SizeRw (omitted when 0, as dockerd) and SizeRootFs
    Volumes      volumes with UsageData {Size, RefCount}
    BuildCache   []
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

from aiohttp import web

from dockyard.engine.api.server import DAEMON, Route, api_version
from dockyard.engine.containers import views as container_views
from dockyard.engine.errors import InvalidParameter
from dockyard.engine.images import views as image_views

TYPES = ("container", "image", "volume", "build-cache")


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The OCI chain ID of each layer (the identity of a layer with everything below it)."""
    out: list[str] = []
    for d in diff_ids:
        out.append(d if not out else
                   "sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out


async def _images(daemon: Any, api: tuple[int, int]) -> tuple[int, list[dict[str, Any]]]:
    """LayersSize and the image summaries (Containers and SharedSize filled in)."""
    service = daemon.images
    users = Counter(c.image for c in daemon.containers.all())
    layers: list[tuple[Any, dict[str, int]]] = []
    count: Counter[str] = Counter()
    for image in await service.list():
        sizes = await service.layer_sizes(image)
        chains = chain_ids([str(d) for d in image.resolved.config.rootfs_diff_ids])
        by_chain = dict(zip(chains, sizes, strict=False))
        layers.append((image, by_chain))
        count.update(by_chain.keys())
    unique: dict[str, int] = {}
    out = []
    for image, by_chain in layers:
        unique.update(by_chain)
        doc = image_views.summary(image, layer_sizes=list(by_chain.values()))
        doc["Containers"] = users.get(image.id, 0)
        doc["SharedSize"] = sum(s for k, s in by_chain.items() if count[k] > 1)
        if api < (1, 44):
            doc["VirtualSize"] = doc["Size"]
        out.append(doc)
    out.sort(key=lambda d: d["Created"], reverse=True)
    return sum(unique.values()), out


async def _containers(daemon: Any) -> list[dict[str, Any]]:
    service = daemon.containers
    image_sizes: dict[str, int] = {}
    out = []
    for c in sorted(service.all(), key=lambda c: c.created, reverse=True):
        if c.image not in image_sizes:
            try:
                image = await daemon.images.get(c.image)
                image_sizes[c.image] = sum(await daemon.images.layer_sizes(image))
            except Exception:  # an image removed under a container counts nothing
                image_sizes[c.image] = 0
        rw = await service.runtime.usage(c.id)
        doc = container_views.list_entry(c, (rw, rw + image_sizes[c.image]))
        if not doc["SizeRw"]:
            del doc["SizeRw"]
        out.append(doc)
    return out


async def disk_usage(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    wanted = set(TYPES)
    if api_version(request) >= (1, 42) and "type" in request.query:
        wanted = set()
        for value in request.query.getall("type"):
            if value not in TYPES:
                raise InvalidParameter(f"unknown object type: {value}")
            wanted.add(value)
    doc: dict[str, Any] = {"LayersSize": 0, "Images": None, "Containers": None,
                           "Volumes": None, "BuildCache": None}
    if "image" in wanted:
        doc["LayersSize"], doc["Images"] = await _images(daemon, api_version(request))
    if "container" in wanted:
        doc["Containers"] = await _containers(daemon)
    if "volume" in wanted:
        doc["Volumes"] = await daemon.volumes.usage()
    if "build-cache" in wanted:
        doc["BuildCache"] = []
    return web.json_response(doc)


def routes(daemon: object) -> list[Route]:
    return [Route("GET", "/system/df", disk_usage)]
