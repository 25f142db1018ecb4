"""Image manifests and indexes, OCI image spec v1.1 and Docker image manifest v2 schema 2.

    index (or Docker manifest list)  --manifests[i]-->  manifest   (one per platform)
    manifest  --config-->  image config       --layers[i]-->  layer blobs

The parsers take bytes because digests are over bytes: a document is checked against the
digest that named it before it is believed, and the bytes stay the stored form. Ours are
written by `to_bytes` (canonical JSON). A manifest must not look like an index nor an index
like a manifest (no `manifests` entries in one, no `config` or `layers` entries in the
other): two clients reading one document as different kinds is CVE-2021-41190.

This module is where callers import the image types from; descriptors and configs live in
their own modules and are re-exported here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dockyard.image import jsonfields as jf
from dockyard.image import mediatypes
from dockyard.image.config import MAX_CONFIG_SIZE, History, ImageConfig, parse_config
from dockyard.image.descriptor import EMPTY_DIGEST, EMPTY_JSON, Descriptor, empty_descriptor
from dockyard.image.digest import verify
from dockyard.image.errors import InvalidArgument
from dockyard.image.mediatypes import OCI_INDEX, OCI_MANIFEST

__all__ = [
    "EMPTY_DIGEST", "EMPTY_JSON", "MAX_CONFIG_SIZE", "MAX_MANIFEST_SIZE", "Descriptor",
    "History", "ImageConfig", "Index", "Manifest", "empty_descriptor", "is_index",
    "is_manifest", "parse", "parse_config", "parse_index", "parse_manifest",
]

# distribution's registry refuses a manifest body over 4 MiB and containers/image reads no
# more; beyond it a document is refused before it is hashed or parsed.
MAX_MANIFEST_SIZE = 4 * 1024 * 1024


def is_manifest(media_type: str | None) -> bool:
    return media_type in mediatypes.MANIFESTS


def is_index(media_type: str | None) -> bool:
    return media_type in mediatypes.INDEXES


def _schema_version(o: Mapping[str, Any], where: str) -> int:
    version = jf.get_int(o, "schemaVersion", where, required=True)
    if version != 2:
        hint = " (Docker schema 1 is not supported)" if version == 1 else ""
        raise InvalidArgument(f"{jf.field_name(where, 'schemaVersion')}: want 2, "
                              f"got {version}{hint}")
    return version


def _media_type(o: Mapping[str, Any], where: str, allowed: frozenset[str],
                default: str) -> str:
    value = jf.get_media_type(o, "mediaType", where)
    if value is None:
        return default
    if value not in allowed:
        raise InvalidArgument(f"{jf.field_name(where, 'mediaType')}: {value!r} is not "
                              f"one of {sorted(allowed)}")
    return value


def _refuse_fields(o: Mapping[str, Any], where: str, keys: tuple[str, ...], other: str) -> None:
    # Empty is let through, as containerd does: it says nothing about the kind.
    for key in keys:
        if o.get(key) not in (None, []):
            raise InvalidArgument(f"{where}: has a {key!r} field, which only an {other} has")


def _descriptor(o: Mapping[str, Any], key: str, where: str, *,
                required: bool = False) -> Descriptor | None:
    value = o.get(key)
    if value is None:
        if required:
            raise InvalidArgument(f"{jf.field_name(where, key)}: required field missing")
        return None
    return Descriptor.from_json(value, jf.field_name(where, key))


def _descriptors(o: Mapping[str, Any], key: str, where: str) -> tuple[Descriptor, ...]:
    items = jf.get_list(o, key, where, required=True)
    name = jf.field_name(where, key)
    return tuple(Descriptor.from_json(d, f"{name}[{i}]") for i, d in enumerate(items))


def _common_json(media_type: str, artifact_type: str | None, subject: Descriptor | None,
                 annotations: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type}
    if artifact_type:
        out["artifactType"] = artifact_type
    if subject is not None:
        out["subject"] = subject.to_json()
    if annotations:
        out["annotations"] = dict(annotations)
    return out


class _Document:
    """What a manifest and an index share: the bytes we write, and their descriptor."""

    media_type: str
    artifact_type: str | None

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        return jf.dump(self.to_json())

    def descriptor(self, **fields: Any) -> Descriptor:
        """The descriptor of `to_bytes()`, to put in an index or a store."""
        return Descriptor.of(self.media_type, self.to_bytes(),
                             artifact_type=self.artifact_type, **fields)


@dataclass(frozen=True)
class Manifest(_Document):
    """One image (or artifact): its config and its layers, base layer first."""

    config: Descriptor
    layers: tuple[Descriptor, ...]
    media_type: str = OCI_MANIFEST
    schema_version: int = 2
    subject: Descriptor | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    artifact_type: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))

    def __hash__(self) -> int:  # the annotations dict would make the default unhashable
        return hash((self.media_type, self.config, self.layers))

    def to_json(self) -> dict[str, Any]:
        out = _common_json(self.media_type, self.artifact_type, self.subject, self.annotations)
        out["config"] = self.config.to_json()
        out["layers"] = [d.to_json() for d in self.layers]
        return out

    @classmethod
    def from_json(cls, obj: object, where: str = "manifest") -> Manifest:
        o = jf.expect_object(obj, where)
        version = _schema_version(o, where)
        media_type = _media_type(o, where, mediatypes.MANIFESTS, OCI_MANIFEST)
        _refuse_fields(o, where, ("manifests",), "index")
        config = _descriptor(o, "config", where, required=True)
        assert config is not None
        return cls(
            config=config,
            layers=_descriptors(o, "layers", where),
            media_type=media_type,
            schema_version=version,
            subject=_descriptor(o, "subject", where),
            annotations=jf.get_str_map(o, "annotations", where),
            artifact_type=jf.get_media_type(o, "artifactType", where),
        )


@dataclass(frozen=True)
class Index(_Document):
    """Several manifests (an image per platform, or artifacts), as an OCI index or a Docker
    manifest list."""

    manifests: tuple[Descriptor, ...]
    media_type: str = OCI_INDEX
    schema_version: int = 2
    subject: Descriptor | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    artifact_type: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "manifests", tuple(self.manifests))

    def __hash__(self) -> int:
        return hash((self.media_type, self.manifests))

    def to_json(self) -> dict[str, Any]:
        out = _common_json(self.media_type, self.artifact_type, self.subject, self.annotations)
        out["manifests"] = [d.to_json() for d in self.manifests]
        return out

    @classmethod
    def from_json(cls, obj: object, where: str = "index") -> Index:
        o = jf.expect_object(obj, where)
        version = _schema_version(o, where)
        media_type = _media_type(o, where, mediatypes.INDEXES, OCI_INDEX)
        _refuse_fields(o, where, ("config", "layers"), "image manifest")
        return cls(
            manifests=_descriptors(o, "manifests", where),
            media_type=media_type,
            schema_version=version,
            subject=_descriptor(o, "subject", where),
            annotations=jf.get_str_map(o, "annotations", where),
            artifact_type=jf.get_media_type(o, "artifactType", where),
        )


def _load(data: bytes, what: str, digest: str | None) -> dict[str, Any]:
    """Bounded, verified, decoded: the order matters, size before hashing before parsing."""
    data = jf.bounded(data, what, MAX_MANIFEST_SIZE)
    if digest is not None:
        verify(data, digest)
    return jf.load(data, what, MAX_MANIFEST_SIZE)


def _given(o: Mapping[str, Any], media_type: str | None, where: str) -> str | None:
    """The document's own mediaType must agree with the one it was served or stored as."""
    if media_type is None:
        return None
    field_value = o.get("mediaType")
    if field_value is not None and field_value != media_type:
        raise InvalidArgument(f"{where}: mediaType {field_value!r} does not match the "
                              f"expected {media_type!r}")
    return media_type


