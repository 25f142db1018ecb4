"""apply_layer: what each kind of member becomes, replacement, whiteouts both ways, the two
digests, and streams that are damaged or not what they should be."""

from __future__ import annotations

import hashlib
import io
import os
import stat
from pathlib import Path

import pytest

from dockyard.image.errors import DigestMismatch, InvalidArgument
from dockyard.image.layers.apply import CHUNK, apply_layer
from dockyard.image.layers.compression import compressor
from dockyard.image.layers.tarstream import BLOCKDEV, CHAR
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

root_only = pytest.mark.root


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    return path


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- what members become -------------------------------------------------------------

def test_files_dirs_symlinks_and_hard_links(root: Path) -> None:
    apply(root, layer(folder("d", mode=0o750), file("d/f", b"data", mode=0o640),
                      symlink("d/l", "f"), hardlink("d/h", "d/f"), fifo("d/p", mode=0o600)))
    assert (root / "d/f").read_bytes() == b"data"
    assert stat.S_IMODE((root / "d").stat().st_mode) == 0o750
    assert stat.S_IMODE((root / "d/f").stat().st_mode) == 0o640
    assert os.readlink(root / "d/l") == "f"
    assert (root / "d/h").stat().st_ino == (root / "d/f").stat().st_ino
    assert stat.S_ISFIFO((root / "d/p").lstat().st_mode)


def test_mtimes_are_kept_to_the_nanosecond_and_directories_last(root: Path) -> None:
    apply(root, layer(folder("d", mtime_ns=MTIME + 5), file("d/f", mtime_ns=MTIME + 7),
                      symlink("d/l", "f", mtime_ns=MTIME + 9), folder("d/sub"),
                      file("d/sub/g")))
    assert (root / "d").stat().st_mtime_ns == MTIME + 5  # after d/f, d/l, d/sub were made
    assert (root / "d/f").stat().st_mtime_ns == MTIME + 7
    assert (root / "d/l").lstat().st_mtime_ns == MTIME + 9


def test_a_file_larger_than_a_chunk(root: Path) -> None:
    data = os.urandom(3 * CHUNK + 123)
    apply(root, layer(file("big", data), file("after", b"x")), compression="")
    assert (root / "big").read_bytes() == data
    assert (root / "after").read_bytes() == b"x"


def test_missing_parents_are_made_0755(root: Path) -> None:
    apply(root, layer(file("a/b/c", b"x")))
    assert (root / "a/b/c").read_bytes() == b"x"
    assert stat.S_IMODE((root / "a/b").stat().st_mode) == 0o755


def test_the_root_entry_sets_the_roots_mode(root: Path) -> None:
    apply(root, layer(folder(".", mode=0o700), file("f")))
    assert stat.S_IMODE(root.stat().st_mode) == 0o700


def test_a_non_directory_root_entry_is_refused(root: Path) -> None:
    with pytest.raises(InvalidArgument, match="root must be a directory"):
        apply(root, layer(file("./")))


@root_only
def test_owners_and_set_id_bits(root: Path) -> None:
    apply(root, layer(folder("d", uid=5, gid=6, mode=0o1777),
                      file("d/su", mode=0o4755, uid=1000, gid=1000),
                      file("d/sg", mode=0o2711, uid=7, gid=8),
                      symlink("d/l", "su", uid=9, gid=10)))
    d, su, sg, ln = (os.lstat(root / p) for p in ("d", "d/su", "d/sg", "d/l"))
    assert (d.st_uid, d.st_gid, stat.S_IMODE(d.st_mode)) == (5, 6, 0o1777)
    assert (su.st_uid, su.st_gid, stat.S_IMODE(su.st_mode)) == (1000, 1000, 0o4755)
    assert (sg.st_uid, sg.st_gid, stat.S_IMODE(sg.st_mode)) == (7, 8, 0o2711)
    assert (ln.st_uid, ln.st_gid) == (9, 10)


