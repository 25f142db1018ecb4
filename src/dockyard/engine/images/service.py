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
_DIGEST_NAME = re.compile(r"^sha256:[a-f0-9]{64}$")


def parse_name(name: str) -> reference.Reference | None:
    """An image record's name as a reference; None for the bare digests that name images
    loaded without a tag (Docker's dangling images) and for anything unparsable."""
    if _DIGEST_NAME.match(name):
        return None
    try:
        return reference.parse(name)
    except ImageError:
        return None


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
            ref = parse_name(n)
            if ref is None:
                continue
            if ref.tag and not ref.digest:
                out.append(ref.familiar())
        return out


class ImageService:
    def __init__(self, daemon: Any) -> None:
        self.daemon = daemon
        self._resolved: dict[str, Resolved] = {}
        self._usage: dict[str, int] = {}  # committed snapshot (chain ID) -> bytes

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
            found = await self.by_record(str(ref if (ref.tag or ref.digest)
                                             else ref.with_default_tag()))
            if found is not None:
                return found
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


    async def layer_sizes(self, image: EngineImage) -> list[int]:
        """Each layer's unpacked size (its snapshot's usage, as Docker counts image sizes),
        or its compressed size where it is not unpacked here."""
        from dockyard.api.services.snapshots.v1 import snapshots_pb2 as snapshots_pb

        diff_ids = list(image.resolved.config.rootfs_diff_ids)
        out = []
        for i, d in enumerate(image.resolved.manifest.layers):
            key = str(chain_id(diff_ids[:i + 1])) if i < len(diff_ids) else ""
            size = self._usage.get(key)
            if size is None and key:
                try:
                    size = (await self.sup.call(self.sup.snapshots.Usage,
                                                snapshots_pb.UsageRequest(key=key))).size
                    self._usage[key] = size
                except grpc.RpcError:
                    size = None
            out.append(int(size) if size is not None else int(d.size))
        return out

    async def with_all_names(self, image: EngineImage) -> EngineImage:
        """`image` with every name that points at its ID (get() by name knows one)."""
        for other in await self.list():
            if other.id == image.id:
                return other
        return image

    async def by_record(self, name: str) -> EngineImage | None:
        """The image of the supervisor's record called exactly `name` (a full reference, or
        the manifest digest an unnamed image goes by), knowing that one name; None without
        such a record. One call, where finding an image by its ID reads every record."""
        rec = await self.record(name)
        if rec is None:
            return None
        return await self.of_target(rec.target, rec.name, rec.created_at)

    async def of_target(self, target: Any, name: str, created_at: Any = None) -> EngineImage:
        """The image whose record `name` points at `target` (a descriptor message, as a
        record or Diff.Commit gives it), without asking for the record."""
        desc = Descriptor(target.media_type, target.digest, target.size)
        resolved = await self._resolve(desc)
        return EngineImage(str(resolved.manifest.config.digest), desc, resolved, (name,),
                           created_at)

    async def record(self, name: str) -> Any | None:
        """The supervisor's image record called `name` (a full reference), or None."""
        try:
            return (await self.sup.call(self.sup.images.Get,
                                        images_pb.GetImageRequest(name=name))).image
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise from_grpc(e) from None

    async def tag(self, source: str, target: str) -> EngineImage:
        """Name the image `source` designates `target` too ("repo" means "repo:latest"),
        as POST /images/{name}/tag does; a name already in use moves to this image."""
        return await self.tag_image(await self.get(source), target)

    async def tag_image(self, image: EngineImage, target: str) -> EngineImage:
        """tag() of an image in hand. A name that is already this image's is left as it is
        (the event is sent all the same, as dockerd sends it)."""
        try:
            ref = reference.parse(target).with_default_tag()
        except ImageError as e:
            raise InvalidParameter(str(e)) from None
        if ref.digest:
            raise InvalidParameter("refusing to create a tag with a digest reference")
        name = str(ref)
        rec = images_pb.Image(name=name, target=_target_proto(image.target))
        try:
            now = await self.record(name)
            if now is None:
                await self.sup.call(self.sup.images.Create,
                                    images_pb.CreateImageRequest(image=rec))
            elif now.target.digest != rec.target.digest or \
                    now.target.media_type != rec.target.media_type:
                await self.sup.call(self.sup.images.Update,
                                    images_pb.UpdateImageRequest(image=rec))
        except grpc.RpcError as e:
            raise from_grpc(e) from None
        self.daemon.events.publish("image", "tag", image.id, {"name": ref.familiar()})
        return image

    async def delete_name(self, name: str, *, sync: bool = False) -> None:
        try:
            await self.sup.call(self.sup.images.Delete,
                                images_pb.DeleteImageRequest(name=name, sync=sync))
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.NOT_FOUND:
                raise from_grpc(e) from None


def _target_proto(target: Descriptor) -> Any:
    from dockyard.api.types import descriptor_pb2

    return descriptor_pb2.Descriptor(media_type=target.media_type, digest=str(target.digest),
                                     size=int(target.size))


class _Missing(Exception):
    pass
