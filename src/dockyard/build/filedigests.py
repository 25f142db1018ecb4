"""The sha256 of each regular file of a build context, taken while the file was unpacked.

A COPY's cache key needs the digest of every file it reads (copying.content_digest). The
context's files were just written from the request's tar, so hashing them then costs no
second read and overlaps with the upload; a rebuild whose steps all hit the cache then never
reads the context again.

An entry is found again by the file's inode and trusted only while the inode still looks as
it did when it was hashed (size, mtime and ctime in nanoseconds): anything that wrote to the
file since (a RUN with a read-write bind of the context, say) changed its ctime, and the file
is hashed again. A later member of the same name makes a new inode, recorded in its turn.
"""

from __future__ import annotations

import os
import threading


def _shape(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns


class FileDigests:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[tuple[int, int], tuple[tuple[int, int, int], bytes]] = {}

    def record(self, st: os.stat_result, digest: bytes) -> None:
        """`digest` is the sha256 of the file `st` describes (taken after its last change)."""
        with self._lock:
            self._known[(st.st_dev, st.st_ino)] = (_shape(st), digest)

    def lookup(self, st: os.stat_result) -> bytes | None:
        """The recorded sha256 of the file `st` describes, None if unknown or changed."""
        with self._lock:
            found = self._known.get((st.st_dev, st.st_ino))
        if found is None or found[0] != _shape(st):
            return None
        return found[1]
