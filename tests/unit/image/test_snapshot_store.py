"""The snapshot metadata store, du and the copying snapshotter's tree copy, without root
(copy_tree of device nodes and other owners is in the root suite)."""

from __future__ import annotations

import os
import sqlite3
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.image.errors import FailedPrecondition, NotFound
from dockyard.image.snapshots import Kind, Usage
from dockyard.image.snapshots.directories import disk_usage, remove_tree
from dockyard.image.snapshots.metastore import MetaStore, Snapshot
from dockyard.image.snapshots.native import copy_tree
from dockyard.image.snapshots.overlay import OverlaySnapshotter


@pytest.fixture
def scratch() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="dyt-unit-snapshots-"))
    try:
        yield path
    finally:
        assert remove_tree(path)  # not shutil.rmtree, which recurses: see below


def deep_tree(top: Path, depth: int) -> None:
    """`depth` nested directories, a file in the deepest, made a level at a time by
    descriptor: os.makedirs and os.walk recurse, and the path outgrows PATH_MAX."""
    fd = os.open(top, os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            fd, old = os.open("d", os.O_DIRECTORY, dir_fd=fd), fd
            os.close(old)
        os.close(os.open("bottom", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
    finally:
        os.close(fd)


@pytest.fixture
def ms(scratch: Path) -> Iterator[MetaStore]:
    store = MetaStore(scratch / "metadata.db")
    yield store
    store.close()


def chain(ms: MetaStore, depth: int) -> list[Snapshot]:
    made, parent = [], ""
    for i in range(depth):
        with ms.write() as tx:
            tx.create(Kind.ACTIVE, f"a{i}", parent, None)
            made.append(tx.commit(f"a{i}", f"c{i}", Usage(i, 1), None))
        parent = f"c{i}"
    return made


def test_parent_ids_run_nearest_first(ms: MetaStore) -> None:
    made = chain(ms, 4)
    with ms.write() as tx:
        top = tx.create(Kind.VIEW, "v", "c3", None)
    assert top.parent_ids == tuple(s.id for s in reversed(made))
    with ms.read() as tx:
        snapshot, info, usage = tx.get("c3")
    assert (snapshot.id, info.parent, usage) == (made[3].id, "c2", Usage(3, 1))


def test_ids_are_never_handed_out_twice(scratch: Path, ms: MetaStore) -> None:
    """A removed snapshot's directory, which a crash may leave, is never taken for a new
    snapshot's: the removed id does not come back, not even after a reopen."""
    with ms.write() as tx:
        first = tx.create(Kind.ACTIVE, "k", "", None)
    with ms.write() as tx:
        tx.remove("k")
    ms.close()
    again = MetaStore(scratch / "metadata.db")
    try:
        with again.write() as tx:
            assert int(tx.create(Kind.ACTIVE, "k", "", None).id) > int(first.id)
    finally:
        again.close()


def test_an_exception_inside_a_transaction_rolls_it_back(ms: MetaStore) -> None:
    with pytest.raises(RuntimeError), ms.write() as tx:
        tx.create(Kind.ACTIVE, "k", "", None)
        raise RuntimeError("the directory could not be made")
    with ms.read() as tx, pytest.raises(NotFound):
        tx.get("k")


def test_a_newer_schema_is_refused(scratch: Path, ms: MetaStore) -> None:
    ms.close()
    db = sqlite3.connect(scratch / "metadata.db")
    db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(FailedPrecondition, match="99"):
        MetaStore(scratch / "metadata.db")


def test_disk_usage_counts_bytes_once_per_inode(scratch: Path) -> None:
    (scratch / "d").mkdir()
    (scratch / "d/a").write_bytes(b"a" * 10)
    os.link(scratch / "d/a", scratch / "a2")
    os.symlink("d/a", scratch / "link")
    os.mkfifo(scratch / "fifo")
    with open(scratch / "sparse", "wb") as f:
        f.truncate(1 << 20)
    assert disk_usage(scratch) == Usage(size=10 + (1 << 20), inodes=6)


def test_copy_keeps_types_links_modes_times_xattrs_and_holes(scratch: Path) -> None:
    src = scratch / "src"
    (src / "dir/sub").mkdir(parents=True)
    (src / "dir/file").write_bytes(b"data" * 1000)
    os.chmod(src / "dir/file", 0o751)
    os.link(src / "dir/file", src / "hard")
    os.symlink("dir/file", src / "link")
    os.mkfifo(src / "fifo", 0o600)
    os.setxattr(src / "dir/file", "user.k", b"v")
    with open(src / "sparse", "wb") as f:
        f.seek(8 << 20)
        f.write(b"end")
    os.utime(src / "link", ns=(5, 6), follow_symlinks=False)
    os.utime(src / "dir/sub", ns=(7, 8))
    os.chmod(src, 0o711)
    copy_tree(src, scratch / "dst")
    dst = scratch / "dst"
    # atimes first, by lstat alone: listing a directory or following a link changes them
    assert os.lstat(dst / "link").st_atime_ns == 5 and os.lstat(dst / "dir/sub").st_atime_ns == 7

    def facts(root: Path) -> dict[str, tuple]:
        out = {}
        for dirpath, dirs, files in os.walk(root):
            for name in [*dirs, *files]:
                p = Path(dirpath) / name
                st = os.lstat(p)
                atime = st.st_atime_ns if stat.S_ISREG(st.st_mode) else None
                out[str(p.relative_to(root))] = (st.st_mode, st.st_nlink, st.st_size,
                                                 st.st_mtime_ns, atime)
        return out

    assert facts(dst) == facts(src)
    assert stat.S_IMODE(os.stat(dst).st_mode) == 0o711
    assert os.stat(dst / "hard").st_ino == os.stat(dst / "dir/file").st_ino
    assert os.getxattr(dst / "dir/file", "user.k") == b"v"
    assert (dst / "dir/file").read_bytes() == b"data" * 1000
    assert os.stat(dst / "sparse").st_blocks * 512 < (1 << 20)
    assert (dst / "sparse").read_bytes()[-3:] == b"end"


def test_copy_walks_trees_deeper_than_the_recursion_limit(scratch: Path) -> None:
    (scratch / "src").mkdir()
    deep_tree(scratch / "src", 1500)
    copy_tree(scratch / "src", scratch / "dst")
    assert disk_usage(scratch / "dst").inodes == 1502


def test_remove_tree_takes_trees_deeper_than_path_max(scratch: Path) -> None:
    (scratch / "deep").mkdir()
    deep_tree(scratch / "deep", 3000)
    (scratch / "deep/file").write_text("x")
    os.symlink("/", scratch / "deep/link")  # unlinked, never followed
    assert remove_tree(scratch / "deep") and not (scratch / "deep").exists()
    assert remove_tree(scratch / "deep")  # already gone is fine


def test_removing_a_snapshot_with_a_very_deep_tree_frees_it(scratch: Path) -> None:
    with OverlaySnapshotter(scratch / "root") as sn:
        sn.prepare("deep")
        deep_tree(sn.fs("1"), 2500)
        sn.remove("deep")
        assert os.listdir(sn.root / "snapshots") == []


def test_create_clears_a_stale_directory_under_the_id_it_gets(scratch: Path) -> None:
    """What a kill between the rename and the COMMIT of a create leaves, met without a
    reopen: the rolled-back insert's id comes back, and so does its directory."""
    with OverlaySnapshotter(scratch / "root") as sn:
        sn.prepare("a")
        (sn.fs("2") / "stale").mkdir(parents=True)
        sn.prepare("b")
        assert os.listdir(sn.fs("2")) == []
