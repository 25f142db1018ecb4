"""/networks: list, inspect, create, connect, disconnect, remove, prune (networks/service.py).

The service is the daemon's `networks` when the daemon builds one, else one made here for
the daemon's data root (the IDs live there either way, so both see the same networks)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from dockyard.engine.api.server import Route, json_body, query_filters
from dockyard.engine.networks.service import NetworkService


def routes(daemon: Any) -> list[Route]:
    service: NetworkService = getattr(daemon, "networks", None) or NetworkService(daemon)

    async def list_networks(request: web.Request) -> web.Response:
        return web.json_response(await service.list(query_filters(request)))

    async def inspect(request: web.Request) -> web.Response:
        return web.json_response(await service.inspect(request.match_info["id"],
                                                       request.query.get("scope", "")))

    async def create(request: web.Request) -> web.Response:
        return web.json_response(await service.create(await json_body(request)), status=201)

    async def connect(request: web.Request) -> web.Response:
        await service.connect(request.match_info["id"], await json_body(request),
                              connect=True)
        return web.Response(status=200)

    async def disconnect(request: web.Request) -> web.Response:
        await service.connect(request.match_info["id"], await json_body(request),
                              connect=False)
        return web.Response(status=200)

    async def remove(request: web.Request) -> web.Response:
        await service.remove(request.match_info["id"])
        return web.Response(status=204)

    async def prune(request: web.Request) -> web.Response:
        return web.json_response(await service.prune(query_filters(request)))

    return [Route("GET", "/networks", list_networks),
            Route("POST", "/networks/create", create),
            Route("POST", "/networks/prune", prune),
            Route("GET", "/networks/{id}", inspect),
            Route("POST", "/networks/{id}/connect", connect),
            Route("POST", "/networks/{id}/disconnect", disconnect),
            Route("DELETE", "/networks/{id}", remove)]
