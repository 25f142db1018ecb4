"""Garbage collection of the registry's storage (layout in storage/paths.py): the mark and
sweep of distribution's `registry garbage-collect`, with its two options, plus a grace
period that makes it safe to run while pushes happen.

    mark    for every repository (a directory under repositories/ holding `_manifests`,
            `_layers` or `_uploads`; names may nest: a/b and a/b/c):
              roots = every manifest revision                       (default)
                    = the tags' current manifests, and revisions
                      linked within `grace`                         (delete_untagged)
              a root marks itself, and through it:
                manifest  ─► its config and layers
                index     ─► its manifests, each marked in turn
              with delete_untagged, a revision whose `subject` is kept is kept too (a
              referrer: signature, SBOM), repeated until nothing more is kept; the other
              revisions are to be deleted
    sweep   every blob under blobs/<alg>/<xx>/<hex> not marked is deleted, with the layer
            links of every repository naming it, unless the blob's data or one of those
            links was written within `grace` (a push writes its blobs before the manifest
            that references them); with delete_untagged the unkept revisions' links go too
            (revision link and the tags' index entries naming them)

`dry_run` plans the same and deletes nothing. A manifest that cannot be read (schema 1,
corrupt) stops the collection before anything is deleted: what it references is unknown.

A push racing a sweep: put_blob of a blob that exists only links it, so a blob chosen for
deletion is checked again just before it goes (its data's time); the window left is the
one between that check and the delete, as in the reference, where GC wants a read-only
registry. A blob lost there fails the push's manifest (BlobUnknown), never a stored image.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from dockyard.image.digest import Digest
from dockyard.image.errors import InvalidArgument
from dockyard.image.manifest import Index, Manifest, parse
from dockyard.registry.storage import paths
from dockyard.registry.storage.driver import PathNotFound, StorageDriver, StorageError

DEFAULT_GRACE = timedelta(hours=1)
_REPO_MARKERS = ("_manifests", "_layers", "_uploads")


class UnreadableManifest(StorageError):
    """A stored manifest that is not an OCI/Docker schema 2 manifest or index."""


@dataclass(frozen=True)
class Report:
    marked: frozenset[str]
    deleted_blobs: tuple[str, ...]
    deleted_manifests: tuple[tuple[str, str], ...]  # (repository, digest)
    deleted_layer_links: tuple[tuple[str, str], ...]  # (repository, digest)
    kept_recent: tuple[str, ...]  # unmarked, but written within the grace period
    bytes_freed: int
    dry_run: bool = False


@dataclass
class _Marker:
    driver: StorageDriver
    marked: set[Digest] = field(default_factory=set)
    docs: dict[Digest, Manifest | Index | None] = field(default_factory=dict)

    def load(self, digest: Digest) -> Manifest | Index | None:
        """The parsed manifest or index; None if its data is not stored."""
        if digest not in self.docs:
            try:
                data = self.driver.get_content(paths.path_for(paths.BlobData(digest)))
            except PathNotFound:
                self.docs[digest] = None
                return None
            try:
                self.docs[digest] = parse(data, digest=digest)
            except InvalidArgument as e:
                raise UnreadableManifest(f"manifest {digest}: {e}", digest) from None
        return self.docs[digest]

    def mark(self, digest: Digest, kept: set[Digest]) -> None:
        """Mark a manifest (kept: the repository's revisions that stay) and what it names."""
        if digest in kept:
            return
        kept.add(digest)
        self.marked.add(digest)
        doc = self.load(digest)
        if isinstance(doc, Index):
            for child in doc.manifests:
                self.mark(Digest(child.digest), kept)
        elif isinstance(doc, Manifest):
            self.marked.update(Digest(d.digest) for d in (doc.config, *doc.layers))


def collect(driver: StorageDriver, *, dry_run: bool = False, delete_untagged: bool = False,
            grace: timedelta = DEFAULT_GRACE, now: datetime | None = None) -> Report:
    """Mark, then sweep (see the module's docstring); `now` is for tests."""
    cutoff = (now or datetime.now(UTC)) - grace
    marker = _Marker(driver)
    untagged: list[tuple[str, Digest]] = []
    names = repositories(driver)
    for name in names:
        untagged += [(name, d) for d in _mark_repository(marker, name, delete_untagged, cutoff)]
    if not dry_run:  # first: no revision link outlives its manifest's data
        for name, digest in untagged:
            _remove_revision(driver, name, digest)
    links = _layer_links(driver, names)
    deleted: list[str] = []
    recent: list[str] = []
    unlinked: list[tuple[str, str]] = []
    freed = 0
    for digest, info_size, info_time in _blobs(driver):
        if digest in marker.marked:
            continue
        repo_links = links.get(digest, [])
        if info_time >= cutoff or any(t >= cutoff for _, t in repo_links):
            recent.append(digest)
            continue
        if not dry_run and not _sweep_blob(driver, digest, [r for r, _ in repo_links], cutoff):
            recent.append(digest)
            continue
        deleted.append(digest)
        unlinked += [(r, digest) for r, _ in repo_links]
        freed += info_size
    return Report(frozenset(marker.marked), tuple(deleted), tuple(untagged), tuple(unlinked),
                  tuple(recent), freed, dry_run)


def repositories(driver: StorageDriver) -> list[str]:
    """Every repository's name, sorted."""
    root = paths.path_for(paths.RepositoriesRoot())
    found: list[str] = []

    def visit(path: str) -> None:
        try:
            children = driver.list(path)
        except PathNotFound:
            return
        base = [c.rsplit("/", 1)[1] for c in children]
        if path != root and any(b in _REPO_MARKERS for b in base):
            found.append(path[len(root) + 1:])
        for child, b in zip(children, base, strict=True):
            if not b.startswith("_") and driver.stat(child).is_dir:
                visit(child)
    visit(root)
    return sorted(found)


def _mark_repository(marker: _Marker, name: str, delete_untagged: bool,
                     cutoff: datetime) -> list[Digest]:
    """Mark from the repository's roots; return the revisions to delete."""
    revisions = _digest_dirs(marker.driver, paths.path_for(paths.ManifestRevisionsDir(name)))
    kept: set[Digest] = set()
    if not delete_untagged:
        for digest in revisions:
            marker.mark(digest, kept)
        return []
    roots = [d for d, t in revisions.items() if t >= cutoff] + _tagged(marker.driver, name)
    for digest in roots:
        marker.mark(digest, kept)
    grew = True
    while grew:  # referrers of what is kept, and their referrers in turn
        grew = False
        for digest in revisions:
            doc = None if digest in kept else marker.load(digest)
            if doc is not None and doc.subject is not None and doc.subject.digest in kept:
                marker.mark(digest, kept)
                grew = True
    return [d for d in revisions if d not in kept]


def _tagged(driver: StorageDriver, name: str) -> list[Digest]:
    try:
        tags = driver.list(paths.path_for(paths.ManifestTagsDir(name)))
    except PathNotFound:
        return []
    out = []
    for tag_dir in tags:
        try:
            link = driver.get_content(f"{tag_dir}/current/link")
        except PathNotFound:
            continue
        out.append(paths.check_digest(link.decode("ascii", "replace")))
    return out


def _digest_dirs(driver: StorageDriver, base: str) -> dict[Digest, datetime]:
    """Links stored as <base>/<alg>/<hex>/link: their digests and when they were written."""
    out: dict[Digest, datetime] = {}
    for alg_dir in _children(driver, base):
        for hex_dir in _children(driver, alg_dir):
            try:
                digest = Digest(f"{alg_dir.rsplit('/', 1)[1]}:{hex_dir.rsplit('/', 1)[1]}")
                out[digest] = driver.stat(f"{hex_dir}/link").mod_time
            except (InvalidArgument, PathNotFound):
                continue  # not a link of ours, or half written: not a reference
    return out


def _layer_links(driver: StorageDriver,
                 names: Iterable[str]) -> dict[Digest, list[tuple[str, datetime]]]:
    out: dict[Digest, list[tuple[str, datetime]]] = {}
    for name in names:
        for digest, when in _digest_dirs(driver, paths.path_for(paths.LayersDir(name))).items():
            out.setdefault(digest, []).append((name, when))
    return out


def _blobs(driver: StorageDriver) -> Iterable[tuple[Digest, int, datetime]]:
    """Every stored blob: digest, size and time of its data."""
    for alg_dir in _children(driver, paths.path_for(paths.BlobsRoot())):
        alg = alg_dir.rsplit("/", 1)[1]
        for prefix_dir in _children(driver, alg_dir):
            for blob_dir in _children(driver, prefix_dir):
                try:
                    digest = Digest(f"{alg}:{blob_dir.rsplit('/', 1)[1]}")
                    info = driver.stat(f"{blob_dir}/data")
                except (InvalidArgument, PathNotFound):
                    continue
                yield digest, info.size, info.mod_time


def _sweep_blob(driver: StorageDriver, digest: Digest, repos: list[str],
                cutoff: datetime) -> bool:
    """Delete the blob and its layer links, unless it was written again since it was
    planned (a push in progress); True if it went."""
    try:
        if driver.stat(paths.path_for(paths.BlobData(digest))).mod_time >= cutoff:
            return False
    except PathNotFound:
        return True
    for name in repos:
        _delete(driver, paths.path_for(paths.LayerLink(name, digest)).rsplit("/", 1)[0])
    _delete(driver, paths.path_for(paths.BlobDir(digest)))
    return True


def _remove_revision(driver: StorageDriver, name: str, digest: Digest) -> None:
    """A revision's link and every tag index entry naming it (a tag whose current link
    named it would have kept it)."""
    try:
        tags = driver.list(paths.path_for(paths.ManifestTagsDir(name)))
    except PathNotFound:
        tags = []
    for tag_dir in tags:
        tag = tag_dir.rsplit("/", 1)[1]
        entry = paths.path_for(paths.ManifestTagIndexEntryLink(name, tag, digest))
        _delete(driver, entry.rsplit("/", 1)[0])
    _delete(driver, paths.path_for(paths.ManifestRevisionLink(name, digest)).rsplit("/", 1)[0])


def _children(driver: StorageDriver, path: str) -> list[str]:
    try:
        return driver.list(path)
    except PathNotFound:
        return []


def _delete(driver: StorageDriver, path: str) -> None:
    try:
        driver.delete(path)
    except PathNotFound:
        pass


def purge_uploads(driver: StorageDriver, *, older_than: timedelta = timedelta(days=7),
                  dry_run: bool = False, now: datetime | None = None) -> list[tuple[str, str]]:
    """Remove uploads started more than `older_than` ago (the reference registry's purge
    of abandoned uploads, one week by default); a client coming back for one gets
    BLOB_UPLOAD_UNKNOWN. Returns (repository, upload id) of each, removed or, in a dry run,
    to be removed."""
    now = now or datetime.now(UTC)
    stale: list[tuple[str, str]] = []
    for repo in repositories(driver):
        uploads = posixpath.dirname(posixpath.dirname(
            paths.path_for(paths.UploadStartedAt(repo, "x"))))
        for upload_dir in _children(driver, uploads):
            upload_id = posixpath.basename(upload_dir)
            started = _started(driver, paths.path_for(paths.UploadStartedAt(repo, upload_id)),
                               upload_dir)
            if now - started > older_than:
                stale.append((repo, upload_id))
                if not dry_run:
                    _delete(driver, upload_dir)
    return stale


def _started(driver: StorageDriver, startedat: str, upload_dir: str) -> datetime:
    """When an upload began: its `startedat` file (RFC 3339), else the directory's time."""
    try:
        text = driver.get_content(startedat).decode().strip()
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (PathNotFound, ValueError, UnicodeDecodeError):
        return driver.stat(upload_dir).mod_time
