"""Blob uploads (end-4, 5, 6, 11, 13): started by POST (or done in one POST with
`?digest=`, or answered by a cross-repository `?mount=&from=`), fed by PATCH, finished by
PUT, resumed from GET, cancelled by DELETE. The data lives in the repository's
`_uploads/<id>/`; the store moves it into place only once its digest is verified.

    POST  ─202─►  PATCH* (Content-Range must start at the current offset) ─►  PUT ?digest
      │                                                                       │
      └─ ?digest= with a body, or ?mount= of a linked blob ──────────────────► 201
"""

from __future__ import annotations

import asyncio
import re
import weakref

from aiohttp import web

from dockyard.image.errors import DigestMismatch
from dockyard.registry.errors import RegistryError
from dockyard.registry.routes import Match, URLs, valid_name
from dockyard.registry.server.base import (
    Handlers,
    Settings,
    blocking,
    copy_body,
    digest_of,
    empty,
)
from dockyard.registry.storage.blobs import UploadUnknown
from dockyard.registry.storage.driver import InvalidPath

_CONTENT_RANGE = re.compile(r"(?:bytes[= ])?(\d+)-(\d+)(?:/(\d+|\*))?")
_urls = URLs("")
# One writer at a time per upload: a second PATCH waits, then sees the new offset. Weak, so
# a lock lives only while a request holds or awaits it.
_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


def _lock(name: str, upload_id: str) -> asyncio.Lock:
    key = f"{name}/{upload_id}"
    lock = _locks.get(key)
    if lock is None:
        lock = _locks[key] = asyncio.Lock()
    return lock


def _range(size: int) -> str:
    return f"0-{max(size - 1, 0)}"


def _upload_headers(name: str, upload_id: str, size: int) -> dict[str, str]:
    return {"Location": _urls.upload(name, upload_id), "Range": _range(size),
            "Docker-Upload-UUID": upload_id}


def _created(name: str, digest: str) -> web.Response:
    return empty(201, {"Location": _urls.blob(name, digest), "Docker-Content-Digest": digest})


async def _size(settings: Settings, match: Match) -> int:
    try:
        return await blocking(settings.store.upload_size, match.name, match.reference)
    except (UploadUnknown, InvalidPath):
        raise RegistryError("BLOB_UPLOAD_UNKNOWN", {"upload": match.reference}) from None


async def _append(request: web.Request, settings: Settings, name: str, upload_id: str,
                  offset: int) -> int:
    """Append the request body (checked against Content-Range if there is one); return the
    upload's new size."""
    header = request.headers.get("Content-Range")
    if header:
        m = _CONTENT_RANGE.fullmatch(header.strip())
        if m is None:
            raise RegistryError("RANGE_INVALID", {"contentRange": header})
        start, end = int(m.group(1)), int(m.group(2))
        length = request.content_length
        if start != offset or end < start or (length is not None and
                                              length != end - start + 1):
            raise RegistryError("RANGE_INVALID", {"contentRange": header, "offset": offset})
    writer = await blocking(settings.store.upload_writer, name, upload_id)
    try:
        await copy_body(request, writer)
    finally:
        await blocking(writer.close)
    return writer.size


async def _finish(settings: Settings, name: str, upload_id: str, digest: str) -> web.Response:
    try:
        d = await blocking(settings.store.finish_upload, name, upload_id, digest)
    except DigestMismatch as e:
        raise RegistryError("DIGEST_INVALID", str(e)) from None
    except UploadUnknown:
        raise RegistryError("BLOB_UPLOAD_UNKNOWN", {"upload": upload_id}) from None
    return _created(name, d)


async def start_upload(request: web.Request, match: Match, settings: Settings) -> web.Response:
    store, name = settings.store, match.name
    mount, source = request.query.get("mount"), request.query.get("from")
    if mount is not None and source is not None and valid_name(source):
        d = digest_of(mount)
        if await blocking(store.blob_exists, source, d):
            await blocking(store.link_blob, name, d)
            return _created(name, d)
    digest = request.query.get("digest")
    if digest is not None:
        d = digest_of(digest)
        upload_id = await blocking(store.start_upload, name)
        try:
            await _append(request, settings, name, upload_id, 0)
        except BaseException:
            await blocking(store.cancel_upload, name, upload_id)
            raise
        return await _finish(settings, name, upload_id, d)
    upload_id = await blocking(store.start_upload, name)
    return empty(202, _upload_headers(name, upload_id, 0))


async def patch_upload(request: web.Request, match: Match, settings: Settings) -> web.Response:
    async with _lock(match.name, match.reference):
        offset = await _size(settings, match)
        size = await _append(request, settings, match.name, match.reference, offset)
    return empty(202, _upload_headers(match.name, match.reference, size))


async def put_upload(request: web.Request, match: Match, settings: Settings) -> web.Response:
    async with _lock(match.name, match.reference):
        offset = await _size(settings, match)
        digest = digest_of(request.query.get("digest"))
        if request.content_length or request.headers.get("Transfer-Encoding") == "chunked":
            await _append(request, settings, match.name, match.reference, offset)
        return await _finish(settings, match.name, match.reference, digest)


async def get_upload(request: web.Request, match: Match, settings: Settings) -> web.Response:
    size = await _size(settings, match)
    return empty(204, _upload_headers(match.name, match.reference, size))


async def delete_upload(request: web.Request, match: Match,
                        settings: Settings) -> web.Response:
    await _size(settings, match)
    try:
        await blocking(settings.store.cancel_upload, match.name, match.reference)
    except UploadUnknown:
        raise RegistryError("BLOB_UPLOAD_UNKNOWN", {"upload": match.reference}) from None
    return empty(204, {})


UPLOADS: Handlers = {"POST": start_upload}
UPLOAD: Handlers = {"GET": get_upload, "PATCH": patch_upload, "PUT": put_upload,
                    "DELETE": delete_upload}
