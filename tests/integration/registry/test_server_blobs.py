"""Blobs on our server: GET and HEAD with lengths, digests and byte ranges, 404s, deletes
with and without `storage.delete.enabled`, sha512, names that are not names."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from tests.integration.registry import Server, digest_of, serve


def test_base_and_health_answer_with_the_api_version(tmp_path: Path) -> None:
    async def body(reg: Server) -> None:
        r = await reg.request("GET", "/v2/")
        assert (r.status, r.json()) == (200, {})
        assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
        for path in ("/healthz", "/debug/health"):
            assert (await reg.request("GET", path)).status == 200
        r = await reg.request("GET", "/v2/x/blobs/sha256:" + "0" * 64)
        assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    serve(tmp_path, body)


def test_get_and_head_a_blob_then_ranges(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40

    async def body(reg: Server) -> None:
        digest = await reg.push_blob("lib/x", data)
        r = await reg.request("GET", f"/v2/lib/x/blobs/{digest}")
        assert (r.status, r.body) == (200, data)
        assert r.headers["Docker-Content-Digest"] == digest
        assert r.headers["Content-Length"] == str(len(data))
        assert r.headers["Accept-Ranges"] == "bytes"
        r = await reg.request("HEAD", f"/v2/lib/x/blobs/{digest}")
        assert (r.status, r.body, r.headers["Content-Length"]) == (200, b"", str(len(data)))
        r = await reg.request("GET", f"/v2/lib/x/blobs/{digest}",
                              headers={"Range": "bytes=10-19"})
        assert (r.status, r.body) == (206, data[10:20])
        assert r.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
        r = await reg.request("GET", f"/v2/lib/x/blobs/{digest}", headers={"Range": "bytes=10000-"})
        assert (r.status, r.body) == (206, data[10000:])
        r = await reg.request("GET", f"/v2/lib/x/blobs/{digest}", headers={"Range": "bytes=-5"})
        assert (r.status, r.body) == (206, data[-5:])
        r = await reg.request("GET", f"/v2/lib/x/blobs/{digest}",
                              headers={"Range": f"bytes={len(data)}-"})
        assert (r.status, r.codes()) == (416, ["RANGE_INVALID"])
        assert r.headers["Content-Range"] == f"bytes */{len(data)}"
    serve(tmp_path, body)


def test_a_blob_is_only_seen_in_repositories_it_is_linked_in(tmp_path: Path) -> None:
    async def body(reg: Server) -> None:
        digest = await reg.push_blob("one", b"mine")
        r = await reg.request("GET", f"/v2/two/blobs/{digest}")
        assert (r.status, r.codes()) == (404, ["BLOB_UNKNOWN"])
        r = await reg.request("HEAD", f"/v2/two/blobs/{digest}")
        assert r.status == 404
        r = await reg.request("GET", "/v2/one/blobs/md5:" + "0" * 32)
        assert (r.status, r.codes()) == (400, ["DIGEST_INVALID"])
    serve(tmp_path, body)


def test_delete_a_blob_only_when_enabled(tmp_path: Path) -> None:
    async def enabled(reg: Server) -> None:
        digest = await reg.push_blob("one", b"gone soon")
        r = await reg.request("DELETE", f"/v2/one/blobs/{digest}")
        assert r.status == 202
        assert (await reg.request("GET", f"/v2/one/blobs/{digest}")).status == 404
        r = await reg.request("DELETE", f"/v2/one/blobs/{digest}")
        assert (r.status, r.codes()) == (404, ["BLOB_UNKNOWN"])

    async def disabled(reg: Server) -> None:
        digest = await reg.push_blob("one", b"kept")
        r = await reg.request("DELETE", f"/v2/one/blobs/{digest}")
        assert (r.status, r.codes()) == (405, ["UNSUPPORTED"])
        assert (await reg.request("GET", f"/v2/one/blobs/{digest}")).status == 200
    serve(tmp_path / "a", enabled)
    serve(tmp_path / "b", disabled, delete_enabled=False)


def test_sha512_blobs(tmp_path: Path) -> None:
    data = b"x" * 1000

    async def body(reg: Server) -> None:
        digest = await reg.push_blob("s", data, "sha512")
        assert digest == "sha512:" + hashlib.sha512(data).hexdigest()
        r = await reg.request("GET", f"/v2/s/blobs/{digest}")
        assert (r.status, r.body, r.headers["Docker-Content-Digest"]) == (200, data, digest)
    serve(tmp_path, body)


def test_unsupported_methods_and_paths_that_are_no_name(tmp_path: Path) -> None:
    async def raw(host: str, path: str) -> int:
        reader, writer = await asyncio.open_connection(*host.split(":"))
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                     .encode())
        status = (await reader.readline()).split()[1]
        writer.close()
        await writer.wait_closed()
        return int(status)

    async def body(reg: Server) -> None:
        digest = await reg.push_blob("one", b"data")
        r = await reg.request("PUT", f"/v2/one/blobs/{digest}", data=b"")
        assert (r.status, r.codes()) == (405, ["UNSUPPORTED"])
        for path in ("/v2/../one/blobs/" + digest, "/v2/one/../../blobs/" + digest,
                     "/v2/%2e%2e/one/blobs/" + digest, "/v2/One/blobs/" + digest,
                     "/v2/a%2Fb/tags/list", "/v2/.hidden/tags/list"):
            assert await raw(reg.host, path) == 404, path
        r = await reg.request("GET", "/v2/nothing/here")
        assert (r.status, r.codes()) == (404, ["NAME_UNKNOWN"])
        assert not list((reg.root / "docker/registry/v2/repositories").glob("*.*"))
        assert digest_of(b"data") == digest
    serve(tmp_path, body)
