"""Our client over HTTPS with a CA of the test's own (and refused without it), and a
registry killed with -9 in the middle of an upload: after a restart no partial blob is
visible, the upload resumes from what was stored, and the blob lands whole."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from pathlib import Path

import aiohttp
import pytest

from dockyard.distribution.client import Repository
from dockyard.distribution.hosts import Endpoint, TLSConfig
from dockyard.image.manifest import Descriptor
from tests.conformance.snapshot_trees import scratch_dir
from tests.integration.registry.processes import process, signing_key
from tests.refregistry import free_port

pytestmark = pytest.mark.root


def test_https_with_a_custom_ca() -> None:
    with scratch_dir("dyt-regtls-") as work:
        key, cert = signing_key(work, ip="127.0.0.1")
        port = free_port()
        (work / "config.yml").write_text(
            f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {work / 'data'}\n"
            f"http:\n  addr: 127.0.0.1:{port}\n  tls:\n    certificate: {cert}\n"
            f"    key: {key}\n")
        host = f"127.0.0.1:{port}"

        async def go() -> None:
            async with aiohttp.ClientSession() as s:
                trusted = Repository(s, Endpoint("https", host, tls=TLSConfig(
                    verify=True, ca_file=str(cert))), "tls/app", push=True)
                data = b"over tls" * 1000
                d = Descriptor("application/octet-stream",
                               "sha256:" + hashlib.sha256(data).hexdigest(), len(data))
                await trusted.push_blob(d, lambda: open(work / "blob", "rb"))
                assert await trusted.blob_exists(d.digest)
                untrusted = Repository(s, Endpoint("https", host), "tls/app")
                with pytest.raises(aiohttp.ClientConnectorCertificateError):
                    await untrusted.blob_exists(d.digest)

        (work / "blob").write_bytes(b"over tls" * 1000)
        with process(["serve", str(work / "config.yml")], f"https://{host}/v2/"):
            asyncio.run(go())


def test_kill_9_during_an_upload_leaves_no_partial_blob() -> None:
    data = os.urandom(3 << 20)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with scratch_dir("dyt-regcrash-") as work:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        args = ["serve", "--addr", f"127.0.0.1:{port}", "--root", str(work / "data")]

        async def start_upload() -> str:
            async with aiohttp.ClientSession() as s:
                r = await s.post(f"{base}/v2/crash/app/blobs/uploads/")
                location = r.headers["Location"]
                r = await s.patch(base + location if location.startswith("/") else location,
                                  data=data[:1 << 20],
                                  headers={"Content-Range": f"0-{(1 << 20) - 1}"})
                assert r.status == 202
                return r.headers["Location"]

        async def after_restart(location: str) -> None:
            url = base + location if location.startswith("/") else location
            async with aiohttp.ClientSession() as s:
                r = await s.head(f"{base}/v2/crash/app/blobs/{digest}")
                assert r.status == 404  # nothing half-written is visible
                r = await s.get(url)
                assert r.status == 204 and r.headers["Range"] == f"0-{(1 << 20) - 1}"
                r = await s.patch(url, data=data[1 << 20:],
                                  headers={"Content-Range": f"{1 << 20}-{len(data) - 1}"})
                assert r.status == 202
                nxt = r.headers["Location"]
                nxt = base + nxt if nxt.startswith("/") else nxt
                r = await s.put(nxt + ("&" if "?" in nxt else "?") + f"digest={digest}")
                assert r.status == 201
                r = await s.get(f"{base}/v2/crash/app/blobs/{digest}")
                assert r.status == 200 and await r.read() == data

        with process(args, f"{base}/v2/") as proc:
            location = asyncio.run(start_upload())
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        blobs = Path(work / "data" / "docker/registry/v2/blobs")
        assert not blobs.exists() or not any(blobs.rglob("data"))
        with process(args, f"{base}/v2/"):
            asyncio.run(after_restart(location))
