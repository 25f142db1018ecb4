"""LocalStore: content in a directory tree, labels in SQLite, for one data root.

    <root>/
      metadata.db (+ -wal, -shm)      SQLite, WAL: blob rows (size, times, labels), leases
      blobs/
        sha256/<64 hex>               committed blobs, read-only (0444), named by digest
        sha512/<128 hex>
      ingest/
        <sha256 of ref>/              one per ref being written (see ingest.py)
          data                        bytes so far
          ref startedat updatedat     the ref; ISO 8601 times (none for a writer that is not
                                      resumable)
          total expected              announced size and digest, when given
          lock                        flock(2) held by the live writer
          commit                      only between verifying and renaming into blobs/
        <sha256 of ref>.tmp-<uuid>/   an ingest being removed (renamed away first)

Which is the truth: a blob exists when its file is in blobs/; its row only describes it.
Files are renamed into blobs/ only after their digest was verified and their data fsynced, so
blobs/ never holds a partial blob. `recover()` (run on open, and by the collector under the
write lock) brings the two into agreement after a crash:

  - interrupted commits are finished from their `commit` record (labels included) or undone;
  - unlocked ingest directories that never finished starting (no whole `ref`) are removed;
  - a blob file without a row gets a row (no labels, times from the file): it is then plain
    unreferenced content, which the collector removes unless something refers to it;
  - a row without a blob file is dropped.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import TracebackType

from dockyard.fsutil import spread_subdirs
from dockyard.image.content import layout as files
from dockyard.image.content.filters import label_lookup, match, parse_all
from dockyard.image.content.ingest import (
    LocalWriter,
    fsync_dir,
    open_writer,
    read_meta,
    remove_dir,
    settle,
    status_of,
)
from dockyard.image.content.layout import Layout
from dockyard.image.content.locks import IngestLock
from dockyard.image.content.metadata import (
    BlobRow,
    Database,
    all_blobs,
    delete_blob,
    ensure_blob,
    get_blob,
    put_labels,
    to_datetime,
    validate_labels,
)
from dockyard.image.content.store import Info, Status
from dockyard.image.digest import ALGORITHMS, Digest
from dockyard.image.errors import InvalidArgument, NotFound, Unavailable
from dockyard.image.fieldpaths import apply_map_path


class BlobReader(io.FileIO):
    """A committed blob opened read-only: a normal binary file plus `size` and `read_at`."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, "r")
        self._size = os.fstat(self.fileno()).st_size

    @property
    def size(self) -> int:
        return self._size

    def read_at(self, n: int, offset: int) -> bytes:
        """Up to `n` bytes at `offset`, leaving the file position alone (pread)."""
        parts: list[bytes] = []
        while n > 0:
            chunk = os.pread(self.fileno(), n, offset)
            if not chunk:
                break
            parts.append(chunk)
            n -= len(chunk)
            offset += len(chunk)
        return b"".join(parts)


@dataclass
class Recovery:
    """What `recover()` found and fixed, by ingest directory name and digest."""

    commits_finished: list[str] = field(default_factory=list)
    ingests_removed: list[str] = field(default_factory=list)
    rows_added: list[str] = field(default_factory=list)
    rows_dropped: list[str] = field(default_factory=list)


