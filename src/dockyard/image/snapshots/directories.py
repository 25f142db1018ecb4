"""What the overlay and copying snapshotters share: snapshots kept as directories under one
root, their metadata in SQLite, and the order of steps that keeps the two in agreement.

    <root>/
      metadata.db            metastore.py (+ -wal, -shm)
      snapshots/
        <id>/fs              the snapshot's tree (overlay: its upper dir; copy: all of it)
        <id>/work            overlay's workdir, active snapshots only
        new-XXXXXXXX/        a snapshot being made, inside a write transaction
        rm-<id>/             a snapshot being deleted, its row already gone

Every row has its `<id>` directory and every `<id>` directory its row, because:

  create   BEGIN IMMEDIATE; insert the row; make and fill new-XXXXXXXX; rename it to <id>;
           COMMIT. A kill before COMMIT rolls the row back and leaves a directory with no
           row; after COMMIT, both exist.
  remove   delete the row and COMMIT; rename <id> to rm-<id>; delete that tree. A kill after
           COMMIT leaves <id> or rm-<id> with no row, never a row without its directory, and
           never a half-deleted tree under a live id.
  commit   metadata only: the id, and so the directory, stays.

`cleanup()` (run by every open, as containerd's Cleanup) takes the write lock, so it never
races a create in another process, and then deletes every directory with no row, and the rows
of active snapshots and views whose directory is missing (only a power cut or a hand can do
that). A committed snapshot with no directory is reported as broken and kept: it may have
children, and only its owner can say what to do.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dockyard.fsutil import spread_subdirs
from dockyard.image.errors import FailedPrecondition, InvalidArgument
from dockyard.image.snapshots import Info, Kind, Mount, Usage
from dockyard.image.snapshots.metastore import MetaStore, Snapshot


@dataclass(frozen=True)
class Cleanup:
    """What a cleanup found: directories deleted, rows of active snapshots and views deleted
    (by key), committed snapshots kept although their directory is gone (by name)."""

    directories: tuple[str, ...] = ()
    rows: tuple[str, ...] = ()
    broken: tuple[str, ...] = ()


def disk_usage(root: Path) -> Usage:
    """du over `root`, not crossing into other file systems: the apparent size of regular
    files, each inode counted once (hard links), and the number of distinct inodes."""
    top = os.lstat(root)
    seen = {top.st_ino}
    size = 0
    stack = [str(root)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                if st.st_ino in seen or st.st_dev != top.st_dev:
                    continue
                seen.add(st.st_ino)
                if stat.S_ISREG(st.st_mode):
                    size += st.st_size
                elif stat.S_ISDIR(st.st_mode):
                    stack.append(entry.path)
    return Usage(size, len(seen))


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def remove_tree(path: Path) -> bool:
    """Delete `path` and all below it; False if something stayed (the next cleanup retries).

    Not shutil.rmtree: Python 3.11's recurses, and a tree a container made 1,000 levels deep
    would raise RecursionError out of remove() and out of every open's cleanup. This walks
    down by descriptor, one open at a time (no depth is too deep, no path too long), deletes
    files on the way, and climbs back with "..". It does not enter another file system."""
    try:
        fd = os.open(path, _DIR_FLAGS)
    except FileNotFoundError:
        return True
    except OSError:  # not a directory, or a symlink
        return _try(os.unlink, path)
    device, names = os.fstat(fd).st_dev, []
    try:
        while True:
            child = None
            with os.scandir(fd) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        child = entry.name
                        break
                    os.unlink(entry.name, dir_fd=fd)
            if child is not None:
                down = os.open(child, _DIR_FLAGS, dir_fd=fd)
                if os.fstat(down).st_dev != device:
                    os.close(down)
                    return False  # a mount point: leave it to whoever mounted it
                os.close(fd)
                fd = down
                names.append(child)
            elif names:
                up = os.open("..", _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = up
                os.rmdir(names.pop(), dir_fd=fd)
            else:
                break
    except OSError:
        return False
    finally:
        os.close(fd)
    return _try(os.rmdir, path)


def _try(call: Callable[[Path], None], path: Path) -> bool:
    try:
        call(path)
    except FileNotFoundError:
        pass
    except OSError:
        return False
    return True


class DirectorySnapshotter:
    """A Snapshotter whose subclasses say only how a new snapshot's directory is filled
    (`_populate`) and which mounts show it (`_mounts`)."""

    rebase = False  # whether commit(..., parent=) may chain a parentless snapshot

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).absolute()
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._snapshots = self.root / "snapshots"
        self._snapshots.mkdir(mode=0o700, exist_ok=True)
        spread_subdirs(self._snapshots)  # each snapshot's files in a block group of its own
        self._ms = MetaStore(self.root / "metadata.db")
        self.recovered = self.cleanup()

    # -- what subclasses provide -------------------------------------------------------------

    def _populate(self, new: Path, snapshot: Snapshot) -> None:
        """Fill the directory `new` (renamed to the snapshot's own afterwards)."""
        raise NotImplementedError

    def _mounts(self, snapshot: Snapshot) -> list[Mount]:
        raise NotImplementedError

    # -- paths --------------------------------------------------------------------------------

    def fs(self, snapshot_id: str) -> Path:
        return self._snapshots / snapshot_id / "fs"

    def work(self, snapshot_id: str) -> Path:
        return self._snapshots / snapshot_id / "work"

    # -- metadata -----------------------------------------------------------------------------

    def stat(self, key: str) -> Info:
        with self._ms.read() as tx:
            return tx.get(key)[1]

    def update(self, info: Info, fieldpaths: Sequence[str] | None = None) -> Info:
        with self._ms.write() as tx:
            return tx.update(info, fieldpaths)

    def usage(self, key: str) -> Usage:
        """Committed: measured at commit. Active and views: measured now, outside any lock,
        in time proportional to the tree."""
        with self._ms.read() as tx:
            snapshot, _info, usage = tx.get(key)
        if snapshot.kind is Kind.COMMITTED:
            return usage
        return disk_usage(self.fs(snapshot.id))

    def walk(self, *filters: str) -> Iterator[Info]:
        """Read in one transaction, then yielded: the caller may stat, update or remove
        snapshots while it walks."""
        with self._ms.read() as tx:
            infos = tx.walk(filters)
        yield from infos

    # -- lifecycle ----------------------------------------------------------------------------

    def mounts(self, key: str) -> list[Mount]:
        with self._ms.read() as tx:
            snapshot, _info, _usage = tx.get(key)
        if snapshot.kind is Kind.COMMITTED:
            raise FailedPrecondition(f"snapshot {key} is committed: only active snapshots and "
                                     "views have mounts (view it to look at it)")
        return self._mounts(snapshot)

    def prepare(self, key: str, parent: str = "",
                labels: Mapping[str, str] | None = None) -> list[Mount]:
        return self._create(Kind.ACTIVE, key, parent, labels)

    def view(self, key: str, parent: str = "",
             labels: Mapping[str, str] | None = None) -> list[Mount]:
        return self._create(Kind.VIEW, key, parent, labels)

    def _create(self, kind: Kind, key: str, parent: str,
                labels: Mapping[str, str] | None) -> list[Mount]:
        final: Path | None = None
        try:
            with self._ms.write() as tx:
                snapshot = tx.create(kind, key, parent, labels)
                new = Path(tempfile.mkdtemp(prefix="new-", dir=self._snapshots))
                try:
                    self._populate(new, snapshot)
                    own = self._snapshots / snapshot.id
                    if os.path.lexists(own) and not remove_tree(own):
                        raise FailedPrecondition(  # a rolled-back create's, and stuck
                            f"snapshot {key}: cannot clear the stale directory {own}")
                    os.rename(new, own)
                except BaseException:
                    remove_tree(new)
                    raise
                final = own
        except BaseException:
            if final is not None:  # the COMMIT itself failed
                remove_tree(final)
            raise
        return self._mounts(snapshot)

    def commit(self, name: str, key: str, labels: Mapping[str, str] | None = None, *,
               parent: str | None = None) -> None:
        """Measure the tree and rename the active snapshot; the directory stays where it is.
        The caller must have unmounted it: what is written after the commit is undefined.

        `parent` (where `rebase` is true) commits a snapshot that was prepared without a
        parent onto the committed `parent`: layers unpack side by side, then chain up."""
        if parent is not None and not self.rebase:
            raise InvalidArgument(f"commit of snapshot {key} onto {parent}: "
                                  f"{type(self).__name__} cannot rebase a snapshot")
        with self._ms.write() as tx:
            snapshot, _info, _usage = tx.get(key)
            usage = disk_usage(self.fs(snapshot.id)) if snapshot.kind is Kind.ACTIVE else Usage()
            committed = tx.commit(key, name, usage, labels, parent)
            if parent:
                self._rebased(committed)

    def _rebased(self, snapshot: Snapshot) -> None:
        """Called in the commit's transaction once `snapshot` has a parent it was not made
        with; subclasses fix what their `_populate` derived from the parent."""

    def remove(self, key: str) -> None:
        with self._ms.write() as tx:
            snapshot = tx.remove(key)
        doomed = self._snapshots / f"rm-{snapshot.id}"
        try:
            os.rename(self._snapshots / snapshot.id, doomed)
        except FileNotFoundError:
            return
        remove_tree(doomed)

    # -- recovery and shutdown -----------------------------------------------------------------

    def cleanup(self) -> Cleanup:
        """Bring rows and directories back into agreement (see the module docstring). The
        directories are renamed to rm-* under the lock and deleted after it."""
        dirs: list[str] = []
        doomed_dirs: list[str] = []
        rows: list[str] = []
        broken: list[str] = []
        with self._ms.write() as tx:
            ids = tx.ids()
            for snapshot_id, (key, kind) in sorted(ids.items()):
                if self.fs(snapshot_id).is_dir():
                    continue
                if kind is Kind.COMMITTED:
                    broken.append(key)
                else:
                    tx.drop(snapshot_id)
                    rows.append(key)
                    del ids[snapshot_id]
            for name in sorted(set(os.listdir(self._snapshots)) - set(ids)):
                doomed = name if name.startswith("rm-") else f"rm-{name}"
                os.rename(self._snapshots / name, self._snapshots / doomed)
                dirs.append(name)
                doomed_dirs.append(doomed)
        for name in doomed_dirs:
            remove_tree(self._snapshots / name)
        return Cleanup(tuple(dirs), tuple(rows), tuple(broken))

    def close(self) -> None:
        self._ms.close()

    def __enter__(self) -> DirectorySnapshotter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
