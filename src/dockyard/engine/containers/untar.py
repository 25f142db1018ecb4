"""A tar extracted into a directory inside a container's root (PUT /containers/{id}/archive),
with Docker's archive.Untar checks, relative to the destination directory:

    ../x                     refused (breakout)
    /x                       x under the destination
    a -> ../../..            a symlink whose target leaves the destination: refused
    a -> /etc, then a/f      a member whose directory resolves outside the destination: refused
    hard link to ../../x     refused; a hard link's target must be inside the destination

Directories are walked with safepath.Root (symlinks resolved inside the container's root);
the last component is created with *at() calls and O_NOFOLLOW, an existing one replaced,
never written through; owner, mode and times are set on the very inode.

The builder unpacks build contexts and ADD's archives with the same Extractor
(build/archives.py): it checks names more strictly first, keeps a context's symlinks as
written (`links_inside=False`: never followed, they may point anywhere), makes no devices,
keeps owners only when it runs as root, and for a context has each regular file hashed as it
is written (`hashed`: build/filedigests.py).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tarfile
from collections.abc import Callable
from typing import BinaryIO

from dockyard.engine.errors import EngineError, InvalidParameter
from dockyard.image.errors import InvalidArgument
from dockyard.image.layers.safepath import Root

Parts = tuple[str, ...]
CHUNK = 1 << 20


class TarError(EngineError):
    """What dockerd answers when an archive cannot be extracted (a 500, in its words)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"Error processing tar file(exit status 1): {message}")


def member_parts(name: str) -> Parts:
    """A member's name below the destination (absolute names too); a ".." that leaves the
    destination is a breakout."""
    out: list[str] = []
    for c in name.split("/"):
        if c == "..":
            if not out:
                raise InvalidParameter(f'invalid path: "{name}": breakout from destination')
            out.pop()
        elif c and c != ".":
            out.append(c)
    return tuple(out)


def _inside(real: Parts, dest: Parts) -> bool:
    return real[:len(dest)] == dest


def copy_member(tar: tarfile.TarFile, m: tarfile.TarInfo, dst: BinaryIO,
                hashing: bool = False) -> bytes:
    """Write a regular member's data to `dst`; its sha256 if `hashing` (else b"").

    An archive read as a stream (mode "r|", opened with bufsize=tarfile.BLOCKSIZE, as
    open_stream does) has read exactly the member's headers: its data is next in the file
    under it, and goes from there to `dst` through one reused buffer. tarfile's own reader
    would copy every block several times (its buffers, joins and slices), which costs more
    than the writing and the hashing together, and holds the GIL meanwhile."""
    stream = tar.fileobj
    under = getattr(stream, "fileobj", None)
    h = hashlib.sha256() if hashing else None
    if not (isinstance(stream, tarfile._Stream) and stream.comptype == "tar"
            and stream.buf == b"" and stream.pos == m.offset_data and m.sparse is None
            and hasattr(under, "readinto")):  # a sparse member's data is its regions
        src = tar.extractfile(m)
        while src is not None and (block := src.read(CHUNK)):
            if h is not None:
                h.update(block)
            dst.write(block)
        return h.digest() if h is not None else b""
    assert under is not None
    buf = memoryview(bytearray(min(m.size, CHUNK) or 1))
    left = m.size
    while left:
        n = under.readinto(buf[:min(left, len(buf))])
        if not n:
            raise tarfile.ReadError("unexpected end of data")
        if h is not None:
            h.update(buf[:n])
        dst.write(buf[:n])
        left -= n
    padding = -m.size % tarfile.BLOCKSIZE
    if padding and len(under.read(padding)) != padding:
        raise tarfile.ReadError("unexpected end of data")
    stream.pos = m.offset_data + m.size + padding  # where tarfile looks for the next header
    return h.digest() if h is not None else b""


def open_stream(source: BinaryIO) -> tarfile.TarFile:
    """A tar read front to back from `source` (see copy_member)."""
    return tarfile.open(fileobj=source, mode="r|", bufsize=tarfile.BLOCKSIZE)


