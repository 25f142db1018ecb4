"""Tar members made into files under a root: what apply_layer does with each one.

Per member, in this order (each step would undo the one before it otherwise):
    1. the parent directory, found inside the root (safepath.Root; missing ones made 0755)
    2. whatever is at the name and is not what the member wants, removed: a directory over
       a directory is merged, anything else replaced; a name is unlinked, never written
       through, so a symlink left there cannot redirect the write
    3. the object: open(O_CREAT | O_EXCL | O_NOFOLLOW) and the data, mkdir, symlink, link,
       mknod
    4. owner (lchown; numeric ids), then mode (chown clears set-id bits), then xattrs
       (chown drops security.capability), then times; a directory's times at the very end,
       after everything made in it

Whiteouts, in one of two ways (whiteouts.py has the names):
    "delete"   the root holds the layers below (a copy): `.wh.x` removes x; `.wh..wh..opq`
               empties its directory of everything this layer did not write
    "overlay"  the root is an empty upper directory: `.wh.x` makes x a character device
               0/0; `.wh..wh..opq` sets trusted.overlay.opaque=y on its directory
Either way a whiteout leaves alone what this layer itself wrote (OCI: whiteouts apply to the
layers below), so the order of members in a directory does not matter. In "overlay" mode no
whiteout device is left below a directory this layer makes opaque: there it hides nothing,
and overlayfs reads such a directory as it is (it merges nothing into it), so `ls` would
list the device while lookups deny it (seen on 6.18).

Hard links point at a member of this layer or at a file already in the root, found as
any other path inside it. Extended attributes the kernel refuses (EPERM, ENOTSUP: user.* on
a symlink, security.selinux without SELinux) are skipped, as Docker skips them, and logged.
"""

from __future__ import annotations

import errno
import logging
import os
import stat

from dockyard.image.errors import InvalidArgument
from dockyard.image.layers import whiteouts
from dockyard.image.layers.safepath import Path, Root, clean
from dockyard.image.layers.tarstream import (
    BLOCKDEV,
    CHAR,
    DIR,
    FIFO,
    LINK,
    REGULAR,
    SYMLINK,
    Member,
    TarReader,
)

log = logging.getLogger(__name__)

_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NODES = {CHAR: stat.S_IFCHR, BLOCKDEV: stat.S_IFBLK, FIFO: stat.S_IFIFO}
_SKIPPED_XATTR = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP)
# errors a member itself causes, as opposed to the disk's (ENOSPC, EIO)
_BAD_MEMBER = (errno.ENAMETOOLONG, errno.ELOOP, errno.ENOTDIR, errno.EISDIR, errno.EMLINK,
               errno.EXDEV, errno.EINVAL)


