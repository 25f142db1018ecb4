"""Image metadata: names to target descriptors, and where each manifest has been unpacked.

The tables live in the content store's SQLite database (WAL, synchronous=FULL), so a name is
written in the same kind of transaction as the blob labels that keep its content alive, and a
kill -9 leaves either the old row or the new one.

    images(name PK, target TEXT (descriptor JSON), labels, created_at, updated_at)
    unpacked(manifest, snapshotter, chain_id, platform, unpacked_at)  PK (manifest, snapshotter)

A *name* is a full reference ("docker.io/library/busybox:latest", or "<name>@<digest>" for an
untagged image), as containerd stores them; the engine maps Docker's short forms onto it.
Content the names point at must be committed first; callers hold a lease while importing so
that a collection between the blob commits and the name's insert removes nothing.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial

from dockyard.image.content.filters import match, parse_all
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
from dockyard.image.fieldpaths import apply_map_path
from dockyard.image.manifest import Descriptor

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS images (
        name TEXT PRIMARY KEY,
        target TEXT NOT NULL,
        labels TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS unpacked (
        manifest TEXT NOT NULL,
        snapshotter TEXT NOT NULL,
        chain_id TEXT NOT NULL,
        platform TEXT NOT NULL,
        unpacked_at INTEGER NOT NULL,
        PRIMARY KEY (manifest, snapshotter)
    ) WITHOUT ROWID""",
)


@dataclass(frozen=True)
class Image:
    """A name and what it points at: a manifest or an index. Only target and labels change."""

    name: str
    target: Descriptor
    labels: Mapping[str, str] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Unpacked:
    """A manifest whose layers are committed snapshots in `snapshotter`; the top is chain_id."""

    manifest: Digest
    snapshotter: str
    chain_id: Digest
    platform: str
    unpacked_at: datetime


