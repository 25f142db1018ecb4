"""Talk to one registry: resolve a reference, fetch manifests and blobs (verified, resumable),
push blobs (monolithic, chunked, or mounted from another repository) and manifests.

One `Repository` is one repository on one endpoint. Every request goes through `_request`,
which adds the endpoint's authorization and, on a 401, lets the authenticator answer the
challenge once and retries. Errors are the distribution spec's, mapped in one place
(`distribution.errors.from_response`).

Blobs stream into the content store: a fetch writes through an ingest keyed by the digest,
so an interrupted download resumes with a `Range` request where the ingest stopped, and
nothing is visible before the digest and size have been checked.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, BinaryIO, Protocol
from urllib.parse import quote

import aiohttp

from dockyard.distribution.errors import RegistryError, from_response
from dockyard.distribution.hosts import Endpoint
from dockyard.image import mediatypes as mt
from dockyard.image.content.store import Store
from dockyard.image.digest import Digest, of_bytes
from dockyard.image.errors import AlreadyExists, DigestMismatch, InvalidArgument
from dockyard.image.manifest import Descriptor
from dockyard.registry.routes import URLs

MANIFEST_ACCEPT = ", ".join((mt.OCI_INDEX, mt.OCI_MANIFEST, mt.DOCKER_MANIFEST_LIST,
                             mt.DOCKER_MANIFEST))
MAX_MANIFEST = 4 << 20
CHUNK = 1 << 20
RETRIES = 3

Progress = Callable[[Digest, int, int], None]  # digest, bytes done, total


class Authenticator(Protocol):
    async def headers(self, session: aiohttp.ClientSession, base: str,
                      scope: str) -> dict[str, str]: ...

    async def challenged(self, session: aiohttp.ClientSession, base: str, scope: str,
                         response: aiohttp.ClientResponse) -> bool: ...


def ssl_for(endpoint: Endpoint) -> Any:
    """aiohttp's `ssl` argument for an endpoint: the default checks, none, or a CA file."""
    if endpoint.scheme != "https":
        return None
    if not endpoint.tls.verify:
        return False
    if endpoint.tls.ca_file:
        return ssl.create_default_context(cafile=endpoint.tls.ca_file)
    return None


