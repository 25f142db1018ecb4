"""What a snapshot changed, found in one of two ways, as the entries of its layer tar.

    overlay_changes(upper)         an overlay upper directory holds exactly the changes:
                                   each entry is one, a character device 0/0 a deletion,
                                   trusted.overlay.opaque=y an opaque directory
    compare_changes(lower, upper)  two full trees (the copying snapshotter's parent and
                                   child): containerd's double walk. An entry is changed if
                                   its type, mode, owner, device number or xattrs differ; for
                                   what is not a directory, also its size or mtime. When both
                                   mtimes have no nanoseconds (a tar's whole seconds on both
                                   sides, say), content or symlink target is compared too.
                                   A name only in `lower` is a deletion.

Both yield `Change`s in tar order: names sorted bytewise within a directory, a directory
before what is in it. An unchanged directory above a change is yielded first, as containerd
includes parents: applied onto an overlay upper, the directory then keeps its own mode and
owner instead of the 0755 of a directory made on the way.

Walks use a stack, not recursion, and lstat only: no symlink in a snapshot is followed.
Sockets are skipped (a tar cannot hold them).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from dockyard.image.errors import FailedPrecondition
from dockyard.image.layers import whiteouts

ENTRY, WHITEOUT, OPAQUE = "entry", "whiteout", "opaque"
# neither taken from a snapshot nor put into a layer: overlay's own, and the host's labels
SKIPPED_XATTRS = (whiteouts.OVERLAY_XATTRS, "security.selinux")
_UNREPRESENTABLE = ("trusted.overlay.redirect", "trusted.overlay.metacopy")
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class Change:
    """`kind` ENTRY: `path` added or changed, read from `source`; WHITEOUT: `path` deleted
    (`st` is the overlay whiteout device, or None); OPAQUE: the directory `path` hides
    everything below it."""

    kind: str
    path: str
    source: str = ""
    st: os.stat_result | None = None


def overlay_changes(upper: str | os.PathLike[str]) -> Iterator[Change]:
    top = os.fspath(upper)
    stack = [("", iter(_names(top)))]
    while stack:
        rel, names = stack[-1]
        name = next(names, None)
        if name is None:
            stack.pop()
            continue
        path = f"{rel}/{name}" if rel else name
        host = os.path.join(top, path)
        st = os.lstat(host)
        if whiteouts.is_whiteout_device(st):
            yield Change(WHITEOUT, path, host, st)
        elif not stat.S_ISSOCK(st.st_mode):
            yield Change(ENTRY, path, host, st)
            if stat.S_ISDIR(st.st_mode):
                if whiteouts.is_opaque(host):
                    yield Change(OPAQUE, path, host, st)
                stack.append((path, iter(_names(host))))


def compare_changes(lower: str | os.PathLike[str] | None,
                    upper: str | os.PathLike[str]) -> Iterator[Change]:
    top, bottom = os.fspath(upper), None if lower is None else os.fspath(lower)
    pending: list[Change] = []  # unchanged directories above: yielded before a change below
    stack = [("", iter(_names(top, bottom)), bottom)]
    while stack:
        rel, names, low_dir = stack[-1]
        name = next(names, None)
        if name is None:
            stack.pop()
            if pending and pending[-1].path == rel:
                pending.pop()
            continue
        path = f"{rel}/{name}" if rel else name
        host = os.path.join(top, path)
        low = None if low_dir is None else os.path.join(low_dir, name)
        st, low_st = _lstat(host), None if low is None else _lstat(low)
        if st is None:
            yield from pending
            pending.clear()
            yield Change(WHITEOUT, path)
            continue
        if stat.S_ISSOCK(st.st_mode):
            continue
        entry = Change(ENTRY, path, host, st)
        if low_st is None or differs(host, st, low or "", low_st):
            yield from pending
            pending.clear()
            yield entry
        elif stat.S_ISDIR(st.st_mode):
            pending.append(entry)
        if stat.S_ISDIR(st.st_mode):
            below = low if low_st is not None and stat.S_ISDIR(low_st.st_mode) else None
            stack.append((path, iter(_names(host, below)), below))


def differs(path: str, st: os.stat_result, other: str, other_st: os.stat_result) -> bool:
    """Whether `path` is changed from `other` (containerd's sameFile, all xattrs)."""
    if (st.st_dev, st.st_ino) == (other_st.st_dev, other_st.st_ino):
        return False
    if (st.st_mode, st.st_uid, st.st_gid) != (other_st.st_mode, other_st.st_uid,
                                               other_st.st_gid):
        return True
    if (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)) and st.st_rdev != other_st.st_rdev:
        return True
    if xattrs(path) != xattrs(other):
        return True
    if stat.S_ISDIR(st.st_mode):
        return False
    if st.st_size != other_st.st_size:
        return True
    seconds, ns = divmod(st.st_mtime_ns, 1_000_000_000)
    other_seconds, other_ns = divmod(other_st.st_mtime_ns, 1_000_000_000)
    if seconds != other_seconds or ns != other_ns:
        return True
    if ns:
        return False
    if stat.S_ISLNK(st.st_mode):  # whole seconds: maybe truncated; look
        return os.readlink(path) != os.readlink(other)
    return stat.S_ISREG(st.st_mode) and st.st_size > 0 and not _same_content(path, other)


def xattrs(path: str) -> tuple[tuple[str, bytes], ...]:
    """`path`'s extended attributes that a layer carries, sorted; FailedPrecondition for
    an overlay redirect or metacopy, which no layer can express (the snapshotter mounts
    with both off)."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return ()
        raise
    out = []
    for name in sorted(names):
        if name.startswith(_UNREPRESENTABLE):
            raise FailedPrecondition(f"{path}: overlay {name} cannot go into a layer")
        if not name.startswith(SKIPPED_XATTRS):
            out.append((name, os.getxattr(path, name, follow_symlinks=False)))
    return tuple(out)


def _names(path: str, other: str | None = None) -> list[str]:
    names = set(os.listdir(path))
    if other is not None:
        names.update(os.listdir(other))
    return sorted(names, key=os.fsencode)


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _same_content(a: str, b: str) -> bool:
    fa = os.open(a, _READ)
    try:
        fb = os.open(b, _READ)
        try:
            while True:
                x, y = os.read(fa, 1 << 20), os.read(fb, 1 << 20)
                if x != y:
                    return False
                if not x:
                    return True
        finally:
            os.close(fb)
    finally:
        os.close(fa)
