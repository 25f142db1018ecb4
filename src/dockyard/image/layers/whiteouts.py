"""Deletions, in a layer tar and in an overlay upper directory.

OCI image-spec layer.md, "Whiteouts":
    .wh.<name>       in a directory: <name> of the layers below is gone
    .wh..wh..opq     in a directory: everything of the layers below in it is gone (the
                     directory is *opaque*); what this same layer puts there stays
Whiteouts apply to the layers below only: a file this same layer adds is not removed by a
whiteout of it in this layer. Other `.wh..wh.` names are aufs's own bookkeeping and mean
nothing here.

overlayfs (Documentation/filesystems/overlayfs.rst) says the same in an upper directory:
    <name> is a character device 0/0            a whiteout
    trusted.overlay.opaque = "y" on a directory  an opaque directory
Other trusted.overlay.* attributes are overlay's own (origin, impure, redirect, metacopy)
and are neither taken from a layer nor put into one.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat

PREFIX = ".wh."
META_PREFIX = ".wh..wh."
OPAQUE = ".wh..wh..opq"
OVERLAY_XATTRS = "trusted.overlay."
OPAQUE_XATTR = "trusted.overlay.opaque"


def whited_out(base: str) -> str | None:
    """The name a `.wh.<name>` entry deletes; "" for an opaque marker or aufs bookkeeping,
    None for a name that is not a whiteout at all."""
    if not base.startswith(PREFIX):
        return None
    if base.startswith(META_PREFIX):
        return ""
    return base[len(PREFIX):]


def is_whiteout_device(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def make_whiteout(dir_fd: int, name: str) -> None:
    """A character device 0/0 at `name`, mode 0 (as overlayfs makes them)."""
    os.mknod(name, stat.S_IFCHR, os.makedev(0, 0), dir_fd=dir_fd)


def mark_opaque(dir_fd: int) -> None:
    """trusted.overlay.opaque=y on the directory of the (O_PATH) descriptor `dir_fd`."""
    os.setxattr(f"/proc/self/fd/{dir_fd}", OPAQUE_XATTR, b"y")


def is_opaque(path: str | int) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError as e:
        if e.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
            return False
        raise


def remove(dir_fd: int, name: str, st: os.stat_result | None = None) -> os.stat_result | None:
    """Remove `name` in `dir_fd` whatever it is, a directory with all in it, never following
    a symlink; returns what was there (None if nothing was)."""
    if st is None:
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)
    return st