class Repository:
    def __init__(self, session: aiohttp.ClientSession, endpoint: Endpoint, name: str, *,
                 auth: Authenticator | None = None, push: bool = False) -> None:
        self.session, self.endpoint, self.name, self.auth = session, endpoint, name, auth
        self.urls = URLs(endpoint.url_base)
        self.base, self.ssl = endpoint.url_base, ssl_for(endpoint)
        self.scope = f"repository:{name}:{'pull,push' if push else 'pull'}"

    # -- the one place requests are made --------------------------------------------------

    async def _request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                       data: Any = None, ok: tuple[int, ...] = (200,),
                       scope: str | None = None) -> aiohttp.ClientResponse:
        scope = scope or self.scope
        for attempt in (1, 2):
            sent = dict(headers or {})
            if self.auth is not None:
                sent.update(await self.auth.headers(self.session, self.base, scope))
            resp = await self.session.request(method, url, headers=sent, data=data,
                                              ssl=self.ssl)
            if resp.status == 401 and attempt == 1 and self.auth is not None and \
                    await self.auth.challenged(self.session, self.base, scope, resp):
                resp.release()
                if data is not None and not isinstance(data, bytes | bytearray):
                    break  # a stream cannot be sent twice: report the 401
                continue
            break
        if resp.status not in ok:
            body = await resp.read() if method != "HEAD" else b""
            resp.release()
            raise from_response(resp.status, body, url)
        return resp

    # -- manifests ------------------------------------------------------------------------

    async def resolve(self, reference: str) -> Descriptor:
        """The descriptor of a tag or digest: HEAD, or GET where the registry does not send
        Docker-Content-Digest on HEAD."""
        url = self.urls.manifest(self.name, reference)
        try:
            resp = await self._request("HEAD", url, headers={"Accept": MANIFEST_ACCEPT})
        except RegistryError as e:
            if e.status in (401, 403):
                raise
            # a HEAD error has no body to say why: the GET's will (or it works after all)
            data, media_type = await self._get_manifest(reference)
            return Descriptor(media_type, _digest_for(reference, data), len(data))
        digest, media_type = resp.headers.get("Docker-Content-Digest"), _content_type(resp)
        size = resp.content_length
        resp.release()
        if digest and size is not None and media_type:
            d = Digest(digest)
            if reference.startswith(("sha256:", "sha512:")) and d != reference:
                raise DigestMismatch(f"manifest {reference}: registry says {d}")
            return Descriptor(media_type, d, size)
        data, media_type = await self._get_manifest(reference)
        return Descriptor(media_type, _digest_for(reference, data), len(data))

    async def fetch_manifest(self, descriptor: Descriptor) -> bytes:
        data, _media_type = await self._get_manifest(descriptor.digest)
        if len(data) != descriptor.size or of_bytes(data, descriptor.digest.algorithm) != \
                descriptor.digest:
            raise DigestMismatch(f"manifest {descriptor.digest}: the registry sent other "
                                 "content")
        return data

    async def _get_manifest(self, reference: str) -> tuple[bytes, str]:
        url = self.urls.manifest(self.name, reference)
        resp = await self._request("GET", url, headers={"Accept": MANIFEST_ACCEPT})
        try:
            if resp.content_length is not None and resp.content_length > MAX_MANIFEST:
                raise InvalidArgument(f"manifest {reference}: {resp.content_length} bytes, "
                                      f"more than {MAX_MANIFEST}")
            data = await resp.content.read(MAX_MANIFEST + 1)
            if len(data) > MAX_MANIFEST:
                raise InvalidArgument(f"manifest {reference}: more than {MAX_MANIFEST} bytes")
            media_type = _content_type(resp) or _sniff(data)
        finally:
            resp.release()
        return data, media_type

    async def push_manifest(self, reference: str, data: bytes, media_type: str) -> Digest:
        url = self.urls.manifest(self.name, reference)
        resp = await self._request("PUT", url, headers={"Content-Type": media_type}, data=data,
                                   ok=(201, 200))
        resp.release()
        return of_bytes(data)

    async def tags(self) -> list[str]:
        out: list[str] = []
        url: str | None = self.urls.tags(self.name)
        while url:
            resp = await self._request("GET", url)
            body = await resp.json(content_type=None)
            link = resp.headers.get("Link", "")
            resp.release()
            out += [t for t in (body.get("tags") or []) if isinstance(t, str)]
            url = _next_link(self.base, link)
        return out

    # -- blobs ----------------------------------------------------------------------------

    async def fetch_blob(self, descriptor: Descriptor, store: Store, *,
                         progress: Progress | None = None,
                         labels: Mapping[str, str] | None = None) -> None:
        """Copy a blob into `store`, resuming an earlier ingest of it; retried from where it
        stopped when the connection drops."""
        d = descriptor.digest
        ref = f"fetch-{d}"
        for attempt in range(RETRIES):
            try:
                writer = store.writer(ref, expected=d, total=descriptor.size)
            except AlreadyExists:
                return
            with writer:
                offset = writer.status().offset
                if offset >= descriptor.size:
                    _commit(writer, descriptor, labels)
                    return
                headers = {"Range": f"bytes={offset}-"} if offset else {}
                resp = await self._request("GET", self.urls.blob(self.name, d),
                                           headers=headers, ok=(200, 206))
                try:
                    if offset and resp.status == 200:  # no ranges here: start again
                        writer.close()
                        store.abort(ref)
                        resp.release()
                        continue
                    done = offset
                    async for chunk in _chunks(resp):
                        writer.write(chunk)
                        done += len(chunk)
                        if done > descriptor.size:
                            raise DigestMismatch(f"blob {d}: more than {descriptor.size} "
                                                 "bytes")
                        if progress:
                            progress(d, done, descriptor.size)
                finally:
                    resp.release()
                if done < descriptor.size:
                    if attempt + 1 < RETRIES:
                        continue
                    raise DigestMismatch(f"blob {d}: got {done} of {descriptor.size} bytes")
                try:
                    _commit(writer, descriptor, labels)
                except DigestMismatch:
                    store.abort(ref)
                    raise
                return

    async def blob_exists(self, digest: str) -> bool:
        try:
            resp = await self._request("HEAD", self.urls.blob(self.name, digest))
        except RegistryError as e:
            if e.status == 404:
                return False
            raise
        resp.release()
        return True

    async def push_blob(self, descriptor: Descriptor, open_blob: Callable[[], BinaryIO], *,
                        mount_from: str | None = None, chunk_size: int | None = None,
                        progress: Progress | None = None) -> None:
        """Upload a blob unless the registry has it: mounted from `mount_from` if it can be,
        else in one PUT, or in PATCHes of `chunk_size` bytes."""
        d = descriptor.digest
        if await self.blob_exists(d):
            return
        start = self.urls.uploads(self.name, mount=d, source=mount_from) if mount_from \
            else self.urls.uploads(self.name)
        scope = self.scope + (f" repository:{mount_from}:pull" if mount_from else "")
        resp = await self._request("POST", start, ok=(201, 202), scope=scope)
        location, status = resp.headers.get("Location", ""), resp.status
        resp.release()
        if status == 201:
            return  # mounted
        url = _absolute(self.base, location)
        with open_blob() as f:
            if chunk_size:
                offset = 0
                while data := f.read(chunk_size):
                    resp = await self._request(
                        "PATCH", url, data=data, ok=(202,),
                        headers={"Content-Type": "application/octet-stream",
                                 "Content-Range": f"{offset}-{offset + len(data) - 1}"})
                    url = _absolute(self.base, resp.headers.get("Location", url))
                    resp.release()
                    offset += len(data)
                    if progress:
                        progress(d, offset, descriptor.size)
                final = _with_digest(url, d)
                resp = await self._request("PUT", final, ok=(201,))
            else:
                data = f.read()
                resp = await self._request("PUT", _with_digest(url, d), data=data, ok=(201,),
                                           headers={"Content-Type":
                                                    "application/octet-stream"})
                if progress:
                    progress(d, len(data), descriptor.size)
        resp.release()


