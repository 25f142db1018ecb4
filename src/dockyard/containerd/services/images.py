"""Images service: the namespace's image names (dockyard.image.images) over gRPC.

Names are shallow references, as in containerd: creating one does not check that its target
is stored. Deleting one leaves its content to the garbage collector, which runs at once when
the request says `sync` (and otherwise when another synchronous deletion runs).
"""

from __future__ import annotations

import grpc
from google.protobuf import empty_pb2

from dockyard.api.services.images.v1 import images_pb2 as pb
from dockyard.api.services.images.v1 import images_pb2_grpc as rpc
from dockyard.containerd import requestmeta
from dockyard.containerd.errors import AlreadyExists, InvalidArgument, NotFound
from dockyard.containerd.identifiers import quote
from dockyard.containerd.protoconv import (
    descriptor_from_proto,
    descriptor_to_proto,
    filters,
    paths,
    timestamp,
)
from dockyard.containerd.service import Registration, blocking
from dockyard.containerd.supervisor import Supervisor
from dockyard.image import errors as image_errors
from dockyard.image.images import Image
from dockyard.image.library import ImageLibrary


def _proto(i: Image) -> pb.Image:
    return pb.Image(name=i.name, labels=dict(i.labels), target=descriptor_to_proto(i.target),
                    created_at=timestamp(i.created_at), updated_at=timestamp(i.updated_at))


def _image(given: pb.Image, need_target: bool = True) -> Image:
    if not given.name:
        raise InvalidArgument("image name must not be empty")
    if not need_target and not given.HasField("target"):
        # an update of labels only: the store does not read the target then
        return Image(given.name, None, dict(given.labels))  # type: ignore[arg-type]
    return Image(given.name, descriptor_from_proto(given.target, f"image {quote(given.name)}"),
                 dict(given.labels))


class ImagesService(rpc.ImagesServicer):
    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup

    def _library(self, context: grpc.aio.ServicerContext, name: str) -> tuple[str, ImageLibrary]:
        ns = requestmeta.namespace(context)
        lib = self.sup.library(ns)
        if lib is None:
            raise NotFound(f"image {quote(name)}")
        return ns, lib

    async def Get(self, request: pb.GetImageRequest,
                  context: grpc.aio.ServicerContext) -> pb.GetImageResponse:
        _, lib = self._library(context, request.name)
        try:
            return pb.GetImageResponse(image=_proto(await blocking(lib.images.get, request.name)))
        except image_errors.NotFound:
            raise NotFound(f"image {quote(request.name)}") from None

    async def List(self, request: pb.ListImagesRequest,
                   context: grpc.aio.ServicerContext) -> pb.ListImagesResponse:
        lib = self.sup.library(requestmeta.namespace(context))
        if lib is None:
            return pb.ListImagesResponse()
        found = await blocking(lib.images.list, *filters(request.filters))
        return pb.ListImagesResponse(images=[_proto(i) for i in found])

    async def Create(self, request: pb.CreateImageRequest,
                     context: grpc.aio.ServicerContext) -> pb.CreateImageResponse:
        image = _image(request.image)
        ns = requestmeta.namespace(context)
        lib = await blocking(self.sup.writable_library, ns)
        try:
            made = await blocking(lib.images.create, image)
        except image_errors.AlreadyExists:
            raise AlreadyExists(f"image {quote(image.name)}") from None
        self.sup.events.publish(ns, "/images/create",
                                {"name": made.name, "labels": dict(made.labels)})
        return pb.CreateImageResponse(image=_proto(made))

    async def Update(self, request: pb.UpdateImageRequest,
                     context: grpc.aio.ServicerContext) -> pb.UpdateImageResponse:
        fieldpaths = paths(request.update_mask)
        need_target = not fieldpaths or "target" in fieldpaths
        image = _image(request.image, need_target)
        ns, lib = self._library(context, image.name)
        try:
            updated = await blocking(lib.images.update, image, fieldpaths)
        except image_errors.NotFound:
            raise NotFound(f"image {quote(image.name)}") from None
        self.sup.events.publish(ns, "/images/update",
                                {"name": updated.name, "labels": dict(updated.labels)})
        return pb.UpdateImageResponse(image=_proto(updated))

    async def Delete(self, request: pb.DeleteImageRequest,
                     context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        ns, lib = self._library(context, request.name)
        try:
            await blocking(lib.images.delete, request.name)
        except image_errors.NotFound:
            raise NotFound(f"image {quote(request.name)}") from None
        self.sup.events.publish(ns, "/images/delete", {"name": request.name})
        if request.sync:
            await blocking(self.sup.collect, ns)
        return empty_pb2.Empty()


def service(sup: Supervisor) -> Registration:
    servicer = ImagesService(sup)
    return Registration("dockyard.services.images.v1.Images",
                        lambda server: rpc.add_ImagesServicer_to_server(servicer, server))
