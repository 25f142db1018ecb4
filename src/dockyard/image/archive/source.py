"""Read an archive's files by name, whether it is a tar file or a directory.

Nothing is extracted: a tar's members are read in place, each through its own descriptor at
its own offset, so several threads can copy layers out of one archive at once. Names are the
archive's own, cleaned ("./a//b" is "a/b"); a path that climbs out ("../x"), an absolute one,
or a link that leads out, is refused with InvalidArgument naming it. Symbolic and hard links
between members (docker save writes `<id>/layer.tar -> ../blobs/sha256/…`) are followed inside
the archive, at most 16 deep. In a directory, every component is opened with O_NOFOLLOW
below the directory itself, so a symlink in it cannot lead out either.
"""

from __future__ import annotations

import io
import os
import posixpath
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from dockyard.image.errors import InvalidArgument, NotFound

MAX_LINKS = 16


def clean(name: str) -> str:
    """The archive-relative form of `name`; InvalidArgument if it is absolute or climbs out."""
    if not name or "\x00" in name:
        raise InvalidArgument(f"invalid path {name!r} in archive")
    if name.startswith("/"):
        raise InvalidArgument(f"invalid path {name!r} in archive: absolute")
    norm = posixpath.normpath(name)
    if norm == ".." or norm.startswith("../"):
        raise InvalidArgument(f"invalid path {name!r} in archive: outside the archive")
    return "" if norm == "." else norm


class Source(Protocol):
    def exists(self, name: str) -> bool: ...

    def open(self, name: str) -> BinaryIO: ...

    def size(self, name: str) -> int: ...

    def read(self, name: str, limit: int) -> bytes: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class _Member:
    offset: int
    size: int


class _Slice(io.RawIOBase):
    """A member's bytes, read with pread from a descriptor of its own."""

    def __init__(self, path: str, offset: int, size: int) -> None:
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self._start, self._size, self._pos = offset, size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self._size - self._pos)
        if n <= 0:
            return 0
        data = os.pread(self._fd, n, self._start + self._pos)
        if not data:
            raise InvalidArgument("archive ends inside a member: truncated")
        buffer[:len(data)] = data
        self._pos += len(data)
        return len(data)

    def read(self, n: int = -1) -> bytes:
        n = self._size - self._pos if n is None or n < 0 else min(n, self._size - self._pos)
        if n <= 0:
            return b""
        data = os.pread(self._fd, n, self._start + self._pos)
        if not data:
            raise InvalidArgument("archive ends inside a member: truncated")
        self._pos += len(data)
        return data

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


class TarSource:
    """An uncompressed tar file (what docker save writes), indexed once by its headers."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._members: dict[str, _Member] = {}
        self._links: dict[str, tuple[str, bool]] = {}  # name -> (target, symbolic)
        try:
            with tarfile.open(self.path, "r:") as tar:
                for info in tar:
                    self._index(info)
        except tarfile.ReadError as e:
            raise InvalidArgument(f"{self.path}: not a tar archive: {e}") from None
        except EOFError:
            raise InvalidArgument(f"{self.path}: unexpected EOF: archive truncated") from None
        size = os.stat(self.path).st_size
        for name, m in self._members.items():
            if m.offset + m.size > size:
                raise InvalidArgument(f"{self.path}: member {name} is cut short: truncated")

    def _index(self, info: tarfile.TarInfo) -> None:
        name = clean(info.name)
        if not name:
            return
        if info.isreg():
            self._members[name] = _Member(info.offset_data, info.size)
        elif info.issym():
            target = info.linkname
            if target.startswith("/"):
                raise InvalidArgument(f"invalid link {name} -> {target} in archive: absolute")
            self._links[name] = (posixpath.join(posixpath.dirname(name), target), True)
        elif info.islnk():
            self._links[name] = (info.linkname, False)

    def _resolve(self, name: str) -> str:
        name = clean(name)
        for _ in range(MAX_LINKS):
            if name in self._members:
                return name
            link = self._links.get(name)
            if link is None:
                raise NotFound(f"{name}: no such file in archive")
            name = clean(link[0])
        raise InvalidArgument(f"{name}: too many levels of links in archive")

    def exists(self, name: str) -> bool:
        try:
            self._resolve(name)
        except NotFound:
            return False
        return True

    def names(self) -> Iterator[str]:
        yield from self._members
        yield from self._links

    def size(self, name: str) -> int:
        return self._members[self._resolve(name)].size

    def open(self, name: str) -> BinaryIO:
        m = self._members[self._resolve(name)]
        return io.BufferedReader(_Slice(self.path, m.offset, m.size), 1 << 20)  # type: ignore[return-value]

    def read(self, name: str, limit: int) -> bytes:
        return _read_limited(self, name, limit)

    def close(self) -> None:
        pass


class DirSource:
    """A directory (an OCI image layout on disk); nothing in it can lead outside it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._root = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def _open_fd(self, name: str) -> int:
        parts = clean(name).split("/")
        fd = os.dup(self._root)
        try:
            for part in parts[:-1]:
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                              dir_fd=fd)
                os.close(fd)
                fd = nxt
            leaf = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        except FileNotFoundError:
            raise NotFound(f"{name}: no such file in {self.path}") from None
        except OSError as e:
            raise InvalidArgument(f"{name} in {self.path}: {e.strerror}") from None
        finally:
            os.close(fd)
        if not stat.S_ISREG(os.fstat(leaf).st_mode):
            os.close(leaf)
            raise InvalidArgument(f"{name} in {self.path}: not a regular file")
        return leaf

    def exists(self, name: str) -> bool:
        try:
            os.close(self._open_fd(name))
        except NotFound:
            return False
        return True

    def size(self, name: str) -> int:
        fd = self._open_fd(name)
        try:
            return os.fstat(fd).st_size
        finally:
            os.close(fd)

    def open(self, name: str) -> BinaryIO:
        return open(self._open_fd(name), "rb", buffering=1 << 20)

    def read(self, name: str, limit: int) -> bytes:
        return _read_limited(self, name, limit)

    def close(self) -> None:
        if self._root >= 0:
            os.close(self._root)
            self._root = -1


def _read_limited(source: Source, name: str, limit: int) -> bytes:
    with source.open(name) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise InvalidArgument(f"{name} in archive: larger than {limit} bytes")
    return data


def open_source(path: str | os.PathLike[str]) -> TarSource | DirSource:
    p = Path(path)
    if p.is_dir():
        return DirSource(p)
    if not p.exists():
        raise NotFound(f"open {p}: no such file or directory")
    return TarSource(p)
