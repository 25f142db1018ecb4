"""Uploads on our server: POST, PATCH chunks, PUT; resume, cancel, out-of-order chunks,
digest mismatches that leave nothing behind, cross-repository mounts, monolithic POST."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.integration.registry import Server, digest_of, serve

DATA = b"0123456789" * 1000


async def start(reg: Server, name: str) -> str:
    r = await reg.request("POST", f"/v2/{name}/blobs/uploads/")
    assert r.status == 202, r.body
    assert r.headers["Range"] == "0-0"
    assert r.headers["Location"] == f"/v2/{name}/blobs/uploads/{r.headers['Docker-Upload-UUID']}"
    assert r.headers["Content-Length"] == "0"
    return r.headers["Location"]


def test_chunked_upload_with_resume(tmp_path: Path) -> None:
    async def body(reg: Server) -> None:
        location = await start(reg, "a/b")
        r = await reg.request("PATCH", location, data=DATA[:4000],
                              headers={"Content-Range": "0-3999",
                                       "Content-Type": "application/octet-stream"})
        assert (r.status, r.headers["Range"]) == (202, "0-3999")
        location = r.headers["Location"]
        r = await reg.request("GET", location)  # resume: where are we?
        assert (r.status, r.headers["Range"]) == (204, "0-3999")
        r = await reg.request("PATCH", location, data=DATA[4000:9000])  # streamed, no range
        assert (r.status, r.headers["Range"]) == (202, "0-8999")
        digest = digest_of(DATA)
        r = await reg.request("PUT", f"{location}?digest={digest}", data=DATA[9000:],
                              headers={"Content-Range": "9000-9999"})
        assert r.status == 201, r.body
        assert r.headers["Location"] == f"/v2/a/b/blobs/{digest}"
        assert r.headers["Docker-Content-Digest"] == digest
        assert (await reg.request("GET", f"/v2/a/b/blobs/{digest}")).body == DATA
        r = await reg.request("GET", location)
        assert (r.status, r.codes()) == (404, ["BLOB_UPLOAD_UNKNOWN"])
        assert not list((reg.root / "docker/registry/v2/repositories/a/b/_uploads").iterdir())
    serve(tmp_path, body)


def test_out_of_order_chunk_is_416(tmp_path: Path) -> None:
    async def body(reg: Server) -> None:
        location = await start(reg, "x")
        r = await reg.request("PATCH", location, data=b"abc", headers={"Content-Range": "5-7"})
        assert (r.status, r.codes()) == (416, ["RANGE_INVALID"])
        r = await reg.request("PATCH", location, data=b"abc", headers={"Content-Range": "0-2"})
        assert (r.status, r.headers["Range"]) == (202, "0-2")
        r = await reg.request("PATCH", location, data=b"def", headers={"Content-Range": "0-2"})
        assert r.status == 416
        r = await reg.request("PATCH", location, data=b"def", headers={"Content-Range": "3-9"})
        assert r.status == 416  # the range and the length disagree
        assert (await reg.request("GET", location)).headers["Range"] == "0-2"
    serve(tmp_path, body)


def test_digest_mismatch_leaves_nothing(tmp_path: Path) -> None:
    async def body(reg: Server) -> None:
        location = await start(reg, "x")
        await reg.request("PATCH", location, data=DATA)
        wrong = digest_of(b"something else")
        r = await reg.request("PUT", f"{location}?digest={wrong}")
        assert (r.status, r.codes()) == (400, ["DIGEST_INVALID"])
        assert (await reg.request("GET", location)).status == 404
        v2 = reg.root / "docker/registry/v2"
        assert not (v2 / "blobs").exists() or not any(
            p.name == "data" for p in (v2 / "blobs").rglob("*"))
        assert not list((v2 / "repositories/x/_uploads").iterdir())
        r = await reg.request("GET", f"/v2/x/blobs/{digest_of(DATA)}")
        assert r.status == 404
        # monolithic, too
        r = await reg.request("POST", f"/v2/x/blobs/uploads/?digest={wrong}", data=DATA)
        assert (r.status, r.codes()) == (400, ["DIGEST_INVALID"])
        assert not list((v2 / "repositories/x/_uploads").iterdir())
        location = await start(reg, "x")
        r = await reg.request("PUT", location)  # no digest at all
        assert (r.status, r.codes()) == (400, ["DIGEST_INVALID"])
        r = await reg.request("PUT", f"{location}?digest=sha256:zz")
        assert (r.status, r.codes()) == (400, ["DIGEST_INVALID"])
    serve(tmp_path, body)


def test_cancel_and_unknown_uploads(tmp_path: Path) -> None:
    async def body(reg: Server) -> None:
        location = await start(reg, "x")
        assert (await reg.request("DELETE", location)).status == 204
        for method in ("GET", "PATCH", "PUT", "DELETE"):
            r = await reg.request(method, location + ("?digest=" + digest_of(b"")
                                                      if method == "PUT" else ""))
            assert (r.status, r.codes()) == (404, ["BLOB_UPLOAD_UNKNOWN"]), method
        other = await start(reg, "x")
        r = await reg.request("GET", other.replace("/v2/x/", "/v2/y/"))  # another repo's
        assert (r.status, r.codes()) == (404, ["BLOB_UPLOAD_UNKNOWN"])
        r = await reg.request("GET", "/v2/x/blobs/uploads/.bad")
        assert r.status == 404
    serve(tmp_path, body)


def test_monolithic_post_and_sha512_upload(tmp_path: Path) -> None:
    async def body(reg: Server) -> None:
        digest = digest_of(DATA)
        r = await reg.request("POST", f"/v2/x/blobs/uploads/?digest={digest}", data=DATA)
        assert r.status == 201
        assert (r.headers["Location"], r.headers["Docker-Content-Digest"]) == \
            (f"/v2/x/blobs/{digest}", digest)
        location = await start(reg, "x")
        d512 = "sha512:" + hashlib.sha512(DATA).hexdigest()
        r = await reg.request("PUT", f"{location}?digest={d512}", data=DATA)
        assert (r.status, r.headers["Docker-Content-Digest"]) == (201, d512)
        r = await reg.request("HEAD", f"/v2/x/blobs/{d512}")
        assert (r.status, r.headers["Content-Length"]) == (200, str(len(DATA)))
        # the same content again: already stored, only linked
        r = await reg.request("POST", f"/v2/y/blobs/uploads/?digest={digest}", data=DATA)
        assert r.status == 201
    serve(tmp_path, body)


def test_cross_repository_mount(tmp_path: Path) -> None:
    async def body(reg: Server) -> None:
        digest = await reg.push_blob("src/repo", DATA)
        r = await reg.request("POST", f"/v2/dst/blobs/uploads/?mount={digest}&from=src/repo")
        assert (r.status, r.headers["Location"]) == (201, f"/v2/dst/blobs/{digest}")
        assert r.headers["Docker-Content-Digest"] == digest
        assert (await reg.request("GET", f"/v2/dst/blobs/{digest}")).body == DATA
        # not in the source: a new upload instead
        missing = digest_of(b"nope")
        r = await reg.request("POST", f"/v2/dst/blobs/uploads/?mount={missing}&from=src/repo")
        assert r.status == 202 and r.headers["Docker-Upload-UUID"]
        r = await reg.request("POST", f"/v2/dst/blobs/uploads/?mount={digest}&from=elsewhere")
        assert r.status == 202
        assert (await reg.request("GET", f"/v2/other/blobs/{digest}")).status == 404
    serve(tmp_path, body)


def test_large_streamed_upload_and_empty_blob(tmp_path: Path) -> None:
    big = hashlib.sha256(b"seed").digest() * (20 * 1024 * 1024 // 32)

    async def chunks():  # type: ignore[no-untyped-def]
        for i in range(0, len(big), 1 << 20):
            yield big[i:i + (1 << 20)]

    async def body(reg: Server) -> None:
        location = await start(reg, "big")
        r = await reg.request("PATCH", location, data=chunks())
        assert (r.status, r.headers["Range"]) == (202, f"0-{len(big) - 1}")
        digest = digest_of(big)
        r = await reg.request("PUT", f"{r.headers['Location']}?digest={digest}")
        assert r.status == 201
        r = await reg.request("GET", f"/v2/big/blobs/{digest}")
        assert (r.status, len(r.body), digest_of(r.body)) == (200, len(big), digest)
        empty = await reg.push_blob("big", b"")
        r = await reg.request("GET", f"/v2/big/blobs/{empty}")
        assert (r.status, r.body, r.headers["Content-Length"]) == (200, b"", "0")
    serve(tmp_path, body)
