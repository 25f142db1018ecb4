"""/containers/{id}: stats, changes, export and archive (docker cp); and POST /commit.

Tar streams are made and read by synchronous code on a worker thread (archive.py); the two
classes below carry the bytes across, one chunk at a time, so that a slow client slows the
tar and nothing is held whole in memory.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import json
from typing import Any

from aiohttp import web

from dockyard.engine.api.server import DAEMON, Route, add_headers, json_body, query_bool
from dockyard.engine.containers import changes as changes_mod
from dockyard.engine.containers import commit as commit_mod
from dockyard.engine.containers import export as export_mod
from dockyard.engine.containers import rootview, stats
from dockyard.engine.containers.archive import ContainerFS, container_user_ids
from dockyard.engine.errors import EngineError, InvalidParameter
from dockyard.image.errors import InvalidArgument

FLUSH = 256 << 10
STAT_HEADER = "X-Docker-Container-Path-Stat"


def _daemon(request: web.Request) -> Any:
    return request.app[DAEMON]


def _container(request: web.Request) -> Any:
    return _daemon(request).containers.lookup(request.match_info["id"])


class _ToResponse:
    """A file the worker thread writes; the bytes go to the response on the loop."""

    def __init__(self, response: web.StreamResponse, loop: asyncio.AbstractEventLoop) -> None:
        self.response, self.loop, self.buf = response, loop, bytearray()

    def write(self, data: bytes) -> int:
        self.buf += data
        if len(self.buf) >= FLUSH:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self.buf:
            data, self.buf = bytes(self.buf), bytearray()
            asyncio.run_coroutine_threadsafe(self.response.write(data), self.loop).result()


class _FromRequest:
    """A file the worker thread reads: the request's body, read on the loop."""

    def __init__(self, request: web.Request, loop: asyncio.AbstractEventLoop) -> None:
        self.request, self.loop, self.buf = request, loop, b""

    def read(self, size: int = -1) -> bytes:
        if not self.buf:  # tarfile asks for 10 KiB at a time: cross over 1 MiB at a time
            self.buf = asyncio.run_coroutine_threadsafe(self.request.content.read(1 << 20),
                                                        self.loop).result()
        n = size if size is not None and size >= 0 else len(self.buf)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data


def _os_error(e: OSError) -> EngineError:
    if e.errno == errno.EROFS:
        return EngineError("container rootfs is marked read-only")
    return EngineError(f"{e.strerror or e}: {e.filename or ''}".rstrip(": "))


