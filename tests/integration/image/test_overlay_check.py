"""overlay_supported: the trial mount that lets a caller choose between OverlaySnapshotter and
CopySnapshotter. It must say no where overlay cannot work (a root on overlayfs, as inside a
container; options the kernel refuses), say why, and leave nothing behind either way."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.image.errors import Unavailable
from dockyard.image.snapshots import Mount
from dockyard.image.snapshots.overlay import OPTIONS, check_overlay, overlay_supported
from tests.conformance.snapshot_trees import mounted, scratch_dir

pytestmark = pytest.mark.root


@pytest.fixture
def work() -> Iterator[Path]:
    with scratch_dir("dyt-overlay-check-") as path:
        yield path


def test_overlay_works_here_and_the_trial_leaves_nothing(work: Path) -> None:
    assert overlay_supported(work / "root")
    assert os.listdir(work / "root" / "snapshots") == []


def test_options_the_kernel_refuses_make_overlay_unsupported(work: Path) -> None:
    with pytest.raises(Unavailable, match=r"does not mount under .*Invalid argument"):
        check_overlay(work / "root", (*OPTIONS, "no_such_option=1"))
    assert not overlay_supported(work / "root", ("no_such_option=1",))
    assert os.listdir(work / "root" / "snapshots") == []


def test_a_root_on_overlayfs_is_unsupported(work: Path) -> None:
    for name in ("lower", "upper", "work"):
        (work / name).mkdir()
    outer = Mount("overlay", "overlay", (f"lowerdir={work / 'lower'}",
                                         f"upperdir={work / 'upper'}",
                                         f"workdir={work / 'work'}"))
    with mounted([outer], work) as merged:
        assert not overlay_supported(merged / "root")
        assert os.listdir(merged / "root" / "snapshots") == []
