"""write_diff: a layer written from an overlay upper or from two trees, applied again, must
make the same tree; its bytes are the same every time and its digests are its own."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import stat
import tarfile
from pathlib import Path

import pytest

from dockyard.image.errors import FailedPrecondition, InvalidArgument
from dockyard.image.layers.compression import decompressor
from dockyard.image.layers.diff import write_diff
from dockyard.image.layers.tarstream import BLOCKDEV, CHAR
from dockyard.image.snapshots.native import copy_tree
from tests.unit.image.test_layers_tarfiles import (
    MTIME,
    apply,
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

BASE = layer(
    folder("etc", mode=0o755), file("etc/passwd", b"root:x:0:0\n"), file("etc/group", b"g"),
    folder("usr"), folder("usr/bin"), file("usr/bin/busybox", b"BB" * 1000, mode=0o755),
    hardlink("usr/bin/sh", "usr/bin/busybox"), symlink("bin", "usr/bin"),
    folder("var/cache", mode=0o700), file("var/cache/a", b"a"), file("var/cache/b", b"b"),
    folder("tmp", mode=0o1777), file("same", b"x", mtime_ns=MTIME),
)
CHANGES = layer(
    folder("etc"), file("etc/passwd", b"root:x:0:0\nme:x:1000:1000\n"), whiteout("etc/group"),
    folder("usr/bin"), hardlink("usr/bin/ls", "usr/bin/busybox"),
    folder("var/cache", mode=0o700), opaque("var/cache"), file("var/cache/c", b"c"),
    folder("home/me", mode=0o700, uid=1000, gid=1000),
    file("home/me/.profile", b"export X=1\n", uid=1000, gid=1000, mtime_ns=MTIME + 123),
    file("home/me/su", b"#!", mode=0o4755), symlink("home/me/link", "../../etc/passwd"),
    fifo("home/me/fifo"), file("home/me/x", xattrs=(("user.mime", b"text/plain"),)),
)
# an overlay upper holds no layer below, so no hard link to one
OVERLAY_CHANGES = CHANGES.replace(hardlink("usr/bin/ls", "usr/bin/busybox"),
                                  file("usr/bin/new", b"n") + hardlink("usr/bin/ln", "usr/bin/new"))


def diff(lower: Path | None, upper: Path, **kw) -> tuple[bytes, object]:
    out = io.BytesIO()
    result = write_diff(lower, upper, out, **kw)
    return out.getvalue(), result


def names(blob: bytes) -> list[str]:
    with tarfile.open(fileobj=decompressor(io.BytesIO(blob), "gzip"), mode="r|") as tar:
        return [m.name for m in tar]


def two_trees(tmp_path: Path) -> tuple[Path, Path]:
    """A base tree, and a copy of it (the copying snapshotter's child) with CHANGES."""
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    lower.mkdir()
    apply(lower, BASE, whiteouts="delete")
    copy_tree(lower, upper)
    apply(upper, CHANGES, whiteouts="delete")
    return lower, upper


# -- compare ---------------------------------------------------------------------------

def test_compare_round_trip(tmp_path: Path) -> None:
    lower, upper = two_trees(tmp_path)
    blob, _ = diff(lower, upper, mode="compare")
    again = tmp_path / "again"
    copy_tree(lower, again)
    apply(again, blob, whiteouts="delete")
    assert snapshot(again) == snapshot(upper)


def test_compare_writes_only_changes_with_their_parents(tmp_path: Path) -> None:
    lower, upper = two_trees(tmp_path)
    got = names(diff(lower, upper, mode="compare")[0])
    # (tarfile drops the "/" that ends a directory's name.) usr/bin/ls is a new name of
    # the unchanged usr/bin/busybox: written whole, as containerd writes it
    assert got == [
        "etc", "etc/.wh.group", "etc/passwd", "home", "home/me", "home/me/.profile",
        "home/me/fifo", "home/me/link", "home/me/su", "home/me/x", "usr", "usr/bin",
        "usr/bin/ls", "var", "var/cache", "var/cache/.wh.a", "var/cache/.wh.b", "var/cache/c"]


def test_compare_with_no_lower_writes_everything(tmp_path: Path) -> None:
    lower, _ = two_trees(tmp_path)
    blob, _ = diff(None, lower, mode="compare")
    again = tmp_path / "again"
    again.mkdir()
    apply(again, blob)
    assert snapshot(again) == snapshot(lower)


def test_compare_sees_new_content_behind_the_same_size_and_whole_second_mtime(
        tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    for root, data in ((lower, b"aaaa"), (upper, b"bbbb")):
        root.mkdir()
        apply(root, layer(file("f", data, mtime_ns=MTIME), file("g", b"same", mtime_ns=MTIME)))
    assert names(diff(lower, upper, mode="compare")[0]) == ["f"]


def test_compare_sees_an_mtime_change(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    for root, mtime in ((lower, MTIME + 1), (upper, MTIME + 2)):
        root.mkdir()
        apply(root, layer(file("f", b"x", mtime_ns=mtime)))
    assert names(diff(lower, upper, mode="compare")[0]) == ["f"]


def test_compare_sees_mode_xattr_and_type_changes(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    lower.mkdir()
    apply(lower, layer(file("m"), file("x"), folder("t"), file("t/inner"), file("u")))
    upper.mkdir()
    apply(upper, layer(file("m", mode=0o600), file("x", xattrs=(("user.a", b"1"),)),
                       file("t"), folder("u")))
    assert names(diff(lower, upper, mode="compare")[0]) == ["m", "t", "u", "x"]


def test_compare_deleted_directory_is_one_whiteout(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    lower.mkdir()
    apply(lower, layer(folder("d"), file("d/a"), file("d/b")))
    upper.mkdir()
    assert names(diff(lower, upper, mode="compare")[0]) == [".wh.d"]


def test_sockets_are_left_out(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    upper.mkdir()
    (upper / "f").write_bytes(b"x")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(upper / "sock"))
        assert names(diff(None, upper, mode="compare")[0]) == ["f"]


# -- overlay ---------------------------------------------------------------------------

@pytest.mark.root
def test_overlay_round_trip(tmp_path: Path) -> None:
    upper, again = tmp_path / "upper", tmp_path / "again"
    upper.mkdir()
    again.mkdir()
    apply(upper, layer(device("dev/null", CHAR, (1, 3)), device("dev/loop0", BLOCKDEV, (7, 0))))
    apply(upper, OVERLAY_CHANGES, whiteouts="overlay")
    blob, _ = diff(None, upper, mode="overlay")
    apply(again, blob, whiteouts="overlay")
    assert snapshot(again) == snapshot(upper)
    assert os.getxattr(again / "var/cache", "trusted.overlay.opaque") == b"y"
    whiteout_device = os.lstat(again / "etc/group")
    assert stat.S_ISCHR(whiteout_device.st_mode) and whiteout_device.st_rdev == 0


@pytest.mark.root
def test_overlay_upper_becomes_whiteouts_and_opaque_markers(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    upper.mkdir()
    apply(upper, OVERLAY_CHANGES, whiteouts="overlay")
    got = names(diff(None, upper, mode="overlay")[0])
    assert "etc/.wh.group" in got and "etc/group" not in got
    assert got.index("var/cache") + 1 == got.index("var/cache/.wh..wh..opq")
    # sorted, "ln" is met first and carries the data; "new" is then a link to it
    assert got.index("usr/bin/ln") < got.index("usr/bin/new")


@pytest.mark.root
def test_overlay_bookkeeping_xattrs_stay_out(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "d").mkdir(parents=True)
    os.setxattr(upper / "d", "trusted.overlay.impure", b"y")
    os.setxattr(upper / "d", "user.kept", b"1")
    blob, _ = diff(None, upper, mode="overlay")
    with tarfile.open(fileobj=decompressor(io.BytesIO(blob), "gzip"), mode="r|") as tar:
        [d] = list(tar)
    assert {k for k in d.pax_headers if k.startswith("SCHILY")} == {"SCHILY.xattr.user.kept"}


@pytest.mark.root
def test_overlay_redirects_cannot_be_written(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "d").mkdir(parents=True)
    os.setxattr(upper / "d", "trusted.overlay.redirect", b"/elsewhere")
    with pytest.raises(FailedPrecondition, match="redirect"):
        diff(None, upper, mode="overlay")


# -- the bytes -------------------------------------------------------------------------

@pytest.mark.parametrize("compression", ["", "gzip", "zstd"])
def test_digests_are_of_the_bytes_written(tmp_path: Path, compression: str) -> None:
    lower, upper = two_trees(tmp_path)
    blob, result = diff(lower, upper, mode="compare", compression=compression)
    tar = decompressor(io.BytesIO(blob), compression).read()
    assert result.digest == "sha256:" + hashlib.sha256(blob).hexdigest()  # type: ignore[attr-defined]
    assert result.diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()  # type: ignore[attr-defined]
    assert (result.size, result.uncompressed_size) == (len(blob), len(tar))  # type: ignore[attr-defined]


def test_the_same_tree_makes_the_same_bytes(tmp_path: Path) -> None:
    lower, upper = two_trees(tmp_path)
    assert diff(lower, upper, mode="compare")[0] == diff(lower, upper, mode="compare")[0]


@pytest.mark.root  # owners other than ours
def test_members_are_numeric_pax_with_nanoseconds(tmp_path: Path) -> None:
    lower, upper = two_trees(tmp_path)
    blob, _ = diff(lower, upper, mode="compare")
    with tarfile.open(fileobj=decompressor(io.BytesIO(blob), "gzip"), mode="r|") as tar:
        members = {m.name: m for m in tar}
    assert all(m.uname == "" and m.gname == "" for m in members.values())
    assert members["home/me/.profile"].pax_headers["mtime"] == "1600000000.000000123"
    assert members["home/me/.profile"].uid == 1000
    assert members["home/me/su"].mode == 0o4755


def test_second_names_of_a_file_are_hard_links(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    upper.mkdir()
    apply(upper, BASE)
    blob, _ = diff(None, upper, mode="compare")
    with tarfile.open(fileobj=decompressor(io.BytesIO(blob), "gzip"), mode="r|") as tar:
        members = {m.name: m for m in tar}
    assert members["usr/bin/busybox"].isfile() and members["usr/bin/busybox"].size == 2000
    assert members["usr/bin/sh"].islnk()
    assert members["usr/bin/sh"].linkname == "usr/bin/busybox"


def test_out_is_left_open_and_applied_from(tmp_path: Path) -> None:
    lower, upper = two_trees(tmp_path)
    with open(tmp_path / "layer.tar.zst", "wb") as out:
        result = write_diff(lower, upper, out, compression="zstd", mode="compare")
        assert not out.closed
    again = tmp_path / "again"
    copy_tree(lower, again)
    with open(tmp_path / "layer.tar.zst", "rb") as f:
        from dockyard.image.layers.apply import apply_layer
        applied = apply_layer(again, f, whiteouts="delete", expected_digest=result.digest,
                              expected_diff_id=result.diff_id)
    assert applied == result


def test_unknown_mode_is_invalid(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="mode"):
        write_diff(None, tmp_path, io.BytesIO(), mode="aufs")


def test_a_sink_that_hashes_itself_is_trusted_for_the_digest(tmp_path: Path) -> None:
    """A content store's writer hashes what it takes: write_diff then does not hash the blob
    again, and the layer is the same, byte for byte."""
    from dockyard.image.layers.hashing import HashingWriter

    lower, upper = two_trees(tmp_path)
    plain, expected = diff(lower, upper, mode="compare")
    sink = HashingWriter(io.BytesIO())
    result = write_diff(lower, upper, sink, mode="compare", out_digest=sink.digest)
    assert sink.sink.getvalue() == plain  # type: ignore[attr-defined]
    assert result == expected


def test_an_error_of_the_sink_is_raised_and_ends_its_thread(tmp_path: Path) -> None:
    import errno
    import threading

    class Full(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data) -> int:  # type: ignore[no-untyped-def]
            raise OSError(errno.ENOSPC, "no space left")

    (tmp_path / "f").write_bytes(os.urandom(3 << 20))
    with pytest.raises(OSError, match="no space left"):
        write_diff(None, tmp_path, Full(), mode="compare")  # type: ignore[arg-type]
    assert not [t for t in threading.enumerate() if t.name == "layer-write"]
