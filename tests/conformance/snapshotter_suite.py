"""The snapshotter conformance suite (containerd's core/snapshots/testsuite), run against every
Snapshotter. An implementation subclasses SnapshotterSuite and provides `make_snapshotter`:
a factory whose every call opens the *same* root anew, as a restarted daemon would, rooted
under the `workdir` fixture.

File contents are checked through real mounts (mount.mount_all) on directories under
`workdir`; every mount is undone in a `finally`, and `workdir`'s teardown detaches whatever a
failure left before it deletes the directory, so nothing is left behind (snapshot_trees.py).
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dockyard.image.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from dockyard.image.snapshots import Info, Kind, Snapshotter, Usage
from tests.conformance.snapshot_trees import Tree, apply, mounted, scratch_dir, tree

SnapshotterFactory = Callable[[], Snapshotter]


class SnapshotterSuite:
    @pytest.fixture
    def workdir(self) -> Iterator[Path]:
        with scratch_dir("dyt-snapshots-") as path:
            yield path

    @pytest.fixture
    def sn(self, make_snapshotter: SnapshotterFactory) -> Snapshotter:
        return make_snapshotter()

    def layer(self, sn: Snapshotter, workdir: Path, name: str, parent: str,
              changes: dict[str, str | None]) -> None:
        """Prepare on `parent`, apply `changes` through the mount, commit as `name`."""
        with mounted(sn.prepare(f"{name}-active", parent), workdir) as root:
            apply(root, changes)
        sn.commit(name, f"{name}-active")

    def view_tree(self, sn: Snapshotter, workdir: Path, parent: str,
                  times: bool = True) -> Tree:
        key = f"view-of-{parent}"
        try:
            with mounted(sn.view(key, parent), workdir) as root:
                return tree(root, times)
        finally:
            sn.remove(key)

    # -- lifecycle and content -----------------------------------------------------------------

    def test_prepare_commit_and_view_show_each_layers_changes(
            self, sn: Snapshotter, workdir: Path) -> None:
        self.layer(sn, workdir, "base", "", {"foo": "foo\n", "a/": "", "a/b/": "", "a/b/c/": ""})
        with pytest.raises(Exception, match="base-active"):
            sn.stat("base-active")
        with mounted(sn.prepare("next", "base"), workdir) as root:
            assert (root / "foo").read_text() == "foo\n" and (root / "a/b/c").is_dir()
            apply(root, {"bar": "bar\n", "foo": "bar\n", "a/b/": None})
        assert (sn.stat("next").kind, sn.stat("next").parent) == (Kind.ACTIVE, "base")
        sn.commit("top", "next")
        assert (sn.stat("top").kind, sn.stat("top").parent) == (Kind.COMMITTED, "base")
        seen = self.view_tree(sn, workdir, "top")
        assert sorted(seen) == ["a", "bar", "foo"]
        assert seen["foo"][4] == b"bar\n" and seen["bar"][4] == b"bar\n"
        assert sorted(self.view_tree(sn, workdir, "base")) == ["a", "a/b", "a/b/c", "foo"]

    def test_rebase_chains_a_parentless_snapshot_or_is_refused(
            self, sn: Snapshotter, workdir: Path) -> None:
        self.layer(sn, workdir, "l1", "", {"foo": "foo", "bar": "bar"})
        with mounted(sn.prepare("side"), workdir) as root:
            apply(root, {"baz": "baz"})
            if sn.rebase:  # an overlay whiteout, as a layer unpacked beside its parent has
                os.mknod(root / "bar", stat.S_IFCHR | 0o000, os.makedev(0, 0))
        if not sn.rebase:
            with pytest.raises(InvalidArgument, match="cannot rebase"):
                sn.commit("l2", "side", parent="l1")
            assert sn.stat("side").kind is Kind.ACTIVE
            return
        sn.commit("l2", "side", parent="l1")
        assert (sn.stat("l2").kind, sn.stat("l2").parent) == (Kind.COMMITTED, "l1")
        assert sorted(self.view_tree(sn, workdir, "l2")) == ["baz", "foo"]
        sn.prepare("child", "l1")
        with pytest.raises(InvalidArgument, match="has a parent"):
            sn.commit("l3", "child", parent="l2")
        sn.prepare("orphan")
        with pytest.raises(InvalidArgument, match="not committed"):
            sn.commit("l4", "orphan", parent="child")
        assert sn.stat("orphan").parent == ""

    def test_new_snapshot_is_an_empty_writable_0755_directory(
            self, sn: Snapshotter, workdir: Path) -> None:
        with mounted(sn.prepare("fresh"), workdir) as root:
            assert os.listdir(root) == []
            assert stat.S_IMODE(os.stat(root).st_mode) == 0o755
            (root / "written").write_text("yes")

    def test_deleted_files_and_directories_stay_deleted_in_children(
            self, sn: Snapshotter, workdir: Path) -> None:
        self.layer(sn, workdir, "l1", "", {"foo": "foo", "foobar": "foobar", "d/": "",
                                           "d/old": "old", "gone/": "", "gone/x": "x",
                                           "becomes-file/": ""})
        self.layer(sn, workdir, "l2", "l1", {"foobar": None, "d/": None, "gone/": None,
                                             "becomes-file/": None})
        self.layer(sn, workdir, "l3", "l2", {"d/": "", "d/new": "new", "becomes-file": "f"})
        self.layer(sn, workdir, "l4", "l3", {})
        seen = self.view_tree(sn, workdir, "l4")
        assert sorted(seen) == ["becomes-file", "d", "d/new", "foo"]
        assert sorted(self.view_tree(sn, workdir, "l2")) == ["foo"]

    def test_files_moved_and_linked_from_a_lower_layer(self, sn: Snapshotter,
                                                       workdir: Path) -> None:
        self.layer(sn, workdir, "l1", "", {"dir1/": "", "dir1/f1": "Hello", "dir2/": "",
                                           "dir2/f2": "..."})
        with mounted(sn.prepare("l2-active", "l1"), workdir) as root:
            (root / "dir3").mkdir()
            os.rename(root / "dir1/f1", root / "dir3/f1")
            shutil.rmtree(root / "dir1")
            os.link(root / "dir2/f2", root / "dir3/f2")
            (root / "dir2/f2").unlink()
        sn.commit("l2", "l2-active")
        seen = self.view_tree(sn, workdir, "l2")
        assert sorted(seen) == ["dir2", "dir3", "dir3/f1", "dir3/f2"]
        assert (seen["dir3/f1"][4], seen["dir3/f2"][4]) == (b"Hello", b"...")

    def test_owners_modes_and_special_files_survive_into_children(
            self, sn: Snapshotter, workdir: Path) -> None:
        with mounted(sn.prepare("base-active"), workdir) as root:
            (root / "setuid").write_text("s")
            os.chown(root / "setuid", 1000, 1001)
            os.chmod(root / "setuid", 0o4755)
            (root / "private/").mkdir(mode=0o700)
            os.chown(root / "private", 123, 456)
            os.symlink("../setuid", root / "private/link")
            os.lchown(root / "private/link", 7, 8)
            os.mkfifo(root / "fifo", 0o640)
            os.mknod(root / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
            os.link(root / "setuid", root / "hardlink")
            os.setxattr(root / "setuid", "trusted.dockyard", b"kept")
            os.setxattr(root / "private", "user.dockyard", b"too")
            os.utime(root / "fifo", ns=(1_000_000_123, 2_000_000_456))
            before = tree(root)
        sn.commit("base", "base-active")
        with mounted(sn.prepare("child", "base"), workdir) as root:
            assert tree(root) == before
            assert os.stat(root / "hardlink").st_ino == os.stat(root / "setuid").st_ino
            assert os.getxattr(root / "setuid", "trusted.dockyard") == b"kept"
            assert os.getxattr(root / "private", "user.dockyard") == b"too"
            os.chown(root / "setuid", 0, 0)  # a change in the child only
            os.chmod(root / "private", 0o750)
        sn.commit("child-c", "child")
        seen = self.view_tree(sn, workdir, "child-c")
        assert seen["setuid"][2:4] == (0, 0) and seen["private"][1] == 0o750
        assert self.view_tree(sn, workdir, "base") == before

    @pytest.mark.parametrize("depth", [0, 1, 2])
    def test_views_are_read_only(self, sn: Snapshotter, workdir: Path, depth: int) -> None:
        parent = ""
        for i in range(depth):
            self.layer(sn, workdir, f"l{i}", parent, {f"f{i}": str(i)})
            parent = f"l{i}"
        mounts = sn.view("v", parent)
        assert all(m.readonly for m in mounts)
        with mounted(mounts, workdir) as root:
            assert sorted(os.listdir(root)) == [f"f{i}" for i in range(depth)]
            with pytest.raises(OSError):
                (root / "new").write_text("no")

    def test_128_layer_chain_mounts_and_matches_a_flat_copy(
            self, sn: Snapshotter, workdir: Path) -> None:
        flat = workdir / "flat"
        flat.mkdir(mode=0o755)
        layers: list[dict[str, str | None]] = [
            {"bottom": "way at the bottom\n", "overwriteme": "FIRST!\n", "addhere/": "",
             "onlyme/": "", "onlyme/bottom": "bye!\n"}]
        layers += [{"overwriteme": f"{i} WAS HERE!\n", f"addhere/file-{i}": "same\n",
                    "onlyme": None, "onlyme/": "", f"onlyme/file-{i}": "only me!\n"}
                   for i in range(1, 128)]
        parent = ""
        for i, changes in enumerate(layers):
            with mounted(sn.prepare(f"prepare-{i}", parent), workdir) as root:
                assert tree(root, False) == tree(flat, False), f"layer {i} before"
                apply(flat, changes)
                apply(root, changes)
                assert tree(root, False) == tree(flat, False), f"layer {i} after"
            sn.commit(f"committed-{i}", f"prepare-{i}")
            parent = f"committed-{i}"
        assert self.view_tree(sn, workdir, parent, False) == tree(flat, False)

    def test_mounts_returns_what_prepare_and_view_returned(self, sn: Snapshotter,
                                                           workdir: Path) -> None:
        self.layer(sn, workdir, "base", "", {"f": "x"})
        assert sn.prepare("a", "base") == sn.mounts("a")
        assert sn.view("v", "base") == sn.mounts("v")
        with pytest.raises(FailedPrecondition, match="base"):
            sn.mounts("base")

    # -- metadata ------------------------------------------------------------------------------

    def base_snapshots(self, sn: Snapshotter) -> None:
        """containerd's baseTestSnapshots: c1 <- c2 committed, a1 on c2, a2 alone, v1 on c2,
        v2 alone."""
        sn.prepare("c1-a")
        sn.commit("c1", "c1-a")
        sn.prepare("c2-a", "c1")
        sn.commit("c2", "c2-a")
        sn.prepare("a1", "c2")
        sn.prepare("a2")
        sn.view("v1", "c2")
        sn.view("v2")

    BASE = {"c1": (Kind.COMMITTED, ""), "c2": (Kind.COMMITTED, "c1"), "a1": (Kind.ACTIVE, "c2"),
            "a2": (Kind.ACTIVE, ""), "v1": (Kind.VIEW, "c2"), "v2": (Kind.VIEW, "")}

    def test_stat_reports_kind_parent_and_creation_time(self, sn: Snapshotter) -> None:
        t1 = datetime.now(UTC) - timedelta(microseconds=1)
        self.base_snapshots(sn)
        t2 = datetime.now(UTC)
        for key, (kind, parent) in self.BASE.items():
            info = sn.stat(key)
            assert (info.name, info.kind, info.parent) == (key, kind, parent)
            assert t1 <= info.created <= t2
            assert info.updated == info.created

    def test_parents_are_transitive(self, sn: Snapshotter) -> None:
        sn.prepare("a-active")
        sn.commit("a", "a-active")
        sn.prepare("b-active", "a")
        sn.commit("b", "b-active")
        sn.prepare("c", "b")
        assert sn.stat("c").parent == "b" and sn.stat(sn.stat("c").parent).parent == "a"
        assert sn.stat("a").parent == ""

    def test_a_taken_key_is_refused_by_prepare_view_and_commit(self, sn: Snapshotter) -> None:
        sn.prepare("base-a")
        sn.commit("base", "base-a")
        sn.prepare("new", "base")
        for taken in ("new", "base"):
            with pytest.raises(AlreadyExists, match=f"snapshot {taken} already exists"):
                sn.prepare(taken, "base")
            with pytest.raises(AlreadyExists, match=f"snapshot {taken} already exists"):
                sn.view(taken, "base")
        sn.prepare("other")
        with pytest.raises(AlreadyExists, match="snapshot base already exists"):
            sn.commit("base", "other")
        assert sn.stat("other").kind is Kind.ACTIVE

    def test_commit_of_a_view_or_a_committed_snapshot_is_refused(self, sn: Snapshotter) -> None:
        self.base_snapshots(sn)
        for key in ("v1", "v2", "c2"):
            with pytest.raises(FailedPrecondition, match=key):
                sn.commit(f"from-{key}", key)
        assert sn.stat("v1").kind is Kind.VIEW

    def test_parent_must_exist_and_be_committed(self, sn: Snapshotter) -> None:
        self.base_snapshots(sn)
        with pytest.raises(NotFound, match="nothing"):
            sn.prepare("x", "nothing")
        for parent in ("a1", "v1"):
            with pytest.raises(InvalidArgument, match="not committed"):
                sn.prepare("x", parent)
            with pytest.raises(InvalidArgument, match="not committed"):
                sn.view("x", parent)
        with pytest.raises(NotFound):
            sn.stat("x")

    def test_remove_of_a_parent_is_refused_until_its_children_are_gone(
            self, sn: Snapshotter) -> None:
        sn.prepare("base-a")
        sn.commit("base", "base-a")
        sn.prepare("inter-a", "base")
        sn.commit("inter", "inter-a")
        sn.prepare("top", "inter")
        sn.view("look", "inter")
        for key in ("inter", "base"):
            with pytest.raises(FailedPrecondition, match=f"remove snapshot {key}"):
                sn.remove(key)
        for key in ("top", "look", "inter", "base"):
            sn.remove(key)
        assert list(sn.walk()) == []

    def test_removed_keys_can_be_reused(self, sn: Snapshotter) -> None:
        sn.prepare("committed-a")
        sn.commit("committed-1", "committed-a")
        sn.prepare("reuse-1", "committed-1")
        sn.remove("reuse-1")
        sn.view("reuse-1", "committed-1")
        sn.remove("reuse-1")
        sn.prepare("reuse-1")
        sn.remove("committed-1")
        sn.commit("committed-1", "reuse-1")
        assert sn.stat("committed-1").kind is Kind.COMMITTED

    def test_missing_snapshots_are_not_found(self, sn: Snapshotter) -> None:
        calls: list[Callable[[], object]] = [
            lambda: sn.stat("ghost"), lambda: sn.usage("ghost"), lambda: sn.mounts("ghost"),
            lambda: sn.commit("name", "ghost"), lambda: sn.remove("ghost"),
            lambda: sn.update(Info(Kind.ACTIVE, "ghost"))]
        for call in calls:
            with pytest.raises(NotFound, match="ghost"):
                call()

    def test_update_replaces_sets_and_removes_labels(self, sn: Snapshotter) -> None:
        self.base_snapshots(sn)
        for key, (kind, parent) in self.BASE.items():
            before = sn.stat(key)
            expected = {"l1": "v1", "l2": "v2", "l3": "v3", "containerd.io/gc.root": "now"}
            info = sn.update(replace(before, parent="doesnotexist", labels=expected))
            assert (info.kind, info.parent, info.created) == (kind, parent, before.created)
            assert info.updated > before.updated and dict(info.labels) == expected
            info = sn.update(replace(info, labels={"l1": "updated", "l4": "v4"}),
                             ["labels.l1", "labels.l2"])
            assert dict(info.labels) == {"l1": "updated", "l3": "v3",
                                         "containerd.io/gc.root": "now"}
            info = sn.update(replace(info, labels={"l4": "v4"}), ["labels"])
            assert dict(info.labels) == {"l4": "v4"} == dict(sn.stat(key).labels)
            with pytest.raises(InvalidArgument, match="parent"):
                sn.update(replace(info, parent="doesnotexist"), ["parent"])

    def test_commit_replaces_labels_and_restarts_times(self, sn: Snapshotter) -> None:
        sn.prepare("work", labels={"inherited": "no"})
        created = sn.stat("work").created
        sn.commit("done", "work", labels={"fresh": "yes"})
        info = sn.stat("done")
        assert dict(info.labels) == {"fresh": "yes"}
        assert info.created >= created and info.updated == info.created

    def test_walk_filters_by_kind_name_parent_and_labels(self, sn: Snapshotter) -> None:
        root = {"containerd.io/gc.root": "check-walk"}
        sn.prepare("a-np", labels=root)
        sn.prepare("p-tmp", labels=root)
        sn.commit("p", "p-tmp", labels=root)
        sn.prepare("a", "p", labels=root)
        sn.view("v", "p", labels=root)
        sn.prepare("p-wl-tmp")
        sn.commit("p-wl", "p-wl-tmp", labels=root | {"l": "1"})
        sn.prepare("a-wl", "p-wl", labels=root | {"l": "2"})
        sn.view("v-wl", "p-wl", labels=root | {"l": "3"})
        sn.prepare("a-np-wl", labels=root | {"l": "2"})
        sn.prepare("unlabelled")
        cases = {
            ('labels."containerd.io/gc.root"==check-walk',):
                {"a-np", "p", "a", "v", "p-wl", "a-wl", "v-wl", "a-np-wl"},
            ("kind==active,labels.containerd.io/gc.root==check-walk",):
                {"a-np", "a", "a-wl", "a-np-wl"},
            ("kind==view",): {"v", "v-wl"},
            ("kind==committed",): {"p", "p-wl"},
            ("name==p",): {"p"},
            ("parent==p",): {"a", "v"},
            ("parent==p-wl",): {"a-wl", "v-wl"},
            ("labels.l==2",): {"a-wl", "a-np-wl"},
            ("labels.l==1", "labels.l==3"): {"p-wl", "v-wl"},
            ("name~=^a-np",): {"a-np", "a-np-wl"},
            (): {"a-np", "p", "a", "v", "p-wl", "a-wl", "v-wl", "a-np-wl", "unlabelled"},
        }
        for filters, names in cases.items():
            assert {i.name for i in sn.walk(*filters)} == names, filters
        with pytest.raises(InvalidArgument):
            list(sn.walk("labels.\"unterminated"))

    def test_snapshots_can_be_statted_and_removed_while_walking(self, sn: Snapshotter) -> None:
        self.base_snapshots(sn)
        for info in sn.walk("kind!=committed"):
            assert sn.stat(info.name) == info
            sn.remove(info.name)
        assert {i.name for i in sn.walk()} == {"c1", "c2"}

    def test_empty_keys_and_bad_labels_are_invalid(self, sn: Snapshotter) -> None:
        with pytest.raises(InvalidArgument):
            sn.prepare("")
        sn.prepare("k")
        with pytest.raises(InvalidArgument):
            sn.commit("", "k")
        with pytest.raises(InvalidArgument, match="label"):
            sn.prepare("bad", labels={"": "empty key"})
        with pytest.raises(InvalidArgument, match="label"):
            sn.prepare("bad", labels={"huge": "x" * 5000})
        assert [i.name for i in sn.walk()] == ["k"]

    def test_usage_counts_file_bytes_once_per_inode(self, sn: Snapshotter,
                                                    workdir: Path) -> None:
        with mounted(sn.prepare("measured"), workdir) as root:
            (root / "d").mkdir()
            (root / "d/a").write_bytes(b"a" * 1000)
            (root / "b").write_bytes(b"b" * 3000)
            os.link(root / "b", root / "b-again")
            os.symlink("b", root / "link")
        expected = Usage(size=4000, inodes=5)  # root, d, a, b, link
        assert sn.usage("measured") == expected
        sn.commit("measured-c", "measured")
        assert sn.usage("measured-c") == expected
        sn.view("look", "measured-c")
        assert sn.usage("look").size == 0

    def test_reopened_snapshotter_sees_the_same_snapshots(
            self, make_snapshotter: SnapshotterFactory, workdir: Path) -> None:
        first = make_snapshotter()
        self.base_snapshots(first)
        self.layer(first, workdir, "c3", "c2", {"kept": "yes"})
        before = {i.name: (i, first.usage(i.name)) for i in first.walk()}
        mounts = first.mounts("a1")
        first.close()
        again = make_snapshotter()
        assert {i.name: (i, again.usage(i.name)) for i in again.walk()} == before
        assert again.mounts("a1") == mounts
        assert self.view_tree(again, workdir, "c3")["kept"][4] == b"yes"

    def test_close_twice_is_harmless_and_use_after_close_fails(
            self, make_snapshotter: SnapshotterFactory) -> None:
        sn = make_snapshotter()
        sn.prepare("p")
        sn.commit("c", "p")
        sn.remove("c")
        sn.close()
        sn.close()
        with pytest.raises(FailedPrecondition, match="closed"):
            sn.stat("c")
