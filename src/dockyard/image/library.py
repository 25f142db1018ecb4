"""The images of one data root: content, snapshots, names and leases, used together.

    <root>/content/             LocalStore: blobs, ingests, metadata.db (+ names, leases)
    <root>/snapshots/<name>/    the snapshotter: "overlayfs" where overlay works, else "native"

Everything that adds content does it under a lease (expiring after an hour, in case the
process dies), and names the image before the lease ends; a collection in between keeps what
the lease holds. Blobs carry containerd's gc labels, so a collection from the image names
reaches manifests, configs, layers and, through the config, the unpacked snapshots:

    index    containerd.io/gc.ref.content.m.<i>          = manifest digest
    manifest containerd.io/gc.ref.content.config          = config digest
             containerd.io/gc.ref.content.l.<i>           = layer digest
    config   containerd.io/gc.ref.snapshot.<snapshotter>  = chain ID of the unpacked top
    layer    containerd.io/uncompressed                   = its diff ID
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from dockyard.image import manifest as spec
from dockyard.image import platforms
from dockyard.image.content.gc import DEFAULT_GRACE, Removed, collect
from dockyard.image.content.leases import Resource, SQLiteLeases
from dockyard.image.content.local import LocalStore
from dockyard.image.digest import Digest, of_bytes, verify
from dockyard.image.errors import AlreadyExists, InvalidArgument, NotFound
from dockyard.image.images import Image, ImageStore
from dockyard.image.manifest import Descriptor, ImageConfig, Index, Manifest
from dockyard.image.platforms import Platform
from dockyard.image.snapshots import Snapshotter
from dockyard.image.unpack import (
    LABEL_UNCOMPRESSED,
    Layer,
    Opener,
    from_store,
    layer_dir,
    layers_of,
    unpack,
)

LEASE_EXPIRY = timedelta(hours=1)
MAX_JSON_BLOB = 4 << 20  # manifests, indexes and configs larger than this are refused
CHUNK = 1 << 20
GC_CONTENT = "containerd.io/gc.ref.content"
GC_SNAPSHOT = "containerd.io/gc.ref.snapshot"


@dataclass(frozen=True)
class Resolved:
    """One platform's image: its manifest (and descriptor), config and layers."""

    descriptor: Descriptor
    manifest: Manifest
    config: ImageConfig

    @property
    def layers(self) -> list[Layer]:
        return layers_of(self.manifest.layers, self.config.rootfs_diff_ids)


def open_snapshotter(root: Path, name: str | None = None) -> tuple[str, Snapshotter]:
    """"overlayfs" where an overlay mount works under `root`, else the copying "native"."""
    from dockyard.image.snapshots.native import CopySnapshotter
    from dockyard.image.snapshots.overlay import OverlaySnapshotter, overlay_supported

    if name is None:
        (root / "overlayfs").mkdir(parents=True, exist_ok=True)
        name = "overlayfs" if overlay_supported(root / "overlayfs") else "native"
    if name == "overlayfs":
        return name, OverlaySnapshotter(root / "overlayfs")
    if name == "native":
        return name, CopySnapshotter(root / "native")
    raise InvalidArgument(f"unknown snapshotter {name!r}: want overlayfs or native")


