"""The supervisor's shared objects: one image library per namespace, deletion only of empty
namespaces, leftovers of an unfinished deletion swept, a collection that keeps what
containers use, one supervisor per root."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.containerd.config import Config, check
from dockyard.containerd.errors import FailedPrecondition, NotFound, Unavailable
from dockyard.containerd.metadata import Blob, Container, Runtime
from dockyard.containerd.supervisor import Supervisor
from dockyard.image.errors import NotFound as ImageNotFound


def config(tmp_path: Path) -> Config:
    return check(Config(root=tmp_path / "root", state=tmp_path / "state",
                        snapshotter="native"))


@pytest.fixture
def sup(tmp_path: Path) -> Iterator[Supervisor]:
    s = Supervisor.open(config(tmp_path))
    yield s
    s.close()


def container(id: str, key: str = "") -> Container:
    return Container(id, Runtime("r"), Blob("s", b"{}"), snapshotter="native" if key else "",
                     snapshot_key=key)


def test_namespaces_have_libraries_of_their_own(sup: Supervisor) -> None:
    assert sup.library("a") is None  # a read makes nothing
    a, b = sup.writable_library("a"), sup.writable_library("b")
    assert a is not b and a.root != b.root
    with a.lease() as lease:
        desc = a.put_json(b"{}", "application/json", lease)
        a.tag("img", desc)
    assert [i.name for i in a.list()] == ["img"] and b.list() == []
    with pytest.raises(ImageNotFound):
        b.content.info(desc.digest)
    assert sup.namespace_exists("a") and not sup.namespace_exists("c")


def test_only_an_empty_namespace_is_deleted(sup: Supervisor) -> None:
    lib = sup.writable_library("full")
    with lib.lease() as lease:
        desc = lib.put_json(b"{}", "application/json", lease)
        lib.tag("img", desc)
    lib.snapshotter.prepare("k")
    sup.metadata.create_container("full", container("c"))
    with pytest.raises(FailedPrecondition) as e:
        sup.delete_namespace("full")
    assert str(e.value) == ('namespace "full" must be empty, but it still has images, blobs, '
                            "containers, snapshots")
    lib.remove("img")
    lib.content.delete(desc.digest)
    lib.snapshotter.remove("k")
    sup.metadata.delete_container("full", "c")
    sup.delete_namespace("full")
    assert not sup.namespace_exists("full")
    assert not (sup.root / "namespaces" / "full").exists()
    with pytest.raises(NotFound):
        sup.delete_namespace("full")


def test_start_sweeps_what_an_unfinished_deletion_left(tmp_path: Path) -> None:
    first = Supervisor.open(config(tmp_path))
    first.writable_library("kept")
    first.close()
    namespaces = tmp_path / "root" / "namespaces"
    (namespaces / "deleted" / "content").mkdir(parents=True)  # its row went, its files not
    (namespaces / ".removing-old-12345678").mkdir()
    again = Supervisor.open(config(tmp_path))
    try:
        assert sorted(p.name for p in namespaces.iterdir()) == ["kept"]
        assert again.library("kept") is not None
    finally:
        again.close()


def test_collection_keeps_images_content_and_container_snapshots(sup: Supervisor) -> None:
    lib = sup.writable_library("ns")
    with lib.lease() as lease:
        kept = lib.put_json(b'{"a": 1}', "application/json", lease)
        dropped = lib.put_json(b'{"b": 2}', "application/json", lease)
        lib.tag("img", kept)
    lib.snapshotter.prepare("rootfs-of-c")
    lib.snapshotter.prepare("orphan")
    sup.metadata.create_container("ns", container("c", key="rootfs-of-c"))
    removed = sup.collect("ns")
    assert removed.content == [dropped.digest]
    assert removed.snapshots == ["native/orphan"]
    assert lib.content.info(kept.digest).size == len(b'{"a": 1}')
    assert lib.snapshotter.stat("rootfs-of-c").name == "rootfs-of-c"


def test_one_supervisor_per_root(tmp_path: Path) -> None:
    first = Supervisor.open(config(tmp_path))
    try:
        with pytest.raises(Unavailable, match="in use by another dockyard-containerd"):
            Supervisor.open(config(tmp_path))
    finally:
        first.close()
    Supervisor.open(config(tmp_path)).close()  # the lock went with the first


def test_the_snapshotter_chosen_first_is_kept(tmp_path: Path) -> None:
    first = Supervisor.open(config(tmp_path))
    first.close()
    assert (tmp_path / "root" / "snapshotter").read_text() == "native\n"
    again = Supervisor.open(check(Config(root=tmp_path / "root", state=tmp_path / "state")))
    try:
        assert again.snapshotter == "native"
    finally:
        again.close()
