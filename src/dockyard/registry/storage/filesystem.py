"""FilesystemDriver: driver paths mapped under a root directory on the local filesystem,
exactly as distribution's filesystem driver maps them (`<rootdirectory>/<path>`), so that
its `rootdirectory` and ours are interchangeable: the registry's data then lives under
`<rootdirectory>/docker/registry/v2/` (see paths.py).

Directories are created 0777 and files 0666, both less the umask, as the reference does.
Durability: a writer's commit and put_content fsync the file; put_content and move fsync
the directory that gained the name. A path that resolves outside the root (through a
symlink planted in it) is refused.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat as statmod
import uuid
from datetime import UTC, datetime
from typing import BinaryIO

from dockyard.fsutil import fsync_dir
from dockyard.registry.storage.driver import (
    FileInfo,
    InvalidOffset,
    InvalidPath,
    PathNotFound,
    WalkFn,
    WriterClosed,
    check_path,
    join,
    walk_fallback,
)


class FilesystemFileWriter:
    def __init__(self, fd: int, host_path: str, size: int) -> None:
        self._file = os.fdopen(fd, "wb", buffering=1 << 16)
        self._host_path = host_path
        self._size = size
        self._closed = False
        self._committed = False

    @property
    def size(self) -> int:
        return self._size

    def _check_open(self, what: str) -> None:
        if self._closed:
            raise WriterClosed(f"{what}: writer already closed", self._host_path)
        if self._committed:
            raise WriterClosed(f"{what}: writer already committed", self._host_path)

    def write(self, data: bytes) -> int:
        self._check_open("write")
        n = self._file.write(data)
        self._size += n
        return n

    def commit(self) -> None:
        self._check_open("commit")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._committed = True

    def cancel(self) -> None:
        if self._closed:
            raise WriterClosed("cancel: writer already closed", self._host_path)
        self._closed = True
        self._file.close()
        try:
            os.unlink(self._host_path)
        except FileNotFoundError:
            pass

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if not self._committed:
                self._file.flush()
                os.fsync(self._file.fileno())
        finally:
            self._file.close()

    def __enter__(self) -> FilesystemFileWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FilesystemDriver:
    def __init__(self, rootdirectory: str | os.PathLike[str]) -> None:
        self.root = os.path.realpath(rootdirectory)
        os.makedirs(self.root, 0o777, exist_ok=True)

    def __repr__(self) -> str:
        return f"FilesystemDriver({self.root!r})"

    def _host(self, path: str, *, allow_root: bool = False) -> str:
        check_path(path, allow_root=allow_root)
        host = os.path.join(self.root, path.lstrip("/")) if path != "/" else self.root
        real = os.path.realpath(host)
        if real != self.root and not real.startswith(self.root + os.sep):
            raise InvalidPath(f"path {path!r} resolves outside the storage root", path)
        return host

    # -- content ----------------------------------------------------------------------

    def get_content(self, path: str) -> bytes:
        with self.reader(path) as f:
            return f.read()

    def put_content(self, path: str, data: bytes) -> None:
        host = self._host(path)
        temp = f"{path}.{uuid.uuid4().hex}.tmp"
        w = self.writer(temp)
        try:
            w.write(data)
            w.commit()
        except BaseException:
            w.cancel()
            raise
        w.close()
        try:
            os.replace(self._host(temp), host)
        except BaseException:
            self.delete(temp)
            raise
        fsync_dir(os.path.dirname(host))

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        host = self._host(path)
        if offset < 0:
            raise InvalidOffset(f"invalid offset {offset} for {path!r}", path)
        try:
            fd = os.open(host, os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(f"no such path {path!r}", path) from None
        if statmod.S_ISDIR(os.fstat(fd).st_mode):
            os.close(fd)
            raise PathNotFound(f"{path!r} is a directory, not content", path)
        f = os.fdopen(fd, "rb")
        f.seek(offset)
        return f

    def writer(self, path: str, append: bool = False) -> FilesystemFileWriter:
        host = self._host(path)
        try:
            os.makedirs(os.path.dirname(host), 0o777, exist_ok=True)
            fd = os.open(host, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except (FileExistsError, NotADirectoryError, IsADirectoryError) as e:
            raise InvalidPath(f"cannot write {path!r}: {e.strerror}", path) from None
        try:
            size = os.lseek(fd, 0, os.SEEK_END) if append else 0
            if not append:
                os.ftruncate(fd, 0)
        except BaseException:
            os.close(fd)
            raise
        return FilesystemFileWriter(fd, host, size)

    # -- metadata ---------------------------------------------------------------------

    def stat(self, path: str) -> FileInfo:
        host = self._host(path, allow_root=True)
        try:
            st = os.stat(host)
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(f"no such path {path!r}", path) from None
        is_dir = statmod.S_ISDIR(st.st_mode)
        return FileInfo(path=path, size=0 if is_dir else st.st_size,
                        mod_time=datetime.fromtimestamp(st.st_mtime, UTC), is_dir=is_dir)

    def list(self, path: str) -> list[str]:
        host = self._host(path, allow_root=True)
        try:
            names = os.listdir(host)
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(f"no such directory {path!r}", path) from None
        return sorted(join(path, name) for name in names)

    # -- changes ----------------------------------------------------------------------

    def move(self, src: str, dst: str) -> None:
        source, dest = self._host(src), self._host(dst)
        if not os.path.lexists(source):
            raise PathNotFound(f"no such path {src!r}", src)
        os.makedirs(os.path.dirname(dest), 0o777, exist_ok=True)
        try:
            os.rename(source, dest)
        except OSError as e:
            if e.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.EISDIR, errno.ENOTDIR):
                raise InvalidPath(f"cannot move {src!r} to {dst!r}: {e.strerror}", dst) from None
            raise
        fsync_dir(os.path.dirname(dest))

    def delete(self, path: str) -> None:
        host = self._host(path)
        try:
            st = os.lstat(host)
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(f"no such path {path!r}", path) from None
        if statmod.S_ISDIR(st.st_mode):
            shutil.rmtree(host)
        else:
            os.unlink(host)

    def walk(self, path: str, fn: WalkFn) -> None:
        walk_fallback(self, path, fn)

