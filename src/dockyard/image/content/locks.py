"""The one-writer-per-ref lock of the local store's ingests.

flock(2) on `ingest/<hash of ref>/lock`: the kernel drops it when its holder dies, so a kill -9
never leaves a ref locked, and flock locks belong to an open file, so two writers in one
process exclude each other too. Whoever removes an ingest directory holds its lock, which is
why a locker checks, once locked, that the lock file is still the one in the directory.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from dockyard.image.content import layout as files
from dockyard.image.errors import Unavailable

LOCK_TRIES = 5          # a probe (status, recovery) holds a lock for microseconds: wait it out
LOCK_RETRY_DELAY = 0.01


class IngestLock:
    """flock(2) on `<ingest>/lock`: released by the kernel when its holder dies, so a kill -9
    never leaves a ref locked. flock locks belong to an open file, so two writers in one
    process exclude each other too."""

    def __init__(self, fd: int, ref: str) -> None:
        self.fd = fd
        self.ref = ref

    @classmethod
    def acquire(cls, path: Path, ref: str, *, create: bool,
                tries: int = 1) -> IngestLock | None:
        """Lock the ingest at `path`; None if it does not exist (and `create` is false).
        Writers pass `tries=LOCK_TRIES` to wait out a momentary probe by recovery or status.

        After locking, the lock file must still be the one at `path`: an abort or commit in
        another process may have removed the directory between our open and our flock.
        """
        for _ in range(16):
            if create:
                path.mkdir(exist_ok=True)
            elif not path.is_dir():
                return None
            try:
                fd = os.open(path / files.LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except FileNotFoundError:
                continue
            if not _flock(fd, tries):
                os.close(fd)
                raise Unavailable(f"ingest ref {ref!r} locked: another writer holds it")
            try:
                on_disk = os.stat(path / files.LOCK)
            except FileNotFoundError:
                os.close(fd)
                continue
            held = os.fstat(fd)
            if (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino):
                return cls(fd, ref)
            os.close(fd)
        raise Unavailable(f"ingest ref {ref!r}: its directory keeps being replaced")

    @staticmethod
    def held(path: Path) -> bool:
        """Whether a writer holds the ingest at `path` now (a momentary shared-lock probe)."""
        try:
            fd = os.open(path / files.LOCK, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing the last descriptor drops the flock
            self.fd = -1


def _flock(fd: int, tries: int) -> bool:
    for attempt in range(tries):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if attempt + 1 < tries:
                time.sleep(LOCK_RETRY_DELAY)
    return False
