"""Manifests, tags, the catalog and referrers on our server."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.registry import (
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    Server,
    descriptor,
    digest_of,
    image,
    serve,
)

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def test_put_get_head_by_tag_and_digest(tmp_path: Path) -> None:
    async def body(reg: Server) -> None:
        digest, data = await image(reg, "lib/app")
        assert digest == digest_of(data)
        for ref in ("v1", digest):
            for method in ("GET", "HEAD"):
                r = await reg.request(method, f"/v2/lib/app/manifests/{ref}")
                assert r.status == 200
                assert r.headers["Content-Type"] == OCI_MANIFEST
                assert r.headers["Docker-Content-Digest"] == digest
                assert r.headers["Content-Length"] == str(len(data))
                assert r.body == (data if method == "GET" else b"")
        r = await reg.request("GET", "/v2/lib/app/manifests/nope")
        assert (r.status, r.codes()) == (404, ["MANIFEST_UNKNOWN"])
        r = await reg.request("GET", f"/v2/other/manifests/{digest}")
        assert (r.status, r.codes()) == (404, ["MANIFEST_UNKNOWN"])
    serve(tmp_path, body)


def test_put_by_digest_docker_type_and_sha512(tmp_path: Path) -> None:
    async def body(reg: Server) -> None:
        config, layer = b'{"architecture":"amd64","os":"linux"}', b"layer"
        await reg.push_blob("d", config)
        await reg.push_blob("d", layer)
        doc = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
               "config": descriptor("application/vnd.docker.container.image.v1+json", config),
               "layers": [descriptor("application/vnd.docker.image.rootfs.diff.tar.gzip",
                                     layer)]}
        data = json.dumps(doc).encode()
        digest, r = await reg.push_manifest("d", digest_of(data), doc, DOCKER_MANIFEST)
        assert r.headers["Location"] == f"/v2/d/manifests/{digest}"
        r = await reg.request("GET", f"/v2/d/manifests/{digest}")
        assert (r.headers["Content-Type"], r.body) == (DOCKER_MANIFEST, data)
        d512 = digest_of(data, "sha512")
        r = await reg.request("PUT", f"/v2/d/manifests/{d512}", data=data,
                              headers={"Content-Type": DOCKER_MANIFEST})
        assert (r.status, r.headers["Docker-Content-Digest"]) == (201, d512)
        assert (await reg.request("GET", f"/v2/d/manifests/{d512}")).body == data
        r = await reg.request("PUT", f"/v2/d/manifests/{digest_of(b'other')}", data=data,
                              headers={"Content-Type": DOCKER_MANIFEST})
        assert (r.status, r.codes()) == (400, ["DIGEST_INVALID"])
    serve(tmp_path, body)


def test_invalid_manifests(tmp_path: Path) -> None:
    async def body(reg: Server) -> None:
        async def put(data: bytes, media_type: str = OCI_MANIFEST) -> list[str]:
            r = await reg.request("PUT", "/v2/m/manifests/t", data=data,
                                  headers={"Content-Type": media_type})
            assert r.status == 400, r.status
            return r.codes()

        assert await put(b"{not json") == ["MANIFEST_INVALID"]
        assert await put(b'{"schemaVersion": 1}') == ["MANIFEST_INVALID"]
        assert await put(b"x" * (4 * 1024 * 1024 + 1)) == ["MANIFEST_INVALID"]
        config = b"{}"
        doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
               "config": descriptor(OCI_CONFIG, config), "layers": []}
        assert await put(json.dumps(doc).encode()) == ["MANIFEST_BLOB_UNKNOWN"]
        await reg.push_blob("m", config)
        assert await put(json.dumps(doc).encode(), DOCKER_MANIFEST) == ["MANIFEST_INVALID"]
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
                 "manifests": [{"mediaType": OCI_MANIFEST, "digest": digest_of(b"x"),
                                "size": 1}]}
        assert await put(json.dumps(index).encode(), OCI_INDEX) == ["MANIFEST_BLOB_UNKNOWN"]
        r = await reg.request("GET", "/v2/m/tags/list")
        assert (r.status, r.json()["tags"]) == (200, [])
    serve(tmp_path, body)


def test_index_of_pushed_manifests(tmp_path: Path) -> None:
    async def body(reg: Server) -> None:
        digest, data = await image(reg, "i", tag=None)
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
                 "manifests": [{"mediaType": OCI_MANIFEST, "digest": digest,
                                "size": len(data)}]}
        idx, _ = await reg.push_manifest("i", "multi", index, OCI_INDEX)
        r = await reg.request("GET", "/v2/i/manifests/multi")
        assert (r.headers["Content-Type"], r.headers["Docker-Content-Digest"]) == (OCI_INDEX, idx)
    serve(tmp_path, body)


def test_delete_manifests_and_tags(tmp_path: Path) -> None:
    async def enabled(reg: Server) -> None:
        digest, _ = await image(reg, "del")
        await reg.request("PUT", "/v2/del/manifests/v2",
                          data=(await reg.request("GET", "/v2/del/manifests/v1")).body,
                          headers={"Content-Type": OCI_MANIFEST})
        assert (await reg.request("DELETE", "/v2/del/manifests/v2")).status == 202
        assert (await reg.request("GET", "/v2/del/tags/list")).json()["tags"] == ["v1"]
        assert (await reg.request("GET", f"/v2/del/manifests/{digest}")).status == 200
        assert (await reg.request("DELETE", f"/v2/del/manifests/{digest}")).status == 202
        r = await reg.request("GET", f"/v2/del/manifests/{digest}")
        assert (r.status, r.codes()) == (404, ["MANIFEST_UNKNOWN"])
        assert (await reg.request("GET", "/v2/del/manifests/v1")).status == 404
        r = await reg.request("DELETE", f"/v2/del/manifests/{digest}")
        assert (r.status, r.codes()) == (404, ["MANIFEST_UNKNOWN"])
        assert (await reg.request("DELETE", "/v2/del/manifests/v9")).status == 404

    async def disabled(reg: Server) -> None:
        digest, _ = await image(reg, "del")
        for ref in ("v1", digest):
            r = await reg.request("DELETE", f"/v2/del/manifests/{ref}")
            assert (r.status, r.codes()) == (405, ["UNSUPPORTED"])
        assert (await reg.request("GET", "/v2/del/manifests/v1")).status == 200
    serve(tmp_path / "a", enabled)
    serve(tmp_path / "b", disabled, delete_enabled=False)


def test_tags_and_catalog_pagination(tmp_path: Path) -> None:
    async def body(reg: Server) -> None:
        _, data = await image(reg, "p/q", tag="b")
        for tag in ("a", "c", "d", "e"):
            await reg.request("PUT", f"/v2/p/q/manifests/{tag}", data=data,
                              headers={"Content-Type": OCI_MANIFEST})
        r = await reg.request("GET", "/v2/p/q/tags/list")
        assert r.json() == {"name": "p/q", "tags": ["a", "b", "c", "d", "e"]}
        assert "Link" not in r.headers
        r = await reg.request("GET", "/v2/p/q/tags/list?n=2")
        assert r.json()["tags"] == ["a", "b"]
        assert r.headers["Link"] == '</v2/p/q/tags/list?n=2&last=b>; rel="next"'
        r = await reg.request("GET", "/v2/p/q/tags/list?n=2&last=b")
        assert r.json()["tags"] == ["c", "d"]
        r = await reg.request("GET", "/v2/p/q/tags/list?n=2&last=d")
        assert r.json()["tags"] == ["e"] and "Link" not in r.headers
        r = await reg.request("GET", "/v2/p/q/tags/list?n=0")
        assert r.json()["tags"] == []
        for bad in ("-1", "x", "1.5"):
            r = await reg.request("GET", f"/v2/p/q/tags/list?n={bad}")
            assert (r.status, r.codes()) == (400, ["PAGINATION_NUMBER_INVALID"])
        r = await reg.request("GET", "/v2/unknown/tags/list")
        assert (r.status, r.codes()) == (404, ["NAME_UNKNOWN"])

        for name in ("a", "a/b", "z/y/x"):
            await reg.push_blob(name, b"blob")
        r = await reg.request("GET", "/v2/_catalog")
        assert r.json() == {"repositories": ["a", "a/b", "p/q", "z/y/x"]}
        r = await reg.request("GET", "/v2/_catalog?n=3")
        assert r.json()["repositories"] == ["a", "a/b", "p/q"]
        assert r.headers["Link"] == '</v2/_catalog?n=3&last=p%2Fq>; rel="next"'
        r = await reg.request("GET", "/v2/_catalog?n=3&last=p/q")
        assert r.json()["repositories"] == ["z/y/x"] and "Link" not in r.headers
        r = await reg.request("GET", "/v2/_catalog?n=x")
        assert (r.status, r.codes()) == (400, ["PAGINATION_NUMBER_INVALID"])
    serve(tmp_path, body)


def test_referrers(tmp_path: Path) -> None:
    async def body(reg: Server) -> None:
        subject, data = await image(reg, "r")
        empty = b"{}"
        await reg.push_blob("r", empty)
        sig = b"signature"
        await reg.push_blob("r", sig)

        async def artifact(artifact_type: str, note: str) -> str:
            doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                   "artifactType": artifact_type,
                   "config": descriptor(OCI_EMPTY, empty),
                   "layers": [descriptor(OCI_LAYER, sig)],
                   "subject": {"mediaType": OCI_MANIFEST, "digest": subject,
                               "size": len(data)},
                   "annotations": {"note": note}}
            raw = json.dumps(doc).encode()
            digest, r = await reg.push_manifest("r", digest_of(raw), doc)
            assert r.headers["OCI-Subject"] == subject
            return digest

        r = await reg.request("GET", f"/v2/r/referrers/{subject}")
        assert r.status == 200 and r.headers["Content-Type"] == OCI_INDEX
        assert r.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        one = await artifact("application/vnd.example.sig", "one")
        two = await artifact("application/vnd.example.sbom", "two")
        r = await reg.request("GET", f"/v2/r/referrers/{subject}")
        found = {m["digest"]: m for m in r.json()["manifests"]}
        assert set(found) == {one, two}
        assert found[one]["artifactType"] == "application/vnd.example.sig"
        assert found[one]["annotations"] == {"note": "one"}
        assert found[one]["mediaType"] == OCI_MANIFEST
        assert "OCI-Filters-Applied" not in r.headers
        r = await reg.request("GET", f"/v2/r/referrers/{subject}?artifactType="
                              "application/vnd.example.sbom")
        assert [m["digest"] for m in r.json()["manifests"]] == [two]
        assert r.headers["OCI-Filters-Applied"] == "artifactType"
        # a referrer may come before its subject
        missing = digest_of(b"later")
        r = await reg.request("GET", f"/v2/r/referrers/{missing}")
        assert r.json()["manifests"] == []
        assert (await reg.request("DELETE", f"/v2/r/manifests/{one}")).status == 202
        r = await reg.request("GET", f"/v2/r/referrers/{subject}")
        assert [m["digest"] for m in r.json()["manifests"]] == [two]
        r = await reg.request("GET", "/v2/r/referrers/sha256:short")
        assert (r.status, r.codes()) == (400, ["DIGEST_INVALID"])
    serve(tmp_path, body)