class ImageLibrary:
    def __init__(self, root: str | os.PathLike[str], snapshotter: str | None = None) -> None:
        self.root = Path(root).absolute()
        self.content = LocalStore(self.root / "content")
        self.leases = SQLiteLeases(self.content.db)
        self.images = ImageStore(self.content.db)
        self.snapshotter_name, self.snapshotter = open_snapshotter(self.root / "snapshots",
                                                                   snapshotter)

    def close(self) -> None:
        self.snapshotter.close()
        self.content.close()

    def __enter__(self) -> ImageLibrary:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- leases and blobs ---------------------------------------------------------------------

    @contextlib.contextmanager
    def lease(self) -> Iterator[str]:
        """A lease for one import; what it holds is safe from collection until it ends."""
        lease = self.leases.create(f"dockyard-{uuid.uuid4().hex}", expiry=LEASE_EXPIRY).id
        try:
            yield lease
        finally:
            with contextlib.suppress(NotFound):
                self.leases.delete(lease)

    def hold_snapshot(self, lease: str) -> Callable[[str], None]:
        def hold(key: str) -> None:
            self.leases.add_resource(lease, Resource.snapshot(self.snapshotter_name, key))
        return hold

    def put_json(self, data: bytes, media_type: str, lease: str,
                 labels: Mapping[str, str] | None = None,
                 digest: str | None = None) -> Descriptor:
        """Store a manifest, index or config given as bytes (digests are over the bytes;
        `digest`, when given, is checked, and says the algorithm: sha256 or sha512)."""
        if digest is None:
            digest = of_bytes(data)
        else:  # checked here too: a blob already stored is not written (nor hashed) again
            verify(data, digest, len(data))
        digest = Digest(digest)
        self.leases.add_resource(lease, Resource.content(digest))
        self._store_json(data, digest, labels)
        return Descriptor(media_type, digest, len(data))

    def _store_json(self, data: bytes, digest: Digest,
                    labels: Mapping[str, str] | None) -> None:
        """Store bytes whose digest a lease holds already (so a blob found stored is safe
        from then on): one transaction, the commit that records the blob and its labels.
        The bytes are in hand, so the ingest is not resumable: it records no start files."""
        if self._has(digest, len(data)):
            if labels:
                self.label(digest, labels)
            return
        try:
            with self.content.writer(f"json-{digest}", expected=digest, total=len(data),
                                     resumable=False) as w:
                w.write(data)
                w.commit(len(data), digest, labels)
        except AlreadyExists:  # stored meanwhile, by someone else
            if labels:
                self.label(digest, labels)

    def put_stream(self, stream: BinaryIO, lease: str, *, expected: str | None = None,
                   size: int | None = None, ref: str | None = None,
                   labels: Mapping[str, str] | None = None,
                   keep_on_error: bool = False) -> tuple[Digest, int]:
        """Copy a blob from `stream` into the store; `expected` and `size` are checked.
        A failure (a short stream, a wrong digest) leaves no ingest behind unless
        `keep_on_error` keeps it for a resume from a source that can continue."""
        if expected is not None:
            self.leases.add_resource(lease, Resource.content(expected))
            if self._has(expected, size):
                return Digest(expected), self.content.info(expected).size
        ref = ref or f"stream-{uuid.uuid4().hex}"
        self.leases.add_resource(lease, Resource.ingest(ref))
        try:
            with self.content.writer(ref, expected=expected, total=size) as w:
                while chunk := stream.read(CHUNK):
                    w.write(chunk)
                digest = Digest(expected) if expected is not None else w.digest()
                try:
                    w.commit(size, expected, labels)
                except AlreadyExists:
                    if labels:
                        self.label(digest, labels)
        except BaseException:
            if not keep_on_error:
                with contextlib.suppress(NotFound):
                    self.content.abort(ref)
            raise
        self.leases.add_resource(lease, Resource.content(digest))
        return digest, self.content.info(digest).size

    def read_json(self, descriptor: Descriptor) -> bytes:
        if descriptor.size > MAX_JSON_BLOB:
            raise InvalidArgument(f"{descriptor.media_type} {descriptor.digest} is "
                                  f"{descriptor.size} bytes, more than {MAX_JSON_BLOB}")
        with self.content.reader_at(descriptor.digest) as r:
            data = r.read(MAX_JSON_BLOB + 1)
        if len(data) != descriptor.size:
            raise InvalidArgument(f"{descriptor.digest}: {len(data)} bytes stored, "
                                  f"{descriptor.size} expected")
        return data

    def uncompressed_digest(self, digest: str, compression: str,
                            algorithm: str = "sha256") -> Digest:
        """The digest of a stored blob's decompressed stream: a layer's diff ID."""
        from dockyard.image.layers.compression import decompressor

        h = hashlib.new(algorithm)
        with self.content.reader_at(digest) as r:
            stream = decompressor(r, compression)  # type: ignore[arg-type]
            while chunk := stream.read(CHUNK):
                h.update(chunk)
        return Digest(f"{algorithm}:{h.hexdigest()}")

    def label(self, digest: str, labels: Mapping[str, str]) -> None:
        """Set `labels` on a blob; a blob that has them already is not written (a write
        transaction is an fsync, a read is not)."""
        if all(self.content.info(digest).labels.get(k) == v for k, v in labels.items()):
            return
        self.content.update(digest, labels, [f"labels.{k}" for k in labels])

    def _has(self, digest: str, size: int | None) -> bool:
        try:
            info = self.content.info(digest)
        except NotFound:
            return False
        return size is None or info.size == size

    # -- images -------------------------------------------------------------------------------

    def get(self, name: str) -> Image:
        return self.images.get(name)

    def list(self, *filters: str) -> list[Image]:
        return self.images.list(*filters)

    def tag(self, name: str, target: Descriptor, labels: Mapping[str, str] | None = None) -> Image:
        return self.images.put(Image(name, target, dict(labels or {})))

    def remove(self, name: str) -> None:
        self.images.delete(name)

    def resolve(self, target: Descriptor, platform: Platform | None = None) -> Resolved:
        """The manifest of `target` for `platform` (the host's if None), with its config."""
        return resolve(self.read_json, target, platform)

    def unpack(self, name_or_target: str | Descriptor, platform: Platform | None = None, *,
               open_layer: Opener | None = None, threads: int = 2) -> Digest | None:
        """Unpack an image into the snapshotter; return the chain ID of its top layer."""
        target = (self.get(name_or_target).target if isinstance(name_or_target, str)
                  else name_or_target)
        resolved = self.resolve(target, platform)
        with self._lazy_lease() as hold:
            chain = unpack(self.snapshotter, resolved.layers,
                           open_layer or from_store(self.content), threads=threads,
                           hold=hold, verified=open_layer is None)
            if chain is not None:
                with self.content.db.write():  # one transaction (one fsync) for them all
                    self.label(resolved.manifest.config.digest,
                               {f"{GC_SNAPSHOT}.{self.snapshotter_name}": chain})
                    for layer in resolved.layers:
                        self.label(layer.descriptor.digest, {LABEL_UNCOMPRESSED: layer.diff_id})
                    self.images.set_unpacked(resolved.descriptor.digest,
                                             self.snapshotter_name, chain,
                                             platforms.format(resolved.config.platform))
        return chain

    @contextlib.contextmanager
    def _lazy_lease(self) -> Iterator[Callable[[str], None]]:
        """A snapshot holder whose lease is made at the first hold: an image unpacked
        already (what a commit's unpack finds) costs no lease at all."""
        lock = threading.Lock()  # unpack holds from its pool's threads
        with contextlib.ExitStack() as stack:
            made: list[Callable[[str], None]] = []

            def hold(key: str) -> None:
                with lock:
                    if not made:
                        made.append(self.hold_snapshot(stack.enter_context(self.lease())))
                made[0](key)

            yield hold

    # -- diffs --------------------------------------------------------------------------------

    def diff(self, key: str, lease: str, *, compression: str = "gzip",
             docker: bool = False) -> tuple[Descriptor, Digest]:
        """The changes of the active snapshot `key` against its parent, as a layer blob in the
        store (what `docker commit` and a build step make); returns it and its diff ID.

        Overlay: the upper dir is the diff, its whiteouts become `.wh.` entries. A copying
        snapshotter's tree is compared with a read-only view of the parent."""
        from dockyard.image.layers.diff import write_diff
        from dockyard.mounting import mount_all, unmount_all

        info = self.snapshotter.stat(key)
        upper, overlay = layer_dir(self.snapshotter.mounts(key))
        with contextlib.ExitStack() as stack:
            lower = None
            if not overlay and info.parent:
                view = f"diff-view-{uuid.uuid4().hex[:12]}"
                stack.callback(self.snapshotter.remove, view)
                mounts = self.snapshotter.view(view, info.parent)
                lower = Path(stack.enter_context(tempfile.TemporaryDirectory(
                    dir=self.root, prefix="diff-")))
                mount_all(mounts, lower)
                stack.callback(unmount_all, lower)
            # a diff cannot be resumed (it is made afresh), so its ingest records nothing but
            # its data and goes if this fails; the lock keeps it from recovery meanwhile
            with self.content.writer(f"diff-{uuid.uuid4().hex}", resumable=False) as w:
                made = write_diff(lower, upper, w,  # type: ignore[arg-type]
                                  compression=compression,
                                  mode="overlay" if overlay else "compare",
                                  out_digest=w.digest)  # the writer hashes what it takes
                # held before it is committed: a collection in between cannot take it
                self.leases.add_resource(lease, Resource.content(made.digest))
                try:
                    w.commit(made.size, made.digest, {LABEL_UNCOMPRESSED: made.diff_id})
                except AlreadyExists:
                    pass
        media_type = spec.mediatypes.layer_type(compression, docker=docker)
        return Descriptor(media_type, made.digest, made.size), made.diff_id

    # -- writing manifests --------------------------------------------------------------------

    def put_image(self, config: bytes, layers: Iterable[Descriptor], lease: str, *,
                  docker: bool = False, annotations: Mapping[str, str] | None = None
                  ) -> Descriptor:
        """Store a config and the manifest over it and `layers` (already in the store),
        labelled for the collector; return the manifest's descriptor."""
        layers = tuple(layers)
        config_type = spec.mediatypes.DOCKER_CONFIG if docker else spec.mediatypes.OCI_CONFIG
        config_desc = Descriptor(config_type, of_bytes(config), len(config))
        manifest = Manifest(config=config_desc, layers=layers,
                            media_type=(spec.mediatypes.DOCKER_MANIFEST if docker
                                        else spec.mediatypes.OCI_MANIFEST),
                            annotations=dict(annotations or {}))
        data = manifest.to_bytes()
        target = Descriptor(manifest.media_type, of_bytes(data), len(data))
        with self.content.db.write():  # both held in one transaction, before either is written
            self.leases.add_resource(lease, Resource.content(config_desc.digest))
            self.leases.add_resource(lease, Resource.content(target.digest))
        self._store_json(config, config_desc.digest, None)
        self._store_json(data, target.digest, manifest_labels(manifest))
        return target

    def put_index(self, index: Index, lease: str) -> Descriptor:
        return self.put_json(index.to_bytes(), index.media_type, lease, index_labels(index))

    # -- garbage ------------------------------------------------------------------------------

    def gc(self, grace: timedelta = DEFAULT_GRACE, now: datetime | None = None) -> Removed:
        """Remove what no image, lease or container snapshot reaches. `now` and `grace`
        (how long an idle ingest is kept) let a recovery collect a dead process's leftovers
        without waiting for its lease to expire."""
        removed = collect(self.content, self.leases,
                          snapshotters={self.snapshotter_name: self.snapshotter},
                          images=self.images.targets(), grace=grace, now=now)
        gone = {key.partition("/")[2] for key in removed.snapshots}
        if gone:
            self.images.forget_unpacked(self.snapshotter_name, gone)
        return removed


