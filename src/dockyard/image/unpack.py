"""Unpack: an image's layers become committed snapshots named by their chain IDs.

    layer i ──decompress, hash, untar (one pass)──► active "extract-…" ──commit──► chainID(0..i)

A chain ID that is already committed is not unpacked again, so images that share a base share
its snapshots. Where the snapshotter can rebase (overlay: an upper dir does not depend on what
is under it), the missing layers are unpacked side by side, each into a snapshot with no
parent, on `threads` threads, and committed in order onto their parents; the others go one
after the other, each onto the last. Either way nothing is committed before its digests are
verified, and a failure removes every active snapshot it made.

The layer is written straight into the snapshot's directory (the bind source, or overlay's
upper dir), never through a mount: overlay whiteouts are written as overlayfs stores them
(a 0/0 character device, the opaque xattr), a copying snapshotter's tree gets them applied
(deleted). Layer 0 of a chain always deletes: no lower dir would hide its whiteouts.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from dockyard.image.content.store import Provider
from dockyard.image.digest import Digest
from dockyard.image.errors import AlreadyExists, InvalidArgument, NotFound
from dockyard.image.layers.apply import Applied, apply_layer
from dockyard.image.layers.chain import chain_ids
from dockyard.image.manifest import Descriptor
from dockyard.image.mediatypes import LAYERS
from dockyard.image.snapshots import Kind, Mount, Snapshotter

LABEL_UNCOMPRESSED = "containerd.io/uncompressed"  # on a layer blob: its diff ID


@dataclass(frozen=True)
class Layer:
    """A layer blob and the diff ID its image config gives for it."""

    descriptor: Descriptor
    diff_id: Digest


Opener = Callable[[Layer], BinaryIO]
Hold = Callable[[str], None]


def layers_of(descriptors: Sequence[Descriptor], diff_ids: Sequence[str]) -> list[Layer]:
    """Pair a manifest's layers with its config's diff IDs, refusing what cannot unpack."""
    if len(descriptors) != len(diff_ids):
        raise InvalidArgument(f"the manifest has {len(descriptors)} layers but the image "
                              f"config lists {len(diff_ids)} diff IDs")
    for d in descriptors:
        if d.media_type not in LAYERS:
            raise InvalidArgument(f"layer {d.digest}: media type {d.media_type!r} is not a "
                                  "layer this engine can unpack")
    return [Layer(d, Digest(i)) for d, i in zip(descriptors, diff_ids, strict=True)]


def from_store(content: Provider) -> Opener:
    def open_blob(layer: Layer) -> BinaryIO:
        return content.reader_at(layer.descriptor.digest)  # type: ignore[return-value]
    return open_blob


def unpack(snapshotter: Snapshotter, layers: Sequence[Layer], open_layer: Opener, *,
           threads: int = 2, hold: Hold | None = None,
           verified: bool = False) -> Digest | None:
    """Make chainID(layers) a committed snapshot; return it (None for no layers).

    `hold(key)` is called with every snapshot key and name before it is made, so the caller
    can put it in a lease that keeps a garbage collection off it meanwhile. `verified` says
    the blobs' digests were checked already (the content store does, at commit): only the
    diff IDs are then computed.
    """
    if not layers:
        return None
    chain = chain_ids([layer.diff_id for layer in layers])
    if _committed(snapshotter, chain[-1]):
        return chain[-1]
    todo = [i for i, c in enumerate(chain) if not _committed(snapshotter, c)]
    job = _Unpack(snapshotter, layers, chain, open_layer, hold or (lambda key: None), verified)
    if getattr(snapshotter, "rebase", False) and threads > 1 and len(todo) > 1:
        job.side_by_side(todo, threads)
    else:
        for i in todo:
            job.extract(i, parent=chain[i - 1] if i else "")
            job.commit(i, rebase=False)
    return chain[-1]


class _Unpack:
    def __init__(self, snapshotter: Snapshotter, layers: Sequence[Layer], chain: list[Digest],
                 open_layer: Opener, hold: Hold, verified: bool) -> None:
        self.sn, self.layers, self.chain = snapshotter, layers, chain
        self.open_layer, self.hold, self.verified = open_layer, hold, verified
        self.prefix = f"extract-{uuid.uuid4().hex[:12]}"

    def key(self, i: int) -> str:
        return f"{self.prefix}-{self.chain[i]}"

    def extract(self, i: int, parent: str, rebased: bool = False) -> Applied:
        """Prepare layer i's snapshot (on `parent`, "" for none) and apply the layer to it;
        on failure the snapshot is removed. A layer to be `rebased` keeps its whiteouts."""
        key = self.key(i)
        self.hold(key)
        mounts = self.sn.prepare(key, parent, {"containerd.io/snapshot.ref": self.chain[i]})
        try:
            target, overlay = layer_dir(mounts)
            whiteouts = "overlay" if overlay or (rebased and i) else "delete"
            layer = self.layers[i]
            with self.open_layer(layer) as stream:
                d = layer.descriptor.digest
                return apply_layer(target, stream, whiteouts=whiteouts,
                                   expected_digest=None if self.verified else d,
                                   trusted_digest=d if self.verified else None,
                                   expected_diff_id=layer.diff_id)
        except BaseException:
            _discard(self.sn, key)
            raise

    def commit(self, i: int, rebase: bool) -> None:
        key, name = self.key(i), self.chain[i]
        self.hold(name)
        try:
            if rebase:
                self.sn.commit(name, key, parent=self.chain[i - 1] if i else "")
            else:
                self.sn.commit(name, key)
        except AlreadyExists:  # another unpack of the same chain won the race: use its
            _discard(self.sn, key)

    def side_by_side(self, todo: list[int], threads: int) -> None:
        """Extract on a pool, commit in chain order as each one's turn comes."""
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="unpack") as pool:
            futures: dict[int, Future[Applied]] = {
                i: pool.submit(self.extract, i, "", True) for i in todo}
            try:
                for i in todo:
                    futures[i].result()  # raises what the extract raised
                    self.commit(i, rebase=True)
            except BaseException:
                for f in futures.values():
                    f.cancel()
                for i, f in futures.items():
                    if not f.cancelled() and f.exception() is None:
                        _discard(self.sn, self.key(i))
                raise


def _committed(sn: Snapshotter, name: str) -> bool:
    try:
        return sn.stat(name).kind is Kind.COMMITTED
    except NotFound:
        return False


def layer_dir(mounts: Sequence[Mount]) -> tuple[Path, bool]:
    """The directory a layer is written into, and whether it is an overlay upper dir."""
    if len(mounts) == 1 and mounts[0].type == "bind":
        return Path(mounts[0].source), False
    if len(mounts) == 1 and mounts[0].type == "overlay":
        for option in mounts[0].options:
            if option.startswith("upperdir="):
                return Path(option[len("upperdir="):]), True
    raise InvalidArgument(f"cannot unpack a layer into mounts {list(mounts)!r}")


def _discard(sn: Snapshotter, key: str) -> None:
    try:
        sn.remove(key)
    except NotFound:
        pass
