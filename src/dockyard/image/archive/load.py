"""Load images from `docker save` archives and OCI image layouts (a directory or a tar).

Which format is recognised by what the archive holds:

    index.json + oci-layout    an OCI image layout (also what docker save writes since 25.0,
                               beside its manifest.json): blobs are taken as they are, by
                               digest, so manifest and image IDs survive the trip
    manifest.json only         Docker's older format: `<id>/layer.tar` files and a config;
                               a Docker schema 2 manifest is written over them

Every blob is verified (digest and size where they are announced; each layer's diff ID
against the config, by the unpack or by a hash of its uncompressed stream). Everything is
copied under a lease and named only at the end, so a failure leaves nothing named, and what
was copied is garbage for the next collection. Names come from `RepoTags` (manifest.json),
`io.containerd.image.name`, or `org.opencontainers.image.ref.name` (a whole reference, or a
tag joined to `base_name`); an image with none is named by its manifest digest.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.image import manifest as spec
from dockyard.image import mediatypes as mt
from dockyard.image import reference
from dockyard.image.archive.source import Source, clean, open_source
from dockyard.image.digest import Digest
from dockyard.image.errors import DigestMismatch, InvalidArgument, NotFound
from dockyard.image.layers.compression import decompressor, detect
from dockyard.image.library import MAX_JSON_BLOB, ImageLibrary, index_labels, manifest_labels
from dockyard.image.manifest import Descriptor

ANNOTATION_NAME = "io.containerd.image.name"
ANNOTATION_REF = "org.opencontainers.image.ref.name"
SPOOL_CHUNK = 1 << 20


@dataclass
class Loaded:
    """What a load did: the names it set (full references) and the images it unpacked."""

    names: list[str] = field(default_factory=list)
    targets: dict[str, Descriptor] = field(default_factory=dict)  # name -> target
    unpacked: dict[str, str] = field(default_factory=dict)  # manifest digest -> chain ID


def load(lib: ImageLibrary, path: str | os.PathLike[str], *, base_name: str | None = None,
         unpack: bool = True, threads: int = 2) -> Loaded:
    """Load every image of the archive at `path` (a tar, gzip'd or zstd'd tar, or an OCI
    layout directory) into `lib`, unpacking each for the host platform unless told not to."""
    with _opened(Path(path), lib.root) as source, lib.lease() as lease:
        if source.exists("index.json") and source.exists("oci-layout"):
            found = _OciLoader(lib, source, lease, threads).load(base_name)
        elif source.exists("manifest.json"):
            found = _DockerLoader(lib, source, lease, threads).load()
        else:
            raise InvalidArgument("invalid archive: it holds neither manifest.json nor an OCI "
                                  "layout (index.json and oci-layout)")
        loaded = Loaded()
        for target in {t.digest: t for _n, t in found}.values():
            try:
                resolved = lib.resolve(target)
            except NotFound:
                continue  # an index with no manifest for this platform: stored, not run
            if not unpack:
                verify_diff_ids(lib, [(x.descriptor, x.diff_id) for x in resolved.layers])
                continue
            chain = lib.unpack(target, threads=threads)
            if chain is not None:
                loaded.unpacked[resolved.descriptor.digest] = chain
        for name, target in found:
            lib.tag(name, target)
            loaded.names.append(name)
            loaded.targets[name] = target
        return loaded


class _opened:
    """The archive as a Source; a compressed tar is first decompressed beside the store."""

    def __init__(self, path: Path, scratch: Path) -> None:
        self.path, self.scratch, self.temp = path, scratch, None

    def __enter__(self) -> Source:
        if self.path.is_file():
            with open(self.path, "rb") as f:
                compression = detect(f.read(8))
                if compression:
                    f.seek(0)
                    self.temp = tempfile.NamedTemporaryFile(dir=self.scratch, prefix="load-",
                                                            suffix=".tar")
                    shutil.copyfileobj(decompressor(f, compression), self.temp, SPOOL_CHUNK)
                    self.temp.flush()
        self.source = open_source(self.temp.name if self.temp else self.path)
        return self.source

    def __exit__(self, *exc: object) -> None:
        self.source.close()
        if self.temp is not None:
            self.temp.close()


def _json(source: Source, name: str) -> Any:
    data = source.read(name, MAX_JSON_BLOB)
    try:
        return json.loads(data)
    except ValueError as e:
        raise InvalidArgument(f"invalid archive: {name} is not JSON: {e}") from None


def _name(text: str) -> str:
    return str(reference.parse_tagged(text))


class _OciLoader:
    def __init__(self, lib: ImageLibrary, source: Source, lease: str, threads: int) -> None:
        self.lib, self.source, self.lease, self.threads = lib, source, lease, threads
        self.stored: set[str] = set()

    def blob(self, d: Descriptor) -> None:
        if d.digest in self.stored:
            return
        path = f"blobs/{d.digest.algorithm}/{d.digest.encoded}"
        with self.source.open(path) as stream:
            self.lib.put_stream(stream, self.lease, expected=d.digest, size=d.size)
        self.stored.add(d.digest)

    def load(self, base_name: str | None) -> list[tuple[str, Descriptor]]:
        layout = _json(self.source, "oci-layout")
        if not isinstance(layout, dict) or layout.get("imageLayoutVersion") != "1.0.0":
            raise InvalidArgument("invalid archive: oci-layout must say imageLayoutVersion "
                                  "1.0.0")
        index_bytes = self.source.read("index.json", MAX_JSON_BLOB)
        index = spec.parse_index(index_bytes, mt.OCI_INDEX)
        layers: dict[str, Descriptor] = {}
        for d in index.manifests:
            self.walk(d, layers, top=True)
        with ThreadPoolExecutor(self.threads) as pool:
            list(pool.map(self.blob, layers.values()))
        tags = self.repo_tags()
        found: list[tuple[str, Descriptor]] = []
        for d in index.manifests:
            bare = Descriptor(d.media_type, d.digest, d.size, platform=d.platform)
            names = [n for n in (self.name_of(d, base_name),) if n]
            names += [n for n in tags.get(d.digest, ()) if n not in names]
            if not names and spec.is_manifest(d.media_type):
                config = spec.parse_manifest(self.lib.read_json(d), d.media_type).config
                names = list(tags.get(config.digest, ()))
            for name in names or [str(d.digest)]:
                found.append((name, bare))
        return found

    def walk(self, d: Descriptor, layers: dict[str, Descriptor], top: bool = False) -> None:
        """Store manifests, indexes and configs now; collect layers to copy on threads."""
        if spec.is_index(d.media_type) or spec.is_manifest(d.media_type):
            path = f"blobs/{d.digest.algorithm}/{d.digest.encoded}"
            if not top and not self.source.exists(path):
                return  # a platform the archive does not carry
            data = self.source.read(path, MAX_JSON_BLOB)
            if spec.is_index(d.media_type):
                child = spec.parse_index(data, d.media_type, d.digest)
                for m in child.manifests:
                    self.walk(m, layers)
                self.lib.put_json(data, d.media_type, self.lease, index_labels(child),
                                  d.digest)
            else:
                man = spec.parse_manifest(data, d.media_type, d.digest)
                self.blob(man.config)
                for layer in man.layers:
                    layers[layer.digest] = layer
                self.lib.put_json(data, d.media_type, self.lease, manifest_labels(man),
                                  d.digest)
            self.stored.add(d.digest)
        else:
            self.blob(d)

    def name_of(self, d: Descriptor, base_name: str | None) -> str | None:
        full = d.annotations.get(ANNOTATION_NAME)
        if full:
            return _name(full)
        ref = d.annotations.get(ANNOTATION_REF)
        if not ref:
            return None
        if base_name and ":" not in ref and "/" not in ref:
            return _name(f"{base_name}:{ref}")
        try:
            return _name(ref)
        except InvalidArgument:
            if base_name:
                return _name(f"{base_name}:{ref}")
            raise InvalidArgument(f"image name {ref!r} in index.json is only a tag: give a "
                                  "base name to load it under") from None

    def repo_tags(self) -> dict[str, list[str]]:
        """Config digest -> names, from a manifest.json beside the layout (docker save)."""
        if not self.source.exists("manifest.json"):
            return {}
        out: dict[str, list[str]] = {}
        for entry in _docker_entries(self.source):
            config = clean(entry["Config"])
            if config.startswith("blobs/"):
                algorithm, _, encoded = config[len("blobs/"):].partition("/")
                out.setdefault(f"{algorithm}:{encoded}", []).extend(
                    _name(t) for t in entry.get("RepoTags") or ())
        return out


def _docker_entries(source: Source) -> list[dict[str, Any]]:
    entries = _json(source, "manifest.json")
    if not isinstance(entries, list):
        raise InvalidArgument("invalid archive: manifest.json must be a list")
    for e in entries:
        if not isinstance(e, dict) or not isinstance(e.get("Config"), str):
            raise InvalidArgument("invalid archive: manifest.json entry without Config")
        layers, tags = e.get("Layers", []), e.get("RepoTags") or []
        if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
            raise InvalidArgument("invalid archive: manifest.json Layers must be a list of "
                                  "paths")
        if not isinstance(tags, list) or not all(isinstance(x, str) for x in tags):
            raise InvalidArgument("invalid archive: manifest.json RepoTags must be a list of "
                                  "names")
    return entries


class _DockerLoader:
    def __init__(self, lib: ImageLibrary, source: Source, lease: str, threads: int) -> None:
        self.lib, self.source, self.lease, self.threads = lib, source, lease, threads

    def layer(self, path: str, diff_id: Digest) -> Descriptor:
        with self.source.open(path) as f:
            head = f.read(8)
        compression = detect(head)
        expected = diff_id if not compression else None
        with self.source.open(path) as stream:
            digest, size = self.lib.put_stream(stream, self.lease, expected=expected)
        return Descriptor(mt.layer_type(compression, docker=True), digest, size)

    def load(self) -> list[tuple[str, Descriptor]]:
        found: list[tuple[str, Descriptor]] = []
        for entry in _docker_entries(self.source):
            config_bytes = self.source.read(entry["Config"], MAX_JSON_BLOB)
            config = spec.parse_config(config_bytes)
            paths = entry.get("Layers", [])
            if len(paths) != len(config.rootfs_diff_ids):
                raise InvalidArgument(f"invalid archive: {entry['Config']} lists "
                                      f"{len(config.rootfs_diff_ids)} layers, manifest.json "
                                      f"{len(paths)}")
            with ThreadPoolExecutor(self.threads) as pool:
                layers = list(pool.map(self.layer, paths, config.rootfs_diff_ids))
            target = self.lib.put_image(config_bytes, layers, self.lease, docker=True)
            names = [_name(t) for t in entry.get("RepoTags") or ()]
            for name in names or [str(target.digest)]:
                found.append((name, target))
        return found


def verify_diff_ids(lib: ImageLibrary, layers: Iterable[tuple[Descriptor, Digest]]) -> None:
    """Hash each layer's uncompressed stream against its diff ID (a load that does not
    unpack still refuses a layer that is not what its config says)."""
    for d, diff_id in layers:
        got = lib.uncompressed_digest(d.digest, mt.layer_compression(d.media_type),
                                      diff_id.algorithm)
        if got != diff_id:
            raise DigestMismatch(f"layer {d.digest}: uncompressed digest is {got}, "
                                 f"config says {diff_id}")

