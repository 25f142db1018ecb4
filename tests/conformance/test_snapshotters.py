"""The snapshotter suite against OverlaySnapshotter and CopySnapshotter. Both need root:
every test mounts (bind or overlay) to look at what a snapshot holds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.image.snapshots.directories import DirectorySnapshotter
from dockyard.image.snapshots.native import CopySnapshotter
from dockyard.image.snapshots.overlay import OverlaySnapshotter
from tests.conformance.snapshotter_suite import SnapshotterFactory, SnapshotterSuite

pytestmark = pytest.mark.root


def factory(cls: type[DirectorySnapshotter], root: Path) -> Iterator[SnapshotterFactory]:
    opened: list[DirectorySnapshotter] = []

    def make() -> DirectorySnapshotter:
        opened.append(cls(root))
        return opened[-1]

    yield make
    for sn in opened:
        sn.close()


class TestOverlaySnapshotter(SnapshotterSuite):
    @pytest.fixture
    def make_snapshotter(self, workdir: Path) -> Iterator[SnapshotterFactory]:
        yield from factory(OverlaySnapshotter, workdir / "root")


class TestCopySnapshotter(SnapshotterSuite):
    @pytest.fixture
    def make_snapshotter(self, workdir: Path) -> Iterator[SnapshotterFactory]:
        yield from factory(CopySnapshotter, workdir / "root")