def manifest_labels(manifest: Manifest) -> dict[str, str]:
    labels = {f"{GC_CONTENT}.config": str(manifest.config.digest)}
    labels.update({f"{GC_CONTENT}.l.{i}": str(d.digest) for i, d in enumerate(manifest.layers)})
    return labels


def index_labels(index: Index) -> dict[str, str]:
    return {f"{GC_CONTENT}.m.{i}": str(d.digest) for i, d in enumerate(index.manifests)}


def resolve(read: Callable[[Descriptor], bytes], target: Descriptor,
            platform: Platform | None = None) -> Resolved:
    """The manifest of `target` for `platform` (the host's if None), with its config, reading
    documents with `read`: from a library here, or through the supervisor's content service
    in its clients."""
    want = platform or platforms.host()
    seen = 0
    while spec.is_index(target.media_type):
        seen += 1
        if seen > 8:
            raise InvalidArgument(f"index {target.digest}: nested more than 8 deep")
        index = spec.parse_index(read(target), target.media_type, target.digest)
        chosen = platforms.choose(
            [m for m in index.manifests
             if spec.is_manifest(m.media_type) or spec.is_index(m.media_type)], want=want)
        if chosen is None:
            raise NotFound(f"no match for platform in manifest {target.digest}: "
                           f"not found (want {platforms.format(want)})")
        target = chosen
    if not spec.is_manifest(target.media_type):
        raise InvalidArgument(f"{target.digest}: media type {target.media_type!r} is "
                              "not an image manifest or index")
    manifest = spec.parse_manifest(read(target), target.media_type, target.digest)
    config = spec.parse_config(read(manifest.config), manifest.config.digest)
    return Resolved(target, manifest, config)
