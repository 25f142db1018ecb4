"""Digests as the OCI image spec defines them: `algorithm ":" encoded`.

sha256 (64 lowercase hex) and sha512 (128 lowercase hex) are the registered algorithms and the
only ones accepted here; anything else is InvalidArgument with the offending text.
"""

from __future__ import annotations

import hashlib
import re

from dockyard.image.errors import DigestMismatch, InvalidArgument

ALGORITHMS = {"sha256": 64, "sha512": 128}
_FORM = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")


class Digest(str):
    """A validated digest string; `.algorithm` and `.encoded` are its two halves."""

    __slots__ = ()

    def __new__(cls, text: str) -> Digest:
        if isinstance(text, Digest):
            return text
        if not isinstance(text, str) or not _FORM.match(text):
            raise InvalidArgument(f"invalid digest {text!r}: want <algorithm>:<hex>")
        algorithm, encoded = text.split(":", 1)
        size = ALGORITHMS.get(algorithm)
        if size is None:
            raise InvalidArgument(f"unsupported digest algorithm {algorithm!r} in {text!r}")
        if len(encoded) != size or not all(c in "0123456789abcdef" for c in encoded):
            raise InvalidArgument(f"invalid {algorithm} digest {text!r}: want {size} "
                                  "lowercase hex characters")
        return super().__new__(cls, text)

    @property
    def algorithm(self) -> str:
        return self.split(":", 1)[0]

    @property
    def encoded(self) -> str:
        return self.split(":", 1)[1]

    def hasher(self) -> hashlib._Hash:
        return hashlib.new(self.algorithm)


def parse(text: str) -> Digest:
    return Digest(text)


def of_bytes(data: bytes, algorithm: str = "sha256") -> Digest:
    return Digest(f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}")


def from_hasher(h: hashlib._Hash) -> Digest:
    return Digest(f"{h.name}:{h.hexdigest()}")


def verify(data: bytes, expected: str, size: int | None = None) -> None:
    """Raise DigestMismatch unless `data` has the expected digest (and size)."""
    want = Digest(expected)
    if size is not None and len(data) != size:
        raise DigestMismatch(f"size mismatch for {want}: expected {size} bytes, got {len(data)}")
    got = of_bytes(data, want.algorithm)
    if got != want:
        raise DigestMismatch(f"digest mismatch: expected {want}, got {got}")
