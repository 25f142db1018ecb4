"""Layers through real overlay mounts and real snapshotters: a stack applied with "overlay"
whiteouts, one upper directory per layer, and mounted by overlayfs, must show what the same
stack applied with "delete" whiteouts onto one directory holds; and the layers write_diff
makes of what a container does through an overlay mount must remake that tree."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from dockyard.image.layers.apply import apply_layer
from dockyard.image.layers.chain import chain_ids
from dockyard.image.layers.compression import decompressor
from dockyard.image.layers.diff import write_diff
from dockyard.image.snapshots import Mount
from dockyard.image.snapshots.native import CopySnapshotter, copy_tree
from dockyard.image.snapshots.overlay import OPTIONS, OverlaySnapshotter
from tests.conformance.snapshot_trees import mounted, scratch_dir
from tests.unit.image.test_layers_tarfiles import (
    MTIME,
    device,
    fifo,
    file,
    folder,
    hardlink,
    layer,
    opaque,
    snapshot,
    symlink,
    whiteout,
)

pytestmark = pytest.mark.root

STACK = [
    layer(folder("bin"), file("bin/busybox", b"BB" * 5000, mode=0o755),
          hardlink("bin/sh", "bin/busybox"), symlink("bin/ls", "busybox"),
          folder("etc"), file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
          file("etc/group", b"root:x:0:\n"), folder("dev"), device("dev/null", dev=(1, 3)),
          fifo("dev/initctl"), folder("var/lib/apt/lists", mode=0o700),
          file("var/lib/apt/lists/a", b"a"), folder("var/lib/apt/lists/partial"),
          file("var/lib/apt/lists/partial/p", b"p"), folder("tmp", mode=0o1777),
          file("usr/share/doc/x", b"doc"), file("usr/share/doc/y", b"doc")),
    layer(folder("etc"), file("etc/passwd", b"root:x:0:0::/root:/bin/sh\napp:x:100:100\n",
                              mtime_ns=MTIME + 1), whiteout("etc/group"),
          folder("var/lib/apt/lists", mode=0o755), opaque("var/lib/apt/lists"),
          file("var/lib/apt/lists/b", b"b"), folder("usr/share"), whiteout("usr/share/doc"),
          folder("app", uid=100, gid=100), file("app/run", b"#!/bin/sh\n", mode=0o4755),
          file("app/cfg", xattrs=(("user.origin", b"layer2"),))),
    layer(folder("usr/share/doc", mode=0o750), file("usr/share/doc/new", b"n"),
          folder("var/lib/apt/lists"), file("var/lib/apt/lists/partial", b"now a file"),
          folder("app"), opaque("app"), file("app/run", b"#!/bin/sh\nexec app\n", mode=0o755),
          folder("bin"), whiteout("bin/ls"), symlink("bin/ls", "/bin/busybox")),
]


@pytest.fixture
def work() -> Iterator[Path]:
    with scratch_dir("dyt-layers-overlay-") as path:
        yield path


def target(mounts: Sequence[Mount]) -> tuple[str, str]:
    """The directory a layer goes into, and its whiteouts: an overlay's upper directory
    ("overlay"), or the bound directory ("delete")."""
    [m] = mounts
    if m.type == "overlay":
        upper = next(o for o in m.options if o.startswith("upperdir="))
        return upper[len("upperdir="):], "overlay"
    return m.source, "delete"


def delete_mode(root: Path, layers: Sequence[bytes]) -> dict[str, tuple]:
    root.mkdir()
    for blob in layers:
        apply_layer(root, io.BytesIO(blob), whiteouts="delete")
    return snapshot(root)


def test_overlay_uppers_mounted_equal_delete_onto_one_directory(work: Path) -> None:
    uppers = []
    for i, blob in enumerate(STACK):
        upper = work / f"upper{i}"
        upper.mkdir()
        apply_layer(upper, io.BytesIO(blob), whiteouts="overlay")
        uppers.append(upper)
    lower = ":".join(str(u) for u in reversed(uppers))
    with mounted([Mount("overlay", "overlay", (f"lowerdir={lower}", *OPTIONS, "ro"))],
                 work) as merged:
        assert snapshot(merged) == delete_mode(work / "flat", STACK)


@pytest.mark.parametrize("kind", ["overlay", "native"])
def test_snapshotters_unpack_the_stack_as_one_directory(work: Path, kind: str) -> None:
    make = OverlaySnapshotter if kind == "overlay" else CopySnapshotter
    chain = []
    with make(work / "sn") as sn:
        parent = ""
        for i, blob in enumerate(STACK):
            mounts = sn.prepare(f"extract-{i}", parent)
            where, whiteouts = target(mounts)
            applied = apply_layer(where, io.BytesIO(blob), whiteouts=whiteouts)
            chain.append(applied.diff_id)
            parent = chain_ids(chain)[-1]
            sn.commit(parent, f"extract-{i}")
        with mounted(sn.view("view", parent), work) as root:
            assert snapshot(root) == delete_mode(work / "flat", STACK)
        sn.remove("view")


def container_changes(root: Path) -> None:
    """What a container might do to its root file system."""
    (root / "etc/passwd").write_bytes(b"changed\n")
    os.unlink(root / "bin/sh")
    shutil.rmtree(root / "var/lib/apt/lists")  # gone, then made again: opaque
    (root / "var/lib/apt/lists").mkdir()
    (root / "var/lib/apt/lists/c").write_bytes(b"c")
    os.chmod(root / "tmp", 0o1770)
    os.chown(root / "app/run", 7, 8)  # a copy-up of metadata
    (root / "home/me").mkdir(parents=True)
    (root / "home/me/notes").write_bytes(b"n" * 100_000)
    os.link(root / "home/me/notes", root / "home/me/again")
    os.symlink("../../etc/passwd", root / "home/me/pw")
    os.mkfifo(root / "home/me/fifo")
    os.setxattr(root / "home/me/notes", "user.tag", b"v")
    os.unlink(root / "usr/share/doc/new")


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_diff_of_an_overlay_upper_remakes_the_container(work: Path, compression: str) -> None:
    with OverlaySnapshotter(work / "sn") as sn:
        parent, chain = "", []
        for i, blob in enumerate(STACK):
            where, whiteouts = target(sn.prepare(f"x{i}", parent))
            chain.append(apply_layer(where, io.BytesIO(blob), whiteouts=whiteouts).diff_id)
            parent = chain_ids(chain)[-1]
            sn.commit(parent, f"x{i}")
        mounts = sn.prepare("container", parent)
        with mounted(mounts, work) as root:
            container_changes(root)
            want = snapshot(root)
        upper, _ = target(mounts)
        out = io.BytesIO()
        made = write_diff(None, upper, out, compression=compression, mode="overlay")
    remade = work / "remade"
    remade.mkdir()
    for blob in STACK:
        apply_layer(remade, io.BytesIO(blob), whiteouts="delete")
    out.seek(0)
    applied = apply_layer(remade, out, whiteouts="delete", expected_digest=made.digest,
                          expected_diff_id=made.diff_id)
    assert applied == made
    assert snapshot(remade) == want
    out.seek(0)
    with tarfile.open(fileobj=decompressor(out, compression), mode="r|") as tar:
        names = [m.name for m in tar]
    assert "var/lib/apt/lists/.wh..wh..opq" in names  # the kernel made it opaque
    assert {"bin/.wh.sh", "usr/share/doc/.wh.new"} <= set(names)
    assert "etc/group" not in names  # the whiteout device of a layer below stays below


def test_diff_by_comparing_copies_remakes_the_container(work: Path) -> None:
    with CopySnapshotter(work / "sn") as sn:
        parent, chain = "", []
        for i, blob in enumerate(STACK):
            where, whiteouts = target(sn.prepare(f"x{i}", parent))
            chain.append(apply_layer(where, io.BytesIO(blob), whiteouts=whiteouts).diff_id)
            parent = chain_ids(chain)[-1]
            sn.commit(parent, f"x{i}")
        mounts = sn.prepare("container", parent)
        child, _ = target(mounts)
        with mounted(mounts, work) as root:
            container_changes(root)
            want = snapshot(root)
        with mounted(sn.view("lower", parent), work) as lower:
            out = io.BytesIO()
            write_diff(lower, child, out, compression="gzip", mode="compare")
            copy_tree(lower, work / "remade")
        sn.remove("lower")
    out.seek(0)
    apply_layer(work / "remade", out, whiteouts="delete")
    assert snapshot(work / "remade") == want