def _manifest(o: dict[str, Any], media_type: str | None) -> Manifest:
    given = _given(o, media_type, "manifest")
    m = Manifest.from_json(o)
    return dataclasses.replace(m, media_type=given) if given else m


def _index(o: dict[str, Any], media_type: str | None) -> Index:
    given = _given(o, media_type, "index")
    i = Index.from_json(o)
    return dataclasses.replace(i, media_type=given) if given else i


def _check_kind(media_type: str | None, allowed: frozenset[str], what: str) -> None:
    if media_type is not None and media_type not in allowed:
        raise InvalidArgument(f"unsupported {what} media type {media_type!r}: want one of "
                              f"{sorted(allowed)}")


def parse_manifest(data: bytes, media_type: str | None = None,
                   digest: str | None = None) -> Manifest:
    """An image manifest from its bytes; `media_type` is what it was served or stored as."""
    _check_kind(media_type, mediatypes.MANIFESTS, "manifest")
    return _manifest(_load(data, "manifest", digest), media_type)


def parse_index(data: bytes, media_type: str | None = None,
                digest: str | None = None) -> Index:
    """An index or Docker manifest list from its bytes."""
    _check_kind(media_type, mediatypes.INDEXES, "index")
    return _index(_load(data, "index", digest), media_type)


def parse(data: bytes, media_type: str | None = None,
          digest: str | None = None) -> Manifest | Index:
    """A manifest or an index, told apart by `media_type`, else by the mediaType field, else
    by shape: `manifests` makes an index, `config` or `layers` a manifest (OCI, whose
    mediaType field is optional)."""
    _check_kind(media_type, mediatypes.MANIFESTS | mediatypes.INDEXES, "manifest or index")
    o = _load(data, "manifest or index", digest)
    _schema_version(o, "manifest or index")  # schema 1 has neither shape; say so first
    kind = media_type or jf.get_media_type(o, "mediaType", "manifest or index")
    if kind is None:
        if "manifests" in o:
            return _index(o, None)
        if "config" in o or "layers" in o:
            return _manifest(o, None)
        raise InvalidArgument("manifest or index: no mediaType, and neither manifests nor "
                              "config and layers")
    if is_index(kind):
        return _index(o, media_type)
    if is_manifest(kind):
        return _manifest(o, media_type)
    raise InvalidArgument(f"manifest or index: mediaType {kind!r} is neither a manifest nor "
                          "an index")
