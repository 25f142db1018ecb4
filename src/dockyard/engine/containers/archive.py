"""A container's files as `docker cp` sees them: stat a path, read it as a tar, extract a tar
into a directory, all inside a root directory (the container's "/") and never outside it.

Every path is resolved as the container would resolve it, with descriptors
(image/layers/safepath.Root): symlinks are followed inside the root, ".." stops at it, and
the last component is never followed by the kernel (lstat, O_NOFOLLOW, *at() calls in the
parent's descriptor). So neither a symlink the container holds (`etc -> /` or `x -> ../../..`)
nor a hostile tar can make us read or write a host file.

Extraction (untar.py) refuses what would leave the destination directory.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from typing import IO, Any

from dockyard.engine.containers.untar import Extractor, TarError
from dockyard.engine.errors import EngineError, InvalidParameter, NotFound
from dockyard.image.errors import InvalidArgument
from dockyard.image.layers.safepath import Root, clean
from dockyard.units import rfc3339nano

Parts = tuple[str, ...]
MAX_LINKS = 40

# Go's os.FileMode bits, in which Docker's stat header gives `mode`.
_GO_DIR, _GO_SYMLINK, _GO_DEVICE, _GO_PIPE = 1 << 31, 1 << 27, 1 << 26, 1 << 25
_GO_SOCKET, _GO_SETUID, _GO_SETGID = 1 << 24, 1 << 23, 1 << 22
_GO_CHAR, _GO_STICKY = 1 << 21, 1 << 20


class PathNotFound(NotFound):
    def __init__(self, path: str, container: str) -> None:
        super().__init__(f"Could not find the file {path} in container {container}")


def go_mode(st_mode: int) -> int:
    """A Unix mode as Go's os.FileMode."""
    mode = st_mode & 0o777
    kind = stat.S_IFMT(st_mode)
    mode |= {stat.S_IFDIR: _GO_DIR, stat.S_IFLNK: _GO_SYMLINK, stat.S_IFBLK: _GO_DEVICE,
             stat.S_IFCHR: _GO_DEVICE | _GO_CHAR, stat.S_IFIFO: _GO_PIPE,
             stat.S_IFSOCK: _GO_SOCKET}.get(kind, 0)
    if st_mode & stat.S_ISUID:
        mode |= _GO_SETUID
    if st_mode & stat.S_ISGID:
        mode |= _GO_SETGID
    if st_mode & stat.S_ISVTX:
        mode |= _GO_STICKY
    return mode


def wants_dir(path: str) -> bool:
    """Docker's "path/" and "path/.": the path must be (or lead to) a directory."""
    return path.endswith("/") or path.endswith("/.") or path in (".", "")


class ContainerFS:
    """One container root, opened: the resolution of its paths and what is done in them."""

    def __init__(self, root: str, container: str) -> None:
        self.root = Root(root)
        self.container = container

    def close(self) -> None:
        self.root.close()

    def __enter__(self) -> ContainerFS:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- resolving -----------------------------------------------------------------------

    def _dir(self, parts: Parts, create: bool = False) -> tuple[int, Parts] | None:
        try:
            return self.root.dir(parts, create)
        except InvalidArgument:  # a file on the way
            return None
        except OSError as e:
            if e.errno in (errno.ENOTDIR, errno.ENOENT, errno.ELOOP):
                return None
            raise

    def locate(self, path: str, follow: bool = False) -> tuple[int, str, Parts] | None:
        """(parent descriptor, last name, real path) of `path`; the root is (root fd, "",
        ()). With `follow`, a symlink last is followed (inside the root). None if missing."""
        parts = clean(path)
        for _ in range(MAX_LINKS):
            if not parts:
                return self.root.fd, "", ()
            found = self._dir(parts[:-1])
            if found is None:
                return None
            fd, real = found
            name = parts[-1]
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                return None
            except NotADirectoryError:
                return None
            if not (follow and stat.S_ISLNK(st.st_mode)):
                return fd, name, (*real, name)
            target = os.readlink(name, dir_fd=fd)
            parts = clean(target) if target.startswith("/") else clean(
                "/".join((*real, target)))
        raise InvalidParameter(f"too many levels of symbolic links: {path}")

    def lstat(self, where: tuple[int, str, Parts]) -> os.stat_result:
        fd, name, _ = where
        return os.stat(name or ".", dir_fd=fd, follow_symlinks=False)

    # -- stat ----------------------------------------------------------------------------

    def stat(self, path: str) -> dict[str, Any]:
        """Docker's ContainerPathStat of `path`: its own lstat; linkTarget, for a symlink,
        the path (in the container) it resolves to."""
        where = self.locate(path, follow=wants_dir(path))
        if where is None:
            raise PathNotFound(path, self.container)
        st = self.lstat(where)
        link = ""
        if stat.S_ISLNK(st.st_mode):
            target = self.locate(path, follow=True)
            real = target[2] if target is not None else self._lexical_target(where)
            link = "/" + "/".join(real)
        name = os.path.basename(path.rstrip("/")) if path.rstrip("/") else "/"
        if path.endswith("/."):
            name = "."
        return {"name": name, "size": st.st_size, "mode": go_mode(st.st_mode),
                "mtime": rfc3339nano(st.st_mtime_ns), "linkTarget": link}

    def _lexical_target(self, where: tuple[int, str, Parts]) -> Parts:
        fd, name, real = where
        target = os.readlink(name, dir_fd=fd)
        return clean(target) if target.startswith("/") else clean(
            "/".join((*real[:-1], target)))

    # -- reading -------------------------------------------------------------------------

    def read_tar(self, path: str, out: IO[bytes]) -> None:
        """A tar of `path` (a directory with everything below it) to `out`, its members
        named from the path's last name, as Docker's archive of a container path."""
        where = self.locate(path, follow=wants_dir(path))
        if where is None:
            raise PathNotFound(path, self.container)
        if path.endswith("/.") or path == ".":
            base = "."  # "dir/.": the content, as "./x"
        elif not path.strip("/"):
            base = "/"  # the root: "/bin", "/etc", as dockerd names them
        else:
            base = os.path.basename(path.rstrip("/"))
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            _TarWriter(tar).add(where[0], where[1], base)

    def export(self, out: IO[bytes]) -> None:
        """The whole root as a tar (docker export): members relative to "/"."""
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            writer = _TarWriter(tar)
            for entry in sorted(os.listdir(self.root.fd)):
                writer.add(self.root.fd, entry, entry)

    # -- writing -------------------------------------------------------------------------

    def extract(self, path: str, source: IO[bytes], *, no_overwrite_dir_non_dir: bool = False,
                chown: tuple[int, int] | None = None) -> None:
        """Extract the tar (plain or compressed) read from `source` into the directory
        `path` (followed if a symlink)."""
        where = self.locate(path, follow=True)
        if where is None:
            raise PathNotFound(path, self.container)
        if not stat.S_ISDIR(self.lstat(where).st_mode):
            raise EngineError("extraction point is not a directory")
        try:
            with tarfile.open(fileobj=source, mode="r|*") as tar:
                Extractor(self.root, where[2], no_overwrite_dir_non_dir, chown).run(tar)
        except tarfile.ReadError as e:
            if str(e) == "empty file":
                return  # no body: nothing to extract
            raise TarError("archive/tar: invalid tar header") from None
        except tarfile.TarError as e:
            raise TarError(f"archive/tar: {e}") from None
        except InvalidParameter as e:
            raise TarError(e.message) from None


