"""The storage driver suite against FilesystemDriver, plus what only a filesystem has."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dockyard.registry.storage.driver import InvalidPath
from dockyard.registry.storage.filesystem import FilesystemDriver
from tests.conformance.storage_driver_suite import StorageDriverSuite


class TestFilesystemDriver(StorageDriverSuite):
    @pytest.fixture
    def driver(self, tmp_path: Path) -> FilesystemDriver:
        return FilesystemDriver(tmp_path / "root")


def test_paths_map_under_the_root_directory(tmp_path: Path) -> None:
    driver = FilesystemDriver(tmp_path)
    driver.put_content("/docker/registry/v2/blobs/x", b"data")
    assert (tmp_path / "docker/registry/v2/blobs/x").read_bytes() == b"data"


def test_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(outside, root / "escape")
    driver = FilesystemDriver(root)
    with pytest.raises(InvalidPath):
        driver.get_content("/escape/secret")
    with pytest.raises(InvalidPath):
        driver.put_content("/escape/new", b"x")
    assert not (outside / "new").exists()


def test_files_and_directories_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        FilesystemDriver(tmp_path).put_content("/a/b", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "a/b").stat().st_mode & 0o777 == 0o644
