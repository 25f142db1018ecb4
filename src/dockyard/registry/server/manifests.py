"""Manifests by tag or digest: GET, HEAD, PUT, DELETE (end-3, end-7, end-9).

A manifest is served with the media type it declares (its `mediaType` field; an OCI
document without one by its shape), so what was pushed comes back byte for byte with the
same Content-Type, whichever registry wrote the tree."""

from __future__ import annotations

import json

from aiohttp import web

from dockyard.image import mediatypes
from dockyard.image.errors import DigestMismatch, InvalidArgument
from dockyard.image.manifest import MAX_MANIFEST_SIZE, parse
from dockyard.registry.errors import RegistryError
from dockyard.registry.routes import Match, URLs
from dockyard.registry.server.base import Handlers, Settings, blocking, digest_of, empty
from dockyard.registry.storage.blobs import BlobUnknown, ManifestUnknown

_urls = URLs("")
_ANY_TYPE = frozenset({"", "application/json", "application/octet-stream"})


def media_type_of(data: bytes) -> str:
    try:
        o = json.loads(data)
    except ValueError:
        return mediatypes.OCI_MANIFEST
    if isinstance(o, dict):
        if isinstance(o.get("mediaType"), str):
            return o["mediaType"]
        if "manifests" in o:
            return mediatypes.OCI_INDEX
    return mediatypes.OCI_MANIFEST


async def get_manifest(request: web.Request, match: Match, settings: Settings) -> web.Response:
    if ":" in match.reference:
        digest_of(match.reference)
    try:
        digest, data = await blocking(settings.store.get_manifest, match.name, match.reference)
    except ManifestUnknown:
        raise RegistryError("MANIFEST_UNKNOWN", {"name": match.name,
                                                 "reference": match.reference}) from None
    headers = {"Docker-Content-Digest": digest, "Content-Type": media_type_of(data),
               "ETag": f'"{digest}"'}
    return web.Response(body=data, headers=headers)


async def _read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_MANIFEST_SIZE:
        raise RegistryError("MANIFEST_INVALID", f"manifest is over {MAX_MANIFEST_SIZE} bytes")
    data = bytearray()
    async for chunk in request.content.iter_chunked(1 << 16):
        data += chunk
        if len(data) > MAX_MANIFEST_SIZE:
            raise RegistryError("MANIFEST_INVALID",
                                f"manifest is over {MAX_MANIFEST_SIZE} bytes")
    return bytes(data)


async def put_manifest(request: web.Request, match: Match, settings: Settings) -> web.Response:
    name, ref = match.name, match.reference
    data = await _read_body(request)
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
    media_type = None if content_type in _ANY_TYPE else content_type
    by_digest = digest_of(ref) if ":" in ref else None
    try:
        doc = parse(data, media_type, digest=by_digest)
        digest = await blocking(settings.store.put_manifest, name, data, by_digest,
                                None if by_digest else ref, media_type)
    except DigestMismatch as e:
        raise RegistryError("DIGEST_INVALID", str(e)) from None
    except (BlobUnknown, ManifestUnknown) as e:
        raise RegistryError("MANIFEST_BLOB_UNKNOWN", {"digest": e.path}) from None
    except InvalidArgument as e:
        raise RegistryError("MANIFEST_INVALID", str(e)) from None
    headers = {"Location": _urls.manifest(name, digest), "Docker-Content-Digest": digest}
    if doc.subject is not None:
        headers["OCI-Subject"] = doc.subject.digest
    return empty(201, headers)


async def delete_manifest(request: web.Request, match: Match,
                          settings: Settings) -> web.Response:
    if not settings.delete_enabled:
        raise RegistryError("UNSUPPORTED", "deletes are disabled")
    store, ref = settings.store, match.reference
    try:
        if ":" in ref:
            await blocking(store.delete_manifest, match.name, digest_of(ref))
        else:
            await blocking(store.delete_tag, match.name, ref)
    except ManifestUnknown:
        raise RegistryError("MANIFEST_UNKNOWN", {"name": match.name,
                                                 "reference": ref}) from None
    return empty(202, {})


HANDLERS: Handlers = {"GET": get_manifest, "HEAD": get_manifest, "PUT": put_manifest,
                      "DELETE": delete_manifest}