def test_same_owner_false_leaves_owners_alone(root: Path) -> None:
    apply(root, layer(file("f", uid=1234, gid=1234)), same_owner=False)
    assert (root / "f").stat().st_uid == os.geteuid()


@root_only
def test_devices(root: Path) -> None:
    apply(root, layer(device("null", CHAR, (1, 3), mode=0o666),
                      device("loop", BLOCKDEV, (7, 0), mode=0o660)))
    null, loop = os.lstat(root / "null"), os.lstat(root / "loop")
    assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3)
    assert stat.S_ISBLK(loop.st_mode) and loop.st_rdev == os.makedev(7, 0)
    assert stat.S_IMODE(null.st_mode) == 0o666


def test_user_xattrs_are_set_and_overlay_ones_ignored(root: Path) -> None:
    apply(root, layer(file("f", xattrs=(("user.a", b"\x00\x01"),
                                        ("trusted.overlay.opaque", b"y")))))
    assert os.getxattr(root / "f", "user.a") == b"\x00\x01"
    assert "trusted.overlay.opaque" not in os.listxattr(root / "f")


def test_xattrs_the_kernel_refuses_are_skipped(root: Path) -> None:
    # user.* is not allowed on a symlink (EPERM): skipped, as Docker skips it
    apply(root, layer(symlink("l", "x", xattrs=(("user.a", b"1"),))))
    assert os.readlink(root / "l") == "x"


@root_only
def test_file_capabilities_survive_the_chown(root: Path) -> None:
    cap = bytes.fromhex("0100000200200000000000000000000000000000")  # cap_net_bind_service
    apply(root, layer(file("ping", mode=0o755, uid=1, gid=1,
                           xattrs=(("security.capability", cap),))))
    assert os.getxattr(root / "ping", "security.capability") == cap


# -- replacing what is there ----------------------------------------------------------

def test_a_file_replaces_a_directory_tree(root: Path) -> None:
    apply(root, layer(folder("x"), folder("x/y"), file("x/y/z")))
    apply(root, layer(file("x", b"now a file")), whiteouts="delete")
    assert (root / "x").read_bytes() == b"now a file"


def test_a_directory_replaces_a_file_and_a_symlink(root: Path) -> None:
    apply(root, layer(file("a"), symlink("b", "a")))
    apply(root, layer(folder("a"), folder("b")), whiteouts="delete")
    assert (root / "a").is_dir() and not (root / "b").is_symlink() and (root / "b").is_dir()


def test_a_directory_over_a_directory_merges_and_takes_the_new_mode(root: Path) -> None:
    apply(root, layer(folder("d", mode=0o700), file("d/old")))
    apply(root, layer(folder("d", mode=0o755), file("d/new")), whiteouts="delete")
    assert sorted(os.listdir(root / "d")) == ["new", "old"]
    assert stat.S_IMODE((root / "d").stat().st_mode) == 0o755


def test_a_file_is_replaced_not_written_through_its_other_names(root: Path) -> None:
    apply(root, layer(file("a", b"old"), hardlink("b", "a")))
    apply(root, layer(file("b", b"new")), whiteouts="delete")
    assert (root / "a").read_bytes() == b"old"
    assert (root / "b").read_bytes() == b"new"


def test_a_member_twice_in_a_layer_keeps_the_last(root: Path) -> None:
    apply(root, layer(file("f", b"1"), file("f", b"2"), folder("d"), folder("d", mode=0o711)))
    assert (root / "f").read_bytes() == b"2"
    assert stat.S_IMODE((root / "d").stat().st_mode) == 0o711


def test_hard_link_to_a_file_below(root: Path) -> None:
    apply(root, layer(file("bin/busybox", b"bb")))
    apply(root, layer(hardlink("bin/sh", "bin/busybox")), whiteouts="delete")
    assert (root / "bin/sh").stat().st_ino == (root / "bin/busybox").stat().st_ino