def _commit(writer: Any, descriptor: Descriptor, labels: Mapping[str, str] | None) -> None:
    try:
        writer.commit(descriptor.size, descriptor.digest, labels)
    except AlreadyExists:
        pass


async def _chunks(resp: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    try:
        async for chunk in resp.content.iter_chunked(CHUNK):
            yield chunk
    except (TimeoutError, aiohttp.ClientPayloadError, aiohttp.ClientConnectionError):
        return  # the caller sees fewer bytes than announced and resumes


def _content_type(resp: aiohttp.ClientResponse) -> str:
    value = resp.headers.get("Content-Type", "")
    return value.split(";", 1)[0].strip()


def _sniff(data: bytes) -> str:
    try:
        doc = json.loads(data)
    except ValueError:
        raise InvalidArgument("manifest: not JSON and no Content-Type") from None
    if isinstance(doc, dict) and isinstance(doc.get("mediaType"), str):
        return str(doc["mediaType"])
    return mt.OCI_INDEX if isinstance(doc, dict) and "manifests" in doc else mt.OCI_MANIFEST


def _digest_for(reference: str, data: bytes) -> Digest:
    if reference.startswith(("sha256:", "sha512:")):
        want = Digest(reference)
        got = of_bytes(data, want.algorithm)
        if got != want:
            raise DigestMismatch(f"manifest {reference}: the registry sent {got}")
        return want
    return of_bytes(data)


def _absolute(base: str, location: str) -> str:
    if location.startswith(("http://", "https://")):
        return location
    return base.rstrip("/") + "/" + location.lstrip("/")


def _with_digest(url: str, digest: str) -> str:
    return url + ("&" if "?" in url else "?") + f"digest={quote(digest, safe='')}"


def _next_link(base: str, link: str) -> str | None:
    """RFC 5988 `Link: </v2/…?last=x&n=y>; rel="next"`."""
    for part in link.split(","):
        target, _, params = part.partition(";")
        if 'rel="next"' in params.replace(" ", ""):
            return _absolute(base, target.strip().strip("<>"))
    return None


async def gather_limited(jobs: list[Awaitable[None]], limit: int) -> None:
    """Run `jobs` with at most `limit` at a time; the first failure cancels the rest."""
    sem = asyncio.Semaphore(limit)

    async def run(job: Awaitable[None]) -> None:
        async with sem:
            await job

    tasks = [asyncio.ensure_future(run(j)) for j in jobs]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
