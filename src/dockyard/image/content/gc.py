"""Garbage collection: a pure mark over a graph of typed nodes, then a sweep.

Nodes are (kind, key) pairs:

    ("content", "<digest>")   ("snapshot", "<snapshotter>/<key>")   ("image", "<name>")
    ("lease", "<id>")         ("ingest", "<ref>")

Edges (what keeps what), following containerd's metadata/gc.go:

    image    -> content of its target digest
    lease    -> every resource attached to it (content, ingest, snapshot)
    ingest   -> content of its expected digest
    snapshot -> its parent snapshot (same snapshotter)
    content, snapshot labels:
      containerd.io/gc.ref.content[.|/<suffix>] = <digest>            -> ("content", digest)
      containerd.io/gc.ref.snapshot.<snapshotter>[/<suffix>] = <key>  -> ("snapshot", ...)
      containerd.io/gc.bref.content[.|/<suffix>] = <digest>   back reference: that content
      containerd.io/gc.bref.snapshot.<snapshotter>[/<suffix>] = <key>   keeps this node

Roots: images (the caller passes them: the image store is not ours), leases not past their
`containerd.io/gc.expire`, content and snapshots labelled `containerd.io/gc.root` or with a
`containerd.io/gc.expire` still ahead, ingests a writer holds or updated within `grace`, and
any extra nodes the caller names (say, the snapshots of existing containers).

Snapshot references: containerd ends the snapshotter name at the first "/", so
`gc.ref.snapshot.overlayfs/1` names snapshotter "overlayfs". We also accept a "." suffix
(`gc.ref.snapshot.overlayfs.1`) when "overlayfs.1" is not itself a snapshotter we were given
but "overlayfs" is. When in doubt a reference keeps more, never less.

The sweep removes only what the mark did not reach: snapshots (children before parents,
since a parent with children cannot go), then content, stale ingests and expired leases.
It all happens inside the content store's `exclusive()` lock, after `recover()`, so no commit,
label or lease change lands between the mark and the sweep.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from dockyard.image.content.leases import LABEL_EXPIRE, LeaseManager, parse_expiry
from dockyard.image.content.store import Info, Status
from dockyard.image.errors import ImageError, NotFound

Node = tuple[str, str]
CONTENT, SNAPSHOT, IMAGE, LEASE, INGEST = "content", "snapshot", "image", "lease", "ingest"

LABEL_ROOT = "containerd.io/gc.root"
LABEL_REF_CONTENT = "containerd.io/gc.ref.content"
LABEL_REF_SNAPSHOT = "containerd.io/gc.ref.snapshot."
LABEL_BREF_CONTENT = "containerd.io/gc.bref.content"
LABEL_BREF_SNAPSHOT = "containerd.io/gc.bref.snapshot."

DEFAULT_GRACE = timedelta(hours=24)


# -- the two sides the collector is handed -------------------------------------------------

class SnapshotInfo(Protocol):
    """What the collector reads of a snapshot: `name` is its key (active) or name
    (committed); `parent` is the parent's name in the same snapshotter, "" or None if none."""

    @property
    def name(self) -> str: ...

    @property
    def parent(self) -> str | None: ...

    @property
    def labels(self) -> Mapping[str, str]: ...


class CollectableSnapshotter(Protocol):
    """The slice of a snapshotter the collector needs: list everything, remove one."""

    def walk(self) -> Iterable[SnapshotInfo]: ...

    def remove(self, key: str) -> None: ...


class CollectableContent(Protocol):
    """The slice of a content store the collector needs (LocalStore has it)."""

    def exclusive(self) -> contextlib.AbstractContextManager[object]: ...

    def recover(self) -> object: ...

    def walk(self, *filters: str) -> Iterable[Info]: ...

    def delete(self, digest: str) -> None: ...

    def list_statuses(self, *filters: str) -> list[Status]: ...

    def abort(self, ref: str) -> None: ...