class Unpacker:
    """Applies members one by one (`apply`), then directory times (`finish`)."""

    def __init__(self, root: str | os.PathLike[str], overlay: bool, same_owner: bool) -> None:
        self.root = Root(root)
        self.overlay = overlay
        self.same_owner = same_owner
        self.touched: set[Path] = set()  # what this layer wrote, and the directories above
        self.dir_times: dict[Path, tuple[int, int]] = {}
        self.opaque: set[Path] = set()  # "overlay": directories this layer made opaque
        self.devices: set[Path] = set()  # "overlay": whiteout devices this layer made
        self._skipped: set[str] = set()
        self._umask = _umask()

    def close(self) -> None:
        self.root.close()

    def apply(self, m: Member, reader: TarReader) -> None:
        self.root.release()
        try:
            self._apply(m, reader)
        except OSError as e:
            if e.errno in _BAD_MEMBER:
                raise InvalidArgument(f"layer member {m.name!r}: {e.strerror}") from e
            raise OSError(e.errno, f"layer member {m.name!r}: {e.strerror}") from e
        except (OverflowError, ValueError) as e:  # an id or device number out of range
            raise InvalidArgument(f"layer member {m.name!r}: {e}") from e

    def finish(self) -> None:
        """Directory times, last: making anything in a directory changes its mtime."""
        self.root.release()
        for real, times in self.dir_times.items():
            parent = self.root.dir(real[:-1], create=False) if real else (self.root.fd, ())
            if parent is None:
                continue
            try:
                fd = os.open(real[-1] if real else ".", _OPEN_DIR, dir_fd=parent[0])
            except (FileNotFoundError, NotADirectoryError):
                continue  # removed, or replaced by a later member
            except OSError as e:
                if e.errno != errno.ELOOP:
                    raise
                continue
            try:
                os.utime(fd, ns=times)
            finally:
                os.close(fd)

    def _apply(self, m: Member, reader: TarReader) -> None:
        path = clean(m.name)
        if path and path[-1].startswith(whiteouts.PREFIX):
            self._whiteout(path, m)
            return
        if not path:  # "./": the root itself
            if m.type != DIR:
                raise InvalidArgument(f"layer member {m.name!r}: the root must be a directory")
            self._dir_metadata(self.root.fd, m, ())
            return
        found = self.root.dir(path[:-1], create=True)
        assert found is not None
        dir_fd, parent = found
        self._mark(parent)
        name, real = path[-1], (*parent, path[-1])
        if m.type == REGULAR:
            self._regular(dir_fd, name, m, reader)
        elif m.type == DIR:
            self._dir(dir_fd, name, real, m)
        elif m.type == SYMLINK:
            self._symlink(dir_fd, name, m)
        elif m.type == LINK:
            self._link(dir_fd, name, real, m)
        else:
            self._node(dir_fd, name, m)
        self.touched.add(real)
        self.devices.discard(real)

    def _mark(self, parent: Path) -> None:
        if parent not in self.touched:
            self.touched.update(parent[:i] for i in range(len(parent) + 1))

    # -- the objects ------------------------------------------------------------------

    def _regular(self, dir_fd: int, name: str, m: Member, reader: TarReader) -> None:
        # the mode given to open(2) is the file's if the umask takes nothing from it and
        # it has no set-id bits (chown clears those): then a fchmod is one syscall saved
        exact = not m.mode & (self._umask | 0o7000)
        mode = m.mode if exact else 0o600
        try:
            fd = os.open(name, _NEW_FILE, mode, dir_fd=dir_fd)
        except FileExistsError:
            self._remove(dir_fd, name)
            fd = os.open(name, _NEW_FILE, mode, dir_fd=dir_fd)
        try:
            reader.write_data(fd)
            if self.same_owner:
                os.fchown(fd, m.uid, m.gid)
            if not exact:
                os.fchmod(fd, m.mode)
            if m.xattrs:
                self._xattrs(fd, m)
            os.utime(fd, ns=_times(m))
        finally:
            os.close(fd)

    def _dir(self, dir_fd: int, name: str, real: Path, m: Member) -> None:
        try:
            os.mkdir(name, 0o700, dir_fd=dir_fd)
        except FileExistsError:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                self._remove(dir_fd, name, st)
                os.mkdir(name, 0o700, dir_fd=dir_fd)
        fd = os.open(name, _OPEN_DIR, dir_fd=dir_fd)
        try:
            self._dir_metadata(fd, m, real)
        finally:
            os.close(fd)

    def _dir_metadata(self, fd: int, m: Member, real: Path) -> None:
        if self.same_owner:
            os.fchown(fd, m.uid, m.gid)
        os.fchmod(fd, m.mode)
        if m.xattrs:
            self._xattrs(fd, m)
        self.dir_times[real] = _times(m)

    def _symlink(self, dir_fd: int, name: str, m: Member) -> None:
        if not m.linkname:
            raise InvalidArgument(f"layer member {m.name!r}: a symlink to nothing")
        try:
            os.symlink(m.linkname, name, dir_fd=dir_fd)
        except FileExistsError:
            self._remove(dir_fd, name)
            os.symlink(m.linkname, name, dir_fd=dir_fd)
        self._node_metadata(dir_fd, name, m, chmod=False)

    def _node(self, dir_fd: int, name: str, m: Member) -> None:
        kind = _NODES[m.type]
        device = os.makedev(m.devmajor, m.devminor) if kind != stat.S_IFIFO else 0
        try:
            os.mknod(name, kind | 0o600, device, dir_fd=dir_fd)
        except FileExistsError:
            self._remove(dir_fd, name)
            os.mknod(name, kind | 0o600, device, dir_fd=dir_fd)
        self._node_metadata(dir_fd, name, m, chmod=True)

    def _node_metadata(self, dir_fd: int, name: str, m: Member, chmod: bool) -> None:
        """Metadata by name, for what cannot be opened safely (a symlink, a device, a fifo)
        and was just made here: chmod may follow, the others must not."""
        if self.same_owner:
            os.chown(name, m.uid, m.gid, dir_fd=dir_fd, follow_symlinks=False)
        if chmod:
            os.chmod(name, m.mode, dir_fd=dir_fd)
        if m.xattrs:
            self._xattrs(f"/proc/self/fd/{dir_fd}/{name}", m)
        os.utime(name, ns=_times(m), dir_fd=dir_fd, follow_symlinks=False)

    def _link(self, dir_fd: int, name: str, real: Path, m: Member) -> None:
        """A hard link; its own header's metadata is ignored: the inode has it already."""
        target = clean(m.linkname)
        found = self.root.dir(target[:-1], create=False) if target else None
        if found is None:
            raise InvalidArgument(f"layer member {m.name!r}: hard link target "
                                  f"{m.linkname!r} is not in the layer or below it")
        target_fd, target_parent = found
        if (*target_parent, target[-1]) == real:
            return
        args = {"src_dir_fd": target_fd, "dst_dir_fd": dir_fd, "follow_symlinks": False}
        try:
            os.link(target[-1], name, **args)
        except FileExistsError:
            here = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            there = os.stat(target[-1], dir_fd=target_fd, follow_symlinks=False)
            if (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino):
                return
            self._remove(dir_fd, name, here)
            os.link(target[-1], name, **args)
        except FileNotFoundError:
            raise InvalidArgument(f"layer member {m.name!r}: hard link target "
                                  f"{m.linkname!r} is not in the layer or below it") from None
        except PermissionError:  # EPERM: a directory
            raise InvalidArgument(f"layer member {m.name!r}: hard link target "
                                  f"{m.linkname!r} is a directory") from None

    def _xattrs(self, where: int | str, m: Member) -> None:
        for key, value in m.xattrs:
            if key.startswith(whiteouts.OVERLAY_XATTRS):
                continue
            try:
                if isinstance(where, int):
                    os.setxattr(where, key, value)
                else:
                    os.setxattr(where, key, value, follow_symlinks=False)
            except OSError as e:
                if e.errno not in _SKIPPED_XATTR:
                    raise
                if key not in self._skipped:
                    self._skipped.add(key)
                    log.warning("layer member %r: xattr %s not set: %s", m.name, key,
                                e.strerror)

    def _remove(self, dir_fd: int, name: str, st: os.stat_result | None = None) -> None:
        gone = whiteouts.remove(dir_fd, name, st)
        if gone is not None and (stat.S_ISDIR(gone.st_mode) or stat.S_ISLNK(gone.st_mode)):
            self.root.forget()

    # -- whiteouts ----------------------------------------------------------------------

    def _whiteout(self, path: Path, m: Member) -> None:
        target = whiteouts.whited_out(path[-1])
        if path[-1] == whiteouts.OPAQUE:
            self._opaque(path[:-1])
            return
        if not target:
            return  # aufs bookkeeping
        if target in (".", ".."):
            raise InvalidArgument(f"layer member {m.name!r}: a whiteout of {target!r}")
        found = self.root.dir(path[:-1], create=self.overlay)
        if found is None:
            return  # nothing below to delete
        dir_fd, parent = found
        if (*parent, target) in self.touched:
            return
        if not self.overlay:
            self._remove(dir_fd, target)
            return
        if any(parent[:i] in self.opaque for i in range(len(parent) + 1)):
            return  # hides nothing there, and overlayfs would list it
        self._mark(parent)
        self._remove(dir_fd, target)
        whiteouts.make_whiteout(dir_fd, target)
        self._node_metadata(dir_fd, target, m, chmod=False)
        self.devices.add((*parent, target))

    def _opaque(self, path: Path) -> None:
        found = self.root.dir(path, create=self.overlay)
        if found is None:
            return
        dir_fd, real = found
        if not self.overlay:
            self._clear(dir_fd, real)
            return
        self._mark(real)
        whiteouts.mark_opaque(dir_fd)
        self.opaque.add(real)
        for device in [d for d in self.devices if d[:len(real)] == real]:
            self.devices.discard(device)
            parent = self.root.dir(device[:-1], create=False)
            if parent is not None:
                try:
                    st = os.stat(device[-1], dir_fd=parent[0], follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if whiteouts.is_whiteout_device(st):
                    os.unlink(device[-1], dir_fd=parent[0])

    def _clear(self, dir_fd: int, real: Path) -> None:
        """Remove from a directory everything this layer did not write, at any depth."""
        todo = [(os.open(".", _OPEN_DIR, dir_fd=dir_fd), real)]
        try:
            while todo:
                fd, here = todo.pop()
                try:
                    with os.scandir(fd) as it:
                        entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
                    for name, is_dir in entries:
                        if (*here, name) not in self.touched:
                            self._remove(fd, name)
                        elif is_dir:
                            todo.append((os.open(name, _OPEN_DIR, dir_fd=fd), (*here, name)))
                finally:
                    os.close(fd)
        finally:
            for fd, _ in todo:
                os.close(fd)


def _umask() -> int:
    """This process's umask, read without setting it (umask(2) would, for every thread);
    0o7777 (assume it takes everything) where /proc does not say."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o7777


_NS_MIN, _NS_MAX = -(2**63), 2**63 - 1  # what utimensat takes; the file system clamps further


def _times(m: Member) -> tuple[int, int]:
    atime = m.mtime_ns if m.atime_ns is None else m.atime_ns
    return (min(max(atime, _NS_MIN), _NS_MAX), min(max(m.mtime_ns, _NS_MIN), _NS_MAX))
