"""The supervisor's own metadata: namespaces and containers, in `<root>/meta.db` (SQLite, WAL,
synchronous=NORMAL). A kill -9 of the supervisor loses no committed transaction: the WAL is
written before a commit returns, and the page cache outlives the process. A power cut may
roll back the last few, never leaving half of one; it also ends every container, which the
restart then finds gone. FULL would add a fsync per commit, two per container run.

    namespaces(name PK, labels, created_at, updated_at)
    containers(namespace -> namespaces.name, id, labels, image, runtime_name,
               runtime_options_type, runtime_options, spec_type, spec, snapshotter,
               snapshot_key, extensions, sandbox, created_at, updated_at)
               PK (namespace, id)

Labels are JSON objects; `extensions` a JSON object of name -> [type URL, base64 value];
times integer nanoseconds. Everything an image needs (blobs, names, leases, snapshots) lives
in the namespace's own image library (see supervisor.py); this database only says which
namespaces exist and what containers they hold.

Rules follow containerd's metadata package: ids are identifiers (identifiers.py); a container
needs a runtime name and a spec, and a snapshotter when it names a snapshot key; an update
changes labels, spec, image, snapshot key and extensions, never id, runtime or snapshotter.
"""

from __future__ import annotations

import base64
import builtins
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial

from dockyard.containerd import identifiers
from dockyard.containerd.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from dockyard.containerd.identifiers import quote
from dockyard.image.content.filters import label_lookup, match, parse_all
from dockyard.image.content.metadata import dump_labels, load_labels, validate_labels
from dockyard.image.fieldpaths import apply_map_path

