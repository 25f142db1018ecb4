"""The storage driver: the few primitives the registry stores everything with, after
distribution's `registry/storage/driver/storagedriver.go`.

Paths are driver paths, not host paths: absolute, "/"-separated, each component made of
[A-Za-z0-9._-] and neither "." nor "..". `list` and `walk` also accept the root "/".

    get_content(path) -> bytes           small objects (links, startedat)
    put_content(path, data)              atomic: a temporary sibling, then rename
    reader(path, offset) -> BinaryIO     large objects, from an offset
    writer(path, append) -> FileWriter   in place: uploads are private to one client
    stat(path) -> FileInfo
    list(path) -> [child paths]          direct children, as full driver paths, sorted
    move(src, dst)                       atomic rename, creating dst's parents
    delete(path)                         recursive
    walk(path, fn)                       fn(FileInfo) for everything below path

A blob becomes visible at its final path only by `move` from its upload: that, not the
writer, is what makes publication atomic.

Errors, one tree for the storage layer:

    StorageError
     ├── InvalidPath      a path that breaks the grammar above
     ├── PathNotFound     nothing at that path (or not the kind of thing asked for)
     ├── InvalidOffset    a negative read offset
     └── WriterClosed     a write, commit or cancel on a finished writer

The interface has nine methods, more than our usual six: it is the reference's, and every
driver is held to all of it by tests/conformance/storage_driver_suite.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Protocol

_COMPONENT = re.compile(r"[A-Za-z0-9._-]+")


class StorageError(Exception):
    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class InvalidPath(StorageError):
    pass


class PathNotFound(StorageError):
    pass


class InvalidOffset(StorageError):
    pass


class WriterClosed(StorageError):
    pass


class SkipDir(Exception):
    """Raised by a walk function: on a directory, do not descend into it; on a file, skip
    the rest of that file's directory."""


def check_path(path: str, *, allow_root: bool = False) -> str:
    """Return `path` if it is a valid driver path, else raise InvalidPath."""
    if not isinstance(path, str):
        raise InvalidPath(f"invalid path {path!r}: not a string", str(path))
    if allow_root and path == "/":
        return path
    if not path.startswith("/"):
        raise InvalidPath(f"invalid path {path!r}: must be absolute", path)
    for part in path[1:].split("/"):
        if part in (".", "..") or not _COMPONENT.fullmatch(part):
            raise InvalidPath(f"invalid path {path!r}: bad component {part!r}", path)
    return path


def join(parent: str, name: str) -> str:
    return f"/{name}" if parent == "/" else f"{parent}/{name}"


@dataclass(frozen=True)
class FileInfo:
    path: str
    size: int  # 0 for a directory
    mod_time: datetime
    is_dir: bool


class FileWriter(Protocol):
    """Writes one object in place. `size` counts what is at the path, appended included.
    `commit` flushes and fsyncs; `close` without commit keeps what was written (an upload
    can be resumed with append=True); `cancel` deletes the object."""

    @property
    def size(self) -> int: ...

    def write(self, data: bytes) -> int: ...

    def commit(self) -> None: ...

    def cancel(self) -> None: ...

    def close(self) -> None: ...


WalkFn = Callable[[FileInfo], None]


class StorageDriver(Protocol):
    def get_content(self, path: str) -> bytes: ...

    def put_content(self, path: str, data: bytes) -> None: ...

    def reader(self, path: str, offset: int = 0) -> BinaryIO: ...

    def writer(self, path: str, append: bool = False) -> FileWriter: ...

    def stat(self, path: str) -> FileInfo: ...

    def list(self, path: str) -> list[str]: ...

    def move(self, src: str, dst: str) -> None: ...

    def delete(self, path: str) -> None: ...

    def walk(self, path: str, fn: WalkFn) -> None: ...


def walk_fallback(driver: StorageDriver, path: str, fn: WalkFn) -> None:
    """Depth first, children in lexical order, built on list and stat alone: any driver can
    use it. fn may raise SkipDir (see there)."""
    for child in driver.list(path):
        info = driver.stat(child)
        try:
            fn(info)
        except SkipDir:
            if info.is_dir:
                continue
            return
        if info.is_dir:
            walk_fallback(driver, child, fn)
