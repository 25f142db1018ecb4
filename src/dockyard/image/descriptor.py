"""Content descriptors: what a manifest, an index or a store says about a blob it points at.

A descriptor is trusted only as far as its digest: `size` bounds what we will read, and an
embedded `data` field must hash to the digest and have the size, or the descriptor is refused
(an attacker could otherwise show one content and announce another).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from dockyard.image import jsonfields as jf
from dockyard.image import mediatypes
from dockyard.image.digest import Digest, of_bytes, verify
from dockyard.image.errors import DigestMismatch, InvalidArgument
from dockyard.image.platforms import Platform

# The OCI empty JSON blob "{}", the config of artifacts that have none.
EMPTY_JSON = b"{}"
EMPTY_DIGEST = Digest("sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")


@dataclass(frozen=True)
class Descriptor:
    """A typed, sized, addressed pointer to content; keys follow the OCI descriptor."""

    media_type: str
    digest: Digest
    size: int
    urls: tuple[str, ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: Platform | None = None
    artifact_type: str | None = None
    data: bytes | None = None

    def __post_init__(self) -> None:
        # A str digest or a list of urls from code is accepted and made the frozen kind.
        object.__setattr__(self, "digest", Digest(self.digest))
        object.__setattr__(self, "urls", tuple(self.urls))

    def __hash__(self) -> int:
        # Equal descriptors share these; the annotations dict would make the default unhashable.
        return hash((self.media_type, self.digest, self.size))

    @classmethod
    def of(cls, media_type: str, content: bytes, **fields: Any) -> Descriptor:
        """The descriptor of `content` (sha256), e.g. of a manifest just written."""
        return cls(media_type, of_bytes(content), len(content), **fields)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": str(self.digest),
                               "size": self.size}
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.data is not None:
            out["data"] = base64.b64encode(self.data).decode("ascii")
        return out

    @classmethod
    def from_json(cls, obj: object, where: str = "descriptor") -> Descriptor:
        o = jf.expect_object(obj, where)
        media_type = jf.get_media_type(o, "mediaType", where, required=True)
        digest = _digest(o, where)
        size = jf.get_int(o, "size", where, required=True, minimum=0)
        assert media_type is not None and size is not None
        platform = o.get("platform")
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            urls=_urls(o, where),
            annotations=jf.get_str_map(o, "annotations", where),
            platform=(None if platform is None
                      else Platform.from_json(platform, jf.field_name(where, "platform"))),
            artifact_type=jf.get_media_type(o, "artifactType", where),
            data=_data(o, where, digest, size),
        )


def _digest(o: Mapping[str, Any], where: str) -> Digest:
    text = jf.require_str(o, "digest", where)
    try:
        return Digest(text)
    except InvalidArgument as e:
        raise InvalidArgument(f"{jf.field_name(where, 'digest')}: {e}") from None


def _urls(o: Mapping[str, Any], where: str) -> tuple[str, ...]:
    urls = jf.get_str_list(o, "urls", where)
    for i, url in enumerate(urls):
        parts = urlsplit(url)
        if not parts.scheme or not (parts.netloc or parts.path):
            raise InvalidArgument(f"{jf.field_name(where, 'urls')}[{i}]: {url!r} is not an "
                                  "absolute URI")
    return urls


def _data(o: Mapping[str, Any], where: str, digest: Digest, size: int) -> bytes | None:
    text = jf.get_str(o, "data", where)
    if text is None:
        return None
    name = jf.field_name(where, "data")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidArgument(f"{name}: invalid base64: {e}") from None
    try:
        verify(data, digest, size)
    except DigestMismatch as e:
        raise DigestMismatch(f"{name}: {e}") from None
    return data


def empty_descriptor(embed: bool = False) -> Descriptor:
    """The OCI empty descriptor ("{}"), for artifacts with no config or no layers.

    `embed` also carries the two bytes in `data`, which the spec suggests so a client need
    not fetch them.
    """
    return Descriptor(mediatypes.OCI_EMPTY, EMPTY_DIGEST, len(EMPTY_JSON),
                      data=EMPTY_JSON if embed else None)
