"""Our registry server on a free loopback port inside the test's event loop, with an
aiohttp session to drive it:

    def test_x(tmp_path):
        async def body(reg: Server) -> None:
            r = await reg.request("GET", "/v2/")
        serve(tmp_path, body)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from dockyard.registry.server import make_app
from dockyard.registry.storage.blobs import RegistryStore
from dockyard.registry.storage.filesystem import FilesystemDriver

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"


@dataclass
class Reply:
    status: int
    headers: Any
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def codes(self) -> list[str]:
        return [e["code"] for e in self.json()["errors"]]


@dataclass
class Server:
    url: str
    host: str
    session: aiohttp.ClientSession
    store: RegistryStore
    root: Path

    async def request(self, method: str, path: str, **kw: Any) -> Reply:
        url = path if path.startswith("http") else self.url + path
        async with self.session.request(method, url, allow_redirects=False, **kw) as r:
            body = await r.read()
            return Reply(r.status, r.headers, body)

    async def push_blob(self, name: str, data: bytes, alg: str = "sha256") -> str:
        digest = digest_of(data, alg)
        r = await self.request("POST", f"/v2/{name}/blobs/uploads/?digest={digest}", data=data)
        assert r.status == 201, r.body
        return digest

    async def push_manifest(self, name: str, ref: str, doc: dict[str, Any],
                            media_type: str = OCI_MANIFEST) -> tuple[str, Reply]:
        data = json.dumps(doc).encode()
        r = await self.request("PUT", f"/v2/{name}/manifests/{ref}", data=data,
                               headers={"Content-Type": media_type})
        assert r.status == 201, r.body
        return r.headers["Docker-Content-Digest"], r


def digest_of(data: bytes, alg: str = "sha256") -> str:
    return f"{alg}:{hashlib.new(alg, data).hexdigest()}"


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data), **extra}


async def image(reg: Server, name: str, layer: bytes = b"layer", tag: str | None = "v1",
                **fields: Any) -> tuple[str, bytes]:
    """Push a config, one layer and a manifest; return the manifest's digest and bytes."""
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    await reg.push_blob(name, config)
    await reg.push_blob(name, layer)
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": descriptor(OCI_CONFIG, config),
           "layers": [descriptor(OCI_LAYER, layer)], **fields}
    data = json.dumps(doc).encode()
    digest, _ = await reg.push_manifest(name, tag or digest_of(data), doc)
    return digest, data


@contextlib.asynccontextmanager
async def running(root: Path, **options: Any) -> AsyncIterator[Server]:
    store = RegistryStore(FilesystemDriver(root))
    runner = web.AppRunner(make_app(store, **options), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as session:
            yield Server(f"http://127.0.0.1:{port}", f"127.0.0.1:{port}", session, store,
                         root)
    finally:
        await runner.cleanup()


def serve(root: Path, body: Callable[[Server], Awaitable[None]], **options: Any) -> None:
    async def main() -> None:
        async with running(root, **options) as reg:
            await body(reg)
    asyncio.run(main())
