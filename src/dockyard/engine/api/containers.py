"""/containers: create, list, inspect, start, stop, restart, kill, pause, unpause, wait,
remove, rename, update, top, logs and prune (attach and exec: streams.py, exec.py)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from dockyard.engine.api.server import (
    DAEMON,
    Route,
    add_headers,
    json_body,
    query_bool,
    query_filters,
    query_int,
    query_time,
)
from dockyard.engine.containers import views
from dockyard.engine.containers.logs import LogQuery, encode, entries
from dockyard.engine.errors import Conflict, InvalidParameter


def _service(request: web.Request) -> Any:
    return request.app[DAEMON].containers  # type: ignore[attr-defined]


def _container(request: web.Request) -> Any:
    return _service(request).lookup(request.match_info["id"])


def _no_content() -> web.Response:
    return web.Response(status=204)


async def create(request: web.Request) -> web.Response:
    body = await json_body(request)
    c, warnings = await _service(request).create(body, request.query.get("name", ""))
    return web.json_response({"Id": c.id, "Warnings": warnings}, status=201)


async def list_(request: web.Request) -> web.Response:
    svc = _service(request)
    filters = query_filters(request)
    size = query_bool(request, "size")
    image_ids: dict[str, str] = {}
    for a in filters.get("ancestor", []):
        try:
            image_ids[a] = (await request.app[DAEMON].images.get(a)).id  # type: ignore[attr-defined]
        except Exception:  # an ancestor that names no image matches nothing
            pass
    chosen = views.select(svc.all(), filters, all_=query_bool(request, "all"),
                          limit=query_int(request, "limit"), lookup=svc.lookup,
                          image_ids=image_ids)
    out = []
    for c in chosen:
        sizes = await _sizes(svc, c) if size else None
        out.append(views.list_entry(c, sizes))
    return web.json_response(out)


async def _sizes(svc: Any, c: Any) -> tuple[int, int]:
    rw = await svc.runtime.usage(c.id)
    return rw, rw


async def inspect(request: web.Request) -> web.Response:
    svc = _service(request)
    c = _container(request)
    sizes = await _sizes(svc, c) if query_bool(request, "size") else None
    return web.json_response(views.inspect(c, request.app[DAEMON], sizes))


async def start(request: web.Request) -> web.Response:
    await _service(request).start_container(_container(request))
    return _no_content()


async def stop(request: web.Request) -> web.Response:
    c = _container(request)
    await _service(request).stop(c, query_int(request, "t"), request.query.get("signal"))
    return _no_content()


async def restart(request: web.Request) -> web.Response:
    c = _container(request)
    await _service(request).restart(c, query_int(request, "t"), request.query.get("signal"))
    return _no_content()


async def kill(request: web.Request) -> web.Response:
    c = _container(request)
    try:
        await _service(request).kill(c, request.query.get("signal"))
    except Conflict as e:
        raise Conflict(f"Cannot kill container: {request.match_info['id']}: {e.message}"
                       ) from None
    return _no_content()


async def pause(request: web.Request) -> web.Response:
    await _service(request).pause(_container(request))
    return _no_content()


async def unpause(request: web.Request) -> web.Response:
    await _service(request).unpause(_container(request))
    return _no_content()


async def wait(request: web.Request) -> web.StreamResponse:
    """Headers at once (clients wait for them before they start the container), the
    answer at the exit."""
    svc = _service(request)
    c = _container(request)
    condition = request.query.get("condition") or "not-running"
    if condition not in ("not-running", "next-exit", "removed"):
        raise InvalidParameter(f'invalid condition: "{condition}"')
    response = web.StreamResponse()
    response.content_type = "application/json"
    add_headers(response)
    await response.prepare(request)
    answer = await svc.wait(c, condition)
    try:
        await response.write(json.dumps(answer).encode() + b"\n")
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client went away
    return response


async def remove(request: web.Request) -> web.Response:
    c = _container(request)
    await _service(request).remove(c, force=query_bool(request, "force"),
                                   volumes=query_bool(request, "v"))
    return _no_content()


async def rename(request: web.Request) -> web.Response:
    c = _container(request)
    await _service(request).rename(c, request.query.get("name", ""))
    return _no_content()


async def update(request: web.Request) -> web.Response:
    c = _container(request)
    body = await json_body(request)
    warnings = await _service(request).update(c, body)
    return web.json_response({"Warnings": warnings})


async def top(request: web.Request) -> web.Response:
    svc = _service(request)
    c = _container(request)
    if not c.state.running:
        raise Conflict(f"Container {c.id} is not running")
    if c.state.restarting:
        raise Conflict(f"Container {c.id} is restarting, wait until the container is running")
    pids = await svc.runtime.pids(c.id)
    return web.json_response(await views.top(pids, request.query.get("ps_args", "")))


async def logs(request: web.Request) -> web.StreamResponse:
    c = _container(request)
    tail_text = request.query.get("tail", "all")
    tail: int | None = None
    if tail_text not in ("", "all"):
        try:
            tail = int(tail_text)
        except ValueError:
            tail = None  # dockerd reads a bad tail as "all"
    q = LogQuery(follow=query_bool(request, "follow"), stdout=query_bool(request, "stdout"),
                 stderr=query_bool(request, "stderr"),
                 since_ns=query_time(request, "since") or None,
                 until_ns=query_time(request, "until"),
                 timestamps=query_bool(request, "timestamps"),
                 tail=tail if tail is None or tail >= 0 else None)
    if not (q.stdout or q.stderr):
        raise InvalidParameter("Bad parameters: you must choose at least one stream")
    tty = bool(c.config.get("Tty"))
    response = web.StreamResponse()
    response.content_type = ("application/vnd.docker.raw-stream" if tty
                             else "application/vnd.docker.multiplexed-stream")
    add_headers(response)
    await response.prepare(request)

    def client_there() -> bool:
        return request.transport is not None and not request.transport.is_closing()

    try:
        async for entry in entries(c, q, lambda: c.state.running or c.state.restarting,
                                   client_there):
            await response.write(encode(entry, tty=tty, timestamps=q.timestamps))
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client went away
    return response


async def prune(request: web.Request) -> web.Response:
    return web.json_response(await _service(request).prune(query_filters(request)))


def routes(daemon: object) -> list[Route]:
    return [
        Route("POST", "/containers/create", create),
        Route("GET", "/containers/json", list_),
        Route("POST", "/containers/prune", prune),
        Route("GET", "/containers/{id}/json", inspect),
        Route("GET", "/containers/{id}/top", top),
        Route("GET", "/containers/{id}/logs", logs),
        Route("POST", "/containers/{id}/start", start),
        Route("POST", "/containers/{id}/stop", stop),
        Route("POST", "/containers/{id}/restart", restart),
        Route("POST", "/containers/{id}/kill", kill),
        Route("POST", "/containers/{id}/pause", pause),
        Route("POST", "/containers/{id}/unpause", unpause),
        Route("POST", "/containers/{id}/wait", wait),
        Route("POST", "/containers/{id}/rename", rename),
        Route("POST", "/containers/{id}/update", update),
        Route("DELETE", "/containers/{id}", remove),
    ]
