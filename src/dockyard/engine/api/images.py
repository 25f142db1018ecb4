"""/images/…: list, inspect, history, pull (create), tag, remove, prune, save (get), load,
push, as dockerd answers them. The work is in engine/images/; this module parses the request,
calls it, and writes the answer (JSON, a JSON-lines progress stream, or a tar)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from dockyard.engine.api.server import (
    DAEMON,
    Route,
    add_headers,
    api_version,
    check_filters,
    query_bool,
    query_filters,
    query_int,
)
from dockyard.engine.errors import EngineError, InvalidParameter
from dockyard.engine.images import filters as filters_mod
from dockyard.engine.images import importer, progress, removal, transfers, views
from dockyard.engine.images import search as search_mod
from dockyard.engine.images.registry import decode_auth_header
from dockyard.image import reference
from dockyard.image.errors import ImageError

log = logging.getLogger("dockyard.engine")
CHUNK = 1 << 20


def _service(request: web.Request) -> Any:
    return request.app[DAEMON].images


def _name(request: web.Request) -> str:
    return request.match_info["name"]


def build_intermediates(request: web.Request) -> set[str]:
    """The images of builds' intermediate steps: listed with all=1 only, as dockerd lists
    the classic builder's (they have children)."""
    from dockyard.build.executor import cache_of

    return cache_of(request.app[DAEMON]).intermediates()


async def list_images(request: web.Request) -> web.Response:
    service = _service(request)
    filters = query_filters(request)
    if request.query.get("filter"):  # the old single reference filter
        filters.setdefault("reference", []).append(request.query["filter"])
    check_filters(filters, filters_mod.LIST_FILTERS)
    filters_mod.dangling_value(filters.get("dangling", []))
    bounds: dict[str, float | None] = {"before": None, "since": None}
    for key in bounds:
        for value in filters.get(key, []):
            other = await service.get(value)
            bounds[key] = float(views.unix_seconds(other.config.get("created")))
    hidden = set() if query_bool(request, "all") else build_intermediates(request)
    out = [views.summary(i, layer_sizes=await service.layer_sizes(i))
           for i in await service.list()
           if i.id not in hidden and
           filters_mod.matches(i, filters, before=bounds["before"], since=bounds["since"])]
    if filters.get("reference"):
        names = {i.id: set(filters_mod.matching_names(i, filters["reference"]))
                 for i in await service.list()}
        for d in out:
            d["RepoTags"] = [t for t in d["RepoTags"] if t in names.get(d["Id"], ())]
            d["RepoDigests"] = [t for t in d["RepoDigests"]
                                if any(t.startswith(n.split(":")[0] + "@")
                                       for n in names.get(d["Id"], ()))]
    out.sort(key=lambda d: d["Created"], reverse=True)
    if api_version(request) < (1, 44):
        for d in out:
            d["VirtualSize"] = d["Size"]
    return web.json_response(out)


async def inspect(request: web.Request) -> web.Response:
    service = _service(request)
    image = await service.with_all_names(await service.get(_name(request)))
    return web.json_response(views.inspect(image, api_version(request),
                                           await service.layer_sizes(image)))


async def history(request: web.Request) -> web.Response:
    service = _service(request)
    image = await service.with_all_names(await service.get(_name(request)))
    return web.json_response(views.history(image, await service.layer_sizes(image)))


async def json_lines(request: web.Request, messages: AsyncIterator[dict[str, Any]]
                     ) -> web.StreamResponse:
    """Stream `messages`, one JSON document a line. An error before the first message is
    the HTTP error; after it, the stream's last message."""
    it = aiter(messages)
    try:
        first: dict[str, Any] | None = await anext(it)
    except StopAsyncIteration:
        first = None
    response = web.StreamResponse()
    response.content_type = "application/json"
    add_headers(response)
    await response.prepare(request)
    if first is None:
        return response
    await response.write(json.dumps(first).encode() + b"\r\n")
    try:
        async for m in it:
            await response.write(json.dumps(m).encode() + b"\r\n")
    except EngineError as e:
        await response.write(json.dumps(progress.error(e.message)).encode() + b"\r\n")
    except (ConnectionResetError, BrokenPipeError):
        raise
    except Exception as e:  # a bug of ours: the client gets one line, the log the trace
        log.exception("%s %s", request.method, request.path)
        await response.write(json.dumps(progress.error(f"{type(e).__name__}: {e}")).encode()
                             + b"\r\n")
    return response


