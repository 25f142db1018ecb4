"""What a content store is, as small Protocols combined by role (containerd's content.go).

    Provider        reader_at(digest)                   read a committed blob at any offset
    InfoProvider    info(digest)                        size, times and labels of a blob
    Manager         + update, walk, delete              labels are the only mutable field
    Ingester        writer(ref, expected, total)        begin or resume an ingest
    IngestManager   status, list_statuses, abort        look at and cancel ingests
    Store           all of the above

A blob is written through a Writer keyed by a caller-chosen *ref*; nothing is visible under
its digest until `Writer.commit` has verified the size and digest. A ref names one ingest at a
time: a second writer for a ref that is being written is refused, a writer for a ref whose
writer went away resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Protocol

from dockyard.image.digest import Digest


@dataclass(frozen=True)
class Info:
    """A committed blob. `labels` are the only thing about it that can change."""

    digest: Digest
    size: int
    created_at: datetime
    updated_at: datetime
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Status:
    """An ingest in progress: `offset` bytes written so far, of `total` if announced;
    `active` while a writer holds it (the collector never removes those)."""

    ref: str
    offset: int
    total: int | None
    expected: Digest | None
    started_at: datetime
    updated_at: datetime
    active: bool = False


class ReaderAt(Protocol):
    """A readable, seekable file over one blob; `read_at` reads without moving the offset."""

    @property
    def size(self) -> int: ...

    def read_at(self, n: int, offset: int) -> bytes: ...

    def read(self, n: int = -1, /) -> bytes: ...

    def readinto(self, buffer: bytearray | memoryview) -> int | None: ...

    def seek(self, offset: int, whence: int = 0) -> int: ...

    def close(self) -> None: ...

    def __enter__(self) -> ReaderAt: ...

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None: ...


class Writer(Protocol):
    """One ingest, appended to in order. Closing keeps the data for a later resume;
    `IngestManager.abort` throws it away."""

    @property
    def ref(self) -> str: ...

    def write(self, data: bytes | bytearray | memoryview) -> int: ...

    def digest(self) -> Digest: ...

    def status(self) -> Status: ...

    def commit(self, size: int | None, expected: str | None = None,
               labels: Mapping[str, str] | None = None) -> Digest: ...

    def close(self) -> None: ...

    def __enter__(self) -> Writer: ...

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None: ...


class Provider(Protocol):
    def reader_at(self, digest: str) -> ReaderAt: ...


class InfoProvider(Protocol):
    def info(self, digest: str) -> Info: ...


class Manager(InfoProvider, Protocol):
    def update(self, digest: str, labels: Mapping[str, str],
               fieldpaths: Sequence[str] | None = None) -> Info: ...

    def walk(self, *filters: str) -> Iterator[Info]: ...

    def delete(self, digest: str) -> None: ...


class Ingester(Protocol):
    def writer(self, ref: str, expected: str | None = None,
               total: int | None = None) -> Writer: ...


class IngestManager(Protocol):
    def status(self, ref: str) -> Status: ...

    def list_statuses(self, *filters: str) -> list[Status]: ...

    def abort(self, ref: str) -> None: ...


class Store(Provider, Manager, Ingester, IngestManager, Protocol):
    """A complete content store: everything above, nothing more."""