def _open_regular(dir_fd: int, name: str) -> int | None:
    """`name` opened for reading if it is a regular file; never blocks on a FIFO nor opens
    a device that a running container put there meanwhile."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                 dir_fd=dir_fd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    os.set_blocking(fd, True)
    return fd


class _TarWriter:
    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.links: dict[tuple[int, int], str] = {}

    def add(self, dir_fd: int, name: str, arcname: str) -> None:
        """`name` in `dir_fd` as `arcname` (and below it, for a directory)."""
        st = os.stat(name or ".", dir_fd=dir_fd, follow_symlinks=False)
        info = tarfile.TarInfo(arcname)
        info.mode, info.uid, info.gid = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid
        info.mtime = st.st_mtime
        kind = stat.S_IFMT(st.st_mode)
        if kind != stat.S_IFDIR and st.st_nlink > 1:
            seen = self.links.get((st.st_dev, st.st_ino))
            if seen is not None:
                info.type, info.linkname = tarfile.LNKTYPE, seen
                self.tar.addfile(info)
                return
            self.links[(st.st_dev, st.st_ino)] = arcname
        if kind == stat.S_IFREG:
            fd = _open_regular(dir_fd, name)
            if fd is None:
                return  # no longer a regular file: changed under us, left out
            with os.fdopen(fd, "rb") as f:
                info.size = os.fstat(fd).st_size
                self.tar.addfile(info, f)
        elif kind == stat.S_IFDIR:
            info.type = tarfile.DIRTYPE
            if not arcname.endswith("/"):
                info.name = arcname + "/"
            self.tar.addfile(info)
            fd = os.open(name or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW |
                         os.O_CLOEXEC, dir_fd=dir_fd)
            try:
                for entry in sorted(os.listdir(fd)):
                    child = f"{arcname.rstrip('/')}/{entry}"
                    self.add(fd, entry, child)
            finally:
                os.close(fd)
        elif kind == stat.S_IFLNK:
            info.type, info.linkname = tarfile.SYMTYPE, os.readlink(name, dir_fd=dir_fd)
            self.tar.addfile(info)
        elif kind in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO):
            info.type = {stat.S_IFCHR: tarfile.CHRTYPE, stat.S_IFBLK: tarfile.BLKTYPE,
                         stat.S_IFIFO: tarfile.FIFOTYPE}[kind]
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            self.tar.addfile(info)
        # sockets are left out, as Docker leaves them


def container_user_ids(fs: ContainerFS, user: str) -> tuple[int, int] | None:
    """The uid and gid of the container's Config.User, from its /etc/passwd and /etc/group
    (numbers taken as they are); None for no user."""
    if not user:
        return None
    name, _, group = user.partition(":")

    def table(path: str) -> list[list[str]]:
        where = fs.locate(path, follow=True)
        if where is None:
            return []
        try:
            fd = _open_regular(where[0], where[1])
        except OSError:
            return []
        if fd is None:
            return []
        with os.fdopen(fd, "rb") as f:
            text = f.read(1 << 20).decode(errors="replace")
        return [line.split(":") for line in text.splitlines() if line.count(":") >= 3]

    uid = gid = None
    if name.isdigit():
        uid = int(name)
    for row in table("/etc/passwd"):
        if row[0] == name or (uid is not None and row[2] == str(uid)):
            uid, gid = int(row[2]), int(row[3])
            break
    if uid is None:
        raise InvalidParameter(f"unable to find user {name}: no matching entries in passwd "
                               "file")
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            gid = next((int(r[2]) for r in table("/etc/group") if r[0] == group), None)
            if gid is None:
                raise InvalidParameter(f"unable to find group {group}: no matching entries "
                                       "in group file")
    return uid, gid if gid is not None else uid

