"""Ingests of the local store: their files, and the Writer that appends and commits.

A writer's life, and what a kill -9 at each step leaves behind:

    acquire flock(ingest/<h>/lock)      dies: the kernel drops the lock; nothing else changes
    start: data, startedat, total,      dies before `ref` is whole: a directory without a
           expected, then ref                 valid `ref`, which the next writer re-initializes
           (no fsync: see below)              and recovery removes once nobody holds its lock
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

The start files only serve a resume, so they are written in place and not fsynced (as
containerd writes them): a commit fsyncs what it relies on, and a power cut can at worst
leave them empty or cut short. `read_meta` then finds the ingest never started: `ref` counts
only if it hashes to the directory's name, `startedat` and `expected` only if they parse, so
the ingest is started afresh or removed, and never resumed from facts it did not record (an
empty `total` reads as none announced; a torn `updatedat`, first written by close(), as
`startedat`). Writes start the data's writeback as they go (every WRITEBACK bytes), so the
commit's fsync has little left to wait for; only that fsync promises anything.

A writer that is not `resumable` (its caller has the bytes in memory, or makes them afresh:
a manifest, a diff) writes no start files at all: only lock, data and, at commit, the record.
Nobody can resume or list it; if its writer dies, recovery removes it as never started, and
closing it without a commit removes it at once.
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

from dockyard.fsutil import fsync_dir, start_writeback, write_atomic
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
# Writeback starts behind the writer every this many bytes, so that the commit's fsync of
# a large blob waits for little more than the last piece (10 MB: ~4 ms less on this disk).
WRITEBACK = 2 << 20


@dataclass(frozen=True)
class IngestMeta:
    ref: str
    started_at: datetime
    updated_at: datetime
    total: int | None
    expected: Digest | None


def read_meta(path: Path) -> IngestMeta | None:
    """The ingest's recorded facts; None if it never finished starting: no `ref` file, one
    that a crash cut short (it must hash to the directory's name), or unreadable times."""
    try:
        ref = (path / files.REF).read_text()
        if files.ingest_name(ref) != path.name:
            return None
        started = datetime.fromisoformat((path / files.STARTED_AT).read_text())
        updated = _updated_at(path, started)
        total_text = _read_optional(path / files.TOTAL)
        expected_text = _read_optional(path / files.EXPECTED)
        total = int(total_text) if total_text else None
        expected = Digest(expected_text) if expected_text else None
    except (FileNotFoundError, ValueError, InvalidArgument):
        return None
    if started.tzinfo is None:
        return None  # not what _start writes: a garbled file
    return IngestMeta(ref, started, updated, total, expected)


def _updated_at(path: Path, started: datetime) -> datetime:
    """When close() last recorded the ingest; `started` if it never did, or if a crash
    left the file torn (that loses nothing but a time)."""
    try:
        updated = datetime.fromisoformat(_read_optional(path / files.UPDATED_AT))
    except ValueError:
        return started
    return updated if updated.tzinfo is not None else started


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
                total: int | None, resumable: bool = True) -> LocalWriter:
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
        recorded = read_meta(path) if resumable else None
        if recorded is not None and recorded.ref != ref:
            raise InvalidArgument(f"ingest directory {path} holds ref {recorded.ref!r}, "
                                  f"not {ref!r}")
        if not resumable:
            meta = _start_unrecorded(path, ref, total, want)
        elif recorded is None:
            meta = _start(path, ref, total, want)
        else:
            meta = _resume(path, recorded, total, want)
        algorithm = meta.expected.algorithm if meta.expected else "sha256"
        hasher, offset = _hash_file(path / files.DATA, algorithm)
        return LocalWriter(layout, db, lock, path, meta, hasher, offset, resumable)
    except BaseException:
        lock.release()
        raise


class LocalWriter:
    """Appends to `<ingest>/data`, hashing as it goes; see the module docstring for commit."""

    def __init__(self, layout: Layout, db: Database, lock: IngestLock, path: Path,
                 meta: IngestMeta, hasher: hashlib._Hash, offset: int,
                 resumable: bool = True) -> None:
        self._layout, self._db, self._lock, self._path = layout, db, lock, path
        self._meta, self._hasher, self._offset = meta, hasher, offset
        self._flushed = offset  # where start_writeback has got to
        self._resumable = resumable
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
        if self._offset - self._flushed >= WRITEBACK:
            start_writeback(self._fd, self._flushed, self._offset - self._flushed)
            self._flushed = self._offset
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
        """Keep the ingest for a later resume: sync the data, record the time, unlock.
        An ingest that cannot be resumed is removed instead (under its lock)."""
        if not self._finalizer.alive:
            return
        if not self._resumable:
            try:
                remove_dir(self._path)
            finally:
                self._finalizer()
            return
        with contextlib.suppress(OSError):
            os.fsync(self._fd)
            _write_file(self._path / files.UPDATED_AT, self._updated.isoformat())
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
    """A new ingest: everything but `ref` first, so `ref` marks a complete start (written in
    place, unsynced: see the module docstring for why a torn file is harmless)."""
    meta = _start_unrecorded(path, ref, total, expected)
    _write_file(path / files.STARTED_AT, meta.started_at.isoformat())
    if total is not None:
        _write_file(path / files.TOTAL, str(total))
    if expected is not None:
        _write_file(path / files.EXPECTED, expected)
    _write_file(path / files.REF, ref)
    return meta


def _start_unrecorded(path: Path, ref: str, total: int | None,
                      expected: Digest | None) -> IngestMeta:
    """Empty `data`, and no start files (`ref` first): what a dead writer left goes."""
    for name in (files.REF, files.COMMIT, files.TOTAL, files.EXPECTED, files.UPDATED_AT):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path / name)
    os.close(os.open(path / files.DATA, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                     0o644))
    now = datetime.now(UTC)
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
        _write_file(path / files.TOTAL, str(total))
    if expected is not None and meta.expected is None:
        _write_file(path / files.EXPECTED, expected)
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


def _write_file(path: Path, text: str) -> None:
    """A start file, in place and unsynced (see the module docstring)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _read_optional(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""
