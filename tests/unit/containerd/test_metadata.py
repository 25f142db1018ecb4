"""The metadata store: namespaces and containers with containerd's rules, kept across a
reopen."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.containerd.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from dockyard.containerd.metadata import Blob, Container, MetadataStore, Runtime
from dockyard.image.errors import InvalidArgument as LabelError

SPEC = Blob("types.containerd.io/opencontainers/runtime-spec/1/Spec", b"{}")


def container(id: str = "c1", **fields: object) -> Container:
    fields.setdefault("runtime", Runtime("io.containerd.runc.v2"))
    fields.setdefault("spec", SPEC)
    return Container(id=id, **fields)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> MetadataStore:
    s = MetadataStore(tmp_path / "meta.db")
    yield s
    s.close()


def test_namespaces(store: MetadataStore) -> None:
    store.create_namespace("moby", {"a": "1"})
    with pytest.raises(AlreadyExists, match='namespace "moby"'):
        store.create_namespace("moby")
    assert not store.ensure_namespace("moby")
    assert store.ensure_namespace("k8s.io")
    assert [n.name for n in store.list_namespaces()] == ["k8s.io", "moby"]
    assert [n.name for n in store.list_namespaces("labels.a==1")] == ["moby"]
    assert store.update_namespace("moby", {"b": "2"}, ["labels.b"]).labels == {"a": "1",
                                                                              "b": "2"}
    assert store.update_namespace("moby", {"c": "3"}).labels == {"c": "3"}
    with pytest.raises(InvalidArgument):
        store.update_namespace("moby", {}, ["name"])
    store.delete_namespace("k8s.io")
    with pytest.raises(NotFound):
        store.get_namespace("k8s.io")
    with pytest.raises(NotFound):
        store.delete_namespace("k8s.io")
    for bad in ("", "a/b", "-a", "a..b", "x" * 77):
        with pytest.raises(InvalidArgument):
            store.create_namespace(bad)


def test_containers_are_per_namespace(store: MetadataStore) -> None:
    made = store.create_container("a", container(labels={"app": "web"}))
    assert made.created_at is not None and made.created_at == made.updated_at
    assert store.namespace_names() == {"a"}  # a container makes its namespace
    store.create_container("b", container())
    with pytest.raises(AlreadyExists, match='container "c1"'):
        store.create_container("a", container())
    assert store.get_container("a", "c1").labels == {"app": "web"}
    assert store.get_container("b", "c1").labels == {}
    with pytest.raises(NotFound, match='container "c2" in namespace "a"'):
        store.get_container("a", "c2")
    store.delete_container("b", "c1")
    assert store.get_container("a", "c1").id == "c1"
    with pytest.raises(FailedPrecondition):
        store.delete_namespace("a")  # it still has a container


def test_container_validation(store: MetadataStore) -> None:
    for bad in (container("../x"), container(runtime=Runtime("")), container(spec=None),
                container(snapshot_key="k"), container(extensions={"": SPEC})):
        with pytest.raises(InvalidArgument):
            store.create_container("ns", bad)
    with pytest.raises(LabelError):
        store.create_container("ns", container(labels={"k": "v" * 5000}))


def test_container_updates_follow_containerds_rules(store: MetadataStore) -> None:
    store.create_container("ns", container(
        image="busybox", labels={"a": "1", "b": "2"}, snapshotter="overlayfs",
        snapshot_key="k1", extensions={"x": Blob("t", b"1"), "y": Blob("t", b"2")}))
    new = store.update_container("ns", container(labels={"c": "3"}, extensions={
        "x": Blob("t", b"9")}, image="other"), ["labels.a", "labels.c", "extensions.x",
                                                "extensions.y"])
    assert new.labels == {"b": "2", "c": "3"}
    assert new.extensions == {"x": Blob("t", b"9")}
    assert new.image == "busybox"  # not in the mask
    full = store.update_container("ns", container(image="img2", snapshotter="overlayfs",
                                                  snapshot_key="k2"))
    assert (full.image, full.snapshot_key, full.labels, full.extensions) == ("img2", "k2", {},
                                                                             {})
    for given, mask in ((container(snapshotter="native"), ()),
                        (container(runtime=Runtime("other"), snapshotter="overlayfs"), ()),
                        (container(), ["runtime"]), (container(), ["id"])):
        with pytest.raises(InvalidArgument):
            store.update_container("ns", given, mask)
    with pytest.raises(NotFound):
        store.update_container("ns", container("nope"), ["labels"])
    assert store.snapshot_keys("ns") == [("overlayfs", "k2")]


def test_container_filters(store: MetadataStore) -> None:
    store.create_container("ns", container("web", image="nginx", labels={"app": "web"}))
    store.create_container("ns", container("db", image="postgres", runtime=Runtime("runsc")))

    def ids(*filters: str) -> list[str]:
        return [c.id for c in store.list_containers("ns", *filters)]
    assert ids() == ["db", "web"]
    assert ids("image==nginx") == ["web"]
    assert ids("runtime.name==runsc") == ["db"]
    assert ids("labels.app") == ["web"]
    assert ids("labels.app!=web") == ["db"]
    assert ids("id~=^w", "id==db") == ["db", "web"]
    assert ids("id~=^w,image==postgres") == []
    assert ids("snapshotter") == []  # empty is absent


def test_everything_survives_a_reopen(tmp_path: Path) -> None:
    first = MetadataStore(tmp_path / "meta.db")
    first.create_namespace("moby", {"k": "v"})
    first.create_container("moby", container(runtime=Runtime("r", Blob("opts", b"\x00\x01")),
                                             extensions={"e": Blob("t", b"\xff")}))
    first.close()
    again = MetadataStore(tmp_path / "meta.db")
    try:
        got = again.get_container("moby", "c1")
        assert got.runtime.options == Blob("opts", b"\x00\x01")
        assert got.extensions == {"e": Blob("t", b"\xff")} and got.spec == SPEC
        assert again.get_namespace("moby").labels == {"k": "v"}
    finally:
        again.close()
