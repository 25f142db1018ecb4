"""Paths of the local content store, one pure function each; the tree is drawn in local.py."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from dockyard.image.digest import ALGORITHMS, Digest

# Files of one ingest directory.
DATA = "data"            # the bytes written so far
REF = "ref"              # the ref, written last at the start: valid if it hashes to the dir name
STARTED_AT = "startedat"  # ISO 8601
UPDATED_AT = "updatedat"  # ISO 8601, written on close (data's mtime may be newer); else startedat
TOTAL = "total"          # announced size, if any
EXPECTED = "expected"    # announced digest, if any
LOCK = "lock"            # flock(2) held by the one live writer
COMMIT = "commit"        # JSON {digest, size, labels}: written just before the rename into blobs/

REMOVING = ".tmp-"       # ingest/<hash>.tmp-<uuid>: a directory renamed away before removal


def ingest_name(ref: str) -> str:
    """The name of a ref's ingest directory: a digest of the ref keeps paths short and any
    ref safe as a file name, and lets a reader tell a whole `ref` file from a torn one."""
    return hashlib.sha256(ref.encode()).hexdigest()


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def blobs(self) -> Path:
        return self.root / "blobs"

    def algorithm_dir(self, algorithm: str) -> Path:
        return self.blobs / algorithm

    def blob(self, digest: Digest) -> Path:
        return self.blobs / digest.algorithm / digest.encoded

    @property
    def ingests(self) -> Path:
        return self.root / "ingest"

    def ingest(self, ref: str) -> Path:
        return self.ingests / ingest_name(ref)

    @property
    def database(self) -> Path:
        return self.root / "metadata.db"

    def directories(self) -> list[Path]:
        return [self.root, self.blobs, self.ingests,
                *(self.algorithm_dir(a) for a in sorted(ALGORITHMS))]
