"""File trees through real mounts, for the snapshotter suite and the crash test: where
mounts are, a temporary directory that takes its mounts with it, a mount undone on leaving,
and a tree written from (and read into) plain data."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from dockyard.image.snapshots import Mount
from dockyard.mounting import mount_all, unmount_all
from dockyard.runtime.linux.mountinfo import unescape_mountinfo
from dockyard.runtime.linux.syscalls import LINUX, MNT_DETACH

Tree = dict[str, tuple]


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below `path`, deepest first."""
    prefix = str(path)
    with open("/proc/self/mountinfo") as f:
        points = [unescape_mountinfo(line.split()[4]) for line in f]
    inside = [p for p in points if p == prefix or p.startswith(prefix + "/")]
    return sorted(inside, key=len, reverse=True)


def detach_all_under(path: Path) -> list[str]:
    leaked = mounts_under(path)
    for point in leaked:
        try:
            LINUX.umount(point, MNT_DETACH)
        except OSError:
            pass
    return leaked


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A temporary directory that is gone afterwards, with anything mounted in it."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        leaked = detach_all_under(path)
        shutil.rmtree(path, ignore_errors=True)
        assert not leaked, f"mounts left behind: {leaked}"


@contextmanager
def mounted(mounts: Sequence[Mount], under: Path) -> Iterator[Path]:
    target = Path(tempfile.mkdtemp(prefix="mnt-", dir=under))
    try:
        mount_all(mounts, target)
        try:
            yield target
        finally:
            unmount_all(target)
    finally:
        target.rmdir()


def apply(root: Path, changes: dict[str, str | None]) -> None:
    """path -> text (a file), "/" at the end of the path (a directory), None (remove)."""
    for path, content in changes.items():
        p = root / path.rstrip("/")
        if content is None:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        elif path.endswith("/"):
            p.mkdir(mode=0o755)
        else:
            p.write_text(content)


def tree(root: Path, times: bool = True) -> Tree:
    """Everything a layer carries, per path: type, mode, owner, and content, link target,
    device number or (for directories) nothing; and, if `times`, the mtime of all but
    directories (whose mtimes any entry made in them changes)."""
    out: Tree = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            kind = stat.S_IFMT(st.st_mode)
            if stat.S_ISREG(kind):
                detail: object = Path(p).read_bytes()
            elif stat.S_ISLNK(kind):
                detail = os.readlink(p)
            elif stat.S_ISCHR(kind) or stat.S_ISBLK(kind):
                detail = st.st_rdev
            else:
                detail = None
            mtime = None if stat.S_ISDIR(kind) or not times else st.st_mtime_ns
            out[os.path.relpath(p, root)] = (kind, stat.S_IMODE(st.st_mode), st.st_uid,
                                              st.st_gid, detail, mtime)
    return out
