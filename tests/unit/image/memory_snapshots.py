"""An in-memory snapshotter that plugs into the collector (gc.CollectableSnapshotter): it
refuses to remove a snapshot that has children, as a real snapshotter does."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from dockyard.image.errors import FailedPrecondition, NotFound


@dataclass(frozen=True)
class SnapshotRecord:
    name: str
    parent: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


class MemorySnapshotter:
    def __init__(self) -> None:
        self.snapshots: dict[str, SnapshotRecord] = {}
        self.removed: list[str] = []

    def add(self, name: str, parent: str | None = None,
            labels: Mapping[str, str] | None = None) -> None:
        self.snapshots[name] = SnapshotRecord(name, parent, dict(labels or {}))

    def walk(self) -> list[SnapshotRecord]:
        return list(self.snapshots.values())

    def remove(self, key: str) -> None:
        if key not in self.snapshots:
            raise NotFound(f"snapshot {key!r} not found")
        children = [s.name for s in self.snapshots.values() if s.parent == key]
        if children:
            raise FailedPrecondition(f"snapshot {key!r} has children {children}")
        del self.snapshots[key]
        self.removed.append(key)
