"""kill -9 at random moments, many times; after each, the reopened snapshotter must agree with
its disk. Also the cleanup, case by case.

A forked child enters a mount namespace of its own (so that a kill leaves no mount behind),
opens the snapshotter (so some kills land in its cleanup) and loops: make a layer (prepare on
a random committed parent, mount, write, unmount, commit), remove a leaf, look at a view,
relabel. Every layer `k` writes `own-k`, overwrites `top` with k, deletes its parents'
`gone-*` and writes its own, and replaces the directory `dir` with one holding `dir/k`; so
what a view of any committed chain must show follows from the chain alone. The parent kills
the child at a random time, reopens the root and checks that:

  - SQLite's integrity check passes, and the open left nothing for a second cleanup;
  - the rows and the snapshots/<id> directories are the same set, each with its fs/;
  - every committed snapshot's view mounts and shows exactly what its chain wrote;
    every active snapshot mounts.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import time
import traceback
from dataclasses import replace
from pathlib import Path

import pytest

from dockyard.image.errors import FailedPrecondition, NotFound
from dockyard.image.snapshots import Kind, Snapshotter
from dockyard.image.snapshots.directories import Cleanup, DirectorySnapshotter
from dockyard.image.snapshots.metastore import Snapshot
from dockyard.image.snapshots.native import CopySnapshotter
from dockyard.image.snapshots.overlay import OverlaySnapshotter
from dockyard.runtime.linux.syscalls import CLONE_NEWNS, LINUX, MS_PRIVATE, MS_REC, unshare
from tests.conformance.snapshot_trees import mounted, scratch_dir

pytestmark = pytest.mark.root

ROUNDS = int(os.environ.get("DOCKYARD_CRASH_ROUNDS", "30"))
MAX_DEPTH = 10
IMPLEMENTATIONS = [OverlaySnapshotter, CopySnapshotter]


def write_layer(root: Path, key: str) -> None:
    for name in os.listdir(root):
        if name.startswith("gone-"):
            (root / name).unlink()
    shutil.rmtree(root / "dir", ignore_errors=True)
    (root / "dir").mkdir()
    (root / "dir" / key).write_text(key)
    (root / f"own-{key}").write_text(key)
    (root / f"gone-{key}").write_text(key)
    (root / "top").write_text(key)


def expected_view(chain: list[str]) -> dict[str, str]:
    """What a view shows for layer keys `chain`, nearest first."""
    files = {f"own-{k}": k for k in chain}
    files |= {"top": chain[0], f"gone-{chain[0]}": chain[0], f"dir/{chain[0]}": chain[0]}
    return files


def read_view(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = p.read_text()
    return out


def step(rng: random.Random, sn: Snapshotter, scratch: Path) -> None:
    infos = list(sn.walk())
    parents = {i.parent for i in infos}
    leaves = [i.name for i in infos if i.name not in parents]
    roll = rng.random()
    if roll < 0.35 or len(infos) > 40:
        if leaves:
            sn.remove(rng.choice(leaves))
        return
    committed = [i for i in infos if i.kind is Kind.COMMITTED]
    if roll < 0.45 and committed:
        name = rng.choice(committed).name
        key = f"view-{rng.randrange(1 << 30)}"
        with mounted(sn.view(key, name), scratch) as root:
            read_view(root)
        sn.remove(key)
        return
    if roll < 0.5 and infos:
        touched = replace(rng.choice(infos), labels={"touched": str(rng.random())})
        sn.update(touched, ["labels.touched"])
        return
    usable = [i for i in committed if int(i.labels.get("depth", "0")) < MAX_DEPTH]
    parent = rng.choice(usable) if usable and rng.random() < 0.8 else None
    key = f"{rng.randrange(1 << 30):x}"
    with mounted(sn.prepare(key, parent.name if parent else ""), scratch) as root:
        write_layer(root, key)
    depth = int(parent.labels["depth"]) + 1 if parent else 1
    sn.commit(f"c-{key}", key, labels={"depth": str(depth)})


def child(cls: type[DirectorySnapshotter], root: Path, scratch: Path, seed: int,
          errors: Path) -> None:
    try:
        unshare(CLONE_NEWNS)
        LINUX.mount(None, "/", None, MS_REC | MS_PRIVATE)
        rng = random.Random(seed)
        sn = cls(root)
        while True:
            try:
                step(rng, sn, scratch)
            except (NotFound, FailedPrecondition):
                pass
    except BaseException:
        errors.write_text(traceback.format_exc())
    finally:
        os._exit(1)


def check(cls: type[DirectorySnapshotter], root: Path, scratch: Path) -> int:
    with cls(root) as sn:
        assert sn.cleanup() == Cleanup(), "the open should have fixed everything"
        db = sqlite3.connect(root / "metadata.db")
        try:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            ids = {str(r[0]) for r in db.execute("SELECT id FROM snapshots")}
        finally:
            db.close()
        assert set(os.listdir(root / "snapshots")) == ids
        assert all(sn.fs(i).is_dir() for i in ids)
        infos = list(sn.walk())
        for info in infos:
            if info.kind is Kind.ACTIVE:
                with mounted(sn.mounts(info.name), scratch):
                    pass
            if info.kind is not Kind.COMMITTED:
                continue
            chain, name = [], info.name
            while name:
                chain.append(name.removeprefix("c-"))
                name = sn.stat(name).parent
            key = f"check-{info.name}"
            try:
                with mounted(sn.view(key, info.name), scratch) as view:
                    assert read_view(view) == expected_view(chain), info.name
            finally:
                sn.remove(key)
        return len(infos)


@pytest.mark.parametrize("cls", IMPLEMENTATIONS, ids=lambda c: c.__name__)
def test_kill_at_random_points_leaves_rows_and_directories_in_agreement(
        cls: type[DirectorySnapshotter]) -> None:
    rng = random.Random(int(os.environ.get("DOCKYARD_CRASH_SEED", time.time_ns())))
    with scratch_dir("dyt-snapshot-crash-") as work:
        root, errors = work / "root", work / "child-error"
        seen = 0
        for round_ in range(ROUNDS):
            seed = rng.randrange(1 << 30)  # drawn here: a child's draws never reach us
            pid = os.fork()
            if pid == 0:
                child(cls, root, work, seed, errors)
            time.sleep(rng.uniform(0.005, 0.3))
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            assert not errors.exists(), f"round {round_}: {errors.read_text()}"
            seen = max(seen, check(cls, root, work))
        assert seen > 3, "the children should have made snapshots"


# -- cleanup, case by case ------------------------------------------------------------------

def snapshot_id(root: Path, key: str) -> str:
    db = sqlite3.connect(root / "metadata.db")
    try:
        return str(db.execute("SELECT id FROM snapshots WHERE key = ?", (key,)).fetchone()[0])
    finally:
        db.close()


@pytest.mark.parametrize("cls", IMPLEMENTATIONS, ids=lambda c: c.__name__)
def test_cleanup_removes_orphan_directories_and_rows_without_directories(
        cls: type[DirectorySnapshotter]) -> None:
    with scratch_dir("dyt-snapshot-cleanup-") as work:
        root, snapshots = work / "root", work / "root" / "snapshots"
        with cls(root) as sn:
            for name in ("c1", "c2"):
                sn.prepare(f"{name}-a")
                sn.commit(name, f"{name}-a")
            sn.prepare("a1", "c1")
            sn.view("v1", "c1")
        ids = {key: snapshot_id(root, key) for key in ("c1", "c2", "a1", "v1")}
        for stray in ("new-abc/fs", "rm-77/fs/deep", "999/fs"):
            (snapshots / stray).mkdir(parents=True)
        shutil.rmtree(snapshots / ids["a1"])  # as a power cut could leave it
        shutil.rmtree(snapshots / ids["c2"])  # as only a hand could
        with cls(root) as sn:
            assert sn.recovered == Cleanup(("999", "new-abc", "rm-77"), ("a1",), ("c2",))
            assert sn.cleanup() == Cleanup(broken=("c2",))
            assert {i.name for i in sn.walk()} == {"c1", "c2", "v1"}
            assert sorted(os.listdir(snapshots)) == sorted([ids["c1"], ids["v1"]])


class FailingCopy(CopySnapshotter):
    """Fails half way through filling a snapshot's directory, as a full disk would."""

    def _populate(self, new: Path, snapshot: Snapshot) -> None:
        super()._populate(new, snapshot)
        raise OSError(28, "No space left on device")


def test_failed_create_leaves_neither_row_nor_directory() -> None:
    with scratch_dir("dyt-snapshot-fail-") as work, FailingCopy(work / "root") as sn:
        with pytest.raises(OSError, match="No space"):
            sn.prepare("doomed")
        with pytest.raises(NotFound):
            sn.stat("doomed")
        assert os.listdir(sn.root / "snapshots") == []