class ImageStore:
    """Names and unpack records in the content store's database; pass `LocalStore.db`."""

    def __init__(self, db: Database) -> None:
        self.db = db
        with db.write() as conn:
            for statement in _SCHEMA:
                conn.execute(statement)

    # -- names --------------------------------------------------------------------------

    def get(self, name: str) -> Image:
        with self.db.read() as conn:
            row = conn.execute("SELECT name, target, labels, created_at, updated_at FROM images "
                               "WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFound(f"image {name!r}: not found")
        return _image(row)

    def list(self, *filters: str) -> list[Image]:
        """Images by name matching any filter (containerd's syntax: `name==…`,
        `target.digest==…`, `target.mediatype==…`, `labels.<key>==…`)."""
        parsed = parse_all(filters)
        with self.db.read() as conn:
            rows = conn.execute("SELECT name, target, labels, created_at, updated_at "
                                "FROM images ORDER BY name").fetchall()
        images = [_image(r) for r in rows]
        return [i for i in images if match(parsed, partial(_field, i))]

    def create(self, image: Image) -> Image:
        row = _row(image)
        with self.db.write() as conn:
            if conn.execute("SELECT 1 FROM images WHERE name = ?", (image.name,)).fetchone():
                raise AlreadyExists(f"image {image.name!r}: already exists")
            return self._insert(conn, row, now_ns())

    def put(self, image: Image) -> Image:
        """Create the name, or point it at a new target (what a tag or a pull does)."""
        row = _row(image)
        with self.db.write() as conn:
            old = conn.execute("SELECT created_at FROM images WHERE name = ?",
                               (image.name,)).fetchone()
            now = now_ns()
            if old is None:
                return self._insert(conn, row, now)
            conn.execute("UPDATE images SET target = ?, labels = ?, updated_at = ? "
                         "WHERE name = ?", (row[1], row[2], now, image.name))
            return replace(image, created_at=to_datetime(old[0]), updated_at=to_datetime(now))

    def update(self, image: Image, fieldpaths: Sequence[str] | None = None) -> Image:
        """Change the target and/or labels (`fieldpaths`: "target", "labels",
        "labels.<key>"; none means both)."""
        with self.db.write() as conn:
            current = self._get(conn, image.name)
            target, labels = current.target, dict(current.labels)
            for path in fieldpaths or ("target", "labels"):
                if path == "target":
                    target = image.target
                elif not apply_map_path(labels, image.labels, path):
                    raise InvalidArgument(f"cannot update {path!r} of image {image.name!r}")
            new = replace(current, target=target, labels=labels)
            row = _row(new)
            now = now_ns()
            conn.execute("UPDATE images SET target = ?, labels = ?, updated_at = ? "
                         "WHERE name = ?", (row[1], row[2], now, image.name))
            return replace(new, updated_at=to_datetime(now))

    def delete(self, name: str) -> None:
        """The name goes; its content stays until a collection finds nothing else uses it."""
        with self.db.write() as conn:
            if conn.execute("DELETE FROM images WHERE name = ?", (name,)).rowcount == 0:
                raise NotFound(f"image {name!r}: not found")

    def targets(self) -> dict[str, str]:
        """name -> target digest: the roots a garbage collection starts from."""
        with self.db.read() as conn:
            rows = conn.execute("SELECT name, target FROM images").fetchall()
        return {name: json.loads(target)["digest"] for name, target in rows}

    # -- unpack records -------------------------------------------------------------------

    def set_unpacked(self, manifest: str, snapshotter: str, chain_id: str,
                     platform: str) -> None:
        with self.db.write() as conn:
            conn.execute("INSERT OR REPLACE INTO unpacked (manifest, snapshotter, chain_id, "
                         "platform, unpacked_at) VALUES (?, ?, ?, ?, ?)",
                         (Digest(manifest), snapshotter, Digest(chain_id), platform, now_ns()))

    def unpacked(self, manifest: str | None = None) -> builtins.list[Unpacked]:
        """Unpack records, of one manifest or of all."""
        query = ("SELECT manifest, snapshotter, chain_id, platform, unpacked_at FROM unpacked")
        args: tuple[str, ...] = ()
        if manifest is not None:
            query, args = query + " WHERE manifest = ?", (manifest,)
        with self.db.read() as conn:
            rows = conn.execute(query + " ORDER BY manifest, snapshotter", args).fetchall()
        return [Unpacked(Digest(r[0]), r[1], Digest(r[2]), r[3], to_datetime(r[4]))
                for r in rows]

    def forget_unpacked(self, snapshotter: str, chain_ids: set[str]) -> None:
        """Drop the records whose top snapshot is gone (after a collection removed it)."""
        with self.db.write() as conn:
            for chain in chain_ids:
                conn.execute("DELETE FROM unpacked WHERE snapshotter = ? AND chain_id = ?",
                             (snapshotter, chain))

    # -- rows -------------------------------------------------------------------------------

    @staticmethod
    def _insert(conn: sqlite3.Connection, row: tuple[str, str, str], now: int) -> Image:
        conn.execute("INSERT INTO images (name, target, labels, created_at, updated_at) "
                     "VALUES (?, ?, ?, ?, ?)", (*row, now, now))
        return _image((*row, now, now))

    @staticmethod
    def _get(conn: sqlite3.Connection, name: str) -> Image:
        row = conn.execute("SELECT name, target, labels, created_at, updated_at FROM images "
                           "WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFound(f"image {name!r}: not found")
        return _image(row)


def _row(image: Image) -> tuple[str, str, str]:
    if not isinstance(image.name, str) or not image.name or "\x00" in image.name:
        raise InvalidArgument(f"image name {image.name!r}: must be a non-empty string")
    labels = validate_labels(image.labels, f"image {image.name!r}")
    target = json.dumps(image.target.to_json(), sort_keys=True, separators=(",", ":"))
    return image.name, target, dump_labels(labels)


def _image(row: tuple[str, str, str, int, int]) -> Image:
    return Image(row[0], Descriptor.from_json(json.loads(row[1])), load_labels(row[2]),
                 to_datetime(row[3]), to_datetime(row[4]))


def _field(image: Image, path: tuple[str, ...]) -> str | None:
    match path:
        case ("name",):
            return image.name
        case ("target", "digest"):
            return str(image.target.digest)
        case ("target", "mediatype"):
            return image.target.media_type
        case ("labels", *rest) if rest:
            return image.labels.get(".".join(rest))
    return None

