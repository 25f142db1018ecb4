"""/volumes: list, create, inspect, remove, prune (the local driver)."""

from __future__ import annotations

from aiohttp import web

from dockyard.engine.api.server import DAEMON, Route, json_body, query_bool, query_filters
from dockyard.engine.errors import InvalidParameter


async def list_volumes(request: web.Request) -> web.Response:
    volumes = await request.app[DAEMON].volumes.list(query_filters(request))
    return web.json_response({"Volumes": volumes, "Warnings": []})


async def create(request: web.Request) -> web.Response:
    body = await json_body(request, required=False) or {}
    if not isinstance(body, dict):
        raise InvalidParameter("invalid JSON: the body must be an object")
    name = body.get("Name") or ""
    if not isinstance(name, str):
        raise InvalidParameter("invalid Name: a string")
    doc = await request.app[DAEMON].volumes.create(
        name, body.get("Driver") or "local", body.get("DriverOpts") or {},
        body.get("Labels") or {})
    return web.json_response(doc, status=201)


async def inspect(request: web.Request) -> web.Response:
    return web.json_response(
        await request.app[DAEMON].volumes.inspect(request.match_info["name"]))


async def remove(request: web.Request) -> web.Response:
    await request.app[DAEMON].volumes.remove(request.match_info["name"],
                                             force=query_bool(request, "force"))
    return web.Response(status=204)


async def prune(request: web.Request) -> web.Response:
    return web.json_response(await request.app[DAEMON].volumes.prune(query_filters(request)))


def routes(daemon: object) -> list[Route]:
    return [Route("GET", "/volumes", list_volumes), Route("POST", "/volumes/create", create),
            Route("POST", "/volumes/prune", prune),
            Route("GET", "/volumes/{name}", inspect), Route("DELETE", "/volumes/{name}", remove)]
