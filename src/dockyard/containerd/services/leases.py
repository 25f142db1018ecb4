"""Leases service: the namespace's leases (dockyard.image.content.leases) over gRPC.

Resource types on the wire are containerd's: "content" (a digest), "ingests" (a ref) and
"snapshots/<snapshotter>" (a key); the store keeps them as ("content", digest),
("ingest", ref) and ("snapshot", "<snapshotter>/<key>").
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import grpc
from google.protobuf import empty_pb2

from dockyard.api.services.leases.v1 import leases_pb2 as pb
from dockyard.api.services.leases.v1 import leases_pb2_grpc as rpc
from dockyard.containerd import identifiers, requestmeta
from dockyard.containerd.errors import AlreadyExists, InvalidArgument, NotFound
from dockyard.containerd.identifiers import quote
from dockyard.containerd.protoconv import filters, timestamp
from dockyard.containerd.service import Registration, blocking
from dockyard.containerd.supervisor import Supervisor
from dockyard.image import errors as image_errors
from dockyard.image.content.leases import Lease, Resource
from dockyard.image.library import ImageLibrary


def _proto(lease: Lease) -> pb.Lease:
    return pb.Lease(id=lease.id, created_at=timestamp(lease.created_at),
                    labels=dict(lease.labels))


def resource_from_proto(r: pb.Resource) -> Resource:
    if r.type == "content":
        return Resource.content(r.id)
    if r.type == "ingests":
        return Resource.ingest(r.id)
    kind, _, snapshotter = r.type.partition("/")
    if kind == "snapshots" and snapshotter:
        return Resource.snapshot(snapshotter, r.id)
    raise InvalidArgument(f"resource type {quote(r.type)}: want content, ingests or "
                          "snapshots/<snapshotter>")


def resource_to_proto(r: Resource) -> pb.Resource:
    if r.kind == "snapshot":
        snapshotter, _, key = r.key.partition("/")
        return pb.Resource(id=key, type=f"snapshots/{snapshotter}")
    return pb.Resource(id=r.key, type="ingests" if r.kind == "ingest" else r.kind)


@contextlib.contextmanager
def _named(id: str) -> Iterator[None]:
    """The store's NotFound in containerd's words: `lease "x": not found`."""
    try:
        yield
    except image_errors.NotFound:
        raise NotFound(f"lease {quote(id)}") from None


class LeasesService(rpc.LeasesServicer):
    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup

    def _library(self, context: grpc.aio.ServicerContext, id: str) -> tuple[str, ImageLibrary]:
        ns = requestmeta.namespace(context)
        lib = self.sup.library(ns)
        if lib is None:
            raise NotFound(f"lease {quote(id)}")
        return ns, lib

    async def Create(self, request: pb.CreateRequest,
                     context: grpc.aio.ServicerContext) -> pb.CreateResponse:
        ns = requestmeta.namespace(context)
        id = identifiers.validate(request.id) if request.id else f"lease-{uuid.uuid4().hex}"
        lib = await blocking(self.sup.writable_library, ns)
        try:
            lease = await blocking(lib.leases.create, id, dict(request.labels))
        except image_errors.AlreadyExists:
            raise AlreadyExists(f"lease {quote(id)}") from None
        return pb.CreateResponse(lease=_proto(lease))

    async def Delete(self, request: pb.DeleteRequest,
                     context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        ns, lib = self._library(context, request.id)
        with _named(request.id):
            await blocking(lib.leases.delete, request.id)
        if request.sync:
            await blocking(self.sup.collect, ns)
        return empty_pb2.Empty()

    async def List(self, request: pb.ListRequest,
                   context: grpc.aio.ServicerContext) -> pb.ListResponse:
        lib = self.sup.library(requestmeta.namespace(context))
        if lib is None:
            return pb.ListResponse()
        found = await blocking(lib.leases.list, *filters(request.filters))
        return pb.ListResponse(leases=[_proto(lease) for lease in found])

    async def AddResource(self, request: pb.AddResourceRequest,
                          context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        _, lib = self._library(context, request.id)
        resource = resource_from_proto(request.resource)
        with _named(request.id):
            await blocking(lib.leases.add_resource, request.id, resource)
        return empty_pb2.Empty()

    async def DeleteResource(self, request: pb.DeleteResourceRequest,
                             context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        _, lib = self._library(context, request.id)
        resource = resource_from_proto(request.resource)
        with _named(request.id):
            await blocking(lib.leases.delete_resource, request.id, resource)
        return empty_pb2.Empty()

    async def ListResources(self, request: pb.ListResourcesRequest,
                            context: grpc.aio.ServicerContext) -> pb.ListResourcesResponse:
        _, lib = self._library(context, request.id)
        with _named(request.id):
            found = await blocking(lib.leases.list_resources, request.id)
        return pb.ListResourcesResponse(resources=[resource_to_proto(r) for r in found])


def service(sup: Supervisor) -> Registration:
    servicer = LeasesService(sup)
    return Registration("dockyard.services.leases.v1.Leases",
                        lambda server: rpc.add_LeasesServicer_to_server(servicer, server))
