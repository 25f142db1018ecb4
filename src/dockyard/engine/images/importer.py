"""POST /images/create?fromSrc=- : a root filesystem tarball (plain, gzip, zstd, bzip2 or
xz) becomes a one-layer image, as `docker import` makes it.

    body ─► spool (<data-root>/tmp) ─► decompress + sha256 (the diff ID) ─► config
         ─► a docker-save archive (config, layer.tar, manifest.json) ─► transfer Import

The archive route lets the supervisor's loader do what it already does well: store, unpack
and name (an import without a repository is named by its digest: dangling, as in Docker).
"""

from __future__ import annotations

import bz2
import hashlib
import json
import lzma
import shlex
import tarfile
import tempfile
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import grpc

from dockyard.api.services.transfer.v1 import transfer_pb2 as pb
from dockyard.engine.errors import InvalidParameter, from_grpc
from dockyard.image.layers import compression

CHUNK = 1 << 20
CHANGE_KEYS = {"CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "USER", "VOLUME", "WORKDIR",
               "STOPSIGNAL", "ONBUILD"}


def go_arch() -> str:
    import platform

    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


def _command(value: str) -> list[str]:
    value = value.strip()
    if value.startswith("["):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(x, str) for x in parsed):
            return parsed
    return ["/bin/sh", "-c", value]


def _pairs(value: str) -> list[tuple[str, str]]:
    words = shlex.split(value)
    if len(words) == 2 and "=" not in words[0]:  # ENV key value
        return [(words[0], words[1])]
    out = []
    for w in words:
        key, sep, v = w.partition("=")
        if not sep:
            raise InvalidParameter(f"{value}: must be of the form key=value")
        out.append((key, v))
    return out


def apply_changes(changes: Sequence[str]) -> dict[str, Any]:
    """The `changes` query values (Dockerfile instructions) as an image config's `config`."""
    config: dict[str, Any] = {}
    for change in changes:
        word, _, rest = change.strip().partition(" ")
        key = word.upper()
        if key not in CHANGE_KEYS:
            raise InvalidParameter(f"{word} is not a valid change command")
        rest = rest.strip()
        if key in ("CMD", "ENTRYPOINT"):
            config[key.capitalize() if key == "CMD" else "Entrypoint"] = _command(rest)
        elif key == "ENV":
            env = config.setdefault("Env", [])
            env += [f"{k}={v}" for k, v in _pairs(rest)]
        elif key == "LABEL":
            config.setdefault("Labels", {}).update(dict(_pairs(rest)))
        elif key == "EXPOSE":
            for port in rest.split():
                config.setdefault("ExposedPorts", {})[port if "/" in port else
                                                      f"{port}/tcp"] = {}
        elif key == "VOLUME":
            for v in (_command(rest) if rest.startswith("[") else rest.split()):
                config.setdefault("Volumes", {})[v] = {}
        elif key == "WORKDIR":
            config["WorkingDir"] = rest
        elif key == "USER":
            config["User"] = rest
        elif key == "STOPSIGNAL":
            config["StopSignal"] = rest
        elif key == "ONBUILD":
            config.setdefault("OnBuild", []).append(rest)
    return config


def _decompressed(src: BinaryIO) -> BinaryIO:
    head = src.read(8)
    src.seek(0)
    if head.startswith(b"BZh"):
        return bz2.BZ2File(src)  # type: ignore[return-value]
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(src)  # type: ignore[return-value]
    return compression.decompressor(src, compression.detect(head))


def build_archive(body: Path, out: BinaryIO, *, repo_tag: str | None, message: str,
                  changes: Sequence[str], source: str = "-") -> str:
    """Write the docker-save archive of the imported image to `out`; return its ID."""
    config_doc = apply_changes(changes)
    work = body.parent
    layer = work / "layer.tar"
    digest = hashlib.sha256()
    with open(body, "rb") as src, _decompressed(src) as plain, open(layer, "wb") as dst:
        while chunk := plain.read(CHUNK):
            digest.update(chunk)
            dst.write(chunk)
    if layer.stat().st_size and not tarfile.is_tarfile(layer):
        raise InvalidParameter("archive/tar: invalid tar header")
    diff_id = f"sha256:{digest.hexdigest()}"
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    config = {"architecture": go_arch(), "os": "linux", "created": now,
              "config": config_doc,
              "rootfs": {"type": "layers", "diff_ids": [diff_id]},
              "history": [{"created": now, "comment": message or f"Imported from {source}"}]}
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    image_id = hashlib.sha256(config_bytes).hexdigest()
    manifest = [{"Config": f"{image_id}.json", "RepoTags": [repo_tag] if repo_tag else None,
                 "Layers": [f"{digest.hexdigest()}/layer.tar"]}]
    with tarfile.open(fileobj=out, mode="w") as tar:
        _add_bytes(tar, f"{image_id}.json", config_bytes)
        tar.add(layer, arcname=f"{digest.hexdigest()}/layer.tar")
        _add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
    return f"sha256:{image_id}"


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    import io

    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


async def import_rootfs(service: Any, body: AsyncIterator[bytes], *, repo_tag: str | None,
                        message: str, changes: Sequence[str]) -> AsyncIterator[dict[str, Any]]:
    import asyncio

    daemon = service.daemon
    sup = service.sup
    tmp_root = Path(daemon.data_root) / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory(dir=tmp_root, prefix="import-") as work:
        spool = Path(work) / "body"
        with open(spool, "wb") as f:
            async for chunk in body:
                await asyncio.to_thread(f.write, chunk)
        archive = Path(work) / "image.tar"

        def build() -> str:
            with open(archive, "wb") as out:
                return build_archive(spool, out, repo_tag=repo_tag, message=message,
                                     changes=changes)
        try:
            image_id = await asyncio.to_thread(build)
        except (OSError, EOFError, lzma.LZMAError, ValueError) as e:
            raise InvalidParameter(f"invalid tar archive: {e}") from None

        async def requests() -> AsyncIterator[pb.ImportRequest]:
            yield pb.ImportRequest()
            with open(archive, "rb") as f:
                while data := await asyncio.to_thread(f.read, CHUNK):
                    yield pb.ImportRequest(data=data)
        try:
            async for _ in sup.stream(sup.transfer.Import, requests()):
                pass
        except grpc.RpcError as e:
            raise InvalidParameter(from_grpc(e).message) from None
    daemon.events.publish("image", "import", image_id, {"name": image_id})
    yield {"status": image_id}
