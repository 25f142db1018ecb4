"""Garbage collection: label references, roots, order of removal, and the promise that
nothing reachable is ever removed (checked over random graphs with hypothesis)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockyard.image.content.gc import (
    CONTENT,
    INGEST,
    LEASE,
    SNAPSHOT,
    Item,
    build_graph,
    collect,
    label_edges,
    mark,
    removal_order,
)
from dockyard.image.content.leases import LABEL_EXPIRE, Resource, SQLiteLeases, format_expiry
from dockyard.image.content.local import LocalStore
from dockyard.image.digest import of_bytes
from dockyard.image.errors import AlreadyExists, FailedPrecondition
from tests.unit.image.memory_snapshots import MemorySnapshotter

REF = "containerd.io/gc.ref.content"
SNAP = "containerd.io/gc.ref.snapshot."
ROOT = "containerd.io/gc.root"
NOW = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalStore]:
    s = LocalStore(tmp_path / "c")
    yield s
    s.close()


@pytest.fixture
def leases(store: LocalStore) -> SQLiteLeases:
    return SQLiteLeases(store.db)


def put(store: LocalStore, data: bytes, labels: dict[str, str] | None = None) -> str:
    """Write a blob; one already there is fine, as for a puller (containerd's WriteBlob)."""
    try:
        with store.writer(f"put-{of_bytes(data)}", expected=of_bytes(data)) as w:
            w.write(data)
            return w.commit(len(data), None, labels)
    except AlreadyExists:
        return of_bytes(data)


def stored(store: LocalStore) -> set[str]:
    return {info.digest for info in store.walk()}


# -- the pure part ---------------------------------------------------------------------------

def test_content_reference_labels_allow_a_dot_or_slash_suffix() -> None:
    d = str(of_bytes(b"x"))
    refs, _ = label_edges({REF: d, f"{REF}.config": d + "1", f"{REF}/l.0": d + "2",
                           f"{REF}s": "not a reference", "other": d + "3"}, ())
    assert sorted(refs) == [(CONTENT, d), (CONTENT, d + "1"), (CONTENT, d + "2")]


def test_snapshot_reference_names_its_snapshotter() -> None:
    refs, _ = label_edges({f"{SNAP}overlayfs": "a", f"{SNAP}overlayfs/1": "b",
                           f"{SNAP}overlayfs.2": "c", f"{SNAP}native": "d"}, {"overlayfs"})
    assert sorted(refs) == [(SNAPSHOT, "native/d"), (SNAPSHOT, "overlayfs/a"),
                            (SNAPSHOT, "overlayfs/b"), (SNAPSHOT, "overlayfs/c")]


def test_dotted_snapshotter_name_wins_when_it_exists() -> None:
    refs, _ = label_edges({f"{SNAP}overlayfs.v2": "k"}, {"overlayfs", "overlayfs.v2"})
    assert refs == [(SNAPSHOT, "overlayfs.v2/k")]


def test_back_references_point_from_the_named_node() -> None:
    d = str(of_bytes(b"parent"))
    items = {(CONTENT, "child"): Item({"containerd.io/gc.bref.content": d}),
             (CONTENT, d): Item(root=True)}
    graph = build_graph(items, NOW)
    assert mark(graph.roots, graph.edges) == {(CONTENT, "child"), (CONTENT, d)}


def test_mark_follows_cycles_and_dangling_edges() -> None:
    a, b, c = (CONTENT, "a"), (CONTENT, "b"), (CONTENT, "missing")
    assert mark([a], {a: [b], b: [a, c]}) == {a, b, c}
    assert mark([], {a: [b]}) == set()


def test_gc_root_and_unexpired_expire_labels_make_roots() -> None:
    items = {(CONTENT, "r"): Item({ROOT: ""}),
             (CONTENT, "fresh"): Item({LABEL_EXPIRE: format_expiry(NOW + timedelta(1))}),
             (CONTENT, "stale"): Item({LABEL_EXPIRE: format_expiry(NOW - timedelta(1))}),
             (CONTENT, "bad"): Item({LABEL_EXPIRE: "tomorrow"}),
             (LEASE, "l"): Item({ROOT: ""})}  # the label conventions are not for leases
    assert build_graph(items, NOW).roots == {(CONTENT, "r"), (CONTENT, "fresh")}


def test_removal_order_puts_children_before_parents_on_long_chains() -> None:
    chain = [(SNAPSHOT, f"ss/{i}") for i in range(3000)]
    items = {node: Item(refs=(chain[i - 1],) if i else ()) for i, node in enumerate(chain)}
    items[(CONTENT, "c")] = Item()
    order = removal_order(set(items), items)
    assert order[:3000] == chain[::-1]
    assert order[-1] == (CONTENT, "c")


# -- against a store ------------------------------------------------------------------------

@dataclass
class Image:
    """An index -> manifest -> config and layers, referenced by labels as containerd pulls."""

    index: str
    manifest: str
    config: str
    layers: list[str] = field(default_factory=list)


def pull(store: LocalStore, name: str, layers: list[bytes], snapshot: str | None = None) -> Image:
    layer_digests = [put(store, data) for data in layers]
    config_labels = {f"{SNAP}overlayfs": snapshot} if snapshot else {}
    config = put(store, f"config of {name}".encode(), config_labels)
    manifest_labels = {f"{REF}.config": config}
    manifest_labels.update({f"{REF}.l.{i}": d for i, d in enumerate(layer_digests)})
    manifest = put(store, f"manifest of {name}".encode(), manifest_labels)
    index = put(store, f"index of {name}".encode(), {f"{REF}.m.0": manifest})
    return Image(index, manifest, config, layer_digests)


def test_image_root_keeps_its_whole_chain(store: LocalStore, leases: SQLiteLeases) -> None:
    image = pull(store, "app", [b"layer-1", b"layer-2"])
    orphan = put(store, b"orphan")
    removed = collect(store, leases, images={"app:1": image.index})
    assert removed.content == [orphan]
    assert stored(store) == {image.index, image.manifest, image.config, *image.layers}
    assert collect(store, leases, images={"app:1": image.index}).nodes == set()


def test_shared_layers_stay_while_any_image_needs_them(
        store: LocalStore, leases: SQLiteLeases) -> None:
    one = pull(store, "one", [b"base", b"one-only"])
    two = pull(store, "two", [b"base", b"two-only"])
    removed = collect(store, leases, images={"two": two.index})
    assert set(removed.content) == {one.index, one.manifest, one.config, one.layers[1]}
    assert two.layers[0] == one.layers[0] and one.layers[0] in stored(store)


def test_images_may_be_given_as_target_digests(store: LocalStore, leases: SQLiteLeases) -> None:
    image = pull(store, "app", [b"l"])
    assert collect(store, leases, images=[image.index]).content == []


def test_gc_root_label_keeps_content_and_what_it_references(
        store: LocalStore, leases: SQLiteLeases) -> None:
    child = put(store, b"child")
    pinned = put(store, b"pinned", {ROOT: "2030-01-01T00:00:00Z", REF: child})
    assert collect(store, leases).content == []
    store.update(pinned, {REF: child})  # drop the root label
    assert set(collect(store, leases).content) == {pinned, child}


def test_snapshots_referenced_from_config_stay_with_their_parents(
        store: LocalStore, leases: SQLiteLeases) -> None:
    snaps = MemorySnapshotter()
    snaps.add("chain-1")
    snaps.add("chain-2", "chain-1")
    snaps.add("chain-3", "chain-2")
    snaps.add("stray-1")
    snaps.add("stray-2", "stray-1")
    image = pull(store, "app", [b"l1"], snapshot="chain-2")
    removed = collect(store, leases, images={"app": image.index},
                      snapshotters={"overlayfs": snaps})
    assert removed.snapshots == ["overlayfs/chain-3", "overlayfs/stray-2", "overlayfs/stray-1"]
    assert set(snaps.snapshots) == {"chain-1", "chain-2"}
    removed = collect(store, leases, snapshotters={"overlayfs": snaps})
    assert removed.snapshots == ["overlayfs/chain-2", "overlayfs/chain-1"]
    assert removed.skipped == []


def test_snapshot_labels_keep_content(store: LocalStore, leases: SQLiteLeases) -> None:
    digest = put(store, b"from a snapshot")
    snaps = MemorySnapshotter()
    snaps.add("active", labels={ROOT: "", REF: digest})
    assert collect(store, leases, snapshotters={"overlayfs": snaps}).nodes == set()


def test_extra_roots_keep_container_snapshots(store: LocalStore, leases: SQLiteLeases) -> None:
    snaps = MemorySnapshotter()
    snaps.add("image-top")
    snaps.add("container-rw", "image-top")
    removed = collect(store, leases, snapshotters={"overlayfs": snaps},
                      roots=[(SNAPSHOT, "overlayfs/container-rw")])
    assert removed.nodes == set() and len(snaps.snapshots) == 2


def test_a_snapshot_that_cannot_be_removed_is_reported_as_skipped(
        store: LocalStore, leases: SQLiteLeases) -> None:
    class Stubborn(MemorySnapshotter):
        def remove(self, key: str) -> None:
            raise FailedPrecondition(f"snapshot {key!r} is mounted")

    snaps = Stubborn()
    snaps.add("mounted")
    removed = collect(store, leases, snapshotters={"ss": snaps})
    assert removed.snapshots == []
    assert removed.skipped == [((SNAPSHOT, "ss/mounted"), "snapshot 'mounted' is mounted")]


def test_ingests_go_when_stale_and_unlocked(store: LocalStore, leases: SQLiteLeases) -> None:
    with store.writer("stale") as w:
        w.write(b"s")
    with store.writer("active") as active:
        active.write(b"a")
        later = datetime.now(UTC) + timedelta(hours=2)
        removed = collect(store, leases, grace=timedelta(hours=1), now=later)
        assert removed.ingests == ["stale"]
        assert store.status("active").offset == 1
    assert collect(store, leases, grace=timedelta(hours=1)).ingests == []  # fresh
    assert collect(store, leases, grace=timedelta(0)).ingests == ["active"]


def test_an_ingest_keeps_the_content_it_expects(store: LocalStore, leases: SQLiteLeases) -> None:
    digest = put(store, b"expected")
    with store.writer("pending", total=99) as w:
        w.write(b"e")
    (store.layout.ingest("pending") / "expected").write_text(digest)
    assert collect(store, leases, grace=timedelta(hours=1)).content == []
    removed = collect(store, leases, grace=timedelta(0))
    assert (removed.ingests, removed.content) == (["pending"], [digest])


def test_collection_recovers_a_blob_left_without_a_row(
        store: LocalStore, leases: SQLiteLeases) -> None:
    digest = of_bytes(b"crashed commit")
    store.layout.blob(digest).write_bytes(b"crashed commit")
    assert collect(store, leases).content == [digest]
    assert not store.layout.blob(digest).exists()


# -- the promise, over random graphs --------------------------------------------------------

@dataclass
class World:
    blobs: list[bytes]
    content_labels: list[dict[str, str]]
    snapshot_parents: list[int | None]
    snapshot_labels: list[dict[str, str]]
    leases: list[tuple[bool, list[tuple[str, int]]]]  # (expired, [(kind, index)])
    images: set[int]
    extra_snapshot_roots: set[int]


@st.composite
def worlds(draw: st.DrawFn) -> World:
    n_content = draw(st.integers(0, 7))
    n_snap = draw(st.integers(0, 6))
    blobs = [f"blob-{i}".encode() for i in range(n_content)]
    digests = [str(of_bytes(b)) for b in blobs]
    content_idx = st.integers(0, max(n_content - 1, 0))
    snap_idx = st.integers(0, max(n_snap - 1, 0))

    def labels() -> dict[str, str]:
        out: dict[str, str] = {}
        if n_content:
            for j, t in enumerate(draw(st.lists(content_idx, max_size=3))):
                out[f"{REF}.{j}"] = digests[t]
            for j, t in enumerate(draw(st.lists(content_idx, max_size=1))):
                out[f"containerd.io/gc.bref.content.{j}"] = digests[t]
        if n_snap:
            for j, t in enumerate(draw(st.lists(snap_idx, max_size=2))):
                out[f"{SNAP}ss/{j}"] = f"s{t}"
        if draw(st.integers(0, 4)) == 0:
            out[ROOT] = ""
        return out

    content_labels = [labels() for _ in range(n_content)]
    parents = [draw(st.none() | st.integers(0, i - 1)) if i else None for i in range(n_snap)]
    snapshot_labels = [labels() for _ in range(n_snap)]
    kinds = [k for k, n in (("content", n_content), ("snapshot", n_snap)) if n]
    lease_list = []
    for _ in range(draw(st.integers(0, 3))):
        held = []
        if kinds:
            for kind in draw(st.lists(st.sampled_from(kinds), max_size=3)):
                held.append((kind, draw(content_idx if kind == "content" else snap_idx)))
        lease_list.append((draw(st.booleans()), held))
    images = draw(st.sets(content_idx, max_size=2)) if n_content else set()
    extra = draw(st.sets(snap_idx, max_size=1)) if n_snap else set()
    return World(blobs, content_labels, parents, snapshot_labels, lease_list, images, extra)


def reachable(world: World) -> tuple[set[int], set[int]]:
    """The test's own model of reachability, written separately from gc.py."""
    digests = [str(of_bytes(b)) for b in world.blobs]
    index_of = {d: i for i, d in enumerate(digests)}
    edges: dict[tuple[str, int], set[tuple[str, int]]] = {}

    def add_label_edges(node: tuple[str, int], labels: dict[str, str]) -> None:
        for key, value in labels.items():
            if key.startswith(REF + "."):
                edges.setdefault(node, set()).add(("content", index_of[value]))
            elif key.startswith("containerd.io/gc.bref.content."):
                edges.setdefault(("content", index_of[value]), set()).add(node)
            elif key.startswith(SNAP + "ss/"):
                edges.setdefault(node, set()).add(("snapshot", int(value[1:])))

    roots: set[tuple[str, int]] = set()
    for i, labels in enumerate(world.content_labels):
        add_label_edges(("content", i), labels)
        if ROOT in labels:
            roots.add(("content", i))
    for i, labels in enumerate(world.snapshot_labels):
        add_label_edges(("snapshot", i), labels)
        if ROOT in labels:
            roots.add(("snapshot", i))
        parent = world.snapshot_parents[i]
        if parent is not None:
            edges.setdefault(("snapshot", i), set()).add(("snapshot", parent))
    roots |= {("content", i) for i in world.images}
    roots |= {("snapshot", i) for i in world.extra_snapshot_roots}
    for expired, held in world.leases:
        if not expired:
            roots |= set(held)
    seen: set[tuple[str, int]] = set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(edges.get(node, ()))
    return ({i for k, i in seen if k == "content"}, {i for k, i in seen if k == "snapshot"})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_collection_never_removes_what_is_reachable(world: World) -> None:
    with tempfile.TemporaryDirectory() as tmp, LocalStore(tmp) as store:
        leases = SQLiteLeases(store.db)
        digests = [put(store, b, labels) for b, labels in zip(world.blobs, world.content_labels,
                                                                 strict=True)]
        snaps = MemorySnapshotter()
        for i, parent in enumerate(world.snapshot_parents):
            snaps.add(f"s{i}", None if parent is None else f"s{parent}", world.snapshot_labels[i])
        past = datetime.now(UTC) - timedelta(minutes=1)
        for n, (expired, held) in enumerate(world.leases):
            leases.create(f"lease-{n}", expiry=past if expired else None)
            for kind, i in held:
                resource = (Resource.content(digests[i]) if kind == "content"
                            else Resource.snapshot("ss", f"s{i}"))
                leases.add_resource(f"lease-{n}", resource)

        removed = collect(store, leases, snapshotters={"ss": snaps},
                          images={f"img-{i}": digests[i] for i in world.images},
                          roots=[(SNAPSHOT, f"ss/s{i}") for i in world.extra_snapshot_roots])

        live_content, live_snapshots = reachable(world)
        left = stored(store)
        assert {digests[i] for i in live_content} <= left
        assert {f"s{i}" for i in live_snapshots} <= set(snaps.snapshots)
        assert set(removed.content) == set(digests) - {digests[i] for i in live_content}
        assert set(removed.snapshots) == {f"ss/s{i}" for i in range(len(world.snapshot_parents))
                                          if i not in live_snapshots}
        assert removed.skipped == []
        assert set(removed.leases) == {f"lease-{n}" for n, (expired, _) in
                                       enumerate(world.leases) if expired}
        assert (INGEST, "x") not in removed.nodes
