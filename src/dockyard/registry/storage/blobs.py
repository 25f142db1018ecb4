"""RegistryStore: repositories, blobs, manifests and tags on any StorageDriver, with the
link semantics of distribution (layout in paths.py):

- A blob is stored once under blobs/ and is part of a repository only through a link in
  its `_layers`; a repository sees a blob iff its link names it and the data exists.
- A blob is written to a private upload (`_uploads/<id>/data`), verified, then moved into
  place: readers never see a partial blob.
- A manifest is a blob plus a revision link in `_manifests/revisions`; its config and
  layers (or, for an index, its manifests) must already be in the repository.
- Tagging writes the tag's `index/<alg>/<hex>/link`, then `current/link`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from dockyard.image.digest import Digest, of_bytes
from dockyard.image.errors import DigestMismatch
from dockyard.image.manifest import Index, parse
from dockyard.registry.storage import paths
from dockyard.registry.storage.driver import PathNotFound, StorageDriver, StorageError


class BlobUnknown(StorageError):
    pass


class ManifestUnknown(StorageError):
    pass


class RegistryStore:
    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver

    # -- blobs ------------------------------------------------------------------------

    def put_blob(self, repo: str, data: bytes, digest: str | None = None) -> Digest:
        """Store `data` (verified against `digest` if given) and link it into `repo`."""
        want = paths.check_digest(digest) if digest else None
        got = of_bytes(data, want.algorithm if want else "sha256")
        if want is not None and got != want:
            raise DigestMismatch(f"digest mismatch: expected {want}, got {got}")
        if not self._exists(got):
            upload_id = str(uuid.uuid4())
            started = paths.path_for(paths.UploadStartedAt(repo, upload_id))
            self.driver.put_content(
                started, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ").encode())
            upload = paths.path_for(paths.UploadData(repo, upload_id))
            w = self.driver.writer(upload)
            try:
                w.write(data)
                w.commit()
            finally:
                w.close()
            self.driver.move(upload, paths.path_for(paths.BlobData(got)))
            self.driver.delete(started.rsplit("/", 1)[0])
        self.link_blob(repo, got)
        return got

    def link_blob(self, repo: str, digest: str) -> None:
        d = paths.check_digest(digest)
        if not self._exists(d):
            raise BlobUnknown(f"blob {d} is not stored", d)
        self.driver.put_content(paths.path_for(paths.LayerLink(repo, d)), d.encode())

    def blob_exists(self, repo: str, digest: str) -> bool:
        d = paths.check_digest(digest)
        return self._linked(paths.LayerLink(repo, d), d) and self._exists(d)

    def _exists(self, digest: Digest) -> bool:
        try:
            return not self.driver.stat(paths.path_for(paths.BlobData(digest))).is_dir
        except PathNotFound:
            return False

    def _linked(self, spec: paths.PathSpec, digest: Digest) -> bool:
        try:
            return self.driver.get_content(paths.path_for(spec)) == digest.encode()
        except PathNotFound:
            return False

    # -- manifests and tags -----------------------------------------------------------

    def put_manifest(self, repo: str, data: bytes, digest: str | None = None,
                     tag: str | None = None) -> Digest:
        doc = parse(data, digest=digest)
        if isinstance(doc, Index):
            for m in doc.manifests:
                if not self._linked(paths.ManifestRevisionLink(repo, m.digest), m.digest):
                    raise ManifestUnknown(f"{repo}: manifest {m.digest} is not pushed", m.digest)
        else:
            for blob in (doc.config, *doc.layers):
                if not self.blob_exists(repo, blob.digest):
                    raise BlobUnknown(f"{repo}: blob {blob.digest} is not pushed", blob.digest)
        d = paths.check_digest(digest) if digest else of_bytes(data)
        if not self._exists(d):
            self.driver.put_content(paths.path_for(paths.BlobData(d)), data)
        self.driver.put_content(paths.path_for(paths.ManifestRevisionLink(repo, d)), d.encode())
        if tag is not None:
            self.tag(repo, tag, d)
        return d

    def tag(self, repo: str, tag: str, digest: str) -> None:
        d = paths.check_digest(digest)
        if not self._linked(paths.ManifestRevisionLink(repo, d), d):
            raise ManifestUnknown(f"{repo}: manifest {d} is not pushed", d)
        self.driver.put_content(
            paths.path_for(paths.ManifestTagIndexEntryLink(repo, tag, d)), d.encode())
        self.driver.put_content(paths.path_for(paths.ManifestTagCurrentLink(repo, tag)),
                                d.encode())

    def resolve(self, repo: str, ref: str) -> Digest:
        """The digest a tag names now, or `ref` itself if it is a digest of this repo."""
        if ":" in ref:
            d = paths.check_digest(ref)
            if not self._linked(paths.ManifestRevisionLink(repo, d), d):
                raise ManifestUnknown(f"{repo}: no manifest {d}", d)
            return d
        try:
            link = self.driver.get_content(paths.path_for(paths.ManifestTagCurrentLink(repo, ref)))
        except PathNotFound:
            raise ManifestUnknown(f"{repo}: no tag {ref!r}", ref) from None
        return paths.check_digest(link.decode("ascii", "replace"))

    def get_manifest(self, repo: str, ref: str) -> tuple[Digest, bytes]:
        d = self.resolve(repo, ref)
        try:
            data = self.driver.get_content(paths.path_for(paths.BlobData(d)))
        except PathNotFound:
            raise ManifestUnknown(f"{repo}: manifest {d} has no data", d) from None
        if of_bytes(data, d.algorithm) != d:
            raise DigestMismatch(f"{repo}: stored manifest {d} does not match its digest")
        return d, data

    def tags(self, repo: str) -> list[str]:
        try:
            children = self.driver.list(paths.path_for(paths.ManifestTagsDir(repo)))
        except PathNotFound:
            return []
        return sorted(c.rsplit("/", 1)[1] for c in children)