def test_hard_link_to_nothing_is_invalid(root: Path) -> None:
    with pytest.raises(InvalidArgument, match="hard link target"):
        apply(root, layer(hardlink("a", "missing")))
    with pytest.raises(InvalidArgument, match="hard link target"):
        apply(root, layer(hardlink("a", "no/such/dir/file")))


def test_hard_link_to_a_directory_is_invalid(root: Path) -> None:
    with pytest.raises(InvalidArgument):
        apply(root, layer(folder("d"), hardlink("h", "d")))


def test_hard_link_to_itself_is_harmless(root: Path) -> None:
    apply(root, layer(file("a", b"x"), hardlink("a", "a")))
    assert (root / "a").read_bytes() == b"x"


def test_a_path_through_a_file_is_invalid(root: Path) -> None:
    with pytest.raises(InvalidArgument, match="not a directory"):
        apply(root, layer(file("f"), file("f/g")))


# -- whiteouts, "delete" --------------------------------------------------------------

def test_whiteout_removes_a_file_and_a_tree(root: Path) -> None:
    apply(root, layer(file("f"), folder("d"), file("d/x"), file("keep")))
    apply(root, layer(whiteout("f"), whiteout("d"), whiteout("missing")), whiteouts="delete")
    assert sorted(os.listdir(root)) == ["keep"]


def test_whiteout_removes_a_symlink_not_its_target(root: Path) -> None:
    apply(root, layer(file("t"), symlink("l", "t")))
    apply(root, layer(whiteout("l")), whiteouts="delete")
    assert os.listdir(root) == ["t"]


def test_whiteout_in_a_missing_directory_makes_nothing(root: Path) -> None:
    apply(root, layer(whiteout("no/such/x")), whiteouts="delete")
    assert os.listdir(root) == []


def test_whiteout_spares_what_its_own_layer_adds(root: Path) -> None:
    apply(root, layer(file("f", b"lower")))
    apply(root, layer(file("f", b"upper"), whiteout("f")), whiteouts="delete")
    assert (root / "f").read_bytes() == b"upper"


@pytest.mark.parametrize("marker_first", [True, False])
def test_opaque_directory_keeps_only_this_layers_entries(root: Path,
                                                         marker_first: bool) -> None:
    apply(root, layer(folder("d"), file("d/old"), folder("d/sub"), file("d/sub/old"),
                      file("d/sub/kept_by_name"), file("outside")))
    entries = [folder("d"), file("d/new"), file("d/sub/new"), file("d/sub/kept_by_name", b"2")]
    entries.insert(1 if marker_first else len(entries), opaque("d"))
    apply(root, layer(*entries), whiteouts="delete")
    assert sorted(os.listdir(root / "d")) == ["new", "sub"]
    assert sorted(os.listdir(root / "d/sub")) == ["kept_by_name", "new"]
    assert (root / "d/sub/kept_by_name").read_bytes() == b"2"
    assert (root / "outside").exists()
    assert not (root / "d/.wh..wh..opq").exists()


def test_aufs_bookkeeping_names_are_ignored(root: Path) -> None:
    apply(root, layer(file(".wh..wh.plnk/123.456"), folder(".wh..wh.aufs"), file("f")),
          whiteouts="delete")
    assert sorted(os.listdir(root)) == [".wh..wh.plnk", "f"]  # only the directory on the way


def test_whiteout_of_dot_or_dot_dot_is_invalid(root: Path) -> None:
    for name in ("d/.wh..", "d/.wh..."):
        with pytest.raises(InvalidArgument, match="whiteout"):
            apply(root, layer(file(name)), whiteouts="delete")


# -- whiteouts, "overlay" -------------------------------------------------------------

@root_only
def test_overlay_whiteout_is_a_character_device_0_0(root: Path) -> None:
    apply(root, layer(whiteout("etc/passwd"), file("etc/group")))
    st = os.lstat(root / "etc/passwd")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert not (root / "etc/.wh.passwd").exists()
    assert (root / "etc/group").exists()


