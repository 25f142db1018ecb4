"""Our registry storage against Debian's docker-registry (distribution 2.8), both ways: what
it writes for a skopeo push we read with FilesystemDriver + paths, and a repository we write
with RegistryStore it serves to skopeo. Decision 6: either can serve the other's data."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from dockyard.image.digest import of_bytes
from dockyard.image.manifest import parse_manifest
from dockyard.registry.storage import paths as p
from dockyard.registry.storage.blobs import RegistryStore
from dockyard.registry.storage.filesystem import FilesystemDriver
from tests.integration.image.archives import config_for, docker_archive, layer_tar
from tests.refregistry import ref_registry, skip_unless_available

pytestmark = [pytest.mark.interop]

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def skopeo() -> str:
    skip_unless_available()
    path = shutil.which("skopeo")
    if path is None:
        pytest.skip("skopeo is not installed (scripts/install.sh installs it)")
    return path


def run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(args)}: {done.stderr}"
    return done.stdout


def test_a_push_to_docker_registry_reads_back_through_our_layout(tmp_path: Path) -> None:
    tool = skopeo()
    layers = [layer_tar({"a": b"hello"}), layer_tar({"b": b"world"})]
    archive = docker_archive(tmp_path / "src.tar", layers, ["test/app:v1"], gzip_layers=True)
    with ref_registry(tmp_path) as reg:
        run(tool, "--insecure-policy", "copy", "--dest-tls-verify=false",
            f"docker-archive:{archive}", f"docker://{reg.host}/test/app:v1")
        driver = FilesystemDriver(reg.root)

        current = driver.get_content(p.path_for(p.ManifestTagCurrentLink("test/app", "v1")))
        digest = p.check_digest(current.decode())  # the whole file is the digest string
        assert driver.get_content(p.path_for(p.ManifestRevisionLink("test/app", digest))) \
            == current
        assert driver.get_content(
            p.path_for(p.ManifestTagIndexEntryLink("test/app", "v1", digest))) == current
        data = driver.get_content(p.path_for(p.BlobData(digest)))
        manifest = parse_manifest(data, digest=digest)
        assert of_bytes(data) == digest

        blobs = [manifest.config, *manifest.layers]
        for blob in blobs:
            link = driver.get_content(p.path_for(p.LayerLink("test/app", blob.digest)))
            assert link == blob.digest.encode()
            content = driver.get_content(p.path_for(p.BlobData(blob.digest)))
            assert (of_bytes(content), len(content)) == (blob.digest, blob.size)
        assert [gzip.decompress(driver.get_content(p.path_for(p.BlobData(x.digest))))
                for x in manifest.layers] == layers

        # Exactly these links, nothing the layout does not name.
        layer_dirs = driver.list(p.path_for(p.LayersDir("test/app")) + "/sha256")
        assert sorted(d.rsplit("/", 1)[1] for d in layer_dirs) \
            == sorted(b.digest.encoded for b in blobs)
        revisions = driver.list(p.path_for(p.ManifestRevisionsDir("test/app")) + "/sha256")
        assert [r.rsplit("/", 1)[1] for r in revisions] == [digest.encoded]

        store = RegistryStore(driver)
        assert store.tags("test/app") == ["v1"]
        assert store.get_manifest("test/app", "v1") == (digest, data)
        assert all(store.blob_exists("test/app", b.digest) for b in blobs)


def _image(store: RegistryStore, repo: str, files: dict[str, bytes | str | None],
           tag: str | None) -> tuple[str, bytes, bytes]:
    layer = layer_tar(files)
    blob = gzip.compress(layer, mtime=0)
    config = config_for([layer])
    store.put_blob(repo, blob)
    store.put_blob(repo, config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "size": len(config),
                   "digest": of_bytes(config)},
        "layers": [{"mediaType": DOCKER_LAYER, "size": len(blob), "digest": of_bytes(blob)}],
    }, indent=3).encode()
    digest = store.put_manifest(repo, manifest, tag=tag)
    return digest, manifest, layer


def test_a_repository_we_write_is_served_by_docker_registry(tmp_path: Path) -> None:
    tool = skopeo()
    with ref_registry(tmp_path) as reg:
        store = RegistryStore(FilesystemDriver(reg.root))
        digest, manifest, layer = _image(store, "ours/app", {"hello": b"from dockyard"}, "v1")
        other, _, _ = _image(store, "ours/app", {"other": b"arm64"}, None)
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": DOCKER_MANIFEST, "size": len(manifest), "digest": digest,
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": DOCKER_MANIFEST, "size": len(manifest), "digest": other,
             "platform": {"architecture": "arm64", "os": "linux"}}]}).encode()
        index_digest = store.put_manifest("ours/app", index, tag="multi")

        ref = f"docker://{reg.host}/ours/app"
        inspected = json.loads(run(tool, "inspect", "--tls-verify=false", f"{ref}:v1"))
        assert inspected["Digest"] == digest
        assert run(tool, "inspect", "--raw", "--tls-verify=false", f"{ref}:v1").encode() \
            == manifest
        assert run(tool, "inspect", "--raw", "--tls-verify=false", f"{ref}:multi").encode() \
            == index
        assert json.loads(run(tool, "inspect", "--raw", "--tls-verify=false",
                              f"{ref}@{index_digest}"))["manifests"][1]["digest"] == other
        with urllib.request.urlopen(f"{reg.url}/v2/ours/app/tags/list", timeout=10) as r:
            assert sorted(json.load(r)["tags"]) == ["multi", "v1"]

        out = tmp_path / "out"
        run(tool, "--insecure-policy", "copy", "--src-tls-verify=false", f"{ref}:v1",
            f"dir:{out}")
        assert (out / "manifest.json").read_bytes() == manifest
        blob = json.loads(manifest)["layers"][0]["digest"].split(":")[1]
        assert gzip.decompress((out / blob).read_bytes()) == layer
