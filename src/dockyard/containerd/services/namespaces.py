"""Namespaces service: the namespaces themselves (not namespaced)."""

from __future__ import annotations

import grpc
from google.protobuf import empty_pb2

from dockyard.api.services.namespaces.v1 import namespace_pb2 as pb
from dockyard.api.services.namespaces.v1 import namespace_pb2_grpc as rpc
from dockyard.containerd.metadata import Namespace
from dockyard.containerd.protoconv import paths
from dockyard.containerd.service import Registration, blocking
from dockyard.containerd.supervisor import Supervisor


def _proto(n: Namespace) -> pb.Namespace:
    return pb.Namespace(name=n.name, labels=dict(n.labels))


class NamespacesService(rpc.NamespacesServicer):
    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup

    async def Get(self, request: pb.GetNamespaceRequest,
                  context: grpc.aio.ServicerContext) -> pb.GetNamespaceResponse:
        found = self.sup.metadata.get_namespace(request.name)  # a read: inline
        return pb.GetNamespaceResponse(namespace=_proto(found))

    async def List(self, request: pb.ListNamespacesRequest,
                   context: grpc.aio.ServicerContext) -> pb.ListNamespacesResponse:
        found = self.sup.metadata.list_namespaces(request.filter)
        return pb.ListNamespacesResponse(namespaces=[_proto(n) for n in found])

    async def Create(self, request: pb.CreateNamespaceRequest,
                     context: grpc.aio.ServicerContext) -> pb.CreateNamespaceResponse:
        made = await blocking(self.sup.metadata.create_namespace, request.namespace.name,
                              dict(request.namespace.labels))
        self.sup.namespace_created(made.name)
        self.sup.events.publish(made.name, "/namespaces/create",
                                {"name": made.name, "labels": dict(made.labels)})
        return pb.CreateNamespaceResponse(namespace=_proto(made))

    async def Update(self, request: pb.UpdateNamespaceRequest,
                     context: grpc.aio.ServicerContext) -> pb.UpdateNamespaceResponse:
        ns = request.namespace
        updated = await blocking(self.sup.metadata.update_namespace, ns.name, dict(ns.labels),
                                 paths(request.update_mask))
        self.sup.events.publish(updated.name, "/namespaces/update",
                                {"name": updated.name, "labels": dict(updated.labels)})
        return pb.UpdateNamespaceResponse(namespace=_proto(updated))

    async def Delete(self, request: pb.DeleteNamespaceRequest,
                     context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        await blocking(self.sup.delete_namespace, request.name)
        self.sup.events.publish(request.name, "/namespaces/delete", {"name": request.name})
        return empty_pb2.Empty()


def service(sup: Supervisor) -> Registration:
    servicer = NamespacesService(sup)
    return Registration("dockyard.services.namespaces.v1.Namespaces",
                        lambda server: rpc.add_NamespacesServicer_to_server(servicer, server))
