"""Transfer service: pull (resolve, fetch, unpack into the namespace's snapshotter, name) and
push, through dockyard.distribution, streaming progress; import and export of image archives.

Progress messages, in order, for a pull:
    resolving   name=ref
    downloading digest, progress (bytes so far), total, one or more per blob as it arrives
    complete    (after the unpack) name=the stored name, digest=the target's digest, media_type

A pull that dies with the supervisor (kill -9) leaves its half-written blobs as ingests in
the content store; the next pull of the same blobs resumes them with ranged requests. What it
had committed is held by the pull's lease until the lease expires, so nothing half-pulled is
named or collected early.

Registry access comes with the request, not from the supervisor's own files: mirrors,
insecure registries, per-host settings and credentials (the engine or `dockyard-ctr` reads
the user's config and passes what applies).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from dockyard.api.services.transfer.v1 import transfer_pb2 as pb
from dockyard.api.services.transfer.v1 import transfer_pb2_grpc as rpc
from dockyard.containerd import requestmeta
from dockyard.containerd.errors import InvalidArgument, NotFound
from dockyard.containerd.service import Registration, blocking
from dockyard.containerd.supervisor import Supervisor
from dockyard.image.platforms import Platform

Report = Callable[[pb.Progress], None]


def registry_hosts(config: pb.RegistryConfig) -> Any:
    from dockyard.distribution.hosts import HostsError, RegistryHosts

    try:
        base = RegistryHosts.from_daemon_config({
            "registry-mirrors": list(config.registry_mirrors),
            "insecure-registries": list(config.insecure_registries)})
        table: dict[str, dict[str, Any]] = {}
        for host, h in config.hosts.items():
            entry: dict[str, Any] = {}
            if h.mirrors:
                entry["mirrors"] = list(h.mirrors)
            if h.insecure:
                entry["insecure"] = True
            if h.ca_file:
                entry["ca_file"] = h.ca_file
            if h.redirect:
                entry["redirect"] = h.redirect
                entry["fallback"] = h.fallback
            table[host] = entry
        return RegistryHosts.from_hosts_config(table, base) if table else base
    except HostsError as e:
        raise InvalidArgument(f"registry configuration: {e}") from None


def registry_auth(auth: Any) -> Any:
    """Credentials only from the request: the supervisor reads no user's config file."""
    from dockyard.distribution.auth import RegistryAuth
    from dockyard.distribution.credentials import Credentials

    given = {host: Credentials(host, a.username, a.password, a.identity_token)
             for host, a in auth.items()}
    return RegistryAuth(lambda host: given.get(host))


def platform(p: Any, present: bool) -> Platform | None:
    if not present or not (p.os or p.architecture):
        return None
    return Platform(p.os or "linux", p.architecture, p.variant or None, p.os_version or None)


async def stream(work: Callable[[Report], Any]) -> AsyncIterator[pb.Progress]:
    """Run `work(report)` and yield what it reports as it goes; its error ends the stream
    (after what was reported before it). Downloads report often: only the latest count of a
    blob is kept while the client is behind."""
    queue: asyncio.Queue[pb.Progress | None] = asyncio.Queue()
    latest: dict[str, pb.Progress] = {}

    def report(p: pb.Progress) -> None:
        if p.event == "downloading":
            if p.digest in latest:
                latest[p.digest].CopyFrom(p)
                return
            latest[p.digest] = p
        queue.put_nowait(p)

    async def run() -> None:
        try:
            await work(report)
        finally:
            queue.put_nowait(None)

    job = asyncio.create_task(run())
    try:
        while (item := await queue.get()) is not None:
            if item.event == "downloading":
                latest.pop(item.digest, None)
            yield item
        await job  # raises the pull's error, if any
    finally:
        if not job.done():
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await job


