"""Content service: the namespace's LocalStore (dockyard.image.content) over gRPC.

A Write stream, as containerd's service runs it (one response per request):

    client                                   service
    {ref, action STAT}              ──►      open (or resume) the ingest of ref: its lock is
                                    ◄──      held until the stream ends; {offset so far, total}
    {WRITE, offset, data}           ──►      offset must be the current one (OutOfRange
                                    ◄──      otherwise; 0 starts over); {offset, digest so far}
    ...
    {COMMIT, total, expected, labels} ──►    verify size and digest, fsync, rename into blobs/
                                    ◄──      {offset, digest}; the stream ends

If the stream breaks off (the client went away, or this process was killed) the ingest stays
on disk with what was written; a new stream for the same ref resumes at its offset. A commit
whose size or digest does not match stores nothing (FailedPrecondition) and keeps the ingest.
With a `containerd-lease` header, the ingest and the committed blob are added to that lease.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import empty_pb2

from dockyard.api.services.content.v1 import content_pb2 as pb
from dockyard.api.services.content.v1 import content_pb2_grpc as rpc
from dockyard.containerd import requestmeta
from dockyard.containerd.errors import AlreadyExists, InvalidArgument, NotFound, OutOfRange
from dockyard.containerd.protoconv import filters, paths, timestamp
from dockyard.containerd.service import Registration, blocking
from dockyard.containerd.supervisor import Supervisor
from dockyard.image import errors as image_errors
from dockyard.image.content.ingest import LocalWriter
from dockyard.image.content.leases import Resource
from dockyard.image.content.local import LocalStore
from dockyard.image.content.store import Info, Status
from dockyard.image.digest import Digest
from dockyard.image.library import ImageLibrary

T = TypeVar("T")

CHUNK = 1 << 20  # bytes per Read response, as containerd's buffer
LIST_BATCH = 100  # infos per List response


def _digest(text: str) -> Digest:
    try:
        return Digest(text)
    except image_errors.InvalidArgument:
        raise InvalidArgument(f'"{text}" failed validation') from None


def _info(i: Info) -> pb.Info:
    return pb.Info(digest=str(i.digest), size=i.size, created_at=timestamp(i.created_at),
                   updated_at=timestamp(i.updated_at), labels=dict(i.labels))


def _status(s: Status) -> pb.Status:
    return pb.Status(started_at=timestamp(s.started_at), updated_at=timestamp(s.updated_at),
                     ref=s.ref, offset=s.offset, total=s.total or 0,
                     expected=str(s.expected or ""))


def _not_found(digest: Digest) -> NotFound:
    return NotFound(f"content digest {digest}")


class ContentService(rpc.ContentServicer):
    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup

    def _store(self, context: grpc.aio.ServicerContext) -> tuple[str, LocalStore | None]:
        ns = requestmeta.namespace(context)
        lib = self.sup.library(ns)
        return ns, lib.content if lib is not None else None

    async def Info(self, request: pb.InfoRequest,
                   context: grpc.aio.ServicerContext) -> pb.InfoResponse:
        _, store = self._store(context)
        digest = _digest(request.digest)
        if store is None:
            raise _not_found(digest)
        try:
            return pb.InfoResponse(info=_info(await blocking(store.info, digest)))
        except image_errors.NotFound:
            raise _not_found(digest) from None

    async def Update(self, request: pb.UpdateRequest,
                     context: grpc.aio.ServicerContext) -> pb.UpdateResponse:
        _, store = self._store(context)
        digest = _digest(request.info.digest)
        if store is None:
            raise _not_found(digest)
        try:
            info = await blocking(store.update, digest, dict(request.info.labels),
                                  paths(request.update_mask))
        except image_errors.NotFound:
            raise _not_found(digest) from None
        return pb.UpdateResponse(info=_info(info))

    async def List(self, request: pb.ListContentRequest,
                   context: grpc.aio.ServicerContext) -> AsyncIterator[pb.ListContentResponse]:
        _, store = self._store(context)
        if store is None:
            return
        found = await blocking(lambda: list(store.walk(*filters(request.filters))))
        for start in range(0, len(found), LIST_BATCH):
            yield pb.ListContentResponse(info=[_info(i) for i in found[start:start + LIST_BATCH]])

    async def Delete(self, request: pb.DeleteContentRequest,
                     context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        ns, store = self._store(context)
        digest = _digest(request.digest)
        if store is None:
            raise _not_found(digest)
        try:
            await blocking(store.delete, digest)
        except image_errors.NotFound:
            raise _not_found(digest) from None
        self.sup.events.publish(ns, "/content/delete", {"digest": str(digest)})
        return empty_pb2.Empty()

    async def Read(self, request: pb.ReadContentRequest,
                   context: grpc.aio.ServicerContext) -> AsyncIterator[pb.ReadContentResponse]:
        _, store = self._store(context)
        digest = _digest(request.digest)
        if store is None:
            raise _not_found(digest)
        try:
            reader = await blocking(store.reader_at, digest)
        except image_errors.NotFound:
            raise _not_found(digest) from None
        try:
            offset = max(request.offset, 0)
            if offset > reader.size:
                raise OutOfRange(f"read past object length {reader.size} bytes")
            size = request.size if 0 < request.size <= reader.size else reader.size
            end = min(offset + size, reader.size)
            while offset < end:
                data = await blocking(reader.read_at, min(CHUNK, end - offset), offset)
                if not data:
                    break
                yield pb.ReadContentResponse(offset=offset, data=data)
                offset += len(data)
        finally:
            reader.close()

    async def Status(self, request: pb.StatusRequest,
                     context: grpc.aio.ServicerContext) -> pb.StatusResponse:
        _, store = self._store(context)
        if store is None:
            raise NotFound(f"ingest ref {request.ref!r}")
        return pb.StatusResponse(status=_status(await blocking(store.status, request.ref)))

    async def ListStatuses(self, request: pb.ListStatusesRequest,
                           context: grpc.aio.ServicerContext) -> pb.ListStatusesResponse:
        _, store = self._store(context)
        if store is None:
            return pb.ListStatusesResponse()
        found = await blocking(store.list_statuses, *filters(request.filters))
        return pb.ListStatusesResponse(statuses=[_status(s) for s in found])

    async def Abort(self, request: pb.AbortRequest,
                    context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        _, store = self._store(context)
        if store is None:
            raise NotFound(f"ingest ref {request.ref!r}")
        await blocking(store.abort, request.ref)
        return empty_pb2.Empty()

    async def Write(self, request_iterator: AsyncIterator[pb.WriteContentRequest],
                    context: grpc.aio.ServicerContext
                    ) -> AsyncIterator[pb.WriteContentResponse]:
        ns = requestmeta.namespace(context)
        session: _WriteSession | None = None
        try:
            async for req in request_iterator:
                if session is None:
                    if not req.ref:
                        raise InvalidArgument("first message must have a reference")
                    lib = await blocking(self.sup.writable_library, ns)
                    session = await _WriteSession.open(lib, req, requestmeta.lease(context))
                elif req.ref and req.ref != session.ref:
                    raise InvalidArgument(f"write ref changed from {session.ref!r} to "
                                          f"{req.ref!r}")
                response, committed = await session.handle(req)
                if committed is not None:
                    self.sup.events.publish(ns, "/content/create",
                                            {"digest": str(committed[0]), "size": committed[1]})
                yield response
                if committed is not None:
                    return
        finally:
            if session is not None:
                await session.close()


class _WriteSession:
    """One Write stream's ingest: the writer (holding the ref's lock) and what the stream
    announced so far (the latest total and expected digest count).

    The writer's calls run on worker threads one at a time. A stream cancelled while one
    runs (the client went away) does not stop the thread: `close` waits for it first, so the
    writer is never closed under a write."""

    def __init__(self, lib: ImageLibrary, writer: LocalWriter, lease: str | None,
                 total: int, expected: str) -> None:
        self.lib, self.writer, self.lease = lib, writer, lease
        self.ref = writer.ref
        self.total, self.expected = total, expected
        self._running: asyncio.Future[Any] | None = None

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        self._running = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        return await asyncio.shield(self._running)

    async def close(self) -> None:
        if self._running is not None and not self._running.done():
            await asyncio.wait([self._running])
        await asyncio.to_thread(self.writer.close)

    @classmethod
    async def open(cls, lib: ImageLibrary, first: pb.WriteContentRequest,
                   lease: str | None) -> _WriteSession:
        if lease is not None:
            await blocking(lib.leases.add_resource, lease, Resource.ingest(first.ref))
        expected = first.expected
        if expected:
            _digest(expected)
        writer = await blocking(lib.content.writer, first.ref, expected or None,
                                first.total if first.total > 0 else None)
        return cls(lib, writer, lease, first.total, expected)

    async def handle(self, req: pb.WriteContentRequest
                     ) -> tuple[pb.WriteContentResponse, tuple[Digest, int] | None]:
        if req.expected and req.expected != self.expected:
            expected = _digest(req.expected)
            if await self._run(_exists, self.lib.content, expected):
                await self._run(self._discard)
                raise AlreadyExists(f"blob with expected digest {expected} exists")
            self.expected = expected
        if req.total > 0:
            self.total = req.total
        committed = None
        if req.action in (pb.WRITE, pb.COMMIT):
            status = self.writer.status()
            if req.offset > 0 and req.offset != status.offset:
                raise OutOfRange(f"write @{req.offset} must occur at current offset "
                                 f"{status.offset}")
            if req.offset == 0 and status.offset > 0:
                await self._run(self._restart)
            if req.data:
                await self._run(self.writer.write, req.data)
            if req.action == pb.COMMIT:
                size = self.writer.status().offset
                digest = await self._run(self.writer.commit, self.total or None,
                                         self.expected or None, dict(req.labels))
                if self.lease is not None:
                    await self._run(self.lib.leases.add_resource, self.lease,
                                    Resource.content(digest))
                committed = (digest, size)
        elif req.action != pb.STAT:
            raise InvalidArgument(f"unknown write action {req.action}")
        status = self.writer.status()
        response = pb.WriteContentResponse(
            action=req.action, started_at=timestamp(status.started_at),
            updated_at=timestamp(status.updated_at), offset=status.offset,
            total=self.total if self.total > 0 else status.total or 0,
            digest=str(committed[0]) if committed else
            (str(self.writer.digest()) if req.action != pb.STAT else ""))
        return response, committed

    def _restart(self) -> None:
        """Offset 0 on an ingest with data: start it over (containerd's truncate)."""
        self._discard()
        self.writer = self.lib.content.writer(self.ref, self.expected or None,
                                              self.total if self.total > 0 else None)

    def _discard(self) -> None:
        self.writer.close()
        try:
            self.lib.content.abort(self.ref)
        except image_errors.NotFound:
            pass


def _exists(store: LocalStore, digest: Digest) -> bool:
    try:
        store.info(digest)
    except image_errors.NotFound:
        return False
    return True


def service(sup: Supervisor) -> Registration:
    servicer = ContentService(sup)
    return Registration("dockyard.services.content.v1.Content",
                        lambda server: rpc.add_ContentServicer_to_server(servicer, server))
