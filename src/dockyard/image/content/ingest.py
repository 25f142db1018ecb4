"""Ingests of the local store: their files, and the Writer that appends and commits.

A writer's life, and what a kill -9 at each step leaves behind:

    acquire flock(ingest/<h>/lock)      dies: the kernel drops the lock; nothing else changes
    start: data, startedat, updatedat,  dies before `ref` is written: a directory without
           total, expected, then ref          `ref`, which the next writer re-initializes and
                                              recovery removes once nobody holds its lock
    write ... write                     dies: the data so far; a new writer resumes there,
                                              re-hashing what is on disk
    commit: verify size and digest      mismatch: DigestMismatch, the writer is closed and the
                                              ingest stays, for abort() or the collector
            fsync data, chmod 0444
            BEGIN IMMEDIATE
            write `commit` record, fsync  dies here or below: recovery finds the record; if
            rename data -> blobs/...            `data` is gone the rename happened, so it
            fsync blobs/<algorithm>/            records the blob row with the record's labels
            insert the blob row
            COMMIT
            remove the ingest directory  dies: recovery sees the row is there and removes it

So a blob appears under blobs/ only whole and verified, and its labels are never lost.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from dockyard.fsutil import fsync_dir, write_atomic
from dockyard.image.content import layout as files
from dockyard.image.content.layout import Layout
from dockyard.image.content.locks import LOCK_TRIES, IngestLock
from dockyard.image.content.metadata import Database, ensure_blob, validate_labels
from dockyard.image.content.store import Status
from dockyard.image.digest import Digest, from_hasher
from dockyard.image.errors import (
    AlreadyExists,
    DigestMismatch,
    FailedPrecondition,
    InvalidArgument,
    Unavailable,
)

CHUNK = 1 << 20


@dataclass(frozen=True)
class IngestMeta:
    ref: str
    started_at: datetime
    updated_at: datetime
    total: int | None
    expected: Digest | None


def read_meta(path: Path) -> IngestMeta | None:
    """The ingest's recorded facts; None if it never finished starting (no `ref` file)."""
    try:
        ref = (path / files.REF).read_text()
        started = datetime.fromisoformat((path / files.STARTED_AT).read_text())
        updated = datetime.fromisoformat((path / files.UPDATED_AT).read_text())
        total_text = _read_optional(path / files.TOTAL)
        expected_text = _read_optional(path / files.EXPECTED)
        total = int(total_text) if total_text else None
        expected = Digest(expected_text) if expected_text else None
    except (FileNotFoundError, ValueError, InvalidArgument):
        return None
    return IngestMeta(ref, started, updated, total, expected)


def status_of(path: Path) -> Status | None:
    meta = read_meta(path)
    if meta is None:
        return None
    try:
        st = os.stat(path / files.DATA)
    except FileNotFoundError:
        return None
    modified = datetime.fromtimestamp(st.st_mtime_ns / 1e9, UTC)
    return Status(meta.ref, st.st_size, meta.total, meta.expected, meta.started_at,
                  max(meta.updated_at, modified), IngestLock.held(path))


def settle(layout: Layout, db: Database, path: Path) -> bool:
    """Finish or undo a commit that a dead process left half done; True if the ingest is gone.

    The caller holds the ingest's lock. A `commit` record with `data` still present means the
    rename never happened: drop the record and the ingest stays resumable. Without `data`, the
    blob was renamed into place: make sure its row exists, with the record's labels.
    """
    record = path / files.COMMIT
    if not record.exists():
        return False
    if (path / files.DATA).exists():
        record.unlink()
        return False
    try:
        facts = json.loads(record.read_text())
        digest = Digest(facts["digest"])
        labels = validate_labels(facts.get("labels") or {}, f"content {digest}")
    except (ValueError, KeyError, TypeError, InvalidArgument):
        remove_dir(path)  # unreadable: reconcile gives any renamed blob a row without labels
        return True
    blob = layout.blob(digest)
    if blob.exists():
        st = blob.stat()
        with db.write() as conn:
            ensure_blob(conn, digest, st.st_size, st.st_mtime_ns, labels)
    remove_dir(path)
    return True


def remove_dir(path: Path) -> None:
    """Rename away first, so nobody ever opens a half-removed ingest."""
    doomed = path.with_name(f"{path.name}{files.REMOVING}{uuid.uuid4().hex}")
    try:
        os.rename(path, doomed)
    except FileNotFoundError:
        return
    shutil.rmtree(doomed, ignore_errors=True)


def open_writer(layout: Layout, db: Database, ref: str, expected: str | None,
                total: int | None) -> LocalWriter:
    if not isinstance(ref, str) or not ref:
        raise InvalidArgument(f"ingest ref {ref!r}: must be a non-empty string")
    want = Digest(expected) if expected is not None else None
    if total is not None and total < 0:
        raise InvalidArgument(f"ingest ref {ref!r}: total {total} is negative")
    if want is not None and layout.blob(want).exists():
        raise AlreadyExists(f"content {want} already exists")
    path = layout.ingest(ref)
    lock = None
    for _ in range(4):
        lock = IngestLock.acquire(path, ref, create=True, tries=LOCK_TRIES)
        assert lock is not None
        if not settle(layout, db, path):
            break
        lock.release()
    else:
        raise Unavailable(f"ingest ref {ref!r}: its directory keeps being replaced")
    try:
        recorded = read_meta(path)
        if recorded is not None and recorded.ref != ref:
            raise InvalidArgument(f"ingest directory {path} holds ref {recorded.ref!r}, "
                                  f"not {ref!r}")
        meta = (_start(path, ref, total, want) if recorded is None
                else _resume(path, recorded, total, want))
        algorithm = meta.expected.algorithm if meta.expected else "sha256"
        hasher, offset = _hash_file(path / files.DATA, algorithm)
        return LocalWriter(layout, db, lock, path, meta, hasher, offset)
    except BaseException:
        lock.release()
        raise


