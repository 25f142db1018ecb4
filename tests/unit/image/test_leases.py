"""Leases: their records, their resources, and what they keep from the collector."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dockyard.image.content.gc import collect
from dockyard.image.content.leases import LABEL_EXPIRE, Resource, SQLiteLeases
from dockyard.image.content.local import LocalStore
from dockyard.image.digest import of_bytes
from dockyard.image.errors import AlreadyExists, InvalidArgument, NotFound
from tests.unit.image.memory_snapshots import MemorySnapshotter


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalStore]:
    s = LocalStore(tmp_path / "c")
    yield s
    s.close()


@pytest.fixture
def leases(store: LocalStore) -> SQLiteLeases:
    return SQLiteLeases(store.db)


def put(store: LocalStore, data: bytes) -> str:
    with store.writer(f"put-{data!r}") as w:
        w.write(data)
        return w.commit(len(data))


def test_create_list_delete(leases: SQLiteLeases) -> None:
    made = leases.create("pull-1", {"purpose": "pull"})
    assert made.id == "pull-1" and made.labels == {"purpose": "pull"}
    leases.create("pull-2")
    assert [lease.id for lease in leases.list()] == ["pull-1", "pull-2"]
    leases.delete("pull-1")
    assert [lease.id for lease in leases.list()] == ["pull-2"]


def test_duplicate_id_is_already_exists(leases: SQLiteLeases) -> None:
    leases.create("x")
    with pytest.raises(AlreadyExists, match="'x'"):
        leases.create("x")


def test_unknown_lease_is_not_found_everywhere(leases: SQLiteLeases) -> None:
    with pytest.raises(NotFound, match="'ghost'"):
        leases.delete("ghost")
    with pytest.raises(NotFound, match="'ghost'"):
        leases.add_resource("ghost", Resource.ingest("r"))
    with pytest.raises(NotFound, match="'ghost'"):
        leases.list_resources("ghost")


def test_list_filters_by_id_and_labels(leases: SQLiteLeases) -> None:
    leases.create("a", {"kind": "pull"})
    leases.create("b", {"kind": "build"})
    assert [lease.id for lease in leases.list("labels.kind==build")] == ["b"]
    assert [lease.id for lease in leases.list("id==a", "id==b")] == ["a", "b"]


def test_expiry_is_the_containerd_expire_label(leases: SQLiteLeases) -> None:
    lease = leases.create("temp", expiry=timedelta(hours=1))
    assert LABEL_EXPIRE in lease.labels
    assert lease.expires_at is not None
    now = datetime.now(UTC)
    assert not lease.expired(now)
    assert lease.expired(now + timedelta(hours=2))
    assert leases.list()[0].expires_at == lease.expires_at


def test_resources_are_attached_listed_and_detached(leases: SQLiteLeases) -> None:
    leases.create("l")
    digest = of_bytes(b"not yet written")
    for r in (Resource.content(digest), Resource.ingest("ref-1"),
              Resource.snapshot("overlayfs", "sha256:abc")):
        leases.add_resource("l", r)
        leases.add_resource("l", r)  # idempotent
    assert leases.list_resources("l") == [Resource("content", digest),
                                          Resource("ingest", "ref-1"),
                                          Resource("snapshot", "overlayfs/sha256:abc")]
    leases.delete_resource("l", Resource.ingest("ref-1"))
    assert Resource.ingest("ref-1") not in leases.list_resources("l")


@pytest.mark.parametrize("bad", [Resource("blob", "x"), Resource("content", "sha256:zz"),
                                 Resource("snapshot", "no-snapshotter"),
                                 Resource("ingest", "")])
def test_malformed_resources_are_invalid(leases: SQLiteLeases, bad: Resource) -> None:
    leases.create("l")
    with pytest.raises(InvalidArgument):
        leases.add_resource("l", bad)


def test_deleting_a_lease_releases_its_resources(leases: SQLiteLeases) -> None:
    leases.create("l")
    leases.add_resource("l", Resource.ingest("r"))
    leases.delete("l")
    leases.create("l")
    assert leases.list_resources("l") == []


def test_leases_persist_in_the_store_database(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "c") as store:
        SQLiteLeases(store.db).create("kept", {"a": "b"})
    with LocalStore(tmp_path / "c") as store:
        assert [lease.id for lease in SQLiteLeases(store.db).list()] == ["kept"]


# -- what leases keep ----------------------------------------------------------------------

def test_leased_content_survives_collection_until_the_lease_goes(
        store: LocalStore, leases: SQLiteLeases) -> None:
    digest = put(store, b"held")
    leases.create("l")
    leases.add_resource("l", Resource.content(digest))
    assert collect(store, leases).content == []
    leases.delete("l")
    assert collect(store, leases).content == [digest]


def test_digest_leased_before_it_is_written_is_kept_once_committed(
        store: LocalStore, leases: SQLiteLeases) -> None:
    digest = of_bytes(b"future")
    leases.create("pull")
    leases.add_resource("pull", Resource.content(digest))
    assert put(store, b"future") == digest
    assert collect(store, leases).content == []


def test_leased_ingest_survives_a_zero_grace_collection(
        store: LocalStore, leases: SQLiteLeases) -> None:
    with store.writer("slow pull") as w:
        w.write(b"part")
    leases.create("l")
    leases.add_resource("l", Resource.ingest("slow pull"))
    assert collect(store, leases, grace=timedelta(0)).ingests == []
    assert store.status("slow pull").offset == 4


def test_expired_lease_is_deleted_and_holds_nothing(
        store: LocalStore, leases: SQLiteLeases) -> None:
    digest = put(store, b"was held")
    leases.create("old", expiry=datetime.now(UTC) - timedelta(seconds=1))
    leases.add_resource("old", Resource.content(digest))
    removed = collect(store, leases)
    assert removed.leases == ["old"] and removed.content == [digest]
    assert leases.list() == []


def test_leased_snapshot_keeps_its_parents(store: LocalStore, leases: SQLiteLeases) -> None:
    snaps = MemorySnapshotter()
    snaps.add("base")
    snaps.add("mid", "base")
    snaps.add("top", "mid")
    snaps.add("other")
    leases.create("l")
    leases.add_resource("l", Resource.snapshot("overlayfs", "top"))
    removed = collect(store, leases, snapshotters={"overlayfs": snaps})
    assert removed.snapshots == ["overlayfs/other"]
    assert set(snaps.snapshots) == {"base", "mid", "top"}