# -- the pure part ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Item:
    """One node as the mark sees it: its labels, its explicit edges, whether it is a root
    by its kind's rule (the label rules are applied in build_graph)."""

    labels: Mapping[str, str] = field(default_factory=dict)
    refs: tuple[Node, ...] = ()
    root: bool = False


@dataclass(frozen=True)
class Graph:
    nodes: frozenset[Node]
    roots: frozenset[Node]
    edges: Mapping[Node, frozenset[Node]]


def label_edges(labels: Mapping[str, str],
                snapshotters: Collection[str]) -> tuple[list[Node], list[Node]]:
    """(references, back references) that a node's labels declare."""
    refs: list[Node] = []
    brefs: list[Node] = []
    for key, value in labels.items():
        if _named(key, LABEL_REF_CONTENT):
            refs.append((CONTENT, value))
        elif _named(key, LABEL_BREF_CONTENT):
            brefs.append((CONTENT, value))
        elif key.startswith(LABEL_REF_SNAPSHOT):
            name = _snapshotter(key[len(LABEL_REF_SNAPSHOT):], snapshotters)
            refs.append((SNAPSHOT, f"{name}/{value}"))
        elif key.startswith(LABEL_BREF_SNAPSHOT):
            name = _snapshotter(key[len(LABEL_BREF_SNAPSHOT):], snapshotters)
            brefs.append((SNAPSHOT, f"{name}/{value}"))
    return refs, brefs


def labelled_root(labels: Mapping[str, str], now: datetime) -> bool:
    if LABEL_ROOT in labels:
        return True
    expiry = parse_expiry(labels.get(LABEL_EXPIRE))
    return expiry is not None and now <= expiry


def build_graph(items: Mapping[Node, Item], now: datetime, *, extra_roots: Iterable[Node] = (),
                snapshotters: Collection[str] = ()) -> Graph:
    edges: dict[Node, set[Node]] = {node: set(item.refs) for node, item in items.items()}
    roots = set(extra_roots)
    for node, item in items.items():
        if item.root:
            roots.add(node)
        if node[0] not in (CONTENT, SNAPSHOT):
            continue  # label conventions apply to content and snapshots
        if labelled_root(item.labels, now):
            roots.add(node)
        refs, brefs = label_edges(item.labels, snapshotters)
        edges[node].update(refs)
        for holder in brefs:
            edges.setdefault(holder, set()).add(node)
    return Graph(frozenset(items), frozenset(roots),
                 {node: frozenset(targets) for node, targets in edges.items()})


def mark(roots: Iterable[Node], edges: Mapping[Node, Iterable[Node]]) -> set[Node]:
    """Every node reachable from the roots, roots included (breadth first, no recursion)."""
    seen = set(roots)
    queue = deque(seen)
    while queue:
        for target in edges.get(queue.popleft(), ()):
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return seen


def removal_order(dead: Iterable[Node], items: Mapping[Node, Item]) -> list[Node]:
    """Snapshots deepest first (children before parents), then content, ingests, leases."""
    memo: dict[Node, int] = {}
    kinds = {SNAPSHOT: 0, CONTENT: 1, INGEST: 2, LEASE: 3, IMAGE: 4}
    return sorted(dead, key=lambda n: (kinds.get(n[0], 9),
                                       -_depth(n, items, memo) if n[0] == SNAPSHOT else 0, n))


def _depth(node: Node, items: Mapping[Node, Item], memo: dict[Node, int]) -> int:
    """Parents above a snapshot, walking the chain once (iteratively: chains can be long)."""
    chain: list[Node] = []
    current = node
    while current not in memo:
        item = items.get(current)
        parent = next((r for r in item.refs if r[0] == SNAPSHOT), None) if item else None
        if parent is None or parent in chain or parent == current:
            memo[current] = 0  # the top, or a cycle that a sane snapshotter never has
            break
        chain.append(current)
        current = parent
    depth = memo[current]
    for n in reversed(chain):
        depth += 1
        memo[n] = depth
    return memo[node]


# -- the impure part -------------------------------------------------------------------------

