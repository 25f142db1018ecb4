"""Save images as one archive that both Docker and OCI tools read (what docker save writes
since 25.0): an OCI image layout with Docker's manifest.json and repositories beside it.

    oci-layout                 {"imageLayoutVersion": "1.0.0"}
    index.json                 one descriptor per name, annotated with the full name
                               (io.containerd.image.name) and its tag (…ref.name)
    blobs/<alg>/<encoded>      every index, manifest, config and layer, as stored
    manifest.json              per image: Config, RepoTags, Layers (paths of the blobs above)
    repositories               {familiar name: {tag: top layer's encoded digest}}

Layers keep their compression (the media types say it); Docker, skopeo and umoci detect it.
`oci=True` leaves out manifest.json and repositories. The target is a tar file, a stream, or
(for an OCI layout only) a directory.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from dockyard.image import manifest as spec
from dockyard.image import reference
from dockyard.image.archive.load import ANNOTATION_NAME, ANNOTATION_REF
from dockyard.image.errors import InvalidArgument, NotFound
from dockyard.image.library import ImageLibrary, Resolved
from dockyard.image.manifest import Descriptor, Index
from dockyard.image.platforms import Platform

LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'


class Sink(Protocol):
    def add(self, name: str, size: int, stream: BinaryIO) -> None: ...


class TarSink:
    def __init__(self, out: BinaryIO) -> None:
        self.tar = tarfile.open(fileobj=out, mode="w|",  # noqa: SIM115 (close() ends it)
                                format=tarfile.PAX_FORMAT)
        self.dirs: set[str] = set()

    def add(self, name: str, size: int, stream: BinaryIO) -> None:
        parts = name.split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            if d not in self.dirs:
                self.dirs.add(d)
                info = tarfile.TarInfo(d)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                self.tar.addfile(info)
        info = tarfile.TarInfo(name)
        info.size, info.mode = size, 0o644
        self.tar.addfile(info, stream)

    def close(self) -> None:
        self.tar.close()


class DirSink:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def add(self, name: str, size: int, stream: BinaryIO) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            while chunk := stream.read(1 << 20):
                f.write(chunk)
        os.replace(tmp, path)


def save(lib: ImageLibrary, names: Sequence[str], out: str | os.PathLike[str] | BinaryIO, *,
         oci: bool = False, platform: Platform | None = None) -> None:
    """Write the images called `names` (full references) to `out`."""
    images = [lib.get(n) for n in names]  # NotFound before anything is written
    if not isinstance(out, (str, os.PathLike)):
        tar = TarSink(out)
        _Writer(lib, tar, platform).write(images, oci)
        tar.close()
        return
    path = Path(out)
    if oci and (path.is_dir() or str(out).endswith("/")):
        _Writer(lib, DirSink(path), platform).write(images, oci)
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            tar = TarSink(f)
            _Writer(lib, tar, platform).write(images, oci)
            tar.close()
        os.replace(tmp, path)  # a failed save leaves no half archive under the name
    finally:
        tmp.unlink(missing_ok=True)


class _Writer:
    def __init__(self, lib: ImageLibrary, sink: Sink, platform: Platform | None) -> None:
        self.lib, self.sink, self.platform = lib, sink, platform
        self.written: set[str] = set()

    def blob(self, d: Descriptor) -> None:
        if d.digest in self.written:
            return
        with self.lib.content.reader_at(d.digest) as r:
            self.sink.add(f"blobs/{d.digest.algorithm}/{d.digest.encoded}", d.size,
                          r)  # type: ignore[arg-type]
        self.written.add(d.digest)

    def tree(self, d: Descriptor) -> None:
        """The descriptor's blob and all it references that the store has."""
        if spec.is_index(d.media_type):
            for m in spec.parse_index(self.lib.read_json(d), d.media_type, d.digest).manifests:
                try:
                    self.lib.content.info(m.digest)
                except NotFound:
                    continue  # a platform never pulled: the index still names it
                self.tree(m)
        elif spec.is_manifest(d.media_type):
            man = spec.parse_manifest(self.lib.read_json(d), d.media_type, d.digest)
            self.blob(man.config)
            for layer in man.layers:
                self.blob(layer)
        self.blob(d)

    def write(self, images: list[Any], oci: bool) -> None:
        entries: dict[str, dict[str, Any]] = {}
        repositories: dict[str, dict[str, str]] = {}
        index = []
        for image in images:
            self.tree(image.target)
            ref = _reference(image.name)
            annotations = {ANNOTATION_NAME: image.name}
            if ref is not None and ref.tag:
                annotations[ANNOTATION_REF] = ref.tag
            index.append(Descriptor(image.target.media_type, image.target.digest,
                                    image.target.size, annotations=annotations,
                                    platform=image.target.platform))
            try:
                resolved = self.lib.resolve(image.target, self.platform)
            except NotFound:
                continue
            self.docker_entry(resolved, ref, entries, repositories)
        self.add_json("index.json", Index(manifests=tuple(index)).to_bytes())
        self.add_json("oci-layout", LAYOUT)
        if not oci:
            self.add_json("manifest.json", json.dumps(list(entries.values())).encode())
            self.add_json("repositories", json.dumps(repositories).encode())

    def docker_entry(self, resolved: Resolved, ref: reference.Reference | None,
                     entries: dict[str, dict[str, Any]],
                     repositories: dict[str, dict[str, str]]) -> None:
        config = resolved.manifest.config.digest
        path = f"blobs/{config.algorithm}/{config.encoded}"
        entry = entries.setdefault(config, {
            "Config": path, "RepoTags": [],
            "Layers": [f"blobs/{d.digest.algorithm}/{d.digest.encoded}"
                       for d in resolved.manifest.layers]})
        if ref is not None and ref.tag and not ref.digest:
            entry["RepoTags"].append(ref.familiar())
            if resolved.manifest.layers:
                top = resolved.manifest.layers[-1].digest.encoded
                repositories.setdefault(ref.familiar_name(), {})[ref.tag] = top

    def add_json(self, name: str, data: bytes) -> None:
        self.sink.add(name, len(data), io.BytesIO(data))


def _reference(name: str) -> reference.Reference | None:
    try:
        return reference.parse(name)
    except InvalidArgument:  # a name by digest ("sha256:…") is no reference
        return None