SCHEMA_VERSION = 1

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS namespaces (
        name TEXT PRIMARY KEY,
        labels TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS containers (
        namespace TEXT NOT NULL REFERENCES namespaces(name),
        id TEXT NOT NULL,
        labels TEXT NOT NULL DEFAULT '{}',
        image TEXT NOT NULL DEFAULT '',
        runtime_name TEXT NOT NULL,
        runtime_options_type TEXT,
        runtime_options BLOB,
        spec_type TEXT NOT NULL,
        spec BLOB NOT NULL,
        snapshotter TEXT NOT NULL DEFAULT '',
        snapshot_key TEXT NOT NULL DEFAULT '',
        extensions TEXT NOT NULL DEFAULT '{}',
        sandbox TEXT NOT NULL DEFAULT '',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (namespace, id)
    ) WITHOUT ROWID""",
)

_COLUMNS = ("id, labels, image, runtime_name, runtime_options_type, runtime_options, "
            "spec_type, spec, snapshotter, snapshot_key, extensions, sandbox, created_at, "
            "updated_at")


@dataclass(frozen=True)
class Blob:
    """A protobuf Any, kept as it came: its type URL and its bytes."""

    type_url: str
    value: bytes


@dataclass(frozen=True)
class Runtime:
    name: str
    options: Blob | None = None


@dataclass(frozen=True)
class Namespace:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Container:
    id: str
    runtime: Runtime
    spec: Blob | None
    labels: Mapping[str, str] = field(default_factory=dict)
    image: str = ""
    snapshotter: str = ""
    snapshot_key: str = ""
    extensions: Mapping[str, Blob] = field(default_factory=dict)
    sandbox: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None


def _connect(path: str | os.PathLike[str], timeout: float) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None,
                           check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def _now() -> int:
    return time.time_ns()


def _time(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, UTC)


class MetadataStore:
    """Namespaces and containers, shared by the threads of the process.

    Two connections: writes go through one (BEGIN IMMEDIATE), reads
    through the other. In WAL mode a reader sees the last committed state and never waits
    for a writer, so the services may read on the event loop itself (a lookup by key takes
    tens of microseconds) and keep worker threads for what writes."""

    def __init__(self, path: str | os.PathLike[str], timeout: float = 30.0) -> None:
        self._lock = threading.RLock()
        self._conn = _connect(path, timeout)
        with self._write() as conn:
            for statement in _SCHEMA:
                conn.execute(statement)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            elif version != SCHEMA_VERSION:
                raise InvalidArgument(f"metadata database {path}: schema version {version}, "
                                      f"not {SCHEMA_VERSION}")
        self._read_lock = threading.Lock()
        self._reader = _connect(path, timeout)

    def close(self) -> None:
        with self._lock, self._read_lock:
            self._reader.close()
            self._conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One consistent snapshot for the statements inside."""
        with self._read_lock:
            self._reader.execute("BEGIN DEFERRED")
            try:
                yield self._reader
            finally:
                self._reader.execute("COMMIT")

    # -- namespaces -------------------------------------------------------------------------

    def namespace_names(self) -> set[str]:
        with self._read() as conn:
            return {r[0] for r in conn.execute("SELECT name FROM namespaces")}

    def get_namespace(self, name: str) -> Namespace:
        with self._read() as conn:
            row = conn.execute("SELECT name, labels FROM namespaces WHERE name = ?",
                               (name,)).fetchone()
        if row is None:
            raise NotFound(f"namespace {quote(name)}")
        return Namespace(row[0], load_labels(row[1]))

    def list_namespaces(self, *filters: str) -> builtins.list[Namespace]:
        parsed = parse_all([f for f in filters if f])
        with self._read() as conn:
            rows = conn.execute("SELECT name, labels FROM namespaces ORDER BY name").fetchall()
        found = [Namespace(r[0], load_labels(r[1])) for r in rows]
        return [n for n in found if match(parsed, partial(_namespace_field, n))]

    def create_namespace(self, name: str, labels: Mapping[str, str] | None = None) -> Namespace:
        identifiers.validate(name)
        fields = validate_labels(labels or {}, f"namespace {quote(name)}")
        now = _now()
        with self._write() as conn:
            try:
                conn.execute("INSERT INTO namespaces (name, labels, created_at, updated_at) "
                             "VALUES (?, ?, ?, ?)", (name, dump_labels(fields), now, now))
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"namespace {quote(name)}") from None
        return Namespace(name, fields)

    def ensure_namespace(self, name: str) -> bool:
        """Make the namespace unless it exists (a write into a new namespace makes it, as in
        containerd); True if it was made."""
        identifiers.validate(name)
        now = _now()
        with self._write() as conn:
            made = conn.execute("INSERT OR IGNORE INTO namespaces (name, labels, created_at, "
                                "updated_at) VALUES (?, '{}', ?, ?)", (name, now, now)).rowcount
        return made > 0

    def update_namespace(self, name: str, labels: Mapping[str, str],
                         fieldpaths: Sequence[str] = ()) -> Namespace:
        given = validate_labels(labels, f"namespace {quote(name)}")
        with self._write() as conn:
            row = conn.execute("SELECT labels FROM namespaces WHERE name = ?",
                               (name,)).fetchone()
            if row is None:
                raise NotFound(f"namespace {quote(name)}")
            current = load_labels(row[0])
            new = _apply_labels(current, given, fieldpaths, f"namespace {quote(name)}")
            conn.execute("UPDATE namespaces SET labels = ?, updated_at = ? WHERE name = ?",
                         (dump_labels(new), _now(), name))
        return Namespace(name, new)

    def delete_namespace(self, name: str) -> None:
        """Only the row; the caller checked that nothing is left in the namespace. Its
        containers are here: a namespace that still has some is refused by the database."""
        with self._write() as conn:
            try:
                gone = conn.execute("DELETE FROM namespaces WHERE name = ?", (name,)).rowcount
            except sqlite3.IntegrityError:
                raise FailedPrecondition(f"namespace {quote(name)} must be empty, but it "
                                         "still has containers") from None
            if not gone:
                raise NotFound(f"namespace {quote(name)}")

    def has_containers(self, namespace: str) -> bool:
        with self._read() as conn:
            return conn.execute("SELECT 1 FROM containers WHERE namespace = ? LIMIT 1",
                                (namespace,)).fetchone() is not None

    # -- containers -------------------------------------------------------------------------

    def get_container(self, namespace: str, id: str) -> Container:
        with self._read() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM containers WHERE namespace = ? AND "
                               "id = ?", (namespace, id)).fetchone()
        if row is None:
            raise NotFound(f"container {quote(id)} in namespace {quote(namespace)}")
        return _container(row)

    def list_containers(self, namespace: str, *filters: str) -> builtins.list[Container]:
        """Containers by id matching any filter (fields `id`, `image`, `runtime.name`,
        `snapshotter`, `snapshot_key`, `sandbox`, `labels.<key>`)."""
        parsed = parse_all([f for f in filters if f])
        with self._read() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM containers WHERE namespace = ? "
                                "ORDER BY id", (namespace,)).fetchall()
        found = [_container(r) for r in rows]
        return [c for c in found if match(parsed, partial(_container_field, c))]

    def create_container(self, namespace: str, container: Container) -> Container:
        _validate(container)
        now = _now()
        with self._write() as conn:
            conn.execute("INSERT OR IGNORE INTO namespaces (name, labels, created_at, "
                         "updated_at) VALUES (?, '{}', ?, ?)", (namespace, now, now))
            try:
                conn.execute(f"INSERT INTO containers (namespace, {_COLUMNS}) VALUES "
                             f"(?, {', '.join('?' * 14)})",
                             (namespace, *_row(container), now, now))
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"container {quote(container.id)}") from None
        return replace(container, created_at=_time(now), updated_at=_time(now))

    def update_container(self, namespace: str, container: Container,
                         fieldpaths: Sequence[str] = ()) -> Container:
        if not container.id:
            raise InvalidArgument("must specify a container id")
        with self._write() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM containers WHERE namespace = ? AND "
                               "id = ?", (namespace, container.id)).fetchone()
            if row is None:
                raise NotFound(f"container {quote(container.id)}")
            updated = _updated(_container(row), container, fieldpaths)
            _validate(updated)
            now = _now()
            conn.execute("UPDATE containers SET labels = ?, image = ?, runtime_name = ?, "
                         "runtime_options_type = ?, runtime_options = ?, spec_type = ?, "
                         "spec = ?, snapshotter = ?, snapshot_key = ?, extensions = ?, "
                         "sandbox = ?, updated_at = ? WHERE namespace = ? AND id = ?",
                         (*_row(updated)[1:], now, namespace, container.id))
        return replace(updated, updated_at=_time(now))

    def delete_container(self, namespace: str, id: str) -> None:
        with self._write() as conn:
            if conn.execute("DELETE FROM containers WHERE namespace = ? AND id = ?",
                            (namespace, id)).rowcount == 0:
                raise NotFound(f"container {quote(id)}")

    def snapshot_keys(self, namespace: str) -> builtins.list[tuple[str, str]]:
        """(snapshotter, key) of every container of the namespace: garbage collection roots."""
        with self._read() as conn:
            rows = conn.execute("SELECT snapshotter, snapshot_key FROM containers WHERE "
                                "namespace = ? AND snapshot_key != ''", (namespace,)).fetchall()
        return [(r[0], r[1]) for r in rows]


