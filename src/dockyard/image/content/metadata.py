"""The SQLite database that holds what the file system cannot: blob labels and times, leases.

One file, `<root>/metadata.db`, in WAL mode with `synchronous=FULL`, so a kill -9 or a power
cut leaves it at the last committed transaction. Several processes may open it; writers take
SQLite's write lock with `BEGIN IMMEDIATE` and wait up to `timeout` seconds for it.

    blobs(digest PK, size, created_at, updated_at, labels)      labels: a JSON object
    leases(id PK, created_at, labels)
    lease_resources(lease -> leases.id ON DELETE CASCADE, kind, key)   PK (lease, kind, key)

Times are integer nanoseconds since the epoch. The blob *file* decides whether a blob exists;
its row only describes it (see local.py for how the two are kept in agreement).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dockyard.image.errors import InvalidArgument

SCHEMA_VERSION = 1
MAX_LABEL_BYTES = 4096  # key + value, as containerd limits them

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (
    digest TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}'
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (
    id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}'
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lease_resources (
    lease TEXT NOT NULL REFERENCES leases(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (lease, kind, key)
) WITHOUT ROWID;
"""


def now_ns() -> int:
    return time.time_ns()


def to_datetime(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, UTC)


def validate_labels(labels: Mapping[str, str], owner: str) -> dict[str, str]:
    """Labels are short strings; say which one of `owner`'s is wrong and why."""
    out: dict[str, str] = {}
    for key, value in labels.items():
        if not isinstance(key, str) or not key:
            raise InvalidArgument(f"label key {key!r} on {owner}: must be a non-empty string")
        if not isinstance(value, str):
            raise InvalidArgument(f"label {key!r} on {owner}: value {value!r} is not a string")
        if len(key.encode()) + len(value.encode()) > MAX_LABEL_BYTES:
            raise InvalidArgument(f"label {key!r} on {owner}: key and value exceed "
                                  f"{MAX_LABEL_BYTES} bytes")
        out[key] = value
    return out


def dump_labels(labels: Mapping[str, str]) -> str:
    return json.dumps(dict(sorted(labels.items())), separators=(",", ":"))


def load_labels(text: str) -> dict[str, str]:
    data = json.loads(text)
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


@dataclass(frozen=True)
class BlobRow:
    digest: str
    size: int
    created_at: int
    updated_at: int
    labels: dict[str, str]


class Database:
    """One connection shared by the store and the lease manager of a process.

    `write()` nests: an inner `write()` joins the outer transaction, so the garbage collector
    can hold the write lock across its whole mark and sweep while calling the store's own
    methods. A thread lock keeps other threads of this process out meanwhile.
    """

    def __init__(self, path: str | os.PathLike[str], timeout: float = 30.0) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._depth = 0
        self._conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None,
                                     check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        with self.write() as conn:
            _create(conn)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._conn
                finally:
                    self._depth -= 1
                return
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._conn
            except BaseException:
                self._depth = 0
                self._conn.execute("ROLLBACK")
                raise
            self._depth = 0
            self._conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for several SELECTs (or the outer write, if one is open)."""
        with self._lock:
            if self._depth:
                yield self._conn
                return
            self._conn.execute("BEGIN DEFERRED")
            try:
                yield self._conn
            finally:
                self._conn.execute("COMMIT")

    def integrity_check(self) -> str:
        with self._lock:
            return str(self._conn.execute("PRAGMA integrity_check").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _create(conn: sqlite3.Connection) -> None:
    """Create the tables unless they exist; executescript would commit our transaction."""
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == 0:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    elif version != SCHEMA_VERSION:
        raise InvalidArgument(f"metadata database schema version {version} is not "
                              f"{SCHEMA_VERSION}, the one this code knows")


# -- blob rows ---------------------------------------------------------------------------

def get_blob(conn: sqlite3.Connection, digest: str) -> BlobRow | None:
    row = conn.execute("SELECT digest, size, created_at, updated_at, labels FROM blobs "
                       "WHERE digest = ?", (digest,)).fetchone()
    return None if row is None else BlobRow(row[0], row[1], row[2], row[3], load_labels(row[4]))


def all_blobs(conn: sqlite3.Connection) -> list[BlobRow]:
    rows = conn.execute("SELECT digest, size, created_at, updated_at, labels FROM blobs "
                        "ORDER BY digest").fetchall()
    return [BlobRow(r[0], r[1], r[2], r[3], load_labels(r[4])) for r in rows]


def ensure_blob(conn: sqlite3.Connection, digest: str, size: int, created_at: int,
                labels: Mapping[str, str] | None = None) -> None:
    """Insert the row, or merge `labels` into the one already there (another process's
    recovery may have recorded the blob between our rename and this insert)."""
    existing = get_blob(conn, digest)
    if existing is None:
        conn.execute("INSERT INTO blobs (digest, size, created_at, updated_at, labels) "
                     "VALUES (?, ?, ?, ?, ?)",
                     (digest, size, created_at, created_at, dump_labels(labels or {})))
    elif labels:
        put_labels(conn, digest, {**existing.labels, **labels})


def put_labels(conn: sqlite3.Connection, digest: str, labels: Mapping[str, str]) -> None:
    conn.execute("UPDATE blobs SET labels = ?, updated_at = ? WHERE digest = ?",
                 (dump_labels(labels), now_ns(), digest))


def delete_blob(conn: sqlite3.Connection, digest: str) -> None:
    conn.execute("DELETE FROM blobs WHERE digest = ?", (digest,))