async def _to_end(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """`fn` on a worker thread, awaited to its end even when the request is cancelled (the
    client went away): the root's descriptors and mounts it works in are released only
    after it stopped using them."""
    job = asyncio.ensure_future(asyncio.to_thread(fn, *args, **kwargs))
    try:
        return await asyncio.shield(job)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await job
        raise


async def _blocking(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return await _to_end(fn, *args, **kwargs)
    except InvalidArgument as e:
        raise InvalidParameter(str(e)) from None
    except OSError as e:
        raise _os_error(e) from None


async def _tar_response(request: web.Request, headers: dict[str, str], fill: Any,
                        *args: Any) -> web.StreamResponse:
    response = web.StreamResponse(headers=headers)
    response.content_type = "application/x-tar"
    add_headers(response)
    await response.prepare(request)
    out = _ToResponse(response, asyncio.get_running_loop())

    def run() -> None:
        fill(*args, out)
        out.flush()
    with contextlib.suppress(ConnectionResetError, OSError, EngineError, InvalidArgument):
        await _to_end(run)  # once the headers are out, an error can only cut it
        await response.write_eof()
    return response


# -- archive (docker cp) ------------------------------------------------------------------------

def _path(request: web.Request) -> str:
    path = request.query.get("path", "")
    if not path:
        raise InvalidParameter("bad parameter: path cannot be empty")
    return path


async def _target(request: web.Request) -> tuple[Any, str, str]:
    c = _container(request)
    path = _path(request)
    return c, path, request.match_info["id"]


def _stat_header(doc: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


async def archive_head(request: web.Request) -> web.StreamResponse:
    c, path, name = await _target(request)
    async with rootview.readable(_daemon(request), c) as root:
        fs = await _blocking(ContainerFS, root, name)
        try:
            doc = await _blocking(fs.stat, path)
        finally:
            fs.close()
    return web.Response(status=200, headers={STAT_HEADER: _stat_header(doc),
                                             "Content-Type": "application/json"})


async def archive_get(request: web.Request) -> web.StreamResponse:
    c, path, name = await _target(request)
    async with rootview.readable(_daemon(request), c) as root:
        fs = await _blocking(ContainerFS, root, name)
        try:
            doc = await _blocking(fs.stat, path)
            return await _tar_response(request, {STAT_HEADER: _stat_header(doc)},
                                       fs.read_tar, path)
        finally:
            fs.close()


async def archive_put(request: web.Request) -> web.Response:
    c, path, name = await _target(request)
    no_overwrite = query_bool(request, "noOverwriteDirNonDir")
    copy_ids = query_bool(request, "copyUIDGID")
    loop = asyncio.get_running_loop()
    async with rootview.writable(_daemon(request), c) as root:
        fs = await _blocking(ContainerFS, root, name)
        try:
            await _blocking(fs.stat, path)
            rootview.check_writable(c, path)
            chown = (await _blocking(container_user_ids, fs, c.config.get("User") or "")
                     if copy_ids else None)
            await _blocking(fs.extract, path, _FromRequest(request, loop),
                            no_overwrite_dir_non_dir=no_overwrite, chown=chown)
        finally:
            fs.close()
    return web.Response(status=200)


# -- export, changes ----------------------------------------------------------------------------

async def export(request: web.Request) -> web.StreamResponse:
    c = _container(request)
    async with export_mod.opened(_daemon(request), c) as fs:
        return await _tar_response(request, {}, export_mod.write, fs)


async def changes(request: web.Request) -> web.Response:
    c = _container(request)
    rootfs = await _daemon(request).containers.runtime.mounts(c.id)
    upper, lowers = changes_mod.upper_and_lowers(rootfs)
    found = await _blocking(changes_mod.changes, upper, lowers)
    return web.json_response(found or None)


# -- stats --------------------------------------------------------------------------------------

async def container_stats(request: web.Request) -> web.StreamResponse:
    daemon = _daemon(request)
    c = _container(request)
    stream = query_bool(request, "stream", True)
    one_shot = query_bool(request, "one-shot")
    if one_shot and stream:
        raise InvalidParameter("cannot have stream=true and one-shot=true")
    online, host_mem = stats.online_cpus(), stats.host_memory()
    sup = daemon.supervisor

    def doc(now: Any, pre: Any) -> bytes:
        return json.dumps(stats.document(c, now, pre, online=online, host_mem=host_mem)
                          ).encode() + b"\n"

    if not stream:
        if not stats.running(c):
            return web.Response(body=doc(None, None), content_type="application/json")
        first = await stats.sample(sup, c)
        if one_shot:
            return web.Response(body=doc(first, None), content_type="application/json")
        await asyncio.sleep(1)
        second = await stats.sample(sup, c) if stats.running(c) else None
        return web.Response(body=doc(second, first) if second else doc(first, None),
                            content_type="application/json")
    response = web.StreamResponse()
    response.content_type = "application/json"
    add_headers(response)
    await response.prepare(request)
    pre = None
    containers = daemon.containers
    try:
        # As dockerd's collector: a document a second while the container runs, nothing
        # while it does not; the stream ends with the container or the client.
        while c.id in containers.by_id:
            if request.transport is None or request.transport.is_closing():
                return response
            now = None
            if stats.running(c):
                with contextlib.suppress(EngineError):
                    now = await stats.sample(sup, c)
            if now is not None:
                await response.write(doc(now, pre))
            pre = now
            await asyncio.sleep(1)
        await response.write_eof()
    except (ConnectionResetError, OSError):
        pass
    return response


# -- commit -------------------------------------------------------------------------------------

async def commit(request: web.Request) -> web.Response:
    daemon = _daemon(request)
    c = daemon.containers.lookup(request.query.get("container", ""))
    body = await json_body(request, required=False)
    if body is not None and not isinstance(body, dict):
        raise InvalidParameter("invalid JSON: not an object")
    image_id = await commit_mod.commit(
        daemon, c, repo=request.query.get("repo", ""), tag=request.query.get("tag", ""),
        author=request.query.get("author", ""), comment=request.query.get("comment", ""),
        pause=query_bool(request, "pause", True), changes=request.query.getall("changes", []),
        body=body)
    return web.json_response({"Id": image_id}, status=201)


def routes(daemon: object) -> list[Route]:
    return [
        Route("GET", "/containers/{id}/stats", container_stats),
        Route("GET", "/containers/{id}/changes", changes),
        Route("GET", "/containers/{id}/export", export),
        Route("HEAD", "/containers/{id}/archive", archive_head),
        Route("GET", "/containers/{id}/archive", archive_get),
        Route("PUT", "/containers/{id}/archive", archive_put),
        Route("POST", "/commit", commit),
    ]
