"""Image names in SQLite: create, put, update, delete, filters, unpack records, reopen."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.image.content.local import LocalStore
from dockyard.image.digest import of_bytes
from dockyard.image.errors import AlreadyExists, InvalidArgument, NotFound
from dockyard.image.images import Image, ImageStore
from dockyard.image.manifest import Descriptor
from dockyard.image.mediatypes import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST

A = Descriptor(OCI_MANIFEST, of_bytes(b"a"), 1)
B = Descriptor(OCI_INDEX, of_bytes(b"b"), 1)
NAME = "docker.io/library/busybox:latest"


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(LocalStore(tmp_path).db)


def test_create_get_and_list(store: ImageStore) -> None:
    created = store.create(Image(NAME, A, {"app": "x"}))
    assert created.created_at == created.updated_at
    got = store.get(NAME)
    assert (got.target, got.labels) == (A, {"app": "x"})
    with pytest.raises(AlreadyExists, match="already exists"):
        store.create(Image(NAME, B))
    store.create(Image("docker.io/library/alpine:3", B))
    assert [i.name for i in store.list()] == ["docker.io/library/alpine:3", NAME]
    assert [i.name for i in store.list("labels.app==x")] == [NAME]
    assert [i.name for i in store.list(f"target.mediatype=={OCI_INDEX}")] == [
        "docker.io/library/alpine:3"]
    assert [i.name for i in store.list(f"target.digest=={A.digest}", "name~=alpine")] == [
        "docker.io/library/alpine:3", NAME]


def test_put_retargets_and_keeps_creation_time(store: ImageStore) -> None:
    first = store.put(Image(NAME, A))
    second = store.put(Image(NAME, B))
    assert second.created_at == first.created_at and store.get(NAME).target == B
    assert store.targets() == {NAME: B.digest}


def test_update_by_field_paths(store: ImageStore) -> None:
    store.create(Image(NAME, A, {"a": "1", "b": "2"}))
    store.update(Image(NAME, B, {"a": "9"}), ["labels.a", "labels.b"])
    got = store.get(NAME)
    assert (got.target, got.labels) == (A, {"a": "9"})
    store.update(Image(NAME, B), ["target"])
    assert store.get(NAME).target == B
    with pytest.raises(InvalidArgument, match="cannot update 'name'"):
        store.update(Image(NAME, B), ["name"])
    with pytest.raises(NotFound):
        store.update(Image("docker.io/library/none:1", B))


def test_delete_and_bad_names(store: ImageStore) -> None:
    store.create(Image(NAME, A))
    store.delete(NAME)
    with pytest.raises(NotFound, match="not found"):
        store.get(NAME)
    with pytest.raises(NotFound):
        store.delete(NAME)
    with pytest.raises(InvalidArgument):
        store.create(Image("", A))
    with pytest.raises(InvalidArgument):
        store.create(Image(NAME, A, {"k": 1}))  # type: ignore[dict-item]


def test_unpack_records_survive_a_reopen(tmp_path: Path) -> None:
    content = LocalStore(tmp_path)
    store = ImageStore(content.db)
    chain = of_bytes(b"chain")
    store.set_unpacked(A.digest, "overlayfs", chain, "linux/amd64")
    store.create(Image(NAME, Descriptor(DOCKER_MANIFEST, A.digest, 1)))
    content.close()
    again = ImageStore(LocalStore(tmp_path).db)
    [record] = again.unpacked(A.digest)
    assert (record.snapshotter, record.chain_id, record.platform) == (
        "overlayfs", chain, "linux/amd64")
    assert again.get(NAME).target.media_type == DOCKER_MANIFEST
    again.forget_unpacked("overlayfs", {chain})
    assert again.unpacked() == []