async def create(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    from_image = request.query.get("fromImage", "")
    from_src = request.query.get("fromSrc", "")
    if from_src:
        return await import_src(request, from_src)
    if not from_image:
        raise InvalidParameter("invalid reference format")
    ref = transfers.pull_reference(from_image, request.query.get("tag", ""))
    platform = transfers.parse_platform(request.query.get("platform", ""))
    auth = decode_auth_header(request.headers.get("X-Registry-Auth"))
    return await json_lines(request, transfers.pull(service, ref, auth=auth,
                                                    platform=platform))


async def import_src(request: web.Request, source: str) -> web.StreamResponse:
    """`docker import`: the body is the root filesystem (fromSrc=-); URLs are not fetched."""
    if source != "-":
        raise InvalidParameter("importing from a URL is not supported: send the archive "
                               "as the request body (fromSrc=-)")
    repo, the_tag = request.query.get("repo", ""), request.query.get("tag", "")
    repo_tag = None
    if repo:
        try:
            ref = reference.parse(f"{repo}:{the_tag}" if the_tag else repo)
        except ImageError as e:
            raise InvalidParameter(str(e)) from None
        repo_tag = str(ref.with_default_tag())

    async def body() -> AsyncIterator[bytes]:
        while chunk := await request.content.read(CHUNK):
            yield chunk

    return await json_lines(request, importer.import_rootfs(
        _service(request), body(), repo_tag=repo_tag,
        message=request.query.get("message", ""),
        changes=request.query.getall("changes", [])))


async def push(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    auth = decode_auth_header(request.headers.get("X-Registry-Auth"))
    names = await transfers.push_names(service, _name(request), request.query.get("tag", ""))
    return await json_lines(request, transfers.push(service, names, auth=auth))


async def tag(request: web.Request) -> web.Response:
    repo = request.query.get("repo", "")
    if not repo:
        raise InvalidParameter("repository name must have at least one component")
    the_tag = request.query.get("tag", "")
    target = f"{repo}:{the_tag}" if the_tag else repo
    await _service(request).tag(_name(request), target)
    return web.Response(status=201)


async def remove(request: web.Request) -> web.Response:
    out = await removal.remove(_service(request), _name(request),
                               force=query_bool(request, "force"),
                               noprune=query_bool(request, "noprune"))
    return web.json_response(out)


async def prune(request: web.Request) -> web.Response:
    filters = query_filters(request)
    check_filters(filters, filters_mod.PRUNE_FILTERS)
    return web.json_response(await removal.prune(_service(request), filters))


async def _tar(request: web.Request, names: list[str]) -> web.StreamResponse:
    service = _service(request)
    full = await transfers.save_names(service, names)
    chunks = aiter(transfers.save(service, full))
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = b""
    response = web.StreamResponse()
    response.content_type = "application/x-tar"
    add_headers(response)
    await response.prepare(request)
    await response.write(first)
    async for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


async def save_many(request: web.Request) -> web.StreamResponse:
    names = request.query.getall("names", [])
    if not names:
        raise InvalidParameter("no image names given")
    return await _tar(request, names)


async def save_one(request: web.Request) -> web.StreamResponse:
    return await _tar(request, [_name(request)])


async def load(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    quiet = query_bool(request, "quiet")

    async def body() -> AsyncIterator[bytes]:
        while chunk := await request.content.read(CHUNK):
            yield chunk

    messages = transfers.load(service, body())
    response = await json_lines(request, messages)
    del quiet  # the load reports only "Loaded image" lines, quiet or not
    return response


async def search_images(request: web.Request) -> web.Response:
    filters = query_filters(request)
    check_filters(filters, search_mod.SEARCH_FILTERS)
    limit = query_int(request, "limit", 25) or 25
    daemon = request.app[DAEMON]
    return web.json_response(await search_mod.search(daemon.config,
                                                     request.query.get("term", ""), limit,
                                                     filters))


def routes(daemon: object) -> list[Route]:
    n = "{name:.+}"
    return [Route("GET", "/images/json", list_images),
            Route("GET", "/images/get", save_many),
            Route("GET", "/images/search", search_images),
            Route("POST", "/images/create", create),
            Route("POST", "/images/load", load),
            Route("POST", "/images/prune", prune),
            Route("GET", f"/images/{n}/json", inspect),
            Route("GET", f"/images/{n}/history", history),
            Route("GET", f"/images/{n}/get", save_one),
            Route("POST", f"/images/{n}/tag", tag),
            Route("POST", f"/images/{n}/push", push),
            Route("DELETE", f"/images/{n}", remove)]
