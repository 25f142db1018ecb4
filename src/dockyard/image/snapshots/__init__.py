"""Snapshotters: the file systems of image layers and containers, kept as chains of snapshots.

The words are containerd's (core/snapshots/snapshotter.go): a *key* names an active snapshot
or a view, a *name* a committed one, and both live in one key space.

    prepare(key, parent) ──► active ──commit(name, key)──► committed ──► a parent for more
    view(key, parent)    ──► view: read-only, can never be committed
    remove(key or name)  ──► refused while the snapshot has children

The parent, when given, must be committed; "" is the empty directory. A snapshotter *returns*
mounts and never performs them: `mount.mount_all` is the one place that does, so that the
caller decides where (a temporary directory to unpack a layer, a container's rootfs).

Errors (dockyard.image.errors), as containerd raises them:
    NotFound            no snapshot (or parent) by that key
    AlreadyExists       "snapshot <key> already exists": prepare, view or commit to a taken key
    FailedPrecondition  remove of a snapshot with children; commit of a view or of a committed
                        snapshot; mounts of a committed snapshot; use after close
    InvalidArgument     a parent that is not committed (containerd's CreateSnapshot says
                        InvalidArgument there), an empty key, a bad label, an immutable field
                        path given to update

Implementations: overlay.OverlaySnapshotter (overlayfs; overlay.overlay_supported(root) says
whether it works under a root) and native.CopySnapshotter (the fallback that copies).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from dockyard.image.errors import InvalidArgument

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Kind(StrEnum):
    VIEW = "view"
    ACTIVE = "active"
    COMMITTED = "committed"


@dataclass(frozen=True)
class Info:
    """What stat and walk report. `name` is the key (active, view) or name (committed);
    `parent` is the parent's name, "" for none. Only `labels` can change (update)."""

    kind: Kind
    name: str
    parent: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    created: datetime = EPOCH
    updated: datetime = EPOCH


@dataclass(frozen=True)
class Usage:
    """What a snapshot itself holds, without its parents: `size` in bytes of its regular
    files (each inode counted once), `inodes` the distinct inodes of its tree."""

    size: int = 0
    inodes: int = 0


@dataclass(frozen=True)
class Mount:
    """One mount to perform, as containerd's mount.Mount: `type` is "bind" or a file system
    type ("overlay"); `options` are OCI mount options ("rbind", "ro", "lowerdir=...")."""

    type: str
    source: str
    options: tuple[str, ...] = ()

    @property
    def readonly(self) -> bool:
        return "ro" in self.options

    def to_json(self, destination: str | None = None) -> dict[str, object]:
        """The OCI runtime-spec form (config.json `mounts[]`), with `destination` if given."""
        out: dict[str, object] = {} if destination is None else {"destination": destination}
        out.update(type=self.type, source=self.source, options=list(self.options))
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, object]) -> Mount:
        kind, source, options = obj.get("type"), obj.get("source"), obj.get("options", [])
        if not isinstance(kind, str) or not kind:
            raise InvalidArgument(f"mount {dict(obj)!r}: type must be a non-empty string")
        if not isinstance(source, str):
            raise InvalidArgument(f"mount {dict(obj)!r}: source must be a string")
        if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
            raise InvalidArgument(f"mount {dict(obj)!r}: options must be a list of strings")
        return cls(kind, source, tuple(options))


class Snapshotter(Protocol):
    """containerd's Snapshotter: metadata calls (stat, update, usage, walk), the lifecycle
    (prepare, view, commit, remove) and mounts, which are only ever returned."""

    def stat(self, key: str) -> Info: ...

    def update(self, info: Info, fieldpaths: Sequence[str] | None = None) -> Info: ...

    def usage(self, key: str) -> Usage: ...

    def mounts(self, key: str) -> list[Mount]: ...

    def prepare(self, key: str, parent: str = "",
                labels: Mapping[str, str] | None = None) -> list[Mount]: ...

    def view(self, key: str, parent: str = "",
             labels: Mapping[str, str] | None = None) -> list[Mount]: ...

    rebase: bool  # commit(..., parent=) chains a snapshot prepared without a parent

    def commit(self, name: str, key: str, labels: Mapping[str, str] | None = None, *,
               parent: str | None = None) -> None: ...

    def remove(self, key: str) -> None: ...

    def walk(self, *filters: str) -> Iterator[Info]: ...

    def close(self) -> None: ...


__all__ = ["EPOCH", "Info", "Kind", "Mount", "Snapshotter", "Usage"]
