"""paths.py as tables. The expected paths are those docker-registry 2.8 wrote for a push of
test/app:v1 (and an upload left open); tests/e2e/test_registry_layout.py checks them live."""

from __future__ import annotations

import pytest

from dockyard.registry.storage import paths as p
from dockyard.registry.storage.driver import InvalidPath, check_path

D = "sha256:feba045575e57cd4b148b2e88caed545b9de294a8a8a31ec034aacfe87b54c34"
H = D.split(":")[1]
D512 = "sha512:" + "ab" * 64
UP = "5e667bc1-e4b0-456c-b929-3da675510796"
R = "/docker/registry/v2/repositories/test/app"

TABLE = [
    (p.BlobsRoot(), "/docker/registry/v2/blobs"),
    (p.BlobDir(D), f"/docker/registry/v2/blobs/sha256/fe/{H}"),
    (p.BlobData(D), f"/docker/registry/v2/blobs/sha256/fe/{H}/data"),
    (p.BlobData(D512), f"/docker/registry/v2/blobs/sha512/ab/{'ab' * 64}/data"),
    (p.RepositoriesRoot(), "/docker/registry/v2/repositories"),
    (p.Repository("test/app"), R),
    (p.LayersDir("test/app"), f"{R}/_layers"),
    (p.LayerLink("test/app", D), f"{R}/_layers/sha256/{H}/link"),
    (p.ManifestRevisionsDir("test/app"), f"{R}/_manifests/revisions"),
    (p.ManifestRevisionLink("test/app", D), f"{R}/_manifests/revisions/sha256/{H}/link"),
    (p.ManifestTagsDir("test/app"), f"{R}/_manifests/tags"),
    (p.ManifestTagDir("test/app", "v1"), f"{R}/_manifests/tags/v1"),
    (p.ManifestTagCurrentLink("test/app", "v1"), f"{R}/_manifests/tags/v1/current/link"),
    (p.ManifestTagIndexDir("test/app", "v1"), f"{R}/_manifests/tags/v1/index"),
    (p.ManifestTagIndexEntryLink("test/app", "v1", D),
     f"{R}/_manifests/tags/v1/index/sha256/{H}/link"),
    (p.UploadsDir("test/app"), f"{R}/_uploads"),
    (p.UploadData("test/app", UP), f"{R}/_uploads/{UP}/data"),
    (p.UploadStartedAt("test/app", UP), f"{R}/_uploads/{UP}/startedat"),
    (p.UploadHashState("test/app", UP, "sha256", 0), f"{R}/_uploads/{UP}/hashstates/sha256/0"),
    (p.UploadHashState("test/app", UP, "sha256", 11),
     f"{R}/_uploads/{UP}/hashstates/sha256/11"),
    (p.Repository("library/busybox"), "/docker/registry/v2/repositories/library/busybox"),
    (p.Repository("a/b-c/d__e/f.g"), "/docker/registry/v2/repositories/a/b-c/d__e/f.g"),
    (p.ManifestTagCurrentLink("app", "V1.0_rc-1"),
     "/docker/registry/v2/repositories/app/_manifests/tags/V1.0_rc-1/current/link"),
]


@pytest.mark.parametrize(("spec", "want"), TABLE, ids=[type(s).__name__ for s, _ in TABLE])
def test_path_for_gives_the_reference_layout(spec: p.PathSpec, want: str) -> None:
    assert p.path_for(spec) == want
    assert check_path(want) == want  # every layout path is a valid driver path


BAD = [
    (p.Repository(""), "empty name"),
    (p.Repository("Test/app"), "uppercase"),
    (p.Repository("test//app"), "empty component"),
    (p.Repository("../etc"), "dot-dot"),
    (p.Repository("/abs"), "leading slash"),
    (p.Repository("app/"), "trailing slash"),
    (p.Repository("a" * 256), "too long"),
    (p.Repository("app-"), "trailing separator"),
    (p.Repository("app/_layers"), "component starting with a separator"),
    (p.ManifestTagDir("app", ""), "empty tag"),
    (p.ManifestTagDir("app", ".hidden"), "tag starting with a dot"),
    (p.ManifestTagDir("app", "-x"), "tag starting with a dash"),
    (p.ManifestTagDir("app", "a" * 129), "tag too long"),
    (p.ManifestTagDir("app", "a/b"), "slash in tag"),
    (p.BlobData("sha256:abc"), "short digest"),
    (p.BlobData("md5:" + "0" * 32), "unsupported algorithm"),
    (p.BlobData("sha256:" + "A" * 64), "uppercase hex"),
    (p.LayerLink("app", "sha256/../" + "0" * 64), "traversal in digest"),
    (p.UploadData("app", "../x"), "traversal in upload id"),
    (p.UploadData("app", ""), "empty upload id"),
    (p.UploadHashState("app", UP, "sha256", -1), "negative offset"),
    (p.UploadHashState("app", UP, "../x", 0), "bad algorithm"),
]


@pytest.mark.parametrize(("spec", "why"), BAD, ids=[why for _, why in BAD])
def test_path_for_refuses_malformed_parts(spec: p.PathSpec, why: str) -> None:
    with pytest.raises(InvalidPath):
        p.path_for(spec)
