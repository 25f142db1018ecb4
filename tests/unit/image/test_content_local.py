"""LocalStore beyond the conformance suite: its on-disk layout and how it recovers."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest

from dockyard.image.content import layout as files
from dockyard.image.content.layout import Layout
from dockyard.image.content.local import LocalStore
from dockyard.image.digest import Digest, of_bytes
from dockyard.image.errors import NotFound


@pytest.fixture
def store(tmp_path: Path):
    s = LocalStore(tmp_path / "c")
    yield s
    s.close()


def test_committed_blob_lives_at_blobs_algorithm_encoded_read_only(store: LocalStore) -> None:
    with store.writer("r") as w:
        w.write(b"x")
        digest = w.commit(1)
    path = store.layout.root / "blobs" / "sha256" / digest.encoded
    assert path.read_bytes() == b"x"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert list(store.layout.ingests.iterdir()) == []


def test_ingest_directory_holds_its_files(store: LocalStore) -> None:
    with store.writer("my ref", expected=of_bytes(b"abc"), total=3) as w:
        w.write(b"ab")
    path = store.layout.ingest("my ref")
    assert path.parent == store.layout.root / "ingest"
    names = {p.name for p in path.iterdir()}
    assert {"data", "ref", "startedat", "updatedat", "total", "expected", "lock"} <= names
    assert (path / "ref").read_text() == "my ref"
    assert (path / "total").read_text() == "3"
    assert (path / "expected").read_text() == of_bytes(b"abc")
    assert (path / "data").read_bytes() == b"ab"


def test_database_is_one_sqlite_file_in_wal_mode(store: LocalStore) -> None:
    conn = sqlite3.connect(store.layout.root / "metadata.db")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
    assert store.db.integrity_check() == "ok"


def test_blob_file_without_a_row_gets_one_on_open(tmp_path: Path) -> None:
    root = tmp_path / "c"
    LocalStore(root).close()
    digest = of_bytes(b"orphan")
    (root / "blobs" / "sha256" / digest.encoded).write_bytes(b"orphan")
    with LocalStore(root) as store:
        assert store.info(digest).labels == {}
        assert [i.digest for i in store.walk()] == [digest]


def test_row_without_a_blob_file_is_dropped_on_open(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "c") as store:
        with store.writer("r") as w:
            w.write(b"vanishing")
            digest = w.commit(9, None, {"a": "b"})
        os.unlink(store.layout.blob(digest))
    with LocalStore(tmp_path / "c") as store:
        assert store.recover().rows_dropped == []  # already dropped by the open
        with pytest.raises(NotFound):
            store.info(digest)
        assert list(store.walk()) == []


def test_commit_interrupted_after_the_rename_is_finished_with_its_labels(tmp_path: Path) -> None:
    """As if killed between renaming data into blobs/ and inserting the row."""
    root = tmp_path / "c"
    with LocalStore(root) as store:
        with store.writer("half") as w:
            w.write(b"payload")
        path = store.layout.ingest("half")
    digest = of_bytes(b"payload")
    (path / files.COMMIT).write_text(json.dumps(
        {"digest": digest, "size": 7, "labels": {"containerd.io/gc.ref.content": digest}}))
    os.rename(path / files.DATA, root / "blobs" / "sha256" / digest.encoded)
    with LocalStore(root) as store:
        assert store.info(digest).labels == {"containerd.io/gc.ref.content": digest}
        assert not path.exists()


def test_commit_interrupted_before_the_rename_leaves_a_resumable_ingest(tmp_path: Path) -> None:
    root = tmp_path / "c"
    with LocalStore(root) as store:
        with store.writer("early") as w:
            w.write(b"payl")
        path = store.layout.ingest("early")
    (path / files.COMMIT).write_text(json.dumps({"digest": of_bytes(b"payl"), "labels": {}}))
    with LocalStore(root) as store:
        assert not (path / files.COMMIT).exists()
        with store.writer("early") as w:
            assert w.status().offset == 4
            w.write(b"oad")
            assert w.commit(7) == of_bytes(b"payload")


def test_ingest_that_never_finished_starting_is_removed_when_unlocked(tmp_path: Path) -> None:
    root = tmp_path / "c"
    LocalStore(root).close()
    stray = root / "ingest" / ("0" * 64)
    stray.mkdir()
    (stray / "data").write_bytes(b"junk")
    doomed = root / "ingest" / f"{'1' * 64}.tmp-abc"
    doomed.mkdir()
    with LocalStore(root) as store:
        assert not stray.exists() and not doomed.exists()
        assert store.list_statuses() == []


def test_recovery_leaves_an_ingest_a_live_writer_holds(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "c") as store, store.writer("live") as w:
        w.write(b"abc")
        path = store.layout.ingest("live")
        os.unlink(path / files.REF)  # looks unfinished, but it is locked
        with LocalStore(tmp_path / "c") as other:
            assert other.recover().ingests_removed == []
        assert (path / files.DATA).exists()


def test_foreign_files_in_blobs_are_never_touched(tmp_path: Path) -> None:
    root = tmp_path / "c"
    LocalStore(root).close()
    (root / "blobs" / "sha256" / "README").write_text("not a blob")
    with LocalStore(root) as store:
        assert list(store.walk()) == []
    assert (root / "blobs" / "sha256" / "README").exists()


def test_info_of_a_blob_whose_row_is_not_yet_written_still_answers(store: LocalStore) -> None:
    digest = of_bytes(b"racing")
    store.layout.blob(digest).write_bytes(b"racing")
    assert store.info(digest).size == 6


def test_status_is_active_only_while_a_writer_holds_the_ref(store: LocalStore) -> None:
    with store.writer("probe") as w:
        w.write(b"x")
        assert store.status("probe").active
    assert not store.status("probe").active
    with store.writer("probe") as w:
        assert w.status().offset == 1


def test_store_copied_elsewhere_opens_with_the_same_content(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "a") as store, store.writer("r") as w:
        w.write(b"portable")
        digest = w.commit(8, None, {"k": "v"})
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    with LocalStore(tmp_path / "b") as copy:
        assert copy.info(Digest(digest)).labels == {"k": "v"}


def test_starting_an_ingest_syncs_nothing_and_a_commit_syncs_what_it_relies_on(
        store: LocalStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Start files only serve a resume; the commit syncs data, record, ingest dir, blobs dir."""
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    w = store.writer("quiet", expected=of_bytes(b"abc"), total=3)
    w.write(b"abc")
    assert synced == []
    names = {p.name for p in store.layout.ingest("quiet").iterdir()}
    assert names == {"data", "lock", "ref", "startedat", "total", "expected"}
    w.commit(3, labels={"k": "v"})
    assert len(synced) == 4
    assert store.info(of_bytes(b"abc")).labels == {"k": "v"}


