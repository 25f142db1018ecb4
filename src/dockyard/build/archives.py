"""Tar archives a build unpacks: the build context a client sends to /build, and the local
archives ADD extracts. Both are hostile input.

Compression is told by magic bytes, as Docker's archive.DecompressStream does: gzip
(1f 8b 08), bzip2 ("BZh"), xz (fd "7zXZ" 00), zstd (28 b5 2f fd); anything else is a plain
tar.

Extraction is scoped to one directory, the *scope*, as Docker's chrootarchive is (it chroots
into the destination first): a directory on a member's way that is a symlink is followed as if
the scope were "/" (safepath.Root: descriptors, one component at a time), so `a -> /` then
`a/x` writes <scope>/x and nothing is ever written outside the scope. The last component is
created with *at() calls and O_NOFOLLOW, an existing one replaced, never written through.
Symlinks are made as they are (their targets may point anywhere: they are never followed
when writing). Hard links must name a member inside the scope. Devices and fifos are skipped:
a build has no use for them and they would need privileges. Names:

    strict (a context)   "../x" or "/x" refused with UnsafeArchive
    lenient (ADD)        "/x" is x below the scope; a ".." that leaves the scope refused

The names are checked here; the writing is the engine's own extractor (the one `docker cp`
uploads go through: engine/containers/untar.py), told to keep symlinks as written and to
make no devices.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

import zstandard

from dockyard.engine.containers.untar import Extractor, open_stream
from dockyard.engine.errors import EngineError
from dockyard.image.layers.safepath import Root

if TYPE_CHECKING:
    from dockyard.build.filedigests import FileDigests

CHUNK = 1 << 20
_MAGIC = ((b"\x1f\x8b\x08", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"),
          (b"\x28\xb5\x2f\xfd", "zstd"))


class ArchiveError(ValueError):
    """An archive that cannot be read (corrupt, cut short, too large)."""


class UnsafeArchive(ArchiveError):
    """A member that would land outside the destination, or a name that is refused."""


def detect(head: bytes) -> str:
    """"gzip", "bzip2", "xz", "zstd" or "" (a plain tar) from a stream's first bytes."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return ""


class _Prefixed(io.RawIOBase):
    """`head` (already read to sniff the compression) followed by the rest of `stream`."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head, self._stream = head, stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._stream.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


class _Limited(io.RawIOBase):
    """Counts what is read and stops at `limit` bytes (a context's maximum size)."""

    def __init__(self, inner: BinaryIO, limit: int | None) -> None:
        self._inner, self._limit, self.count = inner, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        try:
            data = self._inner.read(len(buffer))
        except (OSError, EOFError, lzma.LZMAError, zstandard.ZstdError) as e:
            raise ArchiveError(f"cannot read the archive: {e}") from e
        self.count += len(data)
        if self._limit is not None and self.count > self._limit:
            raise ArchiveError(f"the archive is larger than {self._limit} bytes")
        buffer[:len(data)] = data
        return len(data)


def decompressed(stream: BinaryIO) -> BinaryIO:
    """`stream` decompressed by what its magic bytes say (or as it is)."""
    head = _peek(stream)
    if head is not None:  # looked at, not taken: a plain tar is read as it is, no copies
        raw = stream
    else:
        head = stream.read(6) or b""
        raw = cast(BinaryIO, io.BufferedReader(_Prefixed(head, stream), CHUNK))
    kind = detect(head)
    if kind == "gzip":
        return cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb"))
    if kind == "bzip2":
        return cast(BinaryIO, bz2.BZ2File(raw, "rb"))
    if kind == "xz":
        return cast(BinaryIO, lzma.LZMAFile(raw, "rb"))
    if kind == "zstd":
        return cast(BinaryIO, zstandard.ZstdDecompressor().stream_reader(
            raw, read_across_frames=True))
    return raw


def _peek(stream: BinaryIO) -> bytes | None:
    """The stream's first 6 bytes without consuming them, where it can tell them (a
    buffered reader holding that many); None otherwise."""
    peek = getattr(stream, "peek", None)
    if peek is None:
        return None
    head = peek(6)[:6]
    return head if len(head) == 6 else None


def is_archive(path: str | os.PathLike[str]) -> bool:
    """The classic builder's isArchivePath: a (possibly compressed) tar whose first header
    reads. ADD extracts such a file instead of copying it."""
    try:
        with open(path, "rb") as f, tarfile.open(fileobj=decompressed(f), mode="r|") as tar:
            return tar.next() is not None
    except (OSError, EOFError, tarfile.TarError, lzma.LZMAError, zstandard.ZstdError,
            ArchiveError):
        return False


def member_parts(name: str, strict: bool) -> tuple[str, ...]:
    """A member's name as components below the scope (see the module's table)."""
    if strict and name.startswith("/"):
        raise UnsafeArchive(f"invalid tar member {name!r}: absolute path")
    out: list[str] = []
    for c in name.split("/"):
        if c == "..":
            if strict or not out:
                raise UnsafeArchive(f"invalid tar member {name!r}: path escapes the "
                                    "destination (\"..\")")
            out.pop()
        elif c and c != ".":
            out.append(c)
    return tuple(out)


def _make_parent(parent_fd: int, name: str, real: tuple[str, ...]) -> None:
    os.mkdir(name, 0o755, dir_fd=parent_fd)
    os.chmod(name, 0o755, dir_fd=parent_fd, follow_symlinks=False)


def extract(stream: BinaryIO, scope: str | os.PathLike[str], *, strict: bool,
            max_size: int | None = None, keep_owner: bool | None = None,
            digests: FileDigests | None = None) -> None:
    """Unpack a (possibly compressed) tar into `scope`, which must exist. `keep_owner`:
    members' uid/gid are applied (default: when running as root). `digests`: each regular
    file's sha256 is recorded there as it is written."""
    if keep_owner is None:
        keep_owner = os.geteuid() == 0
    plain = decompressed(stream)
    if max_size is not None or plain is not stream:  # to count, or to tell read errors
        plain = cast(BinaryIO, io.BufferedReader(_Limited(plain, max_size), CHUNK))
    root = Root(scope, _make_parent)

    def accept(m: tarfile.TarInfo) -> bool:
        member_parts(m.name, strict)  # raises for what is not taken, at all
        return m.isdir() or m.isreg() or m.issym() or m.islnk()  # no devices, fifos

    # the engine's extractor (engine/containers/untar.py), without its symlink check:
    # a context's links are kept as written and never followed
    extractor = Extractor(root, (), False, None, links_inside=False, devices=False,
                          keep_owner=keep_owner,
                          hashed=digests.record if digests is not None else None)
    try:
        with open_stream(plain) as tar:
            extractor.run(tar, accept)
    except tarfile.TarError as e:
        raise ArchiveError(f"cannot read the archive: {e}") from e
    except EngineError as e:
        raise UnsafeArchive(e.message) from None
    finally:
        root.close()


def extract_path(archive: str | os.PathLike[str], scope: Path) -> None:
    """ADD of a local archive: unpack it into the directory `scope` (lenient names, the
    archive's owners kept when running as root, as Docker's UntarPath does)."""
    with open(archive, "rb") as f:
        extract(f, scope, strict=False)
