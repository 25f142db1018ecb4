"""The mounts snapshotters return and how mount_all performs them, without root: mount_all
runs against the recording double, and the snapshotters only make directories."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.image.errors import InvalidArgument
from dockyard.image.snapshots import Mount
from dockyard.image.snapshots.native import CopySnapshotter
from dockyard.image.snapshots.overlay import OPTIONS, OverlaySnapshotter
from dockyard.mounting import MAX_DATA, mount_all, unmount_all
from dockyard.runtime.linux.syscalls import (
    MNT_DETACH,
    MS_BIND,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
)
from tests.unit.runtime.recording import RecordingSyscalls


@pytest.fixture
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="dyt-unit-snapshots-") as path:
        yield Path(path)


def test_mount_round_trips_through_oci_json() -> None:
    m = Mount("overlay", "overlay", ("lowerdir=/a:/b", "ro"))
    assert m.to_json("/") == {"destination": "/", "type": "overlay", "source": "overlay",
                              "options": ["lowerdir=/a:/b", "ro"]}
    assert Mount.from_json(m.to_json()) == m and m.readonly
    assert "destination" not in Mount("bind", "/x").to_json()


@pytest.mark.parametrize("bad", [{"source": "/x"}, {"type": "bind", "source": 3},
                                 {"type": "bind", "source": "/x", "options": "ro"}])
def test_malformed_mount_json_is_invalid(bad: dict) -> None:
    with pytest.raises(InvalidArgument):
        Mount.from_json(bad)


def test_rw_bind_is_one_call_and_ro_bind_adds_a_remount() -> None:
    sys = RecordingSyscalls()
    mount_all([Mount("bind", "/src", ("rbind", "rw"))], "/t", sys)
    assert sys.calls == [("mount", "/src", "/t", None, MS_BIND | MS_REC, None)]
    sys = RecordingSyscalls()
    mount_all([Mount("bind", "/src", ("rbind", "ro"))], "/t", sys)
    assert sys.calls == [("mount", "/src", "/t", None, MS_BIND | MS_REC, None),
                         ("mount", None, "/t", None, MS_REMOUNT | MS_BIND | MS_RDONLY, None)]


def test_overlay_options_become_its_data_and_ro_its_flag() -> None:
    sys = RecordingSyscalls()
    mount_all([Mount("overlay", "overlay", ("lowerdir=/b:/a", "index=off", "ro"))], "/t", sys)
    assert sys.calls == [("mount", "overlay", "/t", "overlay", MS_RDONLY,
                          "lowerdir=/b:/a,index=off")]


def test_long_lowerdir_chains_are_named_by_descriptor(scratch: Path) -> None:
    layers = [scratch / f"{'long-directory-name-' * 2}{i}" for i in range(128)]
    for layer in layers:
        layer.mkdir()
    options = ("lowerdir=" + ":".join(map(str, layers)), f"upperdir={scratch}", *OPTIONS)
    assert len(",".join(options)) > MAX_DATA
    open_before = set(os.listdir("/proc/self/fd"))
    seen: list[list[str]] = []

    class Resolving(RecordingSyscalls):
        def mount(self, source, target, fstype, flags, data=None):  # type: ignore[no-untyped-def]
            lower = data.split(",")[0].removeprefix("lowerdir=").split(":")
            seen.append([os.readlink(p) for p in lower])  # while the descriptors are open
            super().mount(source, target, fstype, flags, data)

    sys = Resolving()
    mount_all([Mount("overlay", "overlay", options)], "/t", sys)
    data = sys.calls[0][5]
    assert len(data) <= MAX_DATA and data.startswith("lowerdir=/proc/self/fd/")
    assert seen == [[str(p) for p in layers]]
    assert data.endswith(",".join(options[1:]))
    assert set(os.listdir("/proc/self/fd")) == open_before


def test_too_many_layers_for_one_page_is_a_clear_error(scratch: Path) -> None:
    layers = [scratch / str(i) for i in range(260)]
    for layer in layers:
        layer.mkdir()
    sys = RecordingSyscalls()
    with pytest.raises(InvalidArgument, match=r"260 lower layers need \d+ bytes"):
        mount_all([Mount("overlay", "overlay", ("lowerdir=" + ":".join(map(str, layers)),))],
                  "/t", sys)
    assert sys.calls == []


def test_a_failed_mount_undoes_the_ones_before_it() -> None:
    mounts = [Mount("bind", "/a", ("rbind",)), Mount("tmpfs", "tmpfs", ("size=1m",))]

    class FailSecond(RecordingSyscalls):
        def mount(self, source, target, fstype, flags, data=None):  # type: ignore[no-untyped-def]
            super().mount(source, target, fstype, flags, data)
            if fstype == "tmpfs":
                raise OSError(errno.EPERM, "mount tmpfs to /t: Operation not permitted")

    sys = FailSecond()
    with pytest.raises(OSError, match="tmpfs"):
        mount_all(mounts, "/t", sys)
    assert sys.calls[-1] == ("umount", "/t", MNT_DETACH)
    assert [c[0] for c in sys.calls] == ["mount", "mount", "umount"]


def test_unmount_all_stops_where_nothing_is_mounted() -> None:
    sys = RecordingSyscalls(fail={("umount", "/t"): errno.EINVAL})
    assert unmount_all("/t", sys=sys) == 0


# -- the shapes of the mounts each snapshotter returns ----------------------------------------

def test_overlay_mounts_by_kind_and_depth(scratch: Path) -> None:
    with OverlaySnapshotter(scratch / "root") as sn:
        fs = lambda i: str(sn.fs(str(i)))
        assert sn.prepare("a") == [Mount("bind", fs(1), ("rbind", "rw"))]
        assert sn.view("v0") == [Mount("bind", fs(2), ("rbind", "ro"))]
        sn.commit("c1", "a")
        assert sn.prepare("b", "c1") == [Mount("overlay", "overlay", (
            f"workdir={sn.work('3')}", f"upperdir={fs(3)}", f"lowerdir={fs(1)}", *OPTIONS))]
        assert sn.view("v1", "c1") == [Mount("bind", fs(1), ("rbind", "ro"))]
        sn.commit("c2", "b")
        assert sn.view("v2", "c2") == [Mount("overlay", "overlay", (
            f"lowerdir={fs(3)}:{fs(1)}", *OPTIONS, "ro"))]
        assert sorted(os.listdir(sn.fs("3").parent)) == ["fs", "work"]
        assert os.listdir(sn.fs("5").parent) == ["fs"]  # a view has no workdir


def test_copy_mounts_bind_the_own_tree_or_the_parents(scratch: Path) -> None:
    with CopySnapshotter(scratch / "root") as sn:
        sn.prepare("a")
        sn.commit("c1", "a")
        assert sn.prepare("b", "c1") == [Mount("bind", str(sn.fs("2")), ("rbind", "rw"))]
        assert sn.view("v", "c1") == [Mount("bind", str(sn.fs("1")), ("rbind", "ro"))]
        assert sn.view("v0") == [Mount("bind", str(sn.fs("4")), ("rbind", "ro"))]


@pytest.mark.parametrize("bad", ["a,b", "a:b", "a\\b"])
def test_overlay_refuses_roots_its_options_cannot_carry(scratch: Path, bad: str) -> None:
    with pytest.raises(InvalidArgument, match="mount options"):
        OverlaySnapshotter(scratch / bad)


def test_a_failed_read_only_remount_undoes_its_bind() -> None:
    class RefuseRemount(RecordingSyscalls):
        def mount(self, source, target, fstype, flags, data=None):  # type: ignore[no-untyped-def]
            super().mount(source, target, fstype, flags, data)
            if flags & MS_REMOUNT:
                raise OSError(errno.EPERM, f"mount to {target}: Operation not permitted")

    sys = RefuseRemount()
    with pytest.raises(OSError, match="not permitted"):
        mount_all([Mount("bind", "/src", ("rbind", "ro"))], "/t", sys)
    assert [c[0] for c in sys.calls] == ["mount", "mount", "umount"]
