"""RegistryStore: repositories, blobs, manifests and tags on any StorageDriver, with the
link semantics of distribution (layout in paths.py):

- A blob is stored once under blobs/ and is part of a repository only through a link in
  its `_layers`; a repository sees a blob iff its link names it and the data exists.
- A blob is written to a private upload (`_uploads/<id>/data`), verified, then moved into
  place: readers never see a partial blob.
- A manifest is a blob plus a revision link in `_manifests/revisions`; its config and
  layers (or, for an index, its manifests) must already be in the repository.
- Tagging writes the tag's `index/<alg>/<hex>/link`, then `current/link`.
- Uploads (`start_upload`, `upload_writer`, `finish_upload`) stream into `_uploads/<id>/data`;
  finishing hashes the data, then moves it to its blob path, so a crash leaves no partial
  blob. The running hash is recomputed at the end (no hashstates are written).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import BinaryIO

from dockyard.image.digest import Digest, from_hasher, of_bytes
from dockyard.image.errors import DigestMismatch, InvalidArgument
from dockyard.image.manifest import Index, Manifest, parse
from dockyard.registry.storage import paths
from dockyard.registry.storage.driver import PathNotFound, StorageDriver, StorageError


class BlobUnknown(StorageError):
    pass


class ManifestUnknown(StorageError):
    pass


class UploadUnknown(StorageError):
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
                     tag: str | None = None, media_type: str | None = None) -> Digest:
        doc = parse(data, media_type, digest=digest)
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

    # -- streaming uploads ------------------------------------------------------------

    def start_upload(self, repo: str) -> str:
        upload_id = str(uuid.uuid4())
        self.driver.put_content(paths.path_for(paths.UploadStartedAt(repo, upload_id)),
                                datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ").encode())
        w = self.driver.writer(paths.path_for(paths.UploadData(repo, upload_id)))
        w.close()
        return upload_id

    def upload_size(self, repo: str, upload_id: str) -> int:
        """Bytes received so far; UploadUnknown if there is no such upload."""
        try:
            self.driver.stat(paths.path_for(paths.UploadStartedAt(repo, upload_id)))
            return self.driver.stat(paths.path_for(paths.UploadData(repo, upload_id))).size
        except PathNotFound:
            raise UploadUnknown(f"{repo}: no upload {upload_id!r}", upload_id) from None

    def upload_writer(self, repo: str, upload_id: str):  # -> FileWriter
        self.upload_size(repo, upload_id)
        return self.driver.writer(paths.path_for(paths.UploadData(repo, upload_id)),
                                  append=True)

    def cancel_upload(self, repo: str, upload_id: str) -> None:
        self.upload_size(repo, upload_id)
        self._drop_upload(repo, upload_id)

    def _drop_upload(self, repo: str, upload_id: str) -> None:
        started = paths.path_for(paths.UploadStartedAt(repo, upload_id))
        try:
            self.driver.delete(started.rsplit("/", 1)[0])
        except PathNotFound:
            pass

    def finish_upload(self, repo: str, upload_id: str, digest: str,
                      size: int | None = None) -> Digest:
        """Verify the upload's data against `digest` (and `size`), publish it as a blob by
        a move and link it into `repo`. On a mismatch the upload is removed and
        DigestMismatch raised; nothing becomes visible."""
        want = paths.check_digest(digest)
        self.upload_size(repo, upload_id)
        data = paths.path_for(paths.UploadData(repo, upload_id))
        h = want.hasher()
        total = 0
        with self.driver.reader(data) as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
                total += len(chunk)
        got = from_hasher(h)
        if got != want or (size is not None and size != total):
            self._drop_upload(repo, upload_id)
            raise DigestMismatch(f"digest mismatch: expected {want}, got {got} "
                                 f"({total} bytes)")
        if not self._exists(want):
            self.driver.move(data, paths.path_for(paths.BlobData(want)))
        self._drop_upload(repo, upload_id)
        self.link_blob(repo, want)
        return want

    # -- reading and deleting ---------------------------------------------------------

    def blob_size(self, repo: str, digest: str) -> int:
        """The size of a blob linked in `repo`; BlobUnknown if it is not."""
        d = paths.check_digest(digest)
        if not self._linked(paths.LayerLink(repo, d), d):
            raise BlobUnknown(f"{repo}: blob {d} is not linked", d)
        try:
            info = self.driver.stat(paths.path_for(paths.BlobData(d)))
        except PathNotFound:
            raise BlobUnknown(f"blob {d} is not stored", d) from None
        return info.size

    def open_blob(self, digest: str, offset: int = 0) -> BinaryIO:
        return self.driver.reader(paths.path_for(paths.BlobData(digest)), offset)

    def blob_host_path(self, digest: str) -> str | None:
        """The host file of a blob, for sendfile, if the driver is on the filesystem."""
        host = getattr(self.driver, "_host", None)
        return host(paths.path_for(paths.BlobData(digest))) if host else None

    def unlink_blob(self, repo: str, digest: str) -> None:
        """Remove a blob from `repo` (its data stays for the garbage collector)."""
        d = paths.check_digest(digest)
        if not self._linked(paths.LayerLink(repo, d), d):
            raise BlobUnknown(f"{repo}: blob {d} is not linked", d)
        self.driver.delete(paths.path_for(paths.LayerLink(repo, d)).rsplit("/", 1)[0])

    def delete_manifest(self, repo: str, digest: str) -> None:
        """Remove a manifest revision from `repo` and every tag naming it now."""
        d = self.resolve(repo, paths.check_digest(digest))
        for tag in self.tags(repo):
            try:
                if self.resolve(repo, tag) == d:
                    self.delete_tag(repo, tag)
            except (ManifestUnknown, StorageError):
                continue
        self.driver.delete(
            paths.path_for(paths.ManifestRevisionLink(repo, d)).rsplit("/", 1)[0])

    def delete_tag(self, repo: str, tag: str) -> None:
        try:
            self.driver.delete(paths.path_for(paths.ManifestTagDir(repo, tag)))
        except PathNotFound:
            raise ManifestUnknown(f"{repo}: no tag {tag!r}", tag) from None

    def revisions(self, repo: str) -> Iterator[Digest]:
        base = paths.path_for(paths.ManifestRevisionsDir(repo))
        try:
            algs = self.driver.list(base)
        except PathNotFound:
            return
        for alg in algs:
            for entry in self.driver.list(alg):
                try:
                    d = Digest(f"{alg.rsplit('/', 1)[1]}:{entry.rsplit('/', 1)[1]}")
                except InvalidArgument:
                    continue
                if self._linked(paths.ManifestRevisionLink(repo, d), d):
                    yield d

    def referrers(self, repo: str, subject: str) -> list[tuple[Digest, bytes, Manifest | Index]]:
        """The manifests of `repo` whose `subject` is `subject`, by scanning its revisions."""
        out = []
        for d in self.revisions(repo):
            try:
                data = self.driver.get_content(paths.path_for(paths.BlobData(d)))
                doc = parse(data)
            except (StorageError, InvalidArgument):
                continue
            if doc.subject is not None and doc.subject.digest == subject:
                out.append((d, data, doc))
        return out

    def repository_exists(self, repo: str) -> bool:
        try:
            return self.driver.stat(paths.path_for(paths.Repository(repo))).is_dir
        except PathNotFound:
            return False

    def repositories(self) -> list[str]:
        """Every repository name (a directory holding `_manifests`, `_layers` or
        `_uploads`), sorted; names nest (a/b and a/b/c)."""
        root = paths.path_for(paths.RepositoriesRoot())
        found: list[str] = []

        def visit(path: str, prefix: str) -> None:
            try:
                children = self.driver.list(path)
            except PathNotFound:
                return
            names = [c.rsplit("/", 1)[1] for c in children]
            if prefix and any(n in ("_manifests", "_layers", "_uploads") for n in names):
                found.append(prefix)
            for child, n in zip(children, names, strict=True):
                if not n.startswith("_") and self.driver.stat(child).is_dir:
                    visit(child, f"{prefix}/{n}" if prefix else n)

        visit(root, "")
        return sorted(found)