# -- validation and updates ----------------------------------------------------------------

def _validate(c: Container) -> None:
    try:
        identifiers.validate(c.id)
    except InvalidArgument as e:
        raise InvalidArgument(f"container.ID: {e}") from None
    for key in c.extensions:
        if not key:
            raise InvalidArgument("container.Extension keys must not be zero-length")
    validate_labels(c.labels, f"container {quote(c.id)}")
    if not c.runtime.name:
        raise InvalidArgument("must specify a runtime name")
    if c.spec is None:
        raise InvalidArgument("must specify a spec for container")
    if c.snapshot_key and not c.snapshotter:
        raise InvalidArgument("must set snapshotter when snapshot key is set")


def _updated(current: Container, given: Container, fieldpaths: Sequence[str]) -> Container:
    """containerd's rules: without field paths, the mutable fields are replaced and the
    immutable ones must be unchanged; with them, only the named fields change."""
    if not fieldpaths:
        if given.snapshotter != current.snapshotter:
            raise InvalidArgument("container.Snapshotter field is immutable")
        if given.runtime.name != current.runtime.name:
            raise InvalidArgument("container.Runtime.Name field is immutable")
        fieldpaths = ("labels", "spec", "extensions", "image", "snapshotkey")
    labels, extensions = dict(current.labels), dict(current.extensions)
    new = current
    for path in fieldpaths:
        if apply_map_path(labels, given.labels, path) or \
                apply_map_path(extensions, given.extensions, path, "extensions"):
            continue
        if path == "spec":
            new = replace(new, spec=given.spec)
        elif path == "image":
            new = replace(new, image=given.image)
        elif path in ("snapshotkey", "snapshot_key"):
            new = replace(new, snapshot_key=given.snapshot_key)
        else:
            raise InvalidArgument(f"cannot update {quote(path)} field on {quote(current.id)}")
    return replace(new, labels=labels, extensions=extensions)