def _left_by_a_dead_writer(store: LocalStore, ref: str, data: bytes) -> Path:
    with store.writer(ref, expected=of_bytes(b"payload"), total=7) as w:
        w.write(data)
    return store.layout.ingest(ref)


@pytest.mark.parametrize(("name", "text"), [
    (files.REF, ""), (files.REF, "tor"), (files.REF, "\0\0\0\0\0"),
    (files.STARTED_AT, ""), (files.STARTED_AT, "2026-11-29T13"), (files.STARTED_AT, "\0" * 8),
    (files.EXPECTED, "sha256:abc"),
])
def test_an_ingest_whose_start_files_a_crash_tore_never_started(
        tmp_path: Path, name: str, text: str) -> None:
    """Unsynced start files may be empty or cut short after a power cut: such an ingest is
    removed by recovery, and the ref starts afresh, never resumed from torn facts."""
    root = tmp_path / "c"
    with LocalStore(root) as store:
        path = _left_by_a_dead_writer(store, "torn", b"pay")
    (path / name).write_text(text)
    with LocalStore(root) as store:
        assert not path.exists()
        assert store.list_statuses() == []
        with store.writer("torn", expected=of_bytes(b"payload"), total=7) as w:
            assert w.status().offset == 0
            w.write(b"payload")
            w.commit(7)


@pytest.mark.parametrize(("name", "text"), [
    (files.UPDATED_AT, ""), (files.UPDATED_AT, "\0\0"), (files.TOTAL, ""),
])
def test_an_ingest_with_a_torn_time_or_total_still_resumes(
        tmp_path: Path, name: str, text: str) -> None:
    """A torn `updatedat` loses a time (it reads as `startedat`), a torn `total` the announced
    size; neither loses the data written."""
    root = tmp_path / "c"
    with LocalStore(root) as store:
        path = _left_by_a_dead_writer(store, "kept", b"pay")
    (path / name).write_text(text)
    with LocalStore(root) as store:
        [status] = store.list_statuses()
        assert status.offset == 3
        if name == files.UPDATED_AT:
            assert status.started_at <= status.updated_at
        with store.writer("kept", expected=of_bytes(b"payload"), total=7) as w:
            assert w.status().offset == 3
            w.write(b"load")
            w.commit(7)


def test_a_writer_that_is_not_resumable_records_only_its_data(store: LocalStore) -> None:
    w = store.writer("once", total=4, resumable=False)
    w.write(b"once")
    path = store.layout.ingest("once")
    assert {p.name for p in path.iterdir()} == {"data", "lock"}
    assert store.list_statuses() == []
    with pytest.raises(NotFound):
        store.status("once")
    assert w.status().offset == 4
    digest = w.commit(4, labels={"k": "v"})
    assert store.info(digest).labels == {"k": "v"}
    assert not path.exists()


def test_a_writer_that_is_not_resumable_starts_empty_and_goes_on_close(
        store: LocalStore) -> None:
    _left_by_a_dead_writer(store, "reset", b"pay")
    with store.writer("reset", resumable=False) as w:
        assert w.status().offset == 0
        w.write(b"abandoned")
    assert not store.layout.ingest("reset").exists()
    assert list(store.layout.ingests.iterdir()) == []


def test_a_dead_writer_that_was_not_resumable_is_removed_on_open(tmp_path: Path) -> None:
    root = tmp_path / "c"
    LocalStore(root).close()
    pid = os.fork()
    if pid == 0:
        try:
            w = LocalStore(root).writer("dies", resumable=False)
            w.write(b"half")
        finally:
            os._exit(0)  # no close, no cleanup: as a kill -9 leaves it
    os.waitpid(pid, 0)
    path = Layout(root).ingest("dies")
    assert (path / files.DATA).read_bytes() == b"half"
    with LocalStore(root) as store:
        assert not path.exists()  # the open recovered it
        assert store.list_statuses() == []


def test_writeback_starts_behind_a_large_write(store: LocalStore,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """So that the commit's fsync waits for the last piece only, not the whole blob."""
    from dockyard.image.content import ingest

    started: list[tuple[int, int]] = []
    monkeypatch.setattr(ingest, "start_writeback", lambda fd, at, n: started.append((at, n)))
    piece = b"x" * (1 << 20)
    with store.writer("large", resumable=False) as w:
        for _ in range(5):
            w.write(piece)
        w.commit(5 << 20)
    step = ingest.WRITEBACK
    assert started == [(0, step), (step, step)]
