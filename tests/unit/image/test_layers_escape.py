"""Hostile layers: one test per way out of the root. The root sits next to a directory
`outside` holding a `victim`; after every layer, `outside` must be exactly as it was, and
what the layer wrote must be inside the root (containerd's containment: a name is cleaned
relative to "/", a symlink is resolved as if the root were "/"), or the layer refused."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dockyard.image.errors import InvalidArgument
from tests.unit.image.test_layers_tarfiles import (
    apply,
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


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "jail" / "root"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def outside(tmp_path: Path, root: Path):
    """`tmp_path/jail/outside`, checked unchanged after the test."""
    path = root.parent / "outside"
    path.mkdir()
    (path / "victim").write_bytes(b"precious")
    (path / "dir").mkdir()
    (path / "dir" / "inner").write_bytes(b"inner")
    before = snapshot(path)
    yield path
    assert snapshot(path) == before, "the layer changed something outside its root"
    assert os.stat(path / "victim").st_nlink == 1


def inside(root: Path, path: str | Path) -> Path:
    """Where an absolute host path lands when taken as a path inside the root."""
    return root / str(path).lstrip("/")


@pytest.mark.parametrize(("name", "lands"), [
    ("../outside/victim", "outside/victim"),
    ("../../jail/outside/victim", "jail/outside/victim"),
    ("a/../../outside/victim", "outside/victim"),
    ("./../outside/victim", "outside/victim"),
    ("../../../../../../../../..", None),
])
def test_dot_dot_is_cleaned_to_inside_the_root(root: Path, outside: Path, name: str,
                                               lands: str | None) -> None:
    if lands is None:  # the root itself: only a directory may be that
        with pytest.raises(InvalidArgument):
            apply(root, layer(file(name, b"evil")))
        return
    apply(root, layer(file(name, b"evil")))
    assert (root / lands).read_bytes() == b"evil"


def test_absolute_name_is_inside_the_root(root: Path, outside: Path) -> None:
    apply(root, layer(file(str(outside / "victim"), b"evil")))
    assert inside(root, outside / "victim").read_bytes() == b"evil"


def test_symlink_parent_to_slash(root: Path, outside: Path) -> None:
    apply(root, layer(symlink("a", "/"), file(f"a/{outside}/victim", b"evil")))
    assert inside(root, outside / "victim").read_bytes() == b"evil"


def test_symlink_parent_to_an_absolute_host_directory(root: Path, outside: Path) -> None:
    apply(root, layer(symlink("etc", str(outside)), file("etc/victim", b"evil")))
    assert inside(root, outside / "victim").read_bytes() == b"evil"
    assert os.readlink(root / "etc") == str(outside)


def test_symlink_parent_climbing_with_dot_dot(root: Path, outside: Path) -> None:
    apply(root, layer(symlink("up", "../../../../.."), file("up/outside/victim", b"evil")))
    assert (root / "outside/victim").read_bytes() == b"evil"


def test_symlink_chain(root: Path, outside: Path) -> None:
    # d/four -> one/../outside; one -> ../two; two -> three/..; three -> /d/../..
    # so d/four = (one = two = (three = /)/..= /)/../outside = /outside
    apply(root, layer(folder("d"), symlink("d/one", "../two"), symlink("two", "three/.."),
                      symlink("three", "/d/../.."), symlink("d/four", "one/../outside"),
                      file("d/four/victim", b"evil"), file("d/one/jail/outside/dir/x", b"e")))
    assert (root / "outside/victim").read_bytes() == b"evil"
    assert (root / "jail/outside/dir/x").read_bytes() == b"e"


def test_dot_dot_after_a_symlink_steps_back_from_its_target(root: Path,
                                                           outside: Path) -> None:
    apply(root, layer(folder("x/y/z"), symlink("a", "x/y/z"), file("a/../f", b"1")))
    # a name is cleaned first ("a/../f" is "f"); in a symlink's target ".." comes after
    assert (root / "f").read_bytes() == b"1"
    apply(root, layer(symlink("b", "a/../.."), file("b/g", b"2")))
    assert (root / "x/g").read_bytes() == b"2"


def test_symlink_in_the_root_already_is_followed_inside_it(root: Path, outside: Path) -> None:
    os.symlink(str(outside), root / "lib")  # from a layer below
    apply(root, layer(file("lib/victim", b"evil"), folder("lib/dir"),
                      file("lib/dir/inner", b"evil")), whiteouts="delete")
    assert inside(root, outside / "victim").read_bytes() == b"evil"


def test_symlink_loop_is_refused(root: Path, outside: Path) -> None:
    with pytest.raises(InvalidArgument, match="symlinks"):
        apply(root, layer(symlink("a", "b"), symlink("b", "a"), file("a/x")))


def test_symlink_to_a_file_as_a_parent_is_refused(root: Path, outside: Path) -> None:
    with pytest.raises(InvalidArgument, match="not a directory"):
        apply(root, layer(symlink("a", str(outside / "victim")),
                          file(str(outside / "victim")), file("a/x")))


@pytest.mark.parametrize("target", ["../outside/victim", "../../jail/outside/victim",
                                    "/../outside/victim"])
def test_hard_link_out_of_the_root_is_refused(root: Path, outside: Path, target: str) -> None:
    with pytest.raises(InvalidArgument, match="hard link target"):
        apply(root, layer(hardlink("h", target)))


def test_hard_link_to_an_absolute_host_path_is_refused(root: Path, outside: Path) -> None:
    with pytest.raises(InvalidArgument, match="hard link target"):
        apply(root, layer(hardlink("h", str(outside / "victim"))))


def test_hard_link_through_a_symlink_stays_inside(root: Path, outside: Path) -> None:
    with pytest.raises(InvalidArgument, match="hard link target"):
        apply(root, layer(symlink("a", str(outside)), hardlink("h", "a/victim")))
    apply(root, layer(symlink("b", str(outside)), file("b/victim", b"mine"),
                      hardlink("h", "b/victim")))
    assert (root / "h").read_bytes() == b"mine"
    assert (root / "h").stat().st_ino == inside(root, outside / "victim").stat().st_ino


def test_hard_link_to_a_symlink_links_the_symlink(root: Path, outside: Path) -> None:
    apply(root, layer(symlink("s", str(outside / "victim")), hardlink("h", "s")))
    assert os.readlink(root / "h") == str(outside / "victim")


@pytest.mark.parametrize("member", [
    file("f", b"evil"), folder("f"), fifo("f"), symlink("f", "elsewhere"),
])
def test_a_symlink_at_the_name_is_replaced_not_followed(root: Path, outside: Path,
                                                        member: bytes) -> None:
    apply(root, layer(symlink("f", str(outside / "victim")), member))
    if stat.S_ISLNK(os.lstat(root / "f").st_mode):
        assert os.readlink(root / "f") == "elsewhere"


def test_a_symlink_at_the_name_is_replaced_by_a_hard_link(root: Path, outside: Path) -> None:
    apply(root, layer(file("t", b"mine"), symlink("f", str(outside / "victim")),
                      hardlink("f", "t")))
    assert (root / "f").read_bytes() == b"mine"


def test_a_relative_symlink_at_the_name_is_replaced_too(root: Path, outside: Path) -> None:
    apply(root, layer(symlink("f", "../outside/victim"), file("f", b"evil")))
    assert (root / "f").read_bytes() == b"evil"


@pytest.mark.parametrize("mode", ["delete", "overlay"])
def test_whiteout_with_dot_dot_is_inside_the_root(root: Path, outside: Path,
                                                  mode: str) -> None:
    (root / "victim").write_bytes(b"mine")
    if mode == "overlay" and os.geteuid() != 0:
        pytest.skip("mknod of a whiteout needs root")
    apply(root, layer(file("../.wh.victim"), file("../../jail/outside/.wh.victim"),
                      file("../outside/.wh.dir")), whiteouts=mode)
    if mode == "delete":
        assert not os.path.lexists(root / "victim")
    else:
        assert stat.S_ISCHR(os.lstat(root / "victim").st_mode)
    assert os.path.lexists(root / "outside") == (mode == "overlay")  # made on the way


@pytest.mark.parametrize("mode", ["delete", "overlay"])
def test_whiteout_through_a_symlink_is_inside_the_root(root: Path, outside: Path,
                                                       mode: str) -> None:
    if mode == "overlay" and os.geteuid() != 0:
        pytest.skip("mknod of a whiteout needs root")
    os.symlink(str(outside), root / "a")  # from a layer below
    os.symlink("../../outside", root / "b")
    apply(root, layer(whiteout("a/victim"), whiteout("a/dir"), whiteout("b/victim"),
                      opaque("a"), opaque("b")), whiteouts=mode)
    assert os.readlink(root / "a") == str(outside)


def test_opaque_through_a_symlink_does_not_empty_the_target(root: Path,
                                                            outside: Path) -> None:
    os.symlink(str(outside), root / "a")
    apply(root, layer(opaque("a"), opaque("a/dir")), whiteouts="delete")


def test_whiteout_of_the_symlink_itself_removes_only_it(root: Path, outside: Path) -> None:
    os.symlink(str(outside), root / "a")
    apply(root, layer(whiteout("a")), whiteouts="delete")
    assert not os.path.lexists(root / "a")


def test_replacing_a_symlink_to_a_directory_does_not_empty_the_directory(
        root: Path, outside: Path) -> None:
    os.symlink(str(outside / "dir"), root / "d")
    apply(root, layer(file("d", b"now a file")), whiteouts="delete")
    assert (root / "d").read_bytes() == b"now a file"


@pytest.mark.parametrize("name", ["a\0b", "etc/pass\0wd"])
def test_nul_in_a_name_is_refused(root: Path, outside: Path, name: str) -> None:
    import io
    import tarfile
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("x")
        info.pax_headers = {"path": name}
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(InvalidArgument, match="NUL"):
        apply(root, out.getvalue())
    assert os.listdir(root) == []


def test_a_very_long_name_is_refused(root: Path, outside: Path) -> None:
    with pytest.raises(InvalidArgument):
        apply(root, layer(file("a/" * 3000 + "f")))


def test_a_component_longer_than_the_file_system_allows_is_refused(root: Path,
                                                                   outside: Path) -> None:
    with pytest.raises(InvalidArgument, match="too long"):
        apply(root, layer(file("x" * 300)))