class TransferService(rpc.TransferServicer):
    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self._session: Any = None

    async def session(self) -> Any:
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def Pull(self, request: pb.PullRequest,
                   context: grpc.aio.ServicerContext) -> AsyncIterator[pb.Progress]:
        from dockyard.distribution.transfer import pull

        ns = requestmeta.namespace(context)
        if not request.ref:
            raise InvalidArgument("ref must not be empty")
        hosts = registry_hosts(request.registry)
        auth = registry_auth(request.auth)
        want = platform(request.platform, request.HasField("platform"))
        lib = self.sup.writable_library(ns)
        session = await self.session()

        async def work(report: Report) -> None:
            report(pb.Progress(event="resolving", name=request.ref))

            def progress(digest: Any, done: int, total: int) -> None:
                report(pb.Progress(event="downloading", digest=str(digest), progress=done,
                                   total=total))
            pulled = await pull(lib, request.ref, session=session, hosts=hosts, auth=auth,
                                platform=want, progress=progress, unpack=request.unpack)
            self.sup.events.publish(ns, "/images/create", {"name": pulled.name})
            report(pb.Progress(event="complete", name=pulled.name,
                               digest=str(pulled.target.digest),
                               media_type=pulled.target.media_type))

        async for item in stream(work):
            yield item

    async def Push(self, request: pb.PushRequest,
                   context: grpc.aio.ServicerContext) -> AsyncIterator[pb.Progress]:
        from dockyard.distribution.transfer import push

        ns = requestmeta.namespace(context)
        if not request.name:
            raise InvalidArgument("name must not be empty")
        hosts = registry_hosts(request.registry)
        auth = registry_auth(request.auth)
        lib = self.sup.library(ns)
        if lib is None:
            raise NotFound(f"image {request.name!r}")
        session = await self.session()

        async def work(report: Report) -> None:
            def progress(digest: Any, done: int, total: int) -> None:
                report(pb.Progress(event="uploading", digest=str(digest), progress=done,
                                   total=total))
            pushed = await push(lib, request.name, request.ref or None, session=session,
                                hosts=hosts, auth=auth, mount_from=request.mount_from or None,
                                progress=progress)
            report(pb.Progress(event="complete", name=request.ref or request.name,
                               digest=str(pushed.digest), media_type=pushed.media_type))

        async for item in stream(work):
            yield item


    async def Import(self, requests: AsyncIterator[pb.ImportRequest],
                     context: grpc.aio.ServicerContext) -> AsyncIterator[pb.Progress]:
        """The streamed archive is spooled to a file beside the namespace's store (a tar is
        read by offset), loaded, and removed."""
        from dockyard.image.archive.load import load

        ns = requestmeta.namespace(context)
        lib = self.sup.writable_library(ns)
        with tempfile.NamedTemporaryFile(dir=lib.root, prefix="import-", suffix=".tar") as spool:
            options: pb.ImportRequest | None = None
            async for msg in requests:
                options = options or msg
                if msg.data:
                    await blocking(spool.write, msg.data)
            if options is None:
                raise InvalidArgument("no archive was sent")
            await blocking(spool.flush)
            loaded = await blocking(load, lib, spool.name, base_name=options.base_name or None,
                                    unpack=not options.no_unpack)
        for name in loaded.names:
            target = loaded.targets[name]
            self.sup.events.publish(ns, "/images/create", {"name": name})
            yield pb.Progress(event="complete", name=name, digest=str(target.digest),
                              media_type=target.media_type)

    async def Export(self, request: pb.ExportRequest,
                     context: grpc.aio.ServicerContext) -> AsyncIterator[pb.ExportResponse]:
        """Written to a file beside the store first (save writes a tar with seeks), then
        streamed in 1 MiB messages."""
        from dockyard.image.archive.save import save

        ns = requestmeta.namespace(context)
        lib = self.sup.library(ns)
        if lib is None:
            raise NotFound(f"image {request.names[0] if request.names else ''!r}")
        if not request.names:
            raise InvalidArgument("no image names to export")
        want = platform(request.platform, request.HasField("platform"))
        with tempfile.NamedTemporaryFile(dir=lib.root, prefix="export-", suffix=".tar") as out:
            await blocking(save, lib, list(request.names), out, platform=want)
            await blocking(out.seek, 0)
            while chunk := await blocking(out.read, 1 << 20):
                yield pb.ExportResponse(data=chunk)


def service(sup: Supervisor) -> Registration:
    servicer = TransferService(sup)
    return Registration("dockyard.services.transfer.v1.Transfer",
                        lambda server: rpc.add_TransferServicer_to_server(servicer, server),
                        stop=servicer.close)
