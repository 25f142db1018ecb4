"""The objects every service shares: the metadata store, the event bus and one image library
per namespace. Services (ours, and the tasks and transfer services) take a `Supervisor`.

On disk:

    <root>/
      lock                      flock(2) held by the running supervisor
      snapshotter               the snapshotter chosen at the first start ("overlayfs" where
                                an overlay mounts, else "native"), kept unless configured
      meta.db (+ -wal, -shm)    namespaces and containers (metadata.py)
      namespaces/<ns>/          the namespace's ImageLibrary (dockyard.image.library):
        content/                  blobs, ingests, metadata.db (blob labels, image names,
                                  leases, unpack records)
        snapshots/<snapshotter>/  its snapshots
      namespaces/.removing-*    a namespace being deleted (renamed first, then removed)
    <state>/
      lock                      flock(2), as for the root
      tasks/<ns>/<id>/          task bundles (the task manager's)

Why one library per namespace, not namespace columns in shared tables: the image layer's
stores (content, names, leases, snapshots) are complete and crash-safe on their own, each
with its own recovery; a namespace that owns a whole library is isolated by construction (no
query can forget a `WHERE namespace`), its garbage collection sees only its own roots, and a
kill -9 leaves every namespace in the state its own stores recover to. The price: a blob
pulled into two namespaces is stored twice (containerd shares the file and namespaces only
the metadata).

The namespace row in meta.db is the truth of whether a namespace exists. It is written before
anything goes into the namespace's directory (a namespace is made by the first write into it,
as in containerd), and deleted before the directory is renamed away; a deletion is refused
while the namespace has images, blobs, containers or snapshots. So after a crash a directory
without a row can only be a deletion that did not finish, and start-up removes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import threading
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from dockyard.containerd.config import SNAPSHOTTERS, Config
from dockyard.containerd.errors import FailedPrecondition, Unavailable
from dockyard.containerd.events import EventBus
from dockyard.containerd.identifiers import quote
from dockyard.containerd.metadata import MetadataStore
from dockyard.image.content.gc import DEFAULT_GRACE, Removed, collect
from dockyard.image.library import ImageLibrary

log = logging.getLogger("dockyard.containerd")

REMOVING = ".removing-"
_HOLD_ORDER = ["images", "blobs", "containers", "snapshots"]  # containerd's order


def lock_dir(path: Path) -> int:
    """Hold `<path>/lock` for the life of the process: a second supervisor on the same root
    or state is refused (the kernel drops the lock when we die, even by kill -9)."""
    fd = os.open(path / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise Unavailable(f"{path} is in use by another dockyard-containerd") from None
    return fd


def choose_snapshotter(root: Path, name: str | None) -> str:
    """The configured snapshotter; else the one this root chose before (recorded in
    `<root>/snapshotter`, so that the data of every namespace stays where it is found); else,
    on a first start, "overlayfs" if an overlay mounts under `root`, or the copying
    "native"."""
    record = root / "snapshotter"
    if name is None:
        with contextlib.suppress(FileNotFoundError):
            recorded = record.read_text().strip()
            if recorded in SNAPSHOTTERS:
                return recorded
        name = "overlayfs" if _overlay_works(root) else "native"
    tmp = record.with_name("snapshotter.tmp")
    tmp.write_text(name + "\n")
    os.replace(tmp, record)
    return name


def _overlay_works(root: Path) -> bool:
    from dockyard.image.snapshots.overlay import overlay_supported

    trial = root / "overlay-check"
    trial.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        return overlay_supported(trial)
    finally:
        shutil.rmtree(trial, ignore_errors=True)


class Libraries:
    """One ImageLibrary per namespace under `root`, opened on first use, kept open."""

    def __init__(self, root: Path, snapshotter: str) -> None:
        self.root = root
        self.snapshotter = snapshotter
        self._open: dict[str, ImageLibrary] = {}
        self._lock = threading.Lock()
        root.mkdir(mode=0o711, parents=True, exist_ok=True)

    def get(self, namespace: str) -> ImageLibrary:
        with self._lock:
            lib = self._open.get(namespace)
            if lib is None:
                lib = ImageLibrary(self.root / namespace, self.snapshotter)
                self._open[namespace] = lib
            return lib

    def holds(self, namespace: str) -> list[str]:
        """What keeps the namespace's library from being removed, in containerd's words."""
        if not (self.root / namespace).is_dir():
            return []
        lib = self.get(namespace)
        found = []
        if lib.images.list():
            found.append("images")
        if next(iter(lib.content.walk()), None) is not None:
            found.append("blobs")
        if next(iter(lib.snapshotter.walk()), None) is not None:
            found.append("snapshots")
        return found

    def remove(self, namespace: str) -> None:
        """Close it, rename it away (so nobody opens a half-removed library), remove it."""
        with self._lock:
            lib = self._open.pop(namespace, None)
        if lib is not None:
            lib.close()
        path = self.root / namespace
        doomed = self.root / f"{REMOVING}{namespace}-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(path, doomed)
        except FileNotFoundError:
            return
        shutil.rmtree(doomed, ignore_errors=True)

    def sweep(self, namespaces: set[str]) -> list[str]:
        """Remove what an unfinished deletion left: directories of no namespace."""
        removed = []
        for entry in sorted(self.root.iterdir()):
            if entry.name.startswith(REMOVING) or entry.name not in namespaces:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry.name)
        return removed

    def close(self) -> None:
        with self._lock:
            libs, self._open = list(self._open.values()), {}
        for lib in libs:
            with contextlib.suppress(Exception):
                lib.close()


class Supervisor:
    """What the services share; made by `open()`, released by `close()`."""

    def __init__(self, config: Config, metadata: MetadataStore, libraries: Libraries,
                 events: EventBus, locks: list[int]) -> None:
        self.config = config
        self.root, self.state = config.root, config.state
        self.metadata = metadata
        self.libraries = libraries
        self.events = events
        self._locks = locks
        self._namespaces = metadata.namespace_names()
        self._ns_lock = threading.Lock()

    @classmethod
    def open(cls, config: Config) -> Supervisor:
        locks: list[int] = []
        try:
            for path in (config.root, config.state):
                path.mkdir(mode=0o711, parents=True, exist_ok=True)
                locks.append(lock_dir(path))
            metadata = MetadataStore(config.root / "meta.db")
            snapshotter = choose_snapshotter(config.root, config.snapshotter)
            libraries = Libraries(config.root / "namespaces", snapshotter)
            known = metadata.namespace_names()
            swept = libraries.sweep(known)
            if swept:
                log.info("removed what unfinished namespace deletions left: %s", swept)
            for namespace in sorted(known):  # opened (and recovered) now, not in a call
                libraries.get(namespace)
        except BaseException:
            for fd in locks:
                os.close(fd)
            raise
        return cls(config, metadata, libraries, EventBus(), locks)

    @property
    def snapshotter(self) -> str:
        return self.libraries.snapshotter

    def close(self) -> None:
        self.libraries.close()
        self.metadata.close()
        for fd in self._locks:
            os.close(fd)
        self._locks = []

    # -- namespaces ---------------------------------------------------------------------------

    def namespace_exists(self, namespace: str) -> bool:
        return namespace in self._namespaces

    def library(self, namespace: str) -> ImageLibrary | None:
        """The namespace's library, or None when the namespace does not exist (a read finds
        nothing there, and must not make it)."""
        if namespace not in self._namespaces:
            return None
        return self.libraries.get(namespace)

    def writable_library(self, namespace: str) -> ImageLibrary:
        """The namespace's library, the namespace made first if it does not exist."""
        self.ensure_namespace(namespace)
        return self.libraries.get(namespace)

    def ensure_namespace(self, namespace: str) -> None:
        if namespace in self._namespaces:
            return
        with self._ns_lock:
            self.metadata.ensure_namespace(namespace)
            self._namespaces.add(namespace)

    def namespace_created(self, namespace: str) -> None:
        """Tell the supervisor about a namespace the metadata store made."""
        with self._ns_lock:
            self._namespaces.add(namespace)

    def delete_namespace(self, namespace: str) -> None:
        """Refused while anything is left in it (containerd's message); then the row, then
        the directory (see the module docstring for why in this order)."""
        with self._ns_lock:
            self.metadata.get_namespace(namespace)  # NotFound first
            left = self.libraries.holds(namespace)
            if self.metadata.has_containers(namespace):
                left.append("containers")
            left.sort(key=_HOLD_ORDER.index)
            if left:
                raise FailedPrecondition(f"namespace {quote(namespace)} must be empty, but it "
                                         f"still has {', '.join(left)}")
            self.metadata.delete_namespace(namespace)
            self._namespaces.discard(namespace)
            self.libraries.remove(namespace)

    # -- garbage collection ----------------------------------------------------------------------

    def collect(self, namespace: str, grace: timedelta = DEFAULT_GRACE,
                now: datetime | None = None) -> Removed:
        """Remove what nothing in the namespace reaches: roots are its images, live leases
        and the snapshots of its containers."""
        lib = self.library(namespace)
        if lib is None:
            return Removed()
        roots = [("snapshot", f"{snapshotter}/{key}")
                 for snapshotter, key in self.metadata.snapshot_keys(namespace)]
        removed = collect(lib.content, lib.leases,
                          snapshotters={lib.snapshotter_name: lib.snapshotter},
                          images=lib.images.targets(), roots=roots, grace=grace, now=now)
        gone = {key.partition("/")[2] for key in removed.snapshots}
        if gone:
            lib.images.forget_unpacked(lib.snapshotter_name, gone)
        return removed
