"""Blobs by digest: GET and HEAD (with byte ranges), DELETE (end-2, end-10)."""

from __future__ import annotations

import re

from aiohttp import web

from dockyard.registry.errors import RegistryError
from dockyard.registry.routes import Match
from dockyard.registry.server.base import (
    CHUNK,
    EXTRA_HEADERS,
    Handlers,
    Settings,
    blocking,
    digest_of,
    empty,
)
from dockyard.registry.storage.blobs import BlobUnknown
from dockyard.registry.storage.driver import PathNotFound

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def parse_range(header: str, size: int) -> tuple[int, int]:
    """The first and last byte a `Range: bytes=…` header asks for; RANGE_INVALID when it
    cannot be satisfied or is not a single range."""
    m = _RANGE.fullmatch(header.strip())
    if m is None or (m.group(1) == "" and m.group(2) == ""):
        raise RegistryError("RANGE_INVALID", {"range": header, "size": size})
    if m.group(1) == "":  # the last n bytes
        n = int(m.group(2))
        if n == 0 or size == 0:
            raise RegistryError("RANGE_INVALID", {"range": header, "size": size})
        return max(0, size - n), size - 1
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else size - 1
    if start >= size or end < start:
        raise RegistryError("RANGE_INVALID", {"range": header, "size": size})
    return start, min(end, size - 1)


async def get_blob(request: web.Request, match: Match,
                   settings: Settings) -> web.StreamResponse:
    digest = digest_of(match.reference)
    store = settings.store
    try:
        size = await blocking(store.blob_size, match.name, digest)
    except BlobUnknown:
        raise RegistryError("BLOB_UNKNOWN", {"digest": digest}) from None
    headers = {"Docker-Content-Digest": digest, "Accept-Ranges": "bytes",
               "Content-Type": "application/octet-stream",
               "ETag": f'"{digest}"', "Cache-Control": "max-age=31536000"}
    start, end, status = 0, size - 1, 200
    if "Range" in request.headers:
        try:
            start, end = parse_range(request.headers["Range"], size)
        except RegistryError:
            request[EXTRA_HEADERS] = {"Content-Range": f"bytes */{size}"}
            raise
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    host = store.blob_host_path(digest) if request.method == "GET" and status == 200 else None
    if host is not None:  # the whole blob from a file: the kernel copies it (sendfile)
        return web.FileResponse(host, headers=headers)
    f = None
    if request.method != "HEAD":
        try:  # before the headers go out: a blob deleted since the stat is still a 404
            f = await blocking(store.open_blob, digest, start)
        except PathNotFound:
            raise RegistryError("BLOB_UNKNOWN", {"digest": digest}) from None
    resp = web.StreamResponse(status=status, headers=headers)
    resp.content_length = end - start + 1
    try:
        await resp.prepare(request)
        left = end - start + 1 if f is not None else 0
        while left > 0:
            chunk = await blocking(f.read, min(CHUNK, left))
            if not chunk:
                break
            await resp.write(chunk)
            left -= len(chunk)
    finally:
        if f is not None:
            f.close()
    await resp.write_eof()
    return resp


async def delete_blob(request: web.Request, match: Match, settings: Settings) -> web.Response:
    if not settings.delete_enabled:
        raise RegistryError("UNSUPPORTED", "deletes are disabled")
    digest = digest_of(match.reference)
    try:
        await blocking(settings.store.unlink_blob, match.name, digest)
    except BlobUnknown:
        raise RegistryError("BLOB_UNKNOWN", {"digest": digest}) from None
    return empty(202, {"Docker-Content-Digest": digest})


HANDLERS: Handlers = {"GET": get_blob, "HEAD": get_blob, "DELETE": delete_blob}
