"""securejoin: symlinks and ".." stay inside the root; descriptors are checked."""

from __future__ import annotations

import os

import pytest

from dockyard.runtime.linux import securejoin as sj


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "usr" / "lib").mkdir(parents=True)
    (r / "etc" / "passwd").write_text("x")
    return r


def test_plain_path(root):
    assert sj.resolve(str(root), "/etc/passwd") == f"{root}/etc/passwd"
    assert sj.resolve(str(root), "/") == str(root)


def test_dotdot_is_clamped_at_the_root(root):
    assert sj.resolve(str(root), "/../../etc") == f"{root}/etc"
    assert sj.resolve(str(root), "../../../../..") == str(root)


def test_absolute_symlink_is_scoped_to_the_root(root):
    os.symlink("/etc", root / "link")
    assert sj.resolve(str(root), "/link/passwd") == f"{root}/etc/passwd"


def test_relative_symlink_escape_is_scoped(root):
    os.symlink("../../../../../../tmp", root / "usr" / "esc")
    assert sj.resolve(str(root), "/usr/esc/x") == f"{root}/tmp/x"


def test_missing_components_are_kept(root):
    assert sj.resolve(str(root), "/no/such/dir") == f"{root}/no/such/dir"


def test_symlink_loop_is_eloop(root):
    os.symlink("b", root / "a")
    os.symlink("a", root / "b")
    with pytest.raises(OSError) as e:
        sj.resolve(str(root), "/a")
    assert e.value.errno == 40
    rfd = sj.open_root(str(root))
    try:
        with pytest.raises(OSError) as e:
            sj.open_in_root(rfd, str(root), "/a")
        assert e.value.errno == 40
    finally:
        os.close(rfd)


def _open(root, path, **kw):
    rfd = sj.open_root(str(root))
    try:
        fd = sj.open_in_root(rfd, str(root), path, **kw)
    finally:
        os.close(rfd)
    try:
        return sj.fd_path(fd)
    finally:
        os.close(fd)


def test_open_follows_symlinks_inside_the_root(root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), root / "escape")
    os.symlink("../../../..", root / "usr" / "up")
    assert _open(root, "/escape", create="dir") == f"{root}{outside}"
    assert list(outside.iterdir()) == []
    assert _open(root, "/usr/up/etc/passwd") == f"{root}/etc/passwd"


def test_open_creates_directories_and_a_file(root):
    assert _open(root, "/a/b/c", create="dir") == f"{root}/a/b/c"
    assert (root / "a" / "b" / "c").is_dir()
    assert _open(root, "/x/y/file", create="file") == f"{root}/x/y/file"
    assert (root / "x" / "y" / "file").is_file()


def test_open_missing_without_create_is_enoent(root):
    with pytest.raises(FileNotFoundError):
        _open(root, "/nope")


def test_open_through_a_file_is_enotdir(root):
    with pytest.raises(NotADirectoryError):
        _open(root, "/etc/passwd/x", create="dir")


def test_dangling_absolute_symlink_is_created_inside(root, tmp_path):
    os.symlink(str(tmp_path / "hostdir" / "sub"), root / "dangling")
    p = _open(root, "/dangling", create="dir")
    assert p == f"{root}{tmp_path}/hostdir/sub"
    assert not (tmp_path / "hostdir").exists()


def test_check_inside_refuses_a_descriptor_outside(root, tmp_path):
    fd = os.open(str(tmp_path), os.O_PATH)
    try:
        with pytest.raises(sj.EscapeError):
            sj.check_inside(fd, str(root), "x")
    finally:
        os.close(fd)


def test_relative():
    assert sj.relative("/r", "/r") == "/"
    assert sj.relative("/r", "/r/a/b") == "/a/b"
    assert sj.relative("/r", "/rx/a") is None
    assert sj.relative("/", "/a") == "/a"
