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
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import shutil
import stat
import tarfile
from pathlib import Path
from typing import BinaryIO, cast

import zstandard

from dockyard.image.errors import InvalidArgument
from dockyard.image.layers.safepath import Root

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
            max_size: int | None = None, keep_owner: bool | None = None) -> None:
    """Unpack a (possibly compressed) tar into `scope`, which must exist. `keep_owner`:
    members' uid/gid are applied (default: when running as root)."""
    if keep_owner is None:
        keep_owner = os.geteuid() == 0
    source = cast(BinaryIO, io.BufferedReader(_Limited(decompressed(stream), max_size), CHUNK))
    root = Root(scope, _make_parent)
    try:
        with tarfile.open(fileobj=source, mode="r|") as tar:
            _Extractor(root, strict, keep_owner).run(tar)
    except tarfile.TarError as e:
        raise ArchiveError(f"cannot read the archive: {e}") from e
    finally:
        root.close()


class _Extractor:
    def __init__(self, root: Root, strict: bool, keep_owner: bool) -> None:
        self.root, self.strict, self.keep_owner = root, strict, keep_owner
        self.dir_times: list[tuple[tuple[str, ...], int]] = []

    def run(self, tar: tarfile.TarFile) -> None:
        for member in tar:
            self.member(tar, member)
            self.root.release()
        for parts, mtime in reversed(self.dir_times):  # children first touched the parents
            found = self._dir(parts[:-1], False)
            if found is not None:
                os.utime(parts[-1], (mtime, mtime), dir_fd=found, follow_symlinks=False)

    def _dir(self, parts: tuple[str, ...], create: bool) -> int | None:
        try:
            found = self.root.dir(parts, create)
        except InvalidArgument as e:
            raise UnsafeArchive(f"invalid tar member path {'/'.join(parts)!r}: {e}") from None
        return None if found is None else found[0]

    def member(self, tar: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        parts = member_parts(m.name, self.strict)
        if not parts or not (m.isdir() or m.isreg() or m.issym() or m.islnk()):
            return  # the scope itself; devices, fifos and other types are skipped
        parent = self._dir(parts[:-1], True)
        assert parent is not None
        name = parts[-1]
        if not self._clear(parent, name, m.isdir()):
            self._set(parent, name, m)
            return
        if m.isdir():
            os.mkdir(name, 0o700, dir_fd=parent)
            self.dir_times.append((parts, int(m.mtime)))
        elif m.isreg():
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW |
                         os.O_CLOEXEC, 0o600, dir_fd=parent)
            with os.fdopen(fd, "wb") as f:
                data = tar.extractfile(m)
                if data is not None:
                    shutil.copyfileobj(data, f, CHUNK)
        elif m.issym():
            os.symlink(m.linkname, name, dir_fd=parent)
        else:
            self._hardlink(parent, name, m)
            return
        self._set(parent, name, m)

    def _clear(self, parent: int, name: str, is_dir: bool) -> bool:
        """Make room for a member: False when it is a directory over a directory (kept)."""
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return True
        if stat.S_ISDIR(st.st_mode):
            if is_dir:
                return False
            shutil.rmtree(name, dir_fd=parent)
            self.root.forget()
        else:
            os.unlink(name, dir_fd=parent)
            if stat.S_ISLNK(st.st_mode):
                self.root.forget()
        return True

    def _hardlink(self, parent: int, name: str, m: tarfile.TarInfo) -> None:
        try:
            target = member_parts(m.linkname, strict=False)
        except UnsafeArchive:
            target = ()
        found = self._dir(target[:-1], False) if target else None
        if found is None:
            raise UnsafeArchive(f"invalid hardlink {m.name!r} -> {m.linkname!r}: the target "
                                "must be in the archive")
        try:
            os.link(target[-1], name, src_dir_fd=found, dst_dir_fd=parent,
                    follow_symlinks=False)
        except OSError as e:
            raise UnsafeArchive(f"invalid hardlink {m.name!r} -> {m.linkname!r}: {e}") from e

    def _set(self, parent: int, name: str, m: tarfile.TarInfo) -> None:
        """Owner, mode and times on the very inode (never a followed name)."""
        if m.issym():
            if self.keep_owner:
                os.chown(name, m.uid, m.gid, dir_fd=parent, follow_symlinks=False)
            os.utime(name, (m.mtime, m.mtime), dir_fd=parent, follow_symlinks=False)
            return
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        try:
            proc = f"/proc/self/fd/{fd}"
            if self.keep_owner:
                os.chown(proc, m.uid, m.gid)
            os.chmod(proc, m.mode & 0o7777)
        finally:
            os.close(fd)
        os.utime(name, (m.mtime, m.mtime), dir_fd=parent, follow_symlinks=False)


def extract_path(archive: str | os.PathLike[str], scope: Path) -> None:
    """ADD of a local archive: unpack it into the directory `scope` (lenient names, the
    archive's owners kept when running as root, as Docker's UntarPath does)."""
    with open(archive, "rb") as f:
        extract(f, scope, strict=False)