def _apply_labels(current: Mapping[str, str], given: Mapping[str, str],
                  fieldpaths: Sequence[str], owner: str) -> dict[str, str]:
    if not fieldpaths:
        return dict(given)
    result = dict(current)
    for path in fieldpaths:
        if not apply_map_path(result, given, path):
            raise InvalidArgument(f"cannot update {quote(path)} field on {owner}")
    return result


# -- rows -----------------------------------------------------------------------------------

def _row(c: Container) -> tuple[object, ...]:
    options = c.runtime.options
    assert c.spec is not None
    extensions = {k: [b.type_url, base64.b64encode(b.value).decode()]
                  for k, b in sorted(c.extensions.items())}
    return (c.id, dump_labels(c.labels), c.image, c.runtime.name,
            options.type_url if options else None, options.value if options else None,
            c.spec.type_url, c.spec.value, c.snapshotter, c.snapshot_key,
            json.dumps(extensions, separators=(",", ":")), c.sandbox)


def _container(r: tuple[object, ...]) -> Container:
    options = Blob(str(r[4]), bytes(r[5])) if r[4] is not None else None  # type: ignore[arg-type]
    extensions = {k: Blob(v[0], base64.b64decode(v[1]))
                  for k, v in json.loads(str(r[10])).items()}
    return Container(
        id=str(r[0]), labels=load_labels(str(r[1])), image=str(r[2]),
        runtime=Runtime(str(r[3]), options), spec=Blob(str(r[6]), bytes(r[7])),  # type: ignore[arg-type]
        snapshotter=str(r[8]), snapshot_key=str(r[9]), extensions=extensions,
        sandbox=str(r[11]), created_at=_time(int(r[12])),  # type: ignore[call-overload]
        updated_at=_time(int(r[13])))  # type: ignore[call-overload]


def _present(value: str) -> str | None:
    """containerd's adaptors treat an empty string as an absent field."""
    return value or None


def _container_field(c: Container, path: tuple[str, ...]) -> str | None:
    match path:
        case ("id",):
            return _present(c.id)
        case ("image",):
            return _present(c.image)
        case ("runtime", "name"):
            return _present(c.runtime.name)
        case ("snapshotter",):
            return _present(c.snapshotter)
        case ("snapshot_key",) | ("snapshotkey",):
            return _present(c.snapshot_key)
        case ("sandbox",):
            return _present(c.sandbox)
        case ("labels", *rest):
            return label_lookup(c.labels, tuple(rest))
    return None


def _namespace_field(n: Namespace, path: tuple[str, ...]) -> str | None:
    match path:
        case ("name",):
            return n.name
        case ("labels", *rest):
            return label_lookup(n.labels, tuple(rest))
    return None
