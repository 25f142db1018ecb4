"""`dockyard-registry` as processes: `serve` with bearer auth from its own `token-server`,
driven by our client (a user pushes, anyone pulls, an anonymous push is refused), then
`garbage-collect` with and without --dry-run."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time

import aiohttp
import pytest

from dockyard.distribution.auth import RegistryAuth
from dockyard.distribution.credentials import Credentials
from dockyard.distribution.errors import Unauthorized
from dockyard.distribution.hosts import Redirect, RegistryHosts
from dockyard.distribution.transfer import pull, push
from dockyard.image.imports import bootstrap
from dockyard.image.library import ImageLibrary
from dockyard.registry.auth.htpasswd import entry
from dockyard.registry.storage.blobs import RegistryStore
from dockyard.registry.storage.filesystem import FilesystemDriver
from tests.conformance.snapshot_trees import scratch_dir
from tests.integration.registry.processes import TOOL, process, signing_key
from tests.refregistry import free_port

pytestmark = pytest.mark.root

BUSYBOX = "docker.io/library/busybox:latest"


def test_serve_with_its_own_token_server_then_collect_garbage() -> None:
    with scratch_dir("dyt-regcli-") as work:
        key, cert = signing_key(work)
        (work / "htpasswd").write_text(entry("alice", "wonderland") + "\n")
        token_port, reg_port = free_port(), free_port()
        realm = f"http://127.0.0.1:{token_port}/token"
        (work / "config.yml").write_text(
            f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {work / 'data'}\n"
            f"http:\n  addr: 127.0.0.1:{reg_port}\nauth:\n  token:\n    realm: {realm}\n"
            f"    service: dockyard-test\n    issuer: dockyard-token\n"
            f"    rootcertbundle: {cert}\n")
        host = f"127.0.0.1:{reg_port}"
        hosts = RegistryHosts(redirects={host: Redirect(f"http://{host}")})
        alice = RegistryAuth(lambda h: Credentials(h, "alice", "wonderland"))
        nobody = RegistryAuth(lambda h: None)

        async def go(lib: ImageLibrary, other: ImageLibrary) -> None:
            async with aiohttp.ClientSession() as s:
                await push(lib, BUSYBOX, f"{host}/team/box:v1", session=s, hosts=hosts,
                           auth=alice)
                pulled = await pull(other, f"{host}/team/box:v1", session=s, hosts=hosts,
                                    auth=nobody)
                assert pulled.target == lib.get(BUSYBOX).target
                with pytest.raises(Unauthorized):
                    await push(lib, BUSYBOX, f"{host}/team/box:v2", session=s, hosts=hosts,
                               auth=nobody)

        with process(["token-server", "--addr", f"127.0.0.1:{token_port}", "--key", str(key),
                      "--issuer", "dockyard-token", "--service", "dockyard-test",
                      "--htpasswd", str(work / "htpasswd")], realm), \
                process(["serve", str(work / "config.yml")], f"http://{host}/v2/"), \
                ImageLibrary(work / "a") as a, ImageLibrary(work / "b") as b:
            bootstrap(a, unpack=False)
            asyncio.run(go(a, b))

        store = RegistryStore(FilesystemDriver(work / "data"))
        orphan = store.put_blob("team/box", b"nobody points at me")
        for top, _dirs, files in os.walk(work / "data" / "docker"):
            for f in files:  # older than the grace period that protects pushes in flight
                os.utime(os.path.join(top, f), (time.time() - 7200,) * 2)
        dry = subprocess.run([*TOOL, "garbage-collect", str(work / "config.yml"), "--dry-run"],
                             capture_output=True, text=True, check=True).stdout
        assert f"blob eligible for deletion: {orphan}" in dry
        assert "3 blobs marked, 1 blobs and 0 manifests eligible for deletion (dry run" in dry
        assert store.blob_exists("team/box", orphan)
        real = subprocess.run([*TOOL, "garbage-collect", str(work / "config.yml")],
                              capture_output=True, text=True, check=True).stdout
        assert "1 blobs and 0 manifests eligible for deletion, " in real
        assert not store.blob_exists("team/box", orphan)
        assert store.tags("team/box") == ["v1"]


def test_serve_purges_abandoned_uploads_on_its_own() -> None:
    with scratch_dir("dyt-regpurge-") as work:
        port = free_port()
        (work / "config.yml").write_text(
            f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {work / 'data'}\n"
            "  maintenance:\n    uploadpurging:\n      age: 1s\n      interval: 200ms\n"
            f"http:\n  addr: 127.0.0.1:{port}\n")
        base = f"http://127.0.0.1:{port}"

        async def abandon() -> str:
            async with aiohttp.ClientSession() as s:
                r = await s.post(f"{base}/v2/purge/app/blobs/uploads/")
                assert r.status == 202
                return r.headers["Location"]

        async def status(location: str) -> int:
            async with aiohttp.ClientSession() as s:
                r = await s.get(base + location if location.startswith("/") else location)
                return r.status

        with process(["serve", str(work / "config.yml")], f"{base}/v2/"):
            location = asyncio.run(abandon())
            assert asyncio.run(status(location)) == 204
            deadline = time.monotonic() + 10
            while asyncio.run(status(location)) != 404:
                assert time.monotonic() < deadline, "the upload was never purged"
                time.sleep(0.2)
