"""write_diff: the layer tar of a snapshot's changes, compressed and hashed as it is written.

    changes ──► TarWriter ──► HashingWriter ──► compressor ══► HashingWriter ──► out
    (changes.py)  members       diff_id,           gzip/zstd/""   digest, size
                                uncompressed_size
                                          ══ a bounded queue to a second thread
                                             (ThreadedWriter); with `out_digest`, `out`
                                             hashes what it takes itself

One pass, nothing staged: the caller streams `out` into the content store's writer and
commits under the digest returned. What goes in (OCI image-spec layer.md, "Changesets"):
added and changed entries with their type, mode (set-id and sticky bits too), numeric
owner, mtime in nanoseconds, symlink target, device numbers and extended attributes;
a deletion as `.wh.<name>`; an opaque directory as its entry followed by
`<dir>/.wh..wh..opq`; a second name of a regular file already written (same inode) as a
hard link to the first. Whiteouts of an overlay upper keep the device's owner, permissions
and mtime; those found by comparing have none (0, 0, 0, 1970).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from typing import BinaryIO

from dockyard.image.digest import Digest
from dockyard.image.errors import InvalidArgument
from dockyard.image.layers import whiteouts
from dockyard.image.layers.changes import (
    ENTRY,
    OPAQUE,
    Change,
    compare_changes,
    overlay_changes,
    xattrs,
)
from dockyard.image.layers.compression import compressor
from dockyard.image.layers.hashing import Applied, HashingWriter, ThreadedWriter
from dockyard.image.layers.tarstream import (
    BLOCKDEV,
    CHAR,
    DIR,
    FIFO,
    LINK,
    REGULAR,
    SYMLINK,
    Member,
)
from dockyard.image.layers.tarwrite import TarWriter

__all__ = ["Diff", "write_diff"]

Diff = Applied  # the same four numbers: digest and size as written, diff_id and size of the tar

_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_TYPES = {stat.S_IFREG: REGULAR, stat.S_IFDIR: DIR, stat.S_IFLNK: SYMLINK,
          stat.S_IFCHR: CHAR, stat.S_IFBLK: BLOCKDEV, stat.S_IFIFO: FIFO}


def write_diff(lower: str | os.PathLike[str] | None, upper: str | os.PathLike[str],
               out: BinaryIO, *, compression: str = "gzip", mode: str = "overlay",
               level: int | None = None,
               out_digest: Callable[[], Digest] | None = None) -> Diff:
    """Write to `out` the layer that turns `lower` into `upper`.

    mode "overlay": `upper` is an overlay upper directory and `lower` is not needed.
    mode "compare": `upper` and `lower` are whole trees; `lower` None for a base layer.
    `out` is written (from a second thread), not closed. `out_digest`: `out` hashes what it
    is given itself (a content store's writer, fresh), and this returns its digest; the
    compressed stream is then not hashed a second time here."""
    if mode == "overlay":
        changes = overlay_changes(upper)
    elif mode == "compare":
        changes = compare_changes(lower, upper)
    else:
        raise InvalidArgument(f"diff mode {mode!r}: want 'overlay' or 'compare'")
    if out_digest is None:
        blob = HashingWriter(out)
        out, out_digest = blob, blob.digest  # type: ignore[assignment]
    sink = ThreadedWriter(out)
    try:
        packed = compressor(sink, compression, level)
        # the compressor sees the writes it always saw (isal's output depends on how its
        # input is cut), so a tree makes the same blob as it did before the second thread
        tar = HashingWriter(packed)
        writer = TarWriter(tar)
        firsts: dict[tuple[int, int], str] = {}
        for change in changes:
            _write(writer, change, firsts)
        writer.close()
        packed.close()
    finally:
        sink.close()  # waits for the last chunk; raises what writing it raised
    return Diff(out_digest(), tar.digest(), sink.count, tar.count)


def _write(writer: TarWriter, change: Change, firsts: dict[tuple[int, int], str]) -> None:
    if change.kind == OPAQUE:
        writer.add(_marker(f"{change.path}/{whiteouts.OPAQUE}"))
        return
    if change.kind != ENTRY:
        parent, _, base = change.path.rpartition("/")
        name = f"{parent}/{whiteouts.PREFIX}{base}" if parent else whiteouts.PREFIX + base
        writer.add(_marker(name, change.st))
        return
    st = change.st
    assert st is not None
    kind = _TYPES[stat.S_IFMT(st.st_mode)]
    if kind == REGULAR and st.st_nlink > 1:
        first = firsts.setdefault((st.st_dev, st.st_ino), change.path)
        if first != change.path:
            writer.add(_member(change.path, LINK, st, linkname=first))
            return
    if kind == REGULAR:
        fd = os.open(change.source, _READ)
        try:
            writer.add(_member(change.path, kind, st, xattrs(change.source)), fd)
        finally:
            os.close(fd)
        return
    linkname = os.readlink(change.source) if kind == SYMLINK else ""
    writer.add(_member(change.path, kind, st, xattrs(change.source), linkname))


def _member(path: str, kind: str, st: os.stat_result,
            attrs: tuple[tuple[str, bytes], ...] = (), linkname: str = "") -> Member:
    device = kind in (CHAR, BLOCKDEV)
    return Member(path, kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                  st.st_size if kind == REGULAR else 0, st.st_mtime_ns, None, linkname,
                  os.major(st.st_rdev) if device else 0, os.minor(st.st_rdev) if device else 0,
                  attrs)


def _marker(name: str, st: os.stat_result | None = None) -> Member:
    """A whiteout or opaque marker: an empty regular file."""
    if st is None:
        return Member(name, REGULAR, 0, 0, 0, 0, 0, None, "", 0, 0, ())
    return Member(name, REGULAR, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, 0,
                  st.st_mtime_ns, None, "", 0, 0, ())