@root_only
def test_overlay_opaque_directory_has_the_xattr(root: Path) -> None:
    apply(root, layer(folder("d"), opaque("d"), file("d/f")))
    assert os.getxattr(root / "d", "trusted.overlay.opaque") == b"y"
    assert os.listdir(root / "d") == ["f"]


@root_only
def test_overlay_whiteout_spares_what_its_own_layer_adds(root: Path) -> None:
    apply(root, layer(file("f", b"mine"), whiteout("f")))
    assert (root / "f").read_bytes() == b"mine"


def test_unknown_whiteout_mode_is_invalid(root: Path) -> None:
    with pytest.raises(InvalidArgument, match="whiteouts"):
        apply(root, layer(), whiteouts="aufs")


# -- digests and streams --------------------------------------------------------------

@pytest.mark.parametrize("compression", ["", "gzip", "zstd"])
def test_digests_sizes_and_compression_detected(root: Path, compression: str) -> None:
    tar = layer(file("f", b"x" * 10000))
    blob = layer(file("f", b"x" * 10000), compression=compression)
    applied = apply(root, blob)
    assert applied.digest == sha256(blob) and applied.size == len(blob)
    assert applied.diff_id == sha256(tar) and applied.uncompressed_size == len(tar)
    assert (root / "f").read_bytes() == b"x" * 10000


def test_compression_can_be_given(root: Path) -> None:
    blob = layer(file("f", b"x"), compression="zstd")
    assert apply(root, blob, compression="zstd").digest == sha256(blob)
    with pytest.raises(InvalidArgument):
        apply(root, blob, compression="gzip")


def test_the_stream_is_hashed_to_its_end(root: Path) -> None:
    tar = layer(file("f")) + bytes(10240)  # GNU tar pads to a 10 KiB record
    applied = apply(root, tar)
    assert applied.diff_id == sha256(tar) and applied.uncompressed_size == len(tar)


def test_expected_digests_that_match(root: Path) -> None:
    tar = layer(file("f"))
    blob = layer(file("f"), compression="gzip")
    applied = apply(root, blob, expected_digest=sha256(blob), expected_diff_id=sha256(tar))
    assert applied.digest == sha256(blob)


@pytest.mark.parametrize("which", ["expected_digest", "expected_diff_id"])
def test_digest_mismatch_is_raised_after_the_pass(root: Path, which: str) -> None:
    blob = layer(file("f", b"x"), compression="gzip")
    with pytest.raises(DigestMismatch, match="mismatch"):
        apply(root, blob, **{which: sha256(b"something else")})
    assert (root / "f").read_bytes() == b"x"  # the caller discards the snapshot


def test_a_bad_expected_digest_is_invalid_before_anything_is_written(root: Path) -> None:
    with pytest.raises(InvalidArgument):
        apply(root, layer(file("f")), expected_digest="md5:abc")
    assert os.listdir(root) == []


