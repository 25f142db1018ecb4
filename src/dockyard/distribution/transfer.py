"""Pull an image from a registry into the image library, and push one from it.

    pull   resolve the reference ─► index? choose the platform ─► manifest ─► config and
           layers, several at a time, each straight into the content store (verified,
           resumable) ─► unpack ─► name it
    push   layers and config (skipped where the registry has them, mounted from another
           repository where asked) ─► manifests ─► the index, tagged last

A pull holds a lease from the first blob to the name, so a collection in between keeps
what it fetched; a failed pull names nothing, and what it fetched is garbage for later
(or resumed by the next pull of the same blobs).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import aiohttp

from dockyard.distribution.client import Authenticator, Progress, Repository, gather_limited
from dockyard.distribution.errors import RegistryError
from dockyard.distribution.hosts import Endpoint, RegistryHosts
from dockyard.image import manifest as spec
from dockyard.image import platforms, reference
from dockyard.image.content.leases import Resource
from dockyard.image.errors import InvalidArgument, NotFound
from dockyard.image.library import ImageLibrary, index_labels, manifest_labels
from dockyard.image.manifest import Descriptor
from dockyard.image.platforms import Platform

T = TypeVar("T")
UNREACHABLE = (aiohttp.ClientConnectionError, asyncio.TimeoutError)


async def first_answering(hosts: RegistryHosts, domain: str,
                          attempt: Callable[[Endpoint], Awaitable[T]], *,
                          push: bool = False) -> T:
    """Try `attempt` on each endpoint of `domain` in the order hosts gives (redirect,
    mirrors, origin; https before http where the host is insecure): the next one is tried
    when one cannot be reached, or when a mirror has not got what was asked for."""
    endpoints = [e for e in hosts.endpoints(domain) if not (push and e.pull_only)]
    if not endpoints:
        raise InvalidArgument(f"no endpoint to push to {domain}: only pull mirrors")
    for endpoint in endpoints[:-1]:
        try:
            return await attempt(endpoint)
        except UNREACHABLE:
            continue
        except RegistryError as e:
            if not endpoint.is_mirror or e.status in (401, 403):
                raise
    return await attempt(endpoints[-1])


@dataclass(frozen=True)
class Pulled:
    name: str
    target: Descriptor
    manifest: Descriptor
    chain_id: str | None


async def pull(lib: ImageLibrary, ref_text: str, *, session: aiohttp.ClientSession,
               hosts: RegistryHosts | None = None, auth: Authenticator | None = None,
               platform: Platform | None = None, progress: Progress | None = None,
               concurrency: int = 3, unpack: bool = True) -> Pulled:
    ref = reference.parse_tagged(ref_text)

    async def attempt(endpoint: Endpoint) -> Pulled:
        repo = Repository(session, endpoint, ref.path, auth=auth)
        return await _pull(lib, repo, ref, platform, progress, concurrency, unpack)
    return await first_answering(hosts or RegistryHosts(), ref.domain, attempt)


async def _pull(lib: ImageLibrary, repo: Repository, ref: reference.Reference,
                platform: Platform | None, progress: Progress | None, concurrency: int,
                unpack: bool) -> Pulled:
    target = await repo.resolve(ref.digest or ref.tag or "latest")
    want = platform or platforms.host()
    with lib.lease() as lease:
        hold = lambda d: lib.leases.add_resource(lease, Resource.content(d))
        hold(target.digest)
        chosen = target
        while spec.is_index(chosen.media_type):
            data = await repo.fetch_manifest(chosen)
            index = spec.parse_index(data, chosen.media_type, chosen.digest)
            lib.put_json(data, chosen.media_type, lease, index_labels(index), chosen.digest)
            found = platforms.choose(list(index.manifests), want=want)
            if found is None:
                raise NotFound(f"no matching manifest for {platforms.format(want)} in the "
                               "manifest list entries")
            chosen = found
            hold(chosen.digest)
        data = await repo.fetch_manifest(chosen)
        man = spec.parse_manifest(data, chosen.media_type, chosen.digest)
        blobs = [man.config, *man.layers]
        for d in blobs:
            hold(d.digest)
        await gather_limited([repo.fetch_blob(d, lib.content, progress=progress)
                              for d in blobs], concurrency)
        lib.put_json(data, chosen.media_type, lease, manifest_labels(man), chosen.digest)
        chain = await asyncio.to_thread(lib.unpack, target, want) if unpack else None
        name = str(ref)
        lib.tag(name, target)
    return Pulled(name, target, Descriptor(chosen.media_type, chosen.digest, chosen.size), chain)


async def push(lib: ImageLibrary, name: str, ref_text: str | None = None, *,
               session: aiohttp.ClientSession, hosts: RegistryHosts | None = None,
               auth: Authenticator | None = None, mount_from: str | None = None,
               progress: Progress | None = None, concurrency: int = 3,
               chunk_size: int | None = None) -> Descriptor:
    """Push the image named `name` (a full reference in the library) to `ref_text` (the same
    name if None); return the pushed target's descriptor."""
    image = lib.get(name)
    ref = reference.parse_tagged(ref_text or name)

    async def attempt(endpoint: Endpoint) -> Descriptor:
        repo = Repository(session, endpoint, ref.path, auth=auth, push=True)
        await _push_tree(lib, repo, image.target, mount_from, progress, concurrency,
                         chunk_size)
        await repo.push_manifest(ref.tag or str(image.target.digest),
                                 lib.read_json(image.target), image.target.media_type)
        return image.target
    return await first_answering(hosts or RegistryHosts(), ref.domain, attempt, push=True)


async def _push_tree(lib: ImageLibrary, repo: Repository, d: Descriptor, mount_from: str | None,
                     progress: Progress | None, concurrency: int,
                     chunk_size: int | None) -> None:
    """Everything `d` references, children first; `d` itself is the caller's to push."""
    if spec.is_index(d.media_type):
        index = spec.parse_index(lib.read_json(d), d.media_type, d.digest)
        for m in index.manifests:
            try:
                lib.content.info(m.digest)
            except NotFound:
                continue  # a platform never pulled here
            await _push_tree(lib, repo, m, mount_from, progress, concurrency, chunk_size)
            await repo.push_manifest(str(m.digest), lib.read_json(m), m.media_type)
        return
    man = spec.parse_manifest(lib.read_json(d), d.media_type, d.digest)

    def opener(blob: Descriptor) -> Callable[[], object]:
        return lambda: lib.content.reader_at(blob.digest)

    await gather_limited([repo.push_blob(b, opener(b), mount_from=mount_from,  # type: ignore[arg-type]
                                         chunk_size=chunk_size, progress=progress)
                          for b in (man.config, *man.layers)], concurrency)
