"""The content store, leases and garbage collection.

    store.py     the Protocols (Provider, InfoProvider, Manager, Ingester, IngestManager,
                 Store) and their data (Info, Status)
    local.py     LocalStore: blobs and ingests on disk, the layout drawn in its docstring
    ingest.py    the Writer of LocalStore and the crash-safe commit
    locks.py     one writer per ref (flock)
    metadata.py  the SQLite database (WAL) shared by the store and the leases
    leases.py    leases and their resources
    gc.py        mark and sweep over content, ingests, leases and a snapshotter's snapshots
    filters.py   the filter syntax of walk and list
"""

from __future__ import annotations

from dockyard.image.content.gc import CollectableContent, CollectableSnapshotter, Removed, collect
from dockyard.image.content.leases import Lease, LeaseManager, Resource, SQLiteLeases
from dockyard.image.content.local import BlobReader, LocalStore, Recovery
from dockyard.image.content.store import (
    Info,
    InfoProvider,
    Ingester,
    IngestManager,
    Manager,
    Provider,
    ReaderAt,
    Status,
    Store,
    Writer,
)

__all__ = [
    "BlobReader", "CollectableContent", "CollectableSnapshotter", "Info", "InfoProvider",
    "IngestManager", "Ingester", "Lease", "LeaseManager", "LocalStore", "Manager", "Provider",
    "ReaderAt", "Recovery", "Removed", "Resource", "SQLiteLeases", "Status", "Store", "Writer",
    "collect",
]