@dataclass
class Removed:
    content: list[str] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)
    ingests: list[str] = field(default_factory=list)
    leases: list[str] = field(default_factory=list)
    skipped: list[tuple[Node, str]] = field(default_factory=list)  # with the reason

    @property
    def nodes(self) -> set[Node]:
        return ({(CONTENT, d) for d in self.content} | {(SNAPSHOT, s) for s in self.snapshots}
                | {(INGEST, r) for r in self.ingests} | {(LEASE, i) for i in self.leases})


def inventory(content: CollectableContent, leases: LeaseManager,
              snapshotters: Mapping[str, CollectableSnapshotter],
              images: Mapping[str, str], now: datetime, grace: timedelta) -> dict[Node, Item]:
    items: dict[Node, Item] = {}
    for info in content.walk():
        items[(CONTENT, info.digest)] = Item(info.labels)
    for st in content.list_statuses():
        expected = ((CONTENT, st.expected),) if st.expected else ()
        items[(INGEST, st.ref)] = Item(refs=expected,
                                       root=st.active or now - st.updated_at < grace)
    for lease in leases.list():
        held = tuple((r.kind, r.key) for r in leases.list_resources(lease.id))
        items[(LEASE, lease.id)] = Item(refs=held, root=not lease.expired(now))
    for name, snapshotter in snapshotters.items():
        for snap in snapshotter.walk():
            parent = ((SNAPSHOT, f"{name}/{snap.parent}"),) if snap.parent else ()
            items[(SNAPSHOT, f"{name}/{snap.name}")] = Item(snap.labels, parent)
    for name, target in images.items():
        items[(IMAGE, name)] = Item(refs=((CONTENT, target),), root=True)
    return items


def collect(content: CollectableContent, leases: LeaseManager, *,
            snapshotters: Mapping[str, CollectableSnapshotter] | None = None,
            images: Mapping[str, str] | Iterable[str] = (), roots: Iterable[Node] = (),
            grace: timedelta = DEFAULT_GRACE, now: datetime | None = None) -> Removed:
    """Remove everything no root reaches; return what was removed (and what could not be).

    `images` maps image names to target digests (a plain iterable of digests also works);
    `roots` adds nodes to keep, e.g. ("snapshot", "overlayfs/<container key>").
    """
    now = now or datetime.now(UTC)
    snapshotters = snapshotters or {}
    targets = dict(images) if isinstance(images, Mapping) else {d: d for d in images}
    with content.exclusive():
        content.recover()
        items = inventory(content, leases, snapshotters, targets, now, grace)
        graph = build_graph(items, now, extra_roots=roots, snapshotters=snapshotters.keys())
        dead = graph.nodes - mark(graph.roots, graph.edges)
        return sweep(removal_order(dead, items), content, leases, snapshotters)


def sweep(order: list[Node], content: CollectableContent, leases: LeaseManager,
          snapshotters: Mapping[str, CollectableSnapshotter]) -> Removed:
    removed = Removed()
    for node in order:
        kind, key = node
        try:
            if kind == SNAPSHOT:
                name, _, snapshot = key.partition("/")
                snapshotters[name].remove(snapshot)
                removed.snapshots.append(key)
            elif kind == CONTENT:
                content.delete(key)
                removed.content.append(key)
            elif kind == INGEST:
                content.abort(key)
                removed.ingests.append(key)
            elif kind == LEASE:
                leases.delete(key)
                removed.leases.append(key)
        except NotFound:
            continue  # gone already: nothing to report
        except ImageError as e:  # busy, has children, ...: keep it, say why
            removed.skipped.append((node, str(e)))
    return removed


def _named(key: str, prefix: str) -> bool:
    """`prefix` itself, or `prefix` followed by a "." or "/" and a name (which is ignored)."""
    return key == prefix or (key.startswith(prefix) and key[len(prefix)] in "./")


def _snapshotter(rest: str, known: Collection[str]) -> str:
    name = rest.split("/", 1)[0]
    if name in known:
        return name
    dotted = [k for k in known if name.startswith(k + ".")]
    return max(dotted, key=len) if dotted else name