@pytest.mark.parametrize("compression", ["", "gzip", "zstd"])
def test_truncated_stream_is_unexpected_eof(root: Path, compression: str) -> None:
    blob = layer(file("f", os.urandom(100_000)), compression=compression)
    with pytest.raises(InvalidArgument, match="unexpected EOF"):
        apply(root, blob[:len(blob) // 2])


def test_corrupt_gzip_is_invalid_argument(root: Path) -> None:
    blob = bytearray(layer(file("f", os.urandom(100_000)), compression="gzip"))
    blob[5000:5100] = bytes(100)
    with pytest.raises(InvalidArgument):
        apply(root, bytes(blob))


def test_an_empty_stream_is_an_empty_layer(root: Path) -> None:
    applied = apply(root, b"")
    assert applied.size == applied.uncompressed_size == 0
    assert applied.digest == applied.diff_id == sha256(b"")


class Trickle(io.RawIOBase):
    """A stream that returns at most 3 bytes a read, as a socket may."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(3, size) if size >= 0 else 3)


def test_short_reads_are_fine(root: Path) -> None:
    blob = layer(file("f", b"hello"), compression="gzip")
    applied = apply_layer(root, Trickle(blob))  # type: ignore[arg-type]
    assert applied.digest == sha256(blob)
    assert (root / "f").read_bytes() == b"hello"


def test_a_failing_member_stops_the_pass_cleanly(root: Path) -> None:
    blob = layer(file("a"), hardlink("b", "missing"), file("c" * 100, os.urandom(5 * CHUNK)),
                 compression="gzip")
    with pytest.raises(InvalidArgument, match="hard link"):
        apply(root, blob)
    assert os.listdir(root) == ["a"]


def test_compressor_output_applies(root: Path) -> None:
    out = io.BytesIO()
    with compressor(out, "zstd") as c:
        c.write(layer(file("z", b"zz")))
    apply(root, out.getvalue())
    assert (root / "z").read_bytes() == b"zz"


def test_a_tree_made_twice_is_the_same(tmp_path: Path) -> None:
    blob = layer(folder("d"), file("d/f", b"1"), symlink("d/l", "f"), hardlink("d/h", "d/f"))
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        apply(tmp_path / name, blob)
    assert snapshot(tmp_path / "one") == snapshot(tmp_path / "two")


@pytest.mark.parametrize("member", [file("f", uid=2**40), symlink("s", "")])
def test_numbers_and_names_out_of_range_are_invalid(root: Path, member: bytes) -> None:
    with pytest.raises(InvalidArgument):
        apply(root, layer(member), same_owner=True)


def test_times_out_of_range_are_clamped(root: Path) -> None:
    apply(root, layer(file("f", mtime_ns=10**30)))
    assert (root / "f").stat().st_mtime_ns > 0


def test_a_directory_replaced_by_a_symlink_is_followed_afterwards(root: Path) -> None:
    apply(root, layer(folder("a"), file("a/x"), folder("b"), symlink("a", "b"),
                      file("a/y", b"through")))
    assert os.readlink(root / "a") == "b"
    assert (root / "b/y").read_bytes() == b"through"


def test_more_directories_than_the_descriptor_cache_holds(root: Path) -> None:
    entries = [file(f"d{i}/e/f", b"%d" % i) for i in range(700)]
    apply(root, layer(*entries, *(file(f"d{i}/e/g") for i in range(700))))
    assert (root / "d699/e/f").read_bytes() == b"699"
    assert len(os.listdir(root)) == 700
    assert sorted(os.listdir(root / "d0/e")) == ["f", "g"]


def test_no_descriptor_or_thread_is_left_behind(root: Path) -> None:
    import threading
    before, threads = set(os.listdir("/proc/self/fd")), threading.active_count()
    apply(root, layer(*(file(f"d{i}/f") for i in range(600)), symlink("s", "d1"),
                      file("s/g"), whiteout("d2"), opaque("d3")), whiteouts="delete")
    with pytest.raises(InvalidArgument):
        apply(root, layer(file("x"), hardlink("y", "nothing"), file("z")))
    with pytest.raises(InvalidArgument):
        apply(root, layer(file("big", os.urandom(3 * CHUNK)), compression="gzip")[:50_000])
    assert set(os.listdir("/proc/self/fd")) == before
    assert threading.active_count() == threads


def test_a_trusted_digest_is_not_hashed_again_but_the_diff_id_is(root: Path) -> None:
    tar = layer(file("f", b"y"))
    blob = layer(file("f", b"y"), compression="gzip")
    vouched = sha256(b"what the content store checked")
    applied = apply(root, blob, trusted_digest=vouched, expected_diff_id=sha256(tar))
    assert applied.digest == vouched and applied.size == len(blob)
    with pytest.raises(DigestMismatch, match="diff_id mismatch"):
        apply(root, blob, trusted_digest=vouched, expected_diff_id=sha256(b"other"))
