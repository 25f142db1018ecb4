"""The snapshot metadata, in SQLite: containerd's core/snapshots/storage/metastore.go.

One file, `<root>/metadata.db`, in WAL mode with `synchronous=FULL`: a kill -9 or a power cut
leaves it at the last committed transaction. Several processes may open it; writers take
SQLite's write lock with `BEGIN IMMEDIATE`, so a snapshotter can do its directory work
*inside* a write transaction (see directories.py for why that keeps rows and directories in
agreement) and a cleanup in another process waits for it.

    snapshots(id INTEGER PK AUTOINCREMENT, key UNIQUE, kind, parent -> snapshots.id,
              created_at, updated_at, labels, size, inodes)

`id` names the snapshot's directory and never changes, not even on commit (which renames the
key and flips the kind), so children point at their parent by id. AUTOINCREMENT never hands
out a deleted row's id again, so a removed snapshot's directory, not yet deleted when a crash
came, is never taken for a new one's. (An insert that rolled back gives its id back; the
directory a crash left under it is cleared by the next create or cleanup.) The parent chain
(ids, nearest first) is read with a recursive query.
`size` and `inodes` are the usage measured at commit. Times are integer nanoseconds; labels
a JSON object.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from dockyard.image.content.filters import label_lookup, match, parse_all
from dockyard.image.content.metadata import dump_labels, validate_labels
from dockyard.image.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from dockyard.image.fieldpaths import apply_map_path
from dockyard.image.snapshots import EPOCH, Info, Kind, Usage

SCHEMA_VERSION = 1

_SCHEMA = ("""
CREATE TABLE IF NOT EXISTS snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('view', 'active', 'committed')),
    parent INTEGER REFERENCES snapshots(id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}',
    size INTEGER NOT NULL DEFAULT 0,
    inodes INTEGER NOT NULL DEFAULT 0
)""", "CREATE INDEX IF NOT EXISTS snapshots_parent ON snapshots(parent)")

_CHAIN = """
WITH RECURSIVE chain(id, parent, depth) AS (
    SELECT id, parent, 0 FROM snapshots WHERE id = ?
    UNION ALL
    SELECT s.id, s.parent, c.depth + 1 FROM snapshots s JOIN chain c ON s.id = c.parent
)
SELECT id FROM chain WHERE depth > 0 ORDER BY depth
"""

_SELECT = """
SELECT s.id, s.key, s.kind, p.key, s.created_at, s.updated_at, s.labels, s.size, s.inodes
FROM snapshots s LEFT JOIN snapshots p ON p.id = s.parent
"""


@dataclass(frozen=True)
class Snapshot:
    """What a snapshotter needs to act on one: its directory id, its kind and the ids of its
    parents, nearest first (the lowerdirs of an overlay, in order)."""

    id: str
    kind: Kind
    parent_ids: tuple[str, ...] = ()


def _time(ns: int) -> datetime:
    """Exact to the microsecond, as a float division would not be."""
    return EPOCH + timedelta(microseconds=ns // 1000)


def _info(row: tuple) -> Info:
    _id, key, kind, parent, created, updated, labels, _size, _inodes = row
    return Info(Kind(kind), key, parent or "", json.loads(labels), _time(created),
                _time(updated))


class Transaction:
    """The queries, run on a connection inside a transaction that MetaStore opened."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def _row(self, key: str) -> tuple:
        row = self.db.execute(_SELECT + " WHERE s.key = ?", (key,)).fetchone()
        if row is None:
            raise NotFound(f"snapshot {key} not found")
        return row

    def _snapshot(self, row: tuple) -> Snapshot:
        chain = self.db.execute(_CHAIN, (row[0],)).fetchall()
        return Snapshot(str(row[0]), Kind(row[2]), tuple(str(r[0]) for r in chain))

    def get(self, key: str) -> tuple[Snapshot, Info, Usage]:
        row = self._row(key)
        return self._snapshot(row), _info(row), Usage(row[7], row[8])

    def create(self, kind: Kind, key: str, parent: str,
               labels: Mapping[str, str] | None) -> Snapshot:
        """Insert an active snapshot or a view on `parent`, which must be committed."""
        if not key:
            raise InvalidArgument("snapshot key must not be empty")
        checked = validate_labels(labels or {}, f"snapshot {key}")
        parent_id = self._committed(parent, key) if parent else None
        now = time.time_ns()
        try:
            cur = self.db.execute(
                "INSERT INTO snapshots (key, kind, parent, created_at, updated_at, labels) "
                "VALUES (?, ?, ?, ?, ?, ?)", (key, str(kind), parent_id, now, now,
                                               dump_labels(checked)))
        except sqlite3.IntegrityError as e:
            raise AlreadyExists(f"snapshot {key} already exists") from e
        return self._snapshot(self._row_by_id(cur.lastrowid))

    def _row_by_id(self, rowid: int | None) -> tuple:
        return self.db.execute(_SELECT + " WHERE s.id = ?", (rowid,)).fetchone()

    def commit(self, key: str, name: str, usage: Usage,
               labels: Mapping[str, str] | None, parent: str | None = None) -> Snapshot:
        """The active snapshot `key` becomes the committed `name`, keeping its id; its labels
        are replaced, not inherited, and its times start anew (containerd's CommitActive).
        `parent` rebases a snapshot prepared without one onto that committed snapshot."""
        if not name:
            raise InvalidArgument(f"commit of snapshot {key}: the name must not be empty")
        checked = validate_labels(labels or {}, f"snapshot {name}")
        if self.db.execute("SELECT 1 FROM snapshots WHERE key = ?", (name,)).fetchone():
            raise AlreadyExists(f"snapshot {name} already exists")
        row = self._row(key)
        if row[2] != Kind.ACTIVE:
            raise FailedPrecondition(f"snapshot {key} is {row[2]}, not active: only an active "
                                     "snapshot can be committed")
        if parent is not None:
            self._rebase(row, key, parent)
        now = time.time_ns()
        self.db.execute(
            "UPDATE snapshots SET key = ?, kind = ?, created_at = ?, updated_at = ?, "
            "labels = ?, size = ?, inodes = ? WHERE id = ?",
            (name, str(Kind.COMMITTED), now, now, dump_labels(checked), usage.size, usage.inodes,
             row[0]))
        return Snapshot(str(row[0]), Kind.COMMITTED, self._snapshot(row).parent_ids)

    def _rebase(self, row: tuple, key: str, parent: str) -> None:
        if row[3] is not None:
            raise InvalidArgument(f"snapshot {key} has a parent: only a snapshot prepared "
                                  "without one can be committed onto another")
        if parent:
            self.db.execute("UPDATE snapshots SET parent = ? WHERE id = ?",
                            (self._committed(parent, key), row[0]))

    def _committed(self, parent: str, key: str) -> int:
        """The id of `parent`, which must be a committed snapshot, to be `key`'s parent."""
        prow = self.db.execute("SELECT id, kind FROM snapshots WHERE key = ?",
                               (parent,)).fetchone()
        if prow is None:
            raise NotFound(f"parent {parent} of snapshot {key} not found")
        if prow[1] != Kind.COMMITTED:
            raise InvalidArgument(f"parent {parent} of snapshot {key} is {prow[1]}, "
                                  "not committed")
        return int(prow[0])

    def remove(self, key: str) -> Snapshot:
        row = self._row(key)
        children = [r[0] for r in self.db.execute(
            "SELECT key FROM snapshots WHERE parent = ? ORDER BY key", (row[0],))]
        if children:
            raise FailedPrecondition(f"cannot remove snapshot {key}: it is the parent of "
                                     f"{', '.join(children)}")
        snapshot = self._snapshot(row)
        self.db.execute("DELETE FROM snapshots WHERE id = ?", (row[0],))
        return snapshot

    def update(self, info: Info, fieldpaths: Sequence[str] | None) -> Info:
        """Labels are the only mutable field. No fieldpaths, or `labels`, replaces them all;
        `labels.<key>` sets that one key, or removes it if `info.labels` lacks it."""
        row = self._row(info.name)
        labels: dict[str, str] = json.loads(row[6])
        for path in fieldpaths or ("labels",):
            if not apply_map_path(labels, info.labels, path):
                raise InvalidArgument(f"cannot update field {path!r} of snapshot {info.name}: "
                                      "only labels are mutable")
        checked = validate_labels(labels or {}, f"snapshot {info.name}")
        self.db.execute("UPDATE snapshots SET labels = ?, updated_at = ? WHERE id = ?",
                        (dump_labels(checked), time.time_ns(), row[0]))
        return _info(self._row_by_id(row[0]))

    def walk(self, filters: Sequence[str]) -> list[Info]:
        """Every snapshot matching any filter: fields `name`, `parent`, `kind` and
        `labels.<key>` (containerd's adaptSnapshot), in key order."""
        parsed = parse_all(filters)
        out = []
        for row in self.db.execute(_SELECT + " ORDER BY s.key"):
            info = _info(row)

            def lookup(path: tuple[str, ...], info: Info = info) -> str | None:
                field = {"name": info.name, "parent": info.parent, "kind": str(info.kind)}
                if path[0] == "labels":
                    return label_lookup(info.labels, path[1:])
                return field.get(path[0]) if len(path) == 1 else None

            if match(parsed, lookup):
                out.append(info)
        return out

    def ids(self) -> dict[str, tuple[str, Kind]]:
        """Every directory id with its key and kind: what cleanup compares the disk to."""
        return {str(i): (k, Kind(kind))
                for i, k, kind in self.db.execute("SELECT id, key, kind FROM snapshots")}

    def drop(self, snapshot_id: str) -> None:
        """Delete a row by id (cleanup: an active snapshot or view whose directory is gone)."""
        self.db.execute("DELETE FROM snapshots WHERE id = ?", (int(snapshot_id),))


class MetaStore:
    """The database of one snapshotter root. Transactions are serialized within the process
    by a lock (one connection, shared by threads) and across processes by SQLite."""

    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = sqlite3.connect(
            path, timeout=timeout, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        with self.write() as tx:
            version = tx.db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise FailedPrecondition(f"{path}: schema version {version} is newer than "
                                         f"this program's {SCHEMA_VERSION}")
            for statement in _SCHEMA:  # not executescript: it would commit early
                tx.db.execute(statement)
            tx.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[Transaction]:
        with self._lock:
            if self._db is None:
                raise FailedPrecondition(f"snapshot metadata {self.path} is closed")
            db = self._db
            db.execute(begin)
            try:
                yield Transaction(db)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def read(self) -> AbstractContextManager[Transaction]:
        """A consistent view across several queries (WAL readers do not block writers)."""
        return self._transaction("BEGIN DEFERRED")

    def write(self) -> AbstractContextManager[Transaction]:
        """Holds SQLite's write lock from the start: work done inside (directories created,
        renamed) is ordered with every other writer's, in this process or another."""
        return self._transaction("BEGIN IMMEDIATE")

    def integrity_check(self) -> str:
        with self.read() as tx:
            return str(tx.db.execute("PRAGMA integrity_check").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

