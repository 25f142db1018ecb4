"""ImageService: find images by name, ID or ID prefix, as Docker does, through the
supervisor's images and content services.

    get("busybox")                 docker.io/library/busybox:latest
    get("sha256:3f57…") / get("3f57d9401f8d")   by config digest (the image ID), or a prefix
    get("busybox@sha256:…")        by manifest digest

Resolved images are cached by their target's digest (content addressed: never stale).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import grpc

from dockyard.api.services.content.v1 import content_pb2 as content_pb
from dockyard.api.services.images.v1 import images_pb2 as images_pb
from dockyard.engine.errors import InvalidParameter, NotFound, from_grpc
from dockyard.image import reference
from dockyard.image.descriptor import Descriptor
from dockyard.image.errors import ImageError
from dockyard.image.layers.chain import chain_id
from dockyard.image.library import Resolved, resolve

_ID_PREFIX = re.compile(r"^(?:sha256:)?[a-f0-9]{1,64}$")


@dataclass(frozen=True)
class EngineImage:
    """One image as Docker sees it: `id` is its config's digest; `names` every name (full
    containerd form, "docker.io/library/busybox:latest") pointing at the same target."""

    id: str
    target: Descriptor
    resolved: Resolved
    names: tuple[str, ...]
    created_at: Any = None  # google.protobuf Timestamp of the newest name

    @property
    def config(self) -> dict[str, Any]:
        """The whole image config document (architecture, os, config, rootfs, history…)."""
        return dict(self.resolved.config.raw)

    @property
    def run_config(self) -> dict[str, Any]:
        """Its `config` object: Env, Cmd, Entrypoint, WorkingDir, User, ExposedPorts…"""
        return dict(self.resolved.config.raw.get("config") or {})

    @property
    def chain_id(self) -> str:
        return str(chain_id(self.resolved.config.rootfs_diff_ids))

    @property
    def repo_tags(self) -> list[str]:
        out = []
        for n in self.names:
            try:
                ref = reference.parse(n)
            except ImageError:
                continue
            if ref.tag and not ref.digest:
                out.append(ref.familiar())
        return out


class ImageService:
    def __init__(self, daemon: Any) -> None:
        self.daemon = daemon
        self._resolved: dict[str, Resolved] = {}

    async def start(self) -> None:
        pass

    async def close(self, *, stop_containers: bool = False) -> None:
        pass

    @property
    def sup(self):
        return self.daemon.supervisor

    async def counts(self) -> dict[str, int]:
        return {"images": len(await self.list())}

    async def read_blob(self, digest: str) -> bytes:
        parts = []
        async for r in self.sup.stream(self.sup.content.Read,
                                       content_pb.ReadContentRequest(digest=digest)):
            parts.append(r.data)
        return b"".join(parts)

    async def _resolve(self, target: Descriptor) -> Resolved:
        key = str(target.digest)
        got = self._resolved.get(key)
        if got is None:
            docs: dict[str, bytes] = {}
            missing: list[Descriptor] = []

            def read(d: Descriptor) -> bytes:
                data = docs.get(str(d.digest))
                if data is None:
                    missing.append(d)
                    raise _Missing
                return data

            # resolve() reads synchronously: fetch what it asked for, then ask again.
            while True:
                missing.clear()
                try:
                    got = resolve(read, target)
                    break
                except _Missing:
                    d = missing[0]
                    docs[str(d.digest)] = await self.read_blob(str(d.digest))
                except ImageError as e:
                    raise NotFound(str(e)) from None
            self._resolved[key] = got
        return got

    async def _records(self) -> list[Any]:
        try:
            return list((await self.sup.call(self.sup.images.List,
                                             images_pb.ListImagesRequest())).images)
        except grpc.RpcError as e:
            raise from_grpc(e) from None

    async def list(self) -> list[EngineImage]:
        """Every image, one per ID, with all of its names."""
        by_id: dict[str, EngineImage] = {}
        for rec in await self._records():
            target = Descriptor(rec.target.media_type, rec.target.digest, rec.target.size)
            try:
                resolved = await self._resolve(target)
            except NotFound:
                continue  # not for this platform, or its content is gone
            image_id = str(resolved.manifest.config.digest)
            known = by_id.get(image_id)
            names = (*known.names, rec.name) if known else (rec.name,)
            by_id[image_id] = EngineImage(image_id, target, resolved, names, rec.created_at)
        return list(by_id.values())

    async def get(self, ref_or_id: str) -> EngineImage:
        """The image `ref_or_id` names; NotFound in Docker's words ("No such image: x")."""
        if not ref_or_id:
            raise InvalidParameter("invalid reference format")
        try:
            ref = reference.parse(ref_or_id)
        except ImageError:
            ref = None
        if ref is not None:
            name = str(ref if (ref.tag or ref.digest) else ref.with_default_tag())
            try:
                rec = (await self.sup.call(self.sup.images.Get,
                                           images_pb.GetImageRequest(name=name))).image
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.NOT_FOUND:
                    raise from_grpc(e) from None
            else:
                target = Descriptor(rec.target.media_type, rec.target.digest, rec.target.size)
                resolved = await self._resolve(target)
                return EngineImage(str(resolved.manifest.config.digest), target, resolved,
                                   (rec.name,), rec.created_at)
            if ref.digest and not ref.tag:  # name@digest: any name of that repository
                for image in await self.list():
                    if str(image.target.digest) == str(ref.digest) or \
                            str(image.resolved.descriptor.digest) == str(ref.digest):
                        return image
        if _ID_PREFIX.match(ref_or_id):
            want = ref_or_id if ref_or_id.startswith("sha256:") else f"sha256:{ref_or_id}"
            found = [i for i in await self.list() if i.id.startswith(want)]
            if len(found) == 1:
                return found[0]
        raise NotFound(f"No such image: {ref_or_id}")


class _Missing(Exception):
    pass