class LocalStore:
    """The content Store over a local directory; several processes may share one root."""

    def __init__(self, root: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        self.layout = Layout(Path(root))
        for directory in self.layout.directories():
            directory.mkdir(parents=True, exist_ok=True)
        # every ingest makes and removes a directory and a few files; each new one in a
        # block group of its own does not scan past the inodes its predecessors freed
        spread_subdirs(self.layout.ingests)
        self.db = Database(self.layout.database, timeout)
        self.recover()

    # -- Provider, Manager ------------------------------------------------------------

    def reader_at(self, digest: str) -> BlobReader:
        d = Digest(digest)
        try:
            return BlobReader(self.layout.blob(d))
        except FileNotFoundError:
            raise NotFound(f"content {d} not found") from None

    def info(self, digest: str) -> Info:
        d = Digest(digest)
        with self.db.read() as conn:
            row = get_blob(conn, d)
        try:
            st = os.stat(self.layout.blob(d))
        except FileNotFoundError:
            raise NotFound(f"content {d} not found") from None
        if row is None:  # committed by a process that died before recording it
            return Info(d, st.st_size, to_datetime(st.st_mtime_ns), to_datetime(st.st_mtime_ns))
        return _info(row)

    def update(self, digest: str, labels: Mapping[str, str],
               fieldpaths: Sequence[str] | None = None) -> Info:
        """Labels are the only mutable field. No fieldpaths, or `labels`, replaces them all;
        `labels.<key>` sets that one key, or removes it if `labels` lacks it (containerd)."""
        d = Digest(digest)
        given = validate_labels(labels, f"content {d}")
        with self.db.write() as conn:
            try:
                st = os.stat(self.layout.blob(d))
            except FileNotFoundError:
                raise NotFound(f"content {d} not found") from None
            row = get_blob(conn, d)
            if row is None:
                ensure_blob(conn, d, st.st_size, st.st_mtime_ns)
                current: dict[str, str] = {}
            else:
                current = dict(row.labels)
            put_labels(conn, d, _apply_fieldpaths(d, current, given, fieldpaths))
        return self.info(d)

    def walk(self, *filters: str) -> Iterator[Info]:
        """Committed blobs in digest order, those matching any filter (see filters.py):
        fields `digest`, `size` and `labels.<key>`."""
        parsed = parse_all(filters)
        with self.db.read() as conn:
            rows = all_blobs(conn)
        for row in rows:
            if not self.layout.blob(Digest(row.digest)).exists():
                continue
            info = _info(row)
            if match(parsed, partial(_content_field, info)):
                yield info

    def delete(self, digest: str) -> None:
        """Remove the file, then the row: a crash in between leaves a row without a file,
        which recovery drops, so a deleted blob never comes back."""
        d = Digest(digest)
        path = self.layout.blob(d)
        with self.db.write() as conn:
            if not path.exists():
                raise NotFound(f"content {d} not found")
            os.unlink(path)
            fsync_dir(path.parent)
            delete_blob(conn, d)

    # -- Ingester, IngestManager ------------------------------------------------------

    def writer(self, ref: str, expected: str | None = None,
               total: int | None = None, *, resumable: bool = True) -> LocalWriter:
        """Begin an ingest for `ref`, or resume it at the offset already on disk.
        AlreadyExists if `expected` is committed; Unavailable if a writer holds `ref`.

        `resumable=False` is for a caller that could not continue an interrupted ingest
        anyway (it holds the bytes, or makes them afresh): the ingest always starts empty,
        records nothing but its data (a new file costs ~0.3 ms on this project's busy
        ext4, a commit makes several), is not listed, and goes when its writer closes
        without a commit or dies."""
        return open_writer(self.layout, self.db, ref, expected, total, resumable)

    def status(self, ref: str) -> Status:
        found = status_of(self.layout.ingest(ref))
        if found is None or found.ref != ref:
            raise NotFound(f"ingest ref {ref!r} not found")
        return found

    def list_statuses(self, *filters: str) -> list[Status]:
        """Ingests that finished starting, by ref; filter fields `ref` and `expected`."""
        parsed = parse_all(filters)
        found = []
        for entry in self._ingest_dirs():
            st = status_of(entry)
            if st is not None and match(parsed, partial(_status_field, st)):
                found.append(st)
        return sorted(found, key=lambda s: s.ref)

    def abort(self, ref: str) -> None:
        """Throw an ingest away; Unavailable while a writer holds it."""
        path = self.layout.ingest(ref)
        lock = IngestLock.acquire(path, ref, create=False)
        if lock is None:
            raise NotFound(f"ingest ref {ref!r} not found")
        try:
            meta = read_meta(path)
            if meta is not None and meta.ref != ref:
                raise InvalidArgument(f"ingest directory {path} holds ref {meta.ref!r}, "
                                      f"not {ref!r}")
            remove_dir(path)
        finally:
            lock.release()

    # -- for the collector and for recovery -------------------------------------------

    def exclusive(self) -> contextlib.AbstractContextManager[object]:
        """Hold the database's write lock: no commit, label change or lease change can
        happen meanwhile, in this process or another. The collector marks and sweeps in it."""
        return self.db.write()

    def recover(self) -> Recovery:
        """Bring ingests, blob files and rows into agreement (see the module docstring)."""
        report = Recovery()
        with self.db.write() as conn:
            for entry in sorted(self.layout.ingests.iterdir()):
                if files.REMOVING in entry.name:
                    shutil.rmtree(entry, ignore_errors=True)
                    continue
                self._recover_ingest(entry, report)
            on_disk = self._blob_files()
            rows = {row.digest for row in all_blobs(conn)}
            for digest in sorted(rows - on_disk.keys()):
                delete_blob(conn, digest)
                report.rows_dropped.append(digest)
            for digest in sorted(on_disk.keys() - rows):
                st = on_disk[digest]
                ensure_blob(conn, digest, st.st_size, st.st_mtime_ns)
                report.rows_added.append(digest)
        return report

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _recover_ingest(self, entry: Path, report: Recovery) -> None:
        try:
            lock = IngestLock.acquire(entry, entry.name, create=False)
        except Unavailable:
            return  # a live writer's: not ours to touch
        if lock is None:
            return
        try:
            if settle(self.layout, self.db, entry):
                report.commits_finished.append(entry.name)
            elif read_meta(entry) is None:
                remove_dir(entry)
                report.ingests_removed.append(entry.name)
        finally:
            lock.release()

    def _ingest_dirs(self) -> list[Path]:
        return [e for e in self.layout.ingests.iterdir()
                if files.REMOVING not in e.name and e.is_dir()]

    def _blob_files(self) -> dict[str, os.stat_result]:
        found = {}
        for algorithm in ALGORITHMS:
            directory = self.layout.algorithm_dir(algorithm)
            if not directory.is_dir():
                continue
            for entry in directory.iterdir():
                try:
                    digest = Digest(f"{algorithm}:{entry.name}")
                except InvalidArgument:
                    continue  # not ours: never a blob, never touched
                with contextlib.suppress(FileNotFoundError):
                    found[str(digest)] = entry.stat()
        return found


def _info(row: BlobRow) -> Info:
    return Info(Digest(row.digest), row.size, to_datetime(row.created_at),
                to_datetime(row.updated_at), dict(row.labels))


def _content_field(info: Info, path: tuple[str, ...]) -> str | None:
    head, rest = path[0], path[1:]
    if head == "digest" and not rest:
        return info.digest
    if head == "size" and not rest:
        return str(info.size)
    if head == "labels":
        return label_lookup(info.labels, rest)
    return None


def _status_field(status: Status, path: tuple[str, ...]) -> str | None:
    if path == ("ref",):
        return status.ref
    if path == ("expected",):
        return status.expected
    return None


def _apply_fieldpaths(digest: Digest, current: dict[str, str], given: dict[str, str],
                      fieldpaths: Sequence[str] | None) -> dict[str, str]:
    if not fieldpaths:
        return dict(given)
    result = dict(current)
    for path in fieldpaths:
        if not apply_map_path(result, given, path):
            raise InvalidArgument(f"cannot update {path!r} of content {digest}: only labels "
                                  "are mutable")
    return result
