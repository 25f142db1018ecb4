"""Containers service: the container records of metadata.py over gRPC.

Reads run on the event loop (the metadata store reads through a WAL reader that never waits
for a writer); writes run on worker threads, as they wait for a fsync.

The spec, the runtime options and the extensions are protobuf Any values, stored as they come
(type URL and bytes): the supervisor reads the spec only when it makes a task.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from google.protobuf import empty_pb2

from dockyard.api.services.containers.v1 import containers_pb2 as pb
from dockyard.api.services.containers.v1 import containers_pb2_grpc as rpc
from dockyard.containerd import requestmeta
from dockyard.containerd.errors import NotFound
from dockyard.containerd.identifiers import quote
from dockyard.containerd.metadata import Blob, Container, Runtime
from dockyard.containerd.protoconv import any_from_blob, filters, paths, timestamp
from dockyard.containerd.service import Registration, blocking
from dockyard.containerd.supervisor import Supervisor


def to_proto(c: Container) -> pb.Container:
    return pb.Container(
        id=c.id, labels=dict(c.labels), image=c.image,
        runtime=pb.Container.Runtime(name=c.runtime.name,
                                     options=any_from_blob(c.runtime.options)),
        spec=any_from_blob(c.spec), snapshotter=c.snapshotter, snapshot_key=c.snapshot_key,
        created_at=timestamp(c.created_at), updated_at=timestamp(c.updated_at),
        extensions={k: any_from_blob(v) for k, v in c.extensions.items()}, sandbox=c.sandbox)


def from_proto(c: pb.Container) -> Container:
    runtime_options = (Blob(c.runtime.options.type_url, c.runtime.options.value)
                       if c.runtime.HasField("options") else None)
    return Container(
        id=c.id, labels=dict(c.labels), image=c.image,
        runtime=Runtime(c.runtime.name, runtime_options),
        spec=Blob(c.spec.type_url, c.spec.value) if c.HasField("spec") else None,
        snapshotter=c.snapshotter, snapshot_key=c.snapshot_key,
        extensions={k: Blob(v.type_url, v.value) for k, v in c.extensions.items()},
        sandbox=c.sandbox)


class ContainersService(rpc.ContainersServicer):
    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup

    async def Get(self, request: pb.GetContainerRequest,
                  context: grpc.aio.ServicerContext) -> pb.GetContainerResponse:
        ns = requestmeta.namespace(context)
        if not self.sup.namespace_exists(ns):
            raise NotFound(f"container {quote(request.id)} in namespace {quote(ns)}")
        found = self.sup.metadata.get_container(ns, request.id)  # a read: inline
        return pb.GetContainerResponse(container=to_proto(found))

    async def List(self, request: pb.ListContainersRequest,
                   context: grpc.aio.ServicerContext) -> pb.ListContainersResponse:
        ns = requestmeta.namespace(context)
        found = self.sup.metadata.list_containers(ns, *filters(request.filters))
        return pb.ListContainersResponse(containers=[to_proto(c) for c in found])

    async def ListStream(self, request: pb.ListContainersRequest,
                         context: grpc.aio.ServicerContext
                         ) -> AsyncIterator[pb.ListContainerMessage]:
        ns = requestmeta.namespace(context)
        found = self.sup.metadata.list_containers(ns, *filters(request.filters))
        for c in found:
            yield pb.ListContainerMessage(container=to_proto(c))

    async def Create(self, request: pb.CreateContainerRequest,
                     context: grpc.aio.ServicerContext) -> pb.CreateContainerResponse:
        ns = requestmeta.namespace(context)
        made = await blocking(self.sup.metadata.create_container, ns,
                              from_proto(request.container))
        self.sup.namespace_created(ns)
        self.sup.events.publish(ns, "/containers/create", {
            "id": made.id, "image": made.image,
            "runtime": {"name": made.runtime.name}})
        return pb.CreateContainerResponse(container=to_proto(made))

    async def Update(self, request: pb.UpdateContainerRequest,
                     context: grpc.aio.ServicerContext) -> pb.UpdateContainerResponse:
        ns = requestmeta.namespace(context)
        updated = await blocking(self.sup.metadata.update_container, ns,
                                 from_proto(request.container), paths(request.update_mask))
        self.sup.events.publish(ns, "/containers/update", {
            "id": updated.id, "image": updated.image, "labels": dict(updated.labels),
            "snapshot_key": updated.snapshot_key})
        return pb.UpdateContainerResponse(container=to_proto(updated))

    async def Delete(self, request: pb.DeleteContainerRequest,
                     context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        ns = requestmeta.namespace(context)
        await blocking(self.sup.metadata.delete_container, ns, request.id)
        self.sup.events.publish(ns, "/containers/delete", {"id": request.id})
        return empty_pb2.Empty()


def service(sup: Supervisor) -> Registration:
    servicer = ContainersService(sup)
    return Registration("dockyard.services.containers.v1.Containers",
                        lambda server: rpc.add_ContainersServicer_to_server(servicer, server))
