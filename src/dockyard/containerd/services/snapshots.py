"""Snapshots service: the namespace's snapshotter (dockyard.image.snapshots) over gRPC.

Each namespace has one snapshotter, the supervisor's choice ("overlayfs", else "native"); a
request names it, or leaves `snapshotter` empty for it. Mounts are returned, never performed.
With a `containerd-lease` header, what Prepare, View and Commit make is added to the lease.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from google.protobuf import empty_pb2

from dockyard.api.services.snapshots.v1 import snapshots_pb2 as pb
from dockyard.api.services.snapshots.v1 import snapshots_pb2_grpc as rpc
from dockyard.containerd import requestmeta
from dockyard.containerd.errors import InvalidArgument, NotFound
from dockyard.containerd.protoconv import filters, mounts_to_proto, paths, timestamp
from dockyard.containerd.service import Registration, blocking
from dockyard.containerd.supervisor import Supervisor
from dockyard.image.content.leases import Resource
from dockyard.image.library import ImageLibrary
from dockyard.image.snapshots import Info, Kind

LIST_BATCH = 100

_KINDS = {Kind.VIEW: pb.VIEW, Kind.ACTIVE: pb.ACTIVE, Kind.COMMITTED: pb.COMMITTED}


def _info(i: Info) -> pb.Info:
    return pb.Info(name=i.name, parent=i.parent, kind=_KINDS.get(i.kind, pb.UNKNOWN),
                   created_at=timestamp(i.created), updated_at=timestamp(i.updated),
                   labels=dict(i.labels))


class SnapshotsService(rpc.SnapshotsServicer):
    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup

    def _check(self, name: str) -> str:
        if name and name != self.sup.snapshotter:
            raise InvalidArgument(f"snapshotter not loaded: {name}")
        return self.sup.snapshotter

    def _read(self, context: grpc.aio.ServicerContext, snapshotter: str,
              key: str) -> ImageLibrary:
        """The library of a call that only looks: NotFound in a namespace that does not
        exist, as for a key that does not."""
        self._check(snapshotter)
        lib = self.sup.library(requestmeta.namespace(context))
        if lib is None:
            raise NotFound(f"snapshot {key} does not exist")
        return lib

    async def _write(self, context: grpc.aio.ServicerContext, snapshotter: str,
                     *keys: str) -> tuple[str, ImageLibrary]:
        """The library of a call that makes something, with the lease's hold on `keys`."""
        name = self._check(snapshotter)
        ns = requestmeta.namespace(context)
        lib = await blocking(self.sup.writable_library, ns)
        lease = requestmeta.lease(context)
        if lease is not None:
            for key in keys:
                await blocking(lib.leases.add_resource, lease, Resource.snapshot(name, key))
        return ns, lib

    async def Prepare(self, request: pb.PrepareSnapshotRequest,
                      context: grpc.aio.ServicerContext) -> pb.PrepareSnapshotResponse:
        ns, lib = await self._write(context, request.snapshotter, request.key)
        mounts = await blocking(lib.snapshotter.prepare, request.key, request.parent,
                                dict(request.labels))
        self.sup.events.publish(ns, "/snapshot/prepare", {
            "key": request.key, "parent": request.parent, "snapshotter": self.sup.snapshotter})
        return pb.PrepareSnapshotResponse(mounts=mounts_to_proto(mounts))

    async def View(self, request: pb.ViewSnapshotRequest,
                   context: grpc.aio.ServicerContext) -> pb.ViewSnapshotResponse:
        ns, lib = await self._write(context, request.snapshotter, request.key)
        mounts = await blocking(lib.snapshotter.view, request.key, request.parent,
                                dict(request.labels))
        self.sup.events.publish(ns, "/snapshot/prepare", {
            "key": request.key, "parent": request.parent, "snapshotter": self.sup.snapshotter})
        return pb.ViewSnapshotResponse(mounts=mounts_to_proto(mounts))

    async def Mounts(self, request: pb.MountsRequest,
                     context: grpc.aio.ServicerContext) -> pb.MountsResponse:
        lib = self._read(context, request.snapshotter, request.key)
        mounts = await blocking(lib.snapshotter.mounts, request.key)
        return pb.MountsResponse(mounts=mounts_to_proto(mounts))

    async def Commit(self, request: pb.CommitSnapshotRequest,
                     context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        ns, lib = await self._write(context, request.snapshotter, request.name)
        await blocking(lib.snapshotter.commit, request.name, request.key, dict(request.labels),
                       parent=request.parent or None)
        self.sup.events.publish(ns, "/snapshot/commit", {
            "key": request.key, "name": request.name, "snapshotter": self.sup.snapshotter})
        return empty_pb2.Empty()

    async def Remove(self, request: pb.RemoveSnapshotRequest,
                     context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        lib = self._read(context, request.snapshotter, request.key)
        await blocking(lib.snapshotter.remove, request.key)
        self.sup.events.publish(requestmeta.namespace(context), "/snapshot/remove", {
            "key": request.key, "snapshotter": self.sup.snapshotter})
        return empty_pb2.Empty()

    async def Stat(self, request: pb.StatSnapshotRequest,
                   context: grpc.aio.ServicerContext) -> pb.StatSnapshotResponse:
        lib = self._read(context, request.snapshotter, request.key)
        return pb.StatSnapshotResponse(info=_info(await blocking(lib.snapshotter.stat,
                                                                 request.key)))

    async def Update(self, request: pb.UpdateSnapshotRequest,
                     context: grpc.aio.ServicerContext) -> pb.UpdateSnapshotResponse:
        lib = self._read(context, request.snapshotter, request.info.name)
        given = Info(Kind.ACTIVE, request.info.name, labels=dict(request.info.labels))
        updated = await blocking(lib.snapshotter.update, given, paths(request.update_mask))
        return pb.UpdateSnapshotResponse(info=_info(updated))

    async def List(self, request: pb.ListSnapshotsRequest,
                   context: grpc.aio.ServicerContext) -> AsyncIterator[pb.ListSnapshotsResponse]:
        self._check(request.snapshotter)
        lib = self.sup.library(requestmeta.namespace(context))
        if lib is None:
            return
        found = await blocking(lambda: list(lib.snapshotter.walk(*filters(request.filters))))
        for start in range(0, len(found), LIST_BATCH):
            yield pb.ListSnapshotsResponse(info=[_info(i) for i in found[start:start + LIST_BATCH]])

    async def Usage(self, request: pb.UsageRequest,
                    context: grpc.aio.ServicerContext) -> pb.UsageResponse:
        lib = self._read(context, request.snapshotter, request.key)
        usage = await blocking(lib.snapshotter.usage, request.key)
        return pb.UsageResponse(size=usage.size, inodes=usage.inodes)

    async def Cleanup(self, request: pb.CleanupRequest,
                      context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        self._check(request.snapshotter)
        lib = self.sup.library(requestmeta.namespace(context))
        cleanup = getattr(lib.snapshotter, "cleanup", None) if lib is not None else None
        if cleanup is not None:
            await blocking(cleanup)
        return empty_pb2.Empty()


def service(sup: Supervisor) -> Registration:
    servicer = SnapshotsService(sup)
    return Registration("dockyard.services.snapshots.v1.Snapshots",
                        lambda server: rpc.add_SnapshotsServicer_to_server(servicer, server))
