"""kill -9 a `dockyard-image load` at moments spread over its run, reopen the store: it is
consistent, the image is either whole and named or not named at all, a collection takes the
leftovers, and the same load then succeeds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dockyard.image.library import ImageLibrary
from tests.conformance.snapshot_trees import scratch_dir
from tests.integration.image.archives import docker_archive, layer_tar

pytestmark = pytest.mark.root

NAME = "docker.io/library/crash:1"


def run_load(root: Path, archive: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "dockyard.image.tool", "--root", str(root),
                             "load", "-q", "-i", str(archive)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def check_consistent(root: Path) -> None:
    with ImageLibrary(root) as lib:
        assert lib.content.db.integrity_check() == "ok"
        names = [i.name for i in lib.list()]
        if names:  # named means whole: every blob there and the top snapshot committed
            assert names == [NAME]
            resolved = lib.resolve(lib.get(NAME).target)
            for d in (*resolved.manifest.layers, resolved.manifest.config):
                assert lib.content.info(d.digest).size == d.size
            [record] = lib.images.unpacked()
            assert lib.snapshotter.stat(record.chain_id).kind == "committed"
        lib.gc(grace=timedelta(0), now=datetime.now(UTC) + timedelta(hours=2))
        if not names:
            assert list(lib.content.walk()) == [] and list(lib.snapshotter.walk()) == []
        assert list(lib.content.list_statuses()) == []
        blobs = {p.name for p in (root / "content" / "blobs" / "sha256").iterdir()}
        assert blobs == {i.digest.encoded for i in lib.content.walk()}
        dirs = {p.name for p in (root / "snapshots" / lib.snapshotter_name /
                                  "snapshots").iterdir()}
        assert len(dirs) == len(list(lib.snapshotter.walk()))


def test_kill_9_during_load_leaves_a_consistent_store() -> None:
    layers = [layer_tar({f"d{i}/f{j}": os.urandom(64 << 10) for j in range(60)})
              for i in range(3)]
    with scratch_dir("dyt-loadcrash-") as work:
        archive = docker_archive(work / "a.tar", layers, ["crash:1"], gzip_layers=True)
        start = time.monotonic()
        first = run_load(work / "timing", archive)
        assert first.wait(60) == 0, first.stderr.read()  # type: ignore[union-attr]
        took = time.monotonic() - start
        for n, fraction in enumerate((0.15, 0.3, 0.45, 0.6, 0.75, 0.9)):
            root = work / f"root{n}"
            proc = run_load(root, archive)
            time.sleep(took * fraction)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            if not root.exists():
                continue
            check_consistent(root)
            again = run_load(root, archive)
            assert again.wait(60) == 0, again.stderr.read()  # type: ignore[union-attr]
            with ImageLibrary(root) as lib:
                assert [i.name for i in lib.list()] == [NAME]