class LocalWriter:
    """Appends to `<ingest>/data`, hashing as it goes; see the module docstring for commit."""

    def __init__(self, layout: Layout, db: Database, lock: IngestLock, path: Path,
                 meta: IngestMeta, hasher: hashlib._Hash, offset: int) -> None:
        self._layout, self._db, self._lock, self._path = layout, db, lock, path
        self._meta, self._hasher, self._offset = meta, hasher, offset
        self._updated = meta.updated_at
        self._fd = os.open(path / files.DATA, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        self._finalizer = weakref.finalize(self, _release, self._fd, lock)

    @property
    def ref(self) -> str:
        return self._meta.ref

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._check_open()
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):
            done += os.write(self._fd, view[done:])
        self._hasher.update(view)
        self._offset += done
        self._updated = datetime.now(UTC)
        return done

    def digest(self) -> Digest:
        return from_hasher(self._hasher.copy())

    def status(self) -> Status:
        m = self._meta
        return Status(m.ref, self._offset, m.total, m.expected, m.started_at, self._updated,
                      self._finalizer.alive)

    def commit(self, size: int | None, expected: str | None = None,
               labels: Mapping[str, str] | None = None) -> Digest:
        """Verify, then make the blob visible under its digest; the writer is closed after,
        whatever happens (as containerd's). On DigestMismatch the ingest stays on disk."""
        self._check_open()
        try:
            return self._commit(size, expected, labels)
        finally:
            self._finalizer()

    def _commit(self, size: int | None, expected: str | None,
                labels: Mapping[str, str] | None) -> Digest:
        ref = self.ref
        want = Digest(expected) if expected is not None else self._meta.expected
        fields = validate_labels(labels or {}, f"ingest ref {ref!r}")
        if size is not None and size != self._offset:
            raise DigestMismatch(f"commit of ingest ref {ref!r}: expected size {size}, "
                                 f"got {self._offset}")
        got = self.digest()
        if want is not None and want.algorithm != got.algorithm:
            got = from_hasher(_hash_file(self._path / files.DATA, want.algorithm)[0])
        if want is not None and got != want:
            raise DigestMismatch(f"commit of ingest ref {ref!r}: expected digest {want}, "
                                 f"got {got}")
        os.fsync(self._fd)
        os.fchmod(self._fd, 0o444)
        target = self._layout.blob(got)
        exists = False
        with self._db.write() as conn:
            if target.exists():
                st = target.stat()
                ensure_blob(conn, got, st.st_size, st.st_mtime_ns)
                exists = True
            else:
                record = {"digest": got, "size": self._offset, "labels": fields}
                write_atomic(self._path / files.COMMIT, json.dumps(record), sync_dir=True)
                os.rename(self._path / files.DATA, target)
                fsync_dir(target.parent)
                ensure_blob(conn, got, self._offset, os.stat(target).st_mtime_ns, fields)
        remove_dir(self._path)
        if exists:
            raise AlreadyExists(f"content {got} already exists (ingest ref {ref!r} removed)")
        return got

    def close(self) -> None:
        """Keep the ingest for a later resume: sync the data, record the time, unlock."""
        if not self._finalizer.alive:
            return
        with contextlib.suppress(OSError):
            os.fsync(self._fd)
            write_atomic(self._path / files.UPDATED_AT, self._updated.isoformat())
        self._finalizer()

    def _check_open(self) -> None:
        if not self._finalizer.alive:
            raise FailedPrecondition(f"writer for ingest ref {self.ref!r} is closed")

    def __enter__(self) -> LocalWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _release(fd: int, lock: IngestLock) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
    lock.release()


def _start(path: Path, ref: str, total: int | None, expected: Digest | None) -> IngestMeta:
    """A new ingest: everything but `ref` first, so `ref` marks a complete start."""
    now = datetime.now(UTC)
    for name in (files.REF, files.COMMIT, files.TOTAL, files.EXPECTED):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path / name)
    os.close(os.open(path / files.DATA, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                     0o644))
    write_atomic(path / files.STARTED_AT, now.isoformat())
    write_atomic(path / files.UPDATED_AT, now.isoformat())
    if total is not None:
        write_atomic(path / files.TOTAL, str(total))
    if expected is not None:
        write_atomic(path / files.EXPECTED, expected)
    write_atomic(path / files.REF, ref, sync_dir=True)
    return IngestMeta(ref, now, now, total, expected)


def _resume(path: Path, meta: IngestMeta, total: int | None,
            expected: Digest | None) -> IngestMeta:
    ref = meta.ref
    if total is not None and meta.total is not None and total != meta.total:
        raise InvalidArgument(f"ingest ref {ref!r}: total {total} differs from the "
                              f"{meta.total} recorded when it began")
    if expected is not None and meta.expected is not None and expected != meta.expected:
        raise InvalidArgument(f"ingest ref {ref!r}: expected {expected} differs from the "
                              f"{meta.expected} recorded when it began")
    if not (path / files.DATA).exists():
        os.close(os.open(path / files.DATA, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
    if total is not None and meta.total is None:
        write_atomic(path / files.TOTAL, str(total))
    if expected is not None and meta.expected is None:
        write_atomic(path / files.EXPECTED, expected)
    return IngestMeta(ref, meta.started_at, meta.updated_at,
                      meta.total if meta.total is not None else total,
                      meta.expected or expected)


def _hash_file(path: Path, algorithm: str) -> tuple[hashlib._Hash, int]:
    hasher = hashlib.new(algorithm)
    offset = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            hasher.update(chunk)
            offset += len(chunk)
    return hasher, offset


def _read_optional(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""
