"""fsutil.spread_subdirs: ext4's "top of directory hierarchies" flag, set where it exists and
nothing done where it does not; fsutil.start_writeback: a hint that changes no byte."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from dockyard.fsutil import spread_subdirs, start_writeback
from dockyard.image.content.local import LocalStore
from dockyard.image.snapshots.overlay import OverlaySnapshotter


def fs_type(path: Path) -> str:
    return subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True,
                          text=True, check=True).stdout.strip()


def lsattr(path: Path) -> str:
    return subprocess.run(["lsattr", "-d", str(path)], capture_output=True, text=True,
                          check=True).stdout.split()[0]


@pytest.fixture
def ext4_dir() -> Path:
    base = Path(tempfile.mkdtemp(prefix="dy-fsutil-", dir="/var/tmp"))
    try:
        if fs_type(base) not in ("ext2/ext3",):  # stat -f names ext4 so
            pytest.skip(f"/var/tmp is {fs_type(base)}, not ext4")
        if os.geteuid() != 0:
            pytest.skip("setting the flag needs the file's owner or CAP_FOWNER")
        yield base
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=False)


def test_sets_the_topdir_flag_on_ext4(ext4_dir: Path) -> None:
    d = ext4_dir / "tops"
    d.mkdir()
    assert "T" not in lsattr(d)
    assert spread_subdirs(d) is True
    assert "T" in lsattr(d)
    assert spread_subdirs(d) is True  # again: nothing changes


def test_overlay_snapshotter_spreads_its_snapshots(ext4_dir: Path) -> None:
    OverlaySnapshotter(ext4_dir / "overlay").close()
    assert "T" in lsattr(ext4_dir / "overlay" / "snapshots")


def test_file_systems_without_the_flag_are_left_alone() -> None:
    with tempfile.TemporaryDirectory(dir="/dev/shm") as d:
        assert spread_subdirs(d) is False


def test_a_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        spread_subdirs(tmp_path / "missing")


def test_the_content_store_spreads_its_ingests(ext4_dir: Path) -> None:
    LocalStore(ext4_dir / "content").close()
    assert "T" in lsattr(ext4_dir / "content" / "ingest")


@pytest.mark.parametrize("where", ["/var/tmp", "/dev/shm"])
def test_start_writeback_changes_nothing_in_the_file(where: str) -> None:
    data = os.urandom(3 << 20)
    with tempfile.NamedTemporaryFile(dir=where) as f:
        f.write(data)
        f.flush()
        start_writeback(f.fileno(), 0, len(data))
        start_writeback(f.fileno(), 1 << 20, 1 << 20)
        os.fsync(f.fileno())
        assert Path(f.name).read_bytes() == data
