"""Leases: named holds that keep resources from the garbage collector (containerd's leases).

A client that pulls an image creates a lease first, attaches what it is about to write (the
ingest ref, the digest it expects, the snapshot keys it will prepare) and deletes the lease
when the image record that refers to all of it exists. Attach *before* writing: a digest can
be attached before its blob exists, and the collector keeps whatever a live lease names.

Resources are (kind, key) pairs, the same pairs the collector uses for nodes:

    ("content", "<digest>")    ("ingest", "<ref>")    ("snapshot", "<snapshotter>/<key>")

A lease expires at its `containerd.io/gc.expire` label (RFC 3339), as containerd's do; an
expired lease holds nothing and the collector deletes it. Leases live in the content store's
SQLite database, so a collection sees leases and labels from one consistent moment.
"""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Protocol

from dockyard.image.content.filters import label_lookup, match, parse_all
from dockyard.image.content.metadata import (
    Database,
    dump_labels,
    load_labels,
    now_ns,
    to_datetime,
    validate_labels,
)
from dockyard.image.digest import Digest
from dockyard.image.errors import AlreadyExists, InvalidArgument, NotFound

LABEL_EXPIRE = "containerd.io/gc.expire"
KINDS = ("content", "ingest", "snapshot")


@dataclass(frozen=True, order=True)
class Resource:
    kind: str
    key: str

    @classmethod
    def content(cls, digest: str) -> Resource:
        return cls("content", Digest(digest))

    @classmethod
    def ingest(cls, ref: str) -> Resource:
        return cls("ingest", ref)

    @classmethod
    def snapshot(cls, snapshotter: str, key: str) -> Resource:
        return cls("snapshot", f"{snapshotter}/{key}")

    def validated(self) -> Resource:
        if self.kind not in KINDS:
            raise InvalidArgument(f"lease resource kind {self.kind!r}: want one of {KINDS}")
        if self.kind == "content":
            return Resource(self.kind, Digest(self.key))
        if not self.key:
            raise InvalidArgument(f"lease resource {self.kind}: empty key")
        if self.kind == "snapshot":
            snapshotter, _, key = self.key.partition("/")
            if not snapshotter or not key:
                raise InvalidArgument(f"lease resource snapshot {self.key!r}: want "
                                      "<snapshotter>/<key>")
        return self


@dataclass(frozen=True)
class Lease:
    id: str
    created_at: datetime
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def expires_at(self) -> datetime | None:
        return parse_expiry(self.labels.get(LABEL_EXPIRE))

    def expired(self, now: datetime) -> bool:
        at = self.expires_at
        return at is not None and now > at


class LeaseManager(Protocol):
    def create(self, id: str, labels: Mapping[str, str] | None = None,
               expiry: timedelta | datetime | None = None) -> Lease: ...

    def delete(self, id: str) -> None: ...

    def list(self, *filters: str) -> builtins.list[Lease]: ...

    def add_resource(self, id: str, resource: Resource) -> None: ...

    def delete_resource(self, id: str, resource: Resource) -> None: ...

    def list_resources(self, id: str) -> builtins.list[Resource]: ...


def format_expiry(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_expiry(text: str | None) -> datetime | None:
    """RFC 3339, or None when absent or unreadable (containerd ignores a bad value too)."""
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


class SQLiteLeases:
    """Leases in the content store's database; pass `LocalStore.db`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, id: str, labels: Mapping[str, str] | None = None,
               expiry: timedelta | datetime | None = None) -> Lease:
        if not isinstance(id, str) or not id:
            raise InvalidArgument(f"lease id {id!r}: must be a non-empty string")
        fields = validate_labels(labels or {}, f"lease {id!r}")
        if expiry is not None:
            at = datetime.now(UTC) + expiry if isinstance(expiry, timedelta) else expiry
            fields[LABEL_EXPIRE] = format_expiry(at)
        created = now_ns()
        with self.db.write() as conn:
            if conn.execute("SELECT 1 FROM leases WHERE id = ?", (id,)).fetchone():
                raise AlreadyExists(f"lease {id!r} already exists")
            conn.execute("INSERT INTO leases (id, created_at, labels) VALUES (?, ?, ?)",
                         (id, created, dump_labels(fields)))
        return Lease(id, to_datetime(created), fields)

    def delete(self, id: str) -> None:
        """Its resources are released with it; the next collection may remove them."""
        with self.db.write() as conn:
            if conn.execute("DELETE FROM leases WHERE id = ?", (id,)).rowcount == 0:
                raise NotFound(f"lease {id!r} not found")

    def list(self, *filters: str) -> builtins.list[Lease]:
        """Leases by id matching any filter (fields `id`, `labels.<key>`; see filters.py)."""
        parsed = parse_all(filters)
        with self.db.read() as conn:
            rows = conn.execute("SELECT id, created_at, labels FROM leases ORDER BY id").fetchall()
        leases = [Lease(r[0], to_datetime(r[1]), load_labels(r[2])) for r in rows]
        return [lease for lease in leases if match(parsed, partial(_lease_field, lease))]

    def add_resource(self, id: str, resource: Resource) -> None:
        r = resource.validated()
        with self.db.write() as conn:
            self._require(conn, id)
            conn.execute("INSERT OR IGNORE INTO lease_resources (lease, kind, key) "
                         "VALUES (?, ?, ?)", (id, r.kind, r.key))

    def delete_resource(self, id: str, resource: Resource) -> None:
        with self.db.write() as conn:
            self._require(conn, id)
            conn.execute("DELETE FROM lease_resources WHERE lease = ? AND kind = ? AND key = ?",
                         (id, resource.kind, resource.key))

    def list_resources(self, id: str) -> builtins.list[Resource]:
        with self.db.read() as conn:
            self._require(conn, id)
            rows = conn.execute("SELECT kind, key FROM lease_resources WHERE lease = ? "
                                "ORDER BY kind, key", (id,)).fetchall()
        return [Resource(kind, key) for kind, key in rows]

    @staticmethod
    def _require(conn: sqlite3.Connection, id: str) -> None:
        if conn.execute("SELECT 1 FROM leases WHERE id = ?", (id,)).fetchone() is None:
            raise NotFound(f"lease {id!r} not found")


def _lease_field(lease: Lease, path: tuple[str, ...]) -> str | None:
    if path == ("id",):
        return lease.id
    if path[0] == "labels":
        return label_lookup(lease.labels, path[1:])
    return None
