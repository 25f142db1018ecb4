"""CopySnapshotter.prepare on a ~200 MB parent against `cp -a` of the same tree, in one run;
prints MB/s of each and the ratio (ours / reference). Needs root (chown, xattrs).

    .venv/bin/python bench/snapshot_copy.py [--runs N] [--dir /var/tmp]

The tree mimics a root file system: 40 files of 2 MiB, 6,000 files of 1 to 40 KiB in 300
directories, symlinks and hard links. Caches are warm: both sides read from the page cache.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import tempfile
import time
from pathlib import Path

from dockyard.image.snapshots.directories import disk_usage, remove_tree
from dockyard.image.snapshots.native import CopySnapshotter
from dockyard.mounting import mount_all, unmount_all


def make_parent(sn: CopySnapshotter, mnt: Path) -> int:
    rng = random.Random(1)
    sn.prepare("parent-active")
    mount_all(sn.mounts("parent-active"), mnt)
    try:
        for d in range(300):
            (mnt / f"d{d}").mkdir()
            for f in range(20):
                (mnt / f"d{d}/f{f}").write_bytes(rng.randbytes(rng.randint(1024, 40 * 1024)))
            os.symlink(f"f{d % 20}", mnt / f"d{d}/link")
        for big in range(40):
            (mnt / f"big{big}").write_bytes(os.urandom(2 << 20))
            os.link(mnt / f"big{big}", mnt / f"d{big}/hard")
    finally:
        unmount_all(mnt)
    sn.commit("parent", "parent-active")
    return sn.usage("parent").size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dyt-bench-copy-", dir=args.dir))
    try:
        (work / "mnt").mkdir()
        with CopySnapshotter(work / "root") as sn:
            size = make_parent(sn, work / "mnt")
            parent_fs = sn.fs("1")
            ours, ref = [], []
            for i in range(args.runs):
                t = time.perf_counter()
                sn.prepare(f"child-{i}", "parent")
                ours.append(time.perf_counter() - t)
                assert disk_usage(sn.fs(str(i + 2))).size == size
                sn.remove(f"child-{i}")
                t = time.perf_counter()
                subprocess.run(["cp", "-a", str(parent_fs), str(work / "cp")], check=True)
                ref.append(time.perf_counter() - t)
                remove_tree(work / "cp")
        mb = size / 1e6
        best_ours, best_ref = min(ours), min(ref)
        print(f"tree: {mb:.0f} MB in {disk_usage(work / 'root').inodes} inodes")
        print(f"CopySnapshotter.prepare  {best_ours * 1000:7.0f} ms  {mb / best_ours:6.0f} MB/s")
        print(f"cp -a                    {best_ref * 1000:7.0f} ms  {mb / best_ref:6.0f} MB/s")
        print(f"ratio (ours / cp -a, time): {best_ours / best_ref:.2f}")
    finally:
        remove_tree(work)


if __name__ == "__main__":
    main()