class Extractor:
    def __init__(self, root: Root, dest: Parts, no_overwrite: bool,
                 chown: tuple[int, int] | None, *, links_inside: bool = True,
                 devices: bool = True, keep_owner: bool = True,
                 hashed: Callable[[os.stat_result, bytes], None] | None = None) -> None:
        self.root, self.dest, self.no_overwrite, self.chown = root, dest, no_overwrite, chown
        self.links_inside, self.devices, self.keep_owner = links_inside, devices, keep_owner
        self.hashed = hashed  # told each regular file's final stat and sha256 (the builder)
        self.dir_times: list[tuple[Parts, int]] = []

    def run(self, tar: tarfile.TarFile,
            accept: Callable[[tarfile.TarInfo], bool] = lambda m: True) -> None:
        """Every member `accept` takes (it may also raise), then the directories' times."""
        for member in tar:
            if accept(member):
                self.member(tar, member)
            self.root.release()
        for parts, mtime in reversed(self.dir_times):
            found = self._parent(parts)
            if found is not None:
                os.utime(parts[-1], (mtime, mtime), dir_fd=found[0], follow_symlinks=False)

    def _parent(self, parts: Parts) -> tuple[int, Parts] | None:
        try:
            return self.root.dir((*self.dest, *parts[:-1]), False)
        except (InvalidArgument, OSError):
            return None

    def member(self, tar: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        parts = member_parts(m.name)
        if not parts:
            return  # "." or "/": the destination itself
        try:
            parent_fd, real = self.root.dir((*self.dest, *parts[:-1]), True)
        except InvalidArgument as e:
            raise InvalidParameter(f'invalid path: "{m.name}": {e}') from None
        if not _inside(real, self.dest):
            raise InvalidParameter(f'invalid path: "{m.name}": breakout from destination')
        name = parts[-1]
        if m.issym() and self.links_inside:
            target = m.linkname
            if not target.startswith("/"):
                try:
                    member_parts("/".join((*parts[:-1], target)))
                except InvalidParameter:
                    raise InvalidParameter(f'invalid symlink "{m.name}" -> "{target}"'
                                           ) from None
        digest = b""
        if not self._clear(parent_fd, real, name, m):
            self._set(parent_fd, name, m, created=False)
            return
        if m.isdir():
            os.mkdir(name, 0o700, dir_fd=parent_fd)
        elif m.isreg():
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW |
                         os.O_CLOEXEC, 0o600, dir_fd=parent_fd)
            with os.fdopen(fd, "wb") as f:
                digest = copy_member(tar, m, f, self.hashed is not None)
        elif m.issym():
            os.symlink(m.linkname, name, dir_fd=parent_fd)
        elif m.islnk():
            self._hardlink(parent_fd, name, m)
            return
        elif self.devices and (m.ischr() or m.isblk() or m.isfifo()):
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
            os.mknod(name, kind | 0o600, os.makedev(m.devmajor, m.devminor), dir_fd=parent_fd)
        else:
            return  # other types (pax headers are read by tarfile itself) are skipped
        self._set(parent_fd, name, m, created=True)
        if m.isdir():
            self.dir_times.append((parts, int(m.mtime)))
        elif m.isreg() and self.hashed is not None:
            self.hashed(os.stat(name, dir_fd=parent_fd, follow_symlinks=False), digest)

    def _clear(self, parent_fd: int, real: Parts, name: str, m: tarfile.TarInfo) -> bool:
        """Make room for `m`: True when it must be made, False when it is an existing
        directory that stays (a directory member over a directory)."""
        try:
            st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            return True
        is_dir = stat.S_ISDIR(st.st_mode)
        if is_dir and m.isdir():
            return False
        if self.no_overwrite and is_dir != m.isdir():
            here = "/" + "/".join((*real, name))
            dest = "/" + "/".join(self.dest)
            if is_dir:
                raise InvalidParameter(f'cannot overwrite directory "{here}" with '
                                       f'non-directory "{dest}"')
            raise InvalidParameter(f'cannot overwrite non-directory "{here}" with '
                                   f'directory "{dest}"')
        if is_dir:
            shutil.rmtree(name, dir_fd=parent_fd)
            self.root.forget()
        else:
            os.unlink(name, dir_fd=parent_fd)
            if stat.S_ISLNK(st.st_mode):  # the walk may have resolved through it
                self.root.forget()
        return True

    def _hardlink(self, parent_fd: int, name: str, m: tarfile.TarInfo) -> None:
        bad = f'invalid hardlink "{m.name}" -> "{m.linkname}"'
        try:
            target = member_parts(m.linkname)
            found = self.root.dir((*self.dest, *target[:-1]), False) if target else None
        except (InvalidParameter, InvalidArgument):
            found = None
        if found is None or not _inside(found[1], self.dest):
            raise InvalidParameter(bad)
        try:
            os.link(target[-1], name, src_dir_fd=found[0], dst_dir_fd=parent_fd,
                    follow_symlinks=False)
        except OSError as e:  # not (yet) in the archive
            raise InvalidParameter(f"{bad}: {e.strerror}") from None

    def _set(self, parent_fd: int, name: str, m: tarfile.TarInfo, *, created: bool) -> None:
        """Owner, mode and times, on the very inode (a descriptor, never a followed name)."""
        uid, gid = self.chown or (m.uid, m.gid)
        owned = self.keep_owner or self.chown is not None
        if m.issym():
            if owned:
                os.chown(name, uid, gid, dir_fd=parent_fd, follow_symlinks=False)
            os.utime(name, (m.mtime, m.mtime), dir_fd=parent_fd, follow_symlinks=False)
            return
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
        try:
            proc = f"/proc/self/fd/{fd}"
            if owned:
                os.chown(proc, uid, gid)
            os.chmod(proc, m.mode & 0o7777)
        finally:
            os.close(fd)
        os.utime(name, (m.mtime, m.mtime), dir_fd=parent_fd, follow_symlinks=False)
