"""Hand-made archives for the loader's tests: Docker's pre-25 `docker save` format, built
member by member so that a test can make it wrong in exactly one way."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

Files = dict[str, bytes | str | None]  # path -> content; str = symlink target; None = dir


def layer_tar(files: Files) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
                tar.addfile(info)
            else:
                info.size, info.mode = len(content), 0o644
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def config_for(layers: list[bytes], **extra: Any) -> bytes:
    doc = {"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
           "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
           "rootfs": {"type": "layers", "diff_ids": [sha256(x) for x in layers]},
           "history": [{"created_by": f"layer {i}"} for i in range(len(layers))]}
    doc.update(extra)
    return json.dumps(doc).encode()


def docker_archive(path: Path, layers: list[bytes], tags: list[str], *, gzip_layers: bool = False,
                   edit: Callable[[list[dict[str, Any]]], None] | None = None,
                   extra: list[tuple[tarfile.TarInfo, bytes | None]] = (),  # type: ignore[assignment]
                   diff_layers: list[bytes] | None = None) -> Path:
    """An archive as docker 20.10's `docker save` writes it: `<id>/layer.tar`, `<id>.json`,
    manifest.json and repositories. `diff_layers` lets the config lie about the layers."""
    config = config_for(diff_layers if diff_layers is not None else layers)
    config_name = sha256(config).split(":")[1] + ".json"
    members: list[tuple[str, bytes]] = [(config_name, config)]
    paths = []
    for i, layer in enumerate(layers):
        blob = gzip.compress(layer, mtime=0) if gzip_layers else layer
        d = f"{i:064x}"
        members += [(f"{d}/VERSION", b"1.0"), (f"{d}/json", b"{}"), (f"{d}/layer.tar", blob)]
        paths.append(f"{d}/layer.tar")
    manifest = [{"Config": config_name, "RepoTags": tags, "Layers": paths}]
    if edit:
        edit(manifest)
    members.append(("manifest.json", json.dumps(manifest).encode()))
    members.append(("repositories", b"{}"))
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info, data in extra:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _blob(root: Path, data: bytes, algorithm: str) -> dict[str, Any]:
    digest = f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
    path = root / "blobs" / algorithm / digest.split(":")[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"digest": digest, "size": len(data)}


def oci_layout(root: Path, platforms: dict[str, list[bytes]], *, ref: str = "v1",
               algorithm: str = "sha256", missing: tuple[str, ...] = ()) -> Path:
    """An OCI layout whose index.json names one multi-platform index: `platforms` maps
    "os/arch" to its layers (plain tars), `missing` leaves those platforms' blobs out."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    manifests = []
    for platform, layers in platforms.items():
        os_name, arch = platform.split("/")
        config = config_for(layers, architecture=arch, os=os_name)
        layer_descs = [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        **_blob(root, gzip.compress(x, mtime=0), algorithm)} for x in layers]
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       **_blob(root, config, algorithm)},
            "layers": layer_descs}).encode()
        desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                **_blob(root, manifest, algorithm),
                "platform": {"os": os_name, "architecture": arch}}
        if platform in missing:
            for d in [desc, *layer_descs]:
                (root / "blobs" / algorithm / d["digest"].split(":")[1]).unlink()
        manifests.append(desc)
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": manifests}).encode()
    top = {"mediaType": "application/vnd.oci.image.index.v1+json", **_blob(root, index, algorithm),
           "annotations": {"org.opencontainers.image.ref.name": ref}}
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    return root
