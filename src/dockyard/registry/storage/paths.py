"""The registry's on-disk layout: one pure function, `path_for`, from a path spec to a driver
path. It is the layout of distribution's `registry/storage/paths.go` (checked against
docker-registry 2.8 by tests/e2e/test_registry_layout.py), so either registry can serve a
root the other wrote:

    /docker/registry/v2/
      blobs/<alg>/<first two hex>/<hex>/data          the content, stored once
      repositories/<name>/                            <name> may hold "/": test/app
        _layers/<alg>/<hex>/link                      blobs (configs, layers) linked in
        _manifests/
          revisions/<alg>/<hex>/link                  every manifest pushed here
          tags/<tag>/
            current/link                              the manifest the tag names now
            index/<alg>/<hex>/link                    every manifest it has named
        _uploads/<id>/
          data                                        the bytes received so far
          startedat                                   RFC 3339 UTC, "2026-01-02T03:04:05Z"
          hashstates/<alg>/<offset>                   saved hash state (the reference's own
                                                      binary format; ours may differ)

A link file holds the digest string and nothing else: "sha256:<hex>", no newline. Manifests
are blobs too: the manifest's bytes live under blobs/, its revision link in the repository.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dockyard.image.digest import Digest
from dockyard.image.errors import InvalidArgument
from dockyard.registry import routes
from dockyard.registry.storage.driver import InvalidPath

ROOT = "/docker/registry/v2"

# The distribution reference grammar: path components of lowercase alphanumerics joined by
# separators, at most 255 characters in all; a tag is 1 to 128 word characters, . and -.
_NAME_COMPONENT = re.compile(routes.NAME_COMPONENT)
_TAG = re.compile(routes.TAG)
_UPLOAD_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
MAX_NAME = routes.NAME_MAX


def check_name(name: str) -> str:
    if not name or len(name) > MAX_NAME or not all(
            _NAME_COMPONENT.fullmatch(part) for part in name.split("/")):
        raise InvalidPath(f"invalid repository name {name!r}", name)
    return name


def check_tag(tag: str) -> str:
    if not _TAG.fullmatch(tag):
        raise InvalidPath(f"invalid tag {tag!r}", tag)
    return tag


def check_digest(digest: str) -> Digest:
    try:
        return Digest(digest)
    except InvalidArgument as e:
        raise InvalidPath(str(e), str(digest)) from None


def _check_upload(upload_id: str) -> str:
    if not _UPLOAD_ID.fullmatch(upload_id):
        raise InvalidPath(f"invalid upload id {upload_id!r}", upload_id)
    return upload_id


# -- specs: one frozen dataclass per kind of path --------------------------------------


@dataclass(frozen=True)
class BlobsRoot:
    pass


@dataclass(frozen=True)
class BlobDir:
    digest: str


@dataclass(frozen=True)
class BlobData:
    digest: str


@dataclass(frozen=True)
class RepositoriesRoot:
    pass


@dataclass(frozen=True)
class Repository:
    name: str


@dataclass(frozen=True)
class LayersDir:
    name: str


@dataclass(frozen=True)
class LayerLink:
    name: str
    digest: str


@dataclass(frozen=True)
class ManifestRevisionsDir:
    name: str


@dataclass(frozen=True)
class ManifestRevisionLink:
    name: str
    digest: str


@dataclass(frozen=True)
class ManifestTagsDir:
    name: str


@dataclass(frozen=True)
class ManifestTagDir:
    name: str
    tag: str


@dataclass(frozen=True)
class ManifestTagCurrentLink:
    name: str
    tag: str


@dataclass(frozen=True)
class ManifestTagIndexDir:
    name: str
    tag: str


@dataclass(frozen=True)
class ManifestTagIndexEntryLink:
    name: str
    tag: str
    digest: str


@dataclass(frozen=True)
class UploadsDir:
    name: str


@dataclass(frozen=True)
class UploadData:
    name: str
    upload_id: str


@dataclass(frozen=True)
class UploadStartedAt:
    name: str
    upload_id: str


@dataclass(frozen=True)
class UploadHashState:
    name: str
    upload_id: str
    algorithm: str
    offset: int


PathSpec = (BlobsRoot | BlobDir | BlobData | RepositoriesRoot | Repository | LayersDir
            | LayerLink | ManifestRevisionsDir | ManifestRevisionLink | ManifestTagsDir
            | ManifestTagDir | ManifestTagCurrentLink | ManifestTagIndexDir
            | ManifestTagIndexEntryLink | UploadsDir | UploadData | UploadStartedAt
            | UploadHashState)


def _digest_dir(digest: str) -> str:
    d = check_digest(digest)
    return f"{d.algorithm}/{d.encoded}"


def _repo(name: str) -> str:
    return f"{ROOT}/repositories/{check_name(name)}"


def _tag(name: str, tag: str) -> str:
    return f"{_repo(name)}/_manifests/tags/{check_tag(tag)}"


def _upload(name: str, upload_id: str) -> str:
    return f"{_repo(name)}/_uploads/{_check_upload(upload_id)}"


def path_for(spec: PathSpec) -> str:
    """The driver path of `spec`; InvalidPath if a name, tag, digest or id is malformed."""
    match spec:
        case BlobsRoot():
            return f"{ROOT}/blobs"
        case BlobDir(digest) | BlobData(digest):
            d = check_digest(digest)
            base = f"{ROOT}/blobs/{d.algorithm}/{d.encoded[:2]}/{d.encoded}"
            return base if isinstance(spec, BlobDir) else f"{base}/data"
        case RepositoriesRoot():
            return f"{ROOT}/repositories"
        case Repository(name):
            return _repo(name)
        case LayersDir(name):
            return f"{_repo(name)}/_layers"
        case LayerLink(name, digest):
            return f"{_repo(name)}/_layers/{_digest_dir(digest)}/link"
        case ManifestRevisionsDir(name):
            return f"{_repo(name)}/_manifests/revisions"
        case ManifestRevisionLink(name, digest):
            return f"{_repo(name)}/_manifests/revisions/{_digest_dir(digest)}/link"
        case ManifestTagsDir(name):
            return f"{_repo(name)}/_manifests/tags"
        case ManifestTagDir(name, tag):
            return _tag(name, tag)
        case ManifestTagCurrentLink(name, tag):
            return f"{_tag(name, tag)}/current/link"
        case ManifestTagIndexDir(name, tag):
            return f"{_tag(name, tag)}/index"
        case ManifestTagIndexEntryLink(name, tag, digest):
            return f"{_tag(name, tag)}/index/{_digest_dir(digest)}/link"
        case UploadsDir(name):
            return f"{_repo(name)}/_uploads"
        case UploadData(name, upload_id):
            return f"{_upload(name, upload_id)}/data"
        case UploadStartedAt(name, upload_id):
            return f"{_upload(name, upload_id)}/startedat"
        case UploadHashState(name, upload_id, algorithm, offset):
            if not re.fullmatch(r"[a-z0-9]+", algorithm) or offset < 0:
                raise InvalidPath(f"invalid hash state {algorithm!r} at {offset}", algorithm)
            return f"{_upload(name, upload_id)}/hashstates/{algorithm}/{offset}"
    raise InvalidPath(f"unknown path spec {spec!r}")
