"""Execs: POST /containers/{name}/exec, POST /exec/{id}/start (hijacked unless detached),
POST /exec/{id}/resize, GET /exec/{id}/json."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from dockyard.engine.api.hijack import Hijack, conn_response
from dockyard.engine.api.server import DAEMON, Route, json_body
from dockyard.engine.api.streams import (
    content_type,
    detach_keys,
    size_params,
    stream_headers,
    write_error,
)
from dockyard.engine.containers.streams import pump
from dockyard.engine.errors import EngineError, InvalidParameter


async def create(request: web.Request) -> web.Response:
    daemon: Any = request.app[DAEMON]
    c = await daemon.containers.get(request.match_info["name"])
    body = await json_body(request)
    ex = await daemon.streams.execs.create(c, body)
    return web.json_response({"Id": ex.id}, status=201)


async def start(request: web.Request) -> web.StreamResponse:
    daemon: Any = request.app[DAEMON]
    execs = daemon.streams.execs
    body = await json_body(request, required=False) or {}
    if not isinstance(body, dict):
        raise InvalidParameter("invalid JSON: an object is expected")
    ex = execs.get(request.match_info["id"])
    size = body.get("ConsoleSize")
    if size is not None and (not isinstance(size, list) or len(size) != 2
                             or not all(isinstance(n, int) for n in size)):
        raise InvalidParameter("invalid ConsoleSize: [height, width] is expected")
    if body.get("Detach"):
        await execs.start(ex, attach=False, console_size=size)
        return web.Response(status=200)
    keys = detach_keys(ex.detach_keys)
    tty = ex.tty or bool(body.get("Tty"))
    async with Hijack(request, content_type(request, tty), stream_headers()) as conn:
        try:
            call = await execs.start(ex, attach=True, console_size=size)
        except EngineError as e:
            write_error(conn, tty, e.message)
            return conn_response()
        result = await pump(conn, call, tty=ex.tty, stdin=ex.open_stdin, close_stdin=True,
                            detach_keys=keys)
        if result == "ended":  # the exit code is known before the client asks for it
            await execs.exited(ex)
    return conn_response()


async def resize(request: web.Request) -> web.Response:
    daemon: Any = request.app[DAEMON]
    height, width = size_params(request)
    ex = daemon.streams.execs.get(request.match_info["id"])
    await daemon.streams.execs.resize(ex, height, width)
    return web.Response(status=200)


async def inspect(request: web.Request) -> web.Response:
    daemon: Any = request.app[DAEMON]
    return web.json_response(daemon.streams.execs.get(request.match_info["id"]).to_json())


def routes(daemon: Any) -> list[Route]:
    return [Route("POST", "/containers/{name}/exec", create),
            Route("POST", "/exec/{id}/start", start),
            Route("POST", "/exec/{id}/resize", resize),
            Route("GET", "/exec/{id}/json", inspect)]
