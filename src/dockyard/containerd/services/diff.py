"""Diff service: a container's changes made into an image (what `docker commit` asks for).

    Commit(key, parent, config, name)
      lib.diff(key)        the active snapshot's changes as a gzip'd layer blob (its diff ID);
                           no key: no new layer, the parent's layers under a new config (a
                           build's ENV, CMD, LABEL… change the config and nothing else)
      config               the engine's, with that diff ID appended to rootfs.diff_ids
      put_image            config + manifest over the parent's layers and the new one
      unpack               the new chain's snapshot, so that the image runs at once; with
                           `consume`, the active snapshot itself is committed under the new
                           chain ID instead (its files are the layer's: no second extraction)
      tag                  `name`, or the manifest's digest (Docker's dangling image)

All of it under one lease: a failure leaves nothing named, and the collector takes the rest.
"""

from __future__ import annotations

import json
from typing import Any

import grpc

from dockyard.api.services.diff.v1 import diff_pb2 as pb
from dockyard.api.services.diff.v1 import diff_pb2_grpc as rpc
from dockyard.containerd import requestmeta
from dockyard.containerd.errors import InvalidArgument
from dockyard.containerd.protoconv import descriptor_from_proto, descriptor_to_proto
from dockyard.containerd.service import Registration, blocking
from dockyard.containerd.supervisor import Supervisor
from dockyard.image.digest import of_bytes
from dockyard.image.library import ImageLibrary
from dockyard.image.manifest import Descriptor


def commit(lib: ImageLibrary, key: str, parent: Descriptor | None, config: bytes,
           name: str, consume: bool = False) -> tuple[Descriptor, str, str]:
    """(manifest descriptor, config digest, diff ID) of the committed image."""
    try:
        doc = json.loads(config)
    except ValueError as e:
        raise InvalidArgument(f"config: {e}") from None
    if not isinstance(doc, dict):
        raise InvalidArgument("config: not a JSON object")
    layers = list(lib.resolve(parent).layers) if parent is not None else []
    with lib.lease() as lease:
        new: list[Descriptor] = []
        rootfs = doc.setdefault("rootfs", {"type": "layers", "diff_ids": []})
        diff_id = ""
        if key:
            layer, digest = lib.diff(key, lease, docker=True)
            new, diff_id = [layer], str(digest)
            rootfs["diff_ids"] = [*(rootfs.get("diff_ids") or []), diff_id]
        if len(rootfs["diff_ids"]) != len(layers) + len(new):
            raise InvalidArgument(f"config lists {len(rootfs['diff_ids']) - len(new)} parent "
                                  f"layers, the parent image {len(layers)}")
        config_bytes = json.dumps(doc, separators=(",", ":")).encode()
        target = lib.put_image(config_bytes, [x.descriptor for x in layers] + new, lease,
                               docker=True)
        if consume and key:
            _take_over(lib, lease, key, [*(str(x.diff_id) for x in layers), diff_id])
        lib.unpack(target)
        lib.tag(name or str(target.digest), target)
    return target, str(of_bytes(config_bytes)), diff_id  # the digest put_image stored it under


def _take_over(lib: ImageLibrary, lease: str, key: str, diff_ids: list[Any]) -> None:
    """Commit the active snapshot `key` as the chain of `diff_ids` (it was prepared on the
    chain of all but the last, and its changes are the last layer); if that chain exists
    already, the active snapshot just goes."""
    from dockyard.image.errors import AlreadyExists
    from dockyard.image.layers.chain import chain_id

    name = str(chain_id(diff_ids))
    lib.hold_snapshot(lease)(name)
    try:
        lib.snapshotter.commit(name, key)
    except AlreadyExists:
        lib.snapshotter.remove(key)


class DiffService(rpc.DiffServicer):
    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup

    async def Commit(self, request: pb.CommitRequest,
                     context: grpc.aio.ServicerContext) -> pb.CommitResponse:
        if request.snapshotter and request.snapshotter != self.sup.snapshotter:
            raise InvalidArgument(f"snapshotter not loaded: {request.snapshotter}")
        ns = requestmeta.namespace(context)
        lib = await blocking(self.sup.writable_library, ns)
        parent = (descriptor_from_proto(request.parent, "parent")
                  if request.HasField("parent") else None)
        target, config_digest, diff_id = await blocking(
            commit, lib, request.key, parent, request.config, request.name, request.consume)
        self.sup.events.publish(ns, "/images/create", {"name": request.name or
                                                       str(target.digest)})
        return pb.CommitResponse(target=descriptor_to_proto(target),
                                 config_digest=config_digest, diff_id=diff_id)


def service(sup: Supervisor) -> Registration:
    servicer = DiffService(sup)
    return Registration("dockyard.services.diff.v1.Diff",
                        lambda server: rpc.add_DiffServicer_to_server(servicer, server))
