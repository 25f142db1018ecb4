"""Conversions between protobuf messages and the types the stores use, shared by services.

Each service converts its own messages; what several need lives here: times, descriptors,
mounts, Any values and field masks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from google.protobuf import any_pb2, field_mask_pb2, timestamp_pb2

from dockyard.api.types import descriptor_pb2, mount_pb2
from dockyard.containerd.errors import InvalidArgument
from dockyard.containerd.metadata import Blob
from dockyard.image.descriptor import Descriptor
from dockyard.image.errors import ImageError
from dockyard.image.snapshots import Mount


def timestamp(at: datetime | None) -> timestamp_pb2.Timestamp | None:
    if at is None:
        return None
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(at)
    return out


def descriptor_to_proto(d: Descriptor) -> descriptor_pb2.Descriptor:
    return descriptor_pb2.Descriptor(media_type=d.media_type, digest=str(d.digest),
                                     size=d.size, annotations=dict(d.annotations))


def descriptor_from_proto(d: descriptor_pb2.Descriptor, where: str) -> Descriptor:
    """containerd's checks on an image's target: a digest, a media type, a size."""
    if not d.digest:
        raise InvalidArgument(f"{where}: Target.Digest must be set")
    if not d.media_type:
        raise InvalidArgument(f"{where}: Target.MediaType must be set")
    if d.size < 0:
        raise InvalidArgument(f"{where}: Target.Size must not be negative")
    try:
        return Descriptor(d.media_type, d.digest, d.size,  # type: ignore[arg-type]
                          annotations=dict(d.annotations))
    except ImageError as e:
        raise InvalidArgument(f"{where}: {e}") from None


def mounts_to_proto(mounts: Iterable[Mount]) -> list[mount_pb2.Mount]:
    return [mount_pb2.Mount(type=m.type, source=m.source, options=list(m.options))
            for m in mounts]


def mounts_from_proto(mounts: Iterable[mount_pb2.Mount]) -> list[Mount]:
    """A task's rootfs as the request gives it (the `target` of a rootfs mount is unused)."""
    return [Mount(m.type, m.source, tuple(m.options)) for m in mounts]


def any_from_blob(blob: Blob | None) -> any_pb2.Any | None:
    return None if blob is None else any_pb2.Any(type_url=blob.type_url, value=blob.value)


def paths(mask: field_mask_pb2.FieldMask | None) -> list[str]:
    return list(mask.paths) if mask is not None else []


def filters(given: Sequence[str]) -> list[str]:
    """The non-empty filters of a request (an empty one matches everything, as none do)."""
    return [f for f in given if f]
