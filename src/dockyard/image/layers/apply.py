"""apply_layer: a layer blob unpacked into a snapshot's directory, in one streaming pass.

    stream ──► HashingReader ──► decompressor ──► chunks (1 MiB) ──► TarReader ──► Unpacker
               digest, size      gzip/zstd/""     diff_id,           members        files
                                                  uncompressed_size

Nothing is written to a temporary file and nothing is read twice: both digests are taken
on the way, and the stream is read to its end after the tar's end, so that they cover every
byte. Reading and decompressing run in a second thread (`Prefetch`), hashing in a third
(`HashThread`), while this one makes the files: isal, zstandard, hashlib and the file
system calls all let go of the GIL while they work.

The digests are checked after the pass, since they are only known then: on a mismatch the
root holds what the layer made, and DigestMismatch tells the caller to throw the snapshot
away. apply_layer never cleans the root itself (it does not own it); the caller removes the
active snapshot it applied into, on this error as on any other.
"""

from __future__ import annotations

import hashlib
import io
import os
import queue
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import BinaryIO

from dockyard.image.digest import Digest, from_hasher
from dockyard.image.errors import DigestMismatch, InvalidArgument
from dockyard.image.layers.compression import HEAD, decompressor, detect
from dockyard.image.layers.hashing import Applied, HashingReader, HashThread
from dockyard.image.layers.tarstream import TarReader
from dockyard.image.layers.unpack import Unpacker

__all__ = ["CHUNK", "Applied", "apply_layer"]

CHUNK = 1 << 20
PREFETCH = 8  # chunks read ahead: enough to ride out a burst of small files


def apply_layer(root: str | os.PathLike[str], stream: BinaryIO, *,
                compression: str | None = None, whiteouts: str = "overlay",
                expected_digest: str | None = None, expected_diff_id: str | None = None,
                same_owner: bool = True, trusted_digest: str | None = None) -> Applied:
    """Unpack the layer in `stream` into the directory `root`.

    compression: "", "gzip", "zstd", or None to tell from the first bytes.
    whiteouts:   "overlay" (root is an empty overlay upper directory: deletions become
                 whiteout devices and opaque directories) or "delete" (root holds a copy of
                 the layers below: deletions are carried out).
    same_owner:  take owners from the tar (as root does); False leaves files to the caller.
    trusted_digest: the stream's digest, vouched for by the caller (a content store checks
                 a blob when it is committed): the stream is then not hashed again, and
                 this is the digest returned. The diff ID is always computed.

    Raises InvalidArgument for a stream that is cut short or corrupt, or a member that
    cannot be made (a hard link to nothing); DigestMismatch, after the whole pass, when the
    stream or its tar is not what `expected_digest` / `expected_diff_id` say. Whatever the
    error, what was made stays in `root`: the caller discards the snapshot."""
    if whiteouts not in ("overlay", "delete"):
        raise InvalidArgument(f"whiteouts {whiteouts!r}: want 'overlay' or 'delete'")
    want_digest = Digest(expected_digest) if expected_digest else None
    want_diff_id = Digest(expected_diff_id) if expected_diff_id else None
    tar_hash = hashlib.new(want_diff_id.algorithm if want_diff_id else "sha256")
    with HashThread() as hashes:
        source = HashingReader(stream, want_digest.algorithm if want_digest else "sha256",
                               hashes, hashing=trusted_digest is None)
        head = _read_head(source)
        decoded = decompressor(_Prefixed(head, source),
                               detect(head) if compression is None else compression)
        with Prefetch(_chunks(decoded, tar_hash, hashes)) as chunks:
            _unpack(root, chunks, whiteouts == "overlay", same_owner)
    applied = Applied(Digest(trusted_digest) if trusted_digest else source.digest(),
                      from_hasher(tar_hash), source.count, chunks.total)
    if want_digest is not None and applied.digest != want_digest:
        raise DigestMismatch(f"layer digest mismatch: expected {want_digest}, "
                             f"got {applied.digest}")
    if want_diff_id is not None and applied.diff_id != want_diff_id:
        raise DigestMismatch(f"layer diff_id mismatch: expected {want_diff_id}, "
                             f"got {applied.diff_id}")
    return applied


def _unpack(root: str | os.PathLike[str], chunks: Prefetch, overlay: bool,
            same_owner: bool) -> None:
    unpacker = Unpacker(root, overlay=overlay, same_owner=same_owner)
    try:
        reader = TarReader(iter(chunks))
        while (member := reader.next()) is not None:
            unpacker.apply(member, reader)
        reader.drain()
        unpacker.finish()
    finally:
        unpacker.close()


def _read_head(source: BinaryIO) -> bytes:
    """The first HEAD bytes (fewer at EOF), however few each read returns."""
    head = b""
    while len(head) < HEAD:
        data = source.read(HEAD - len(head))
        if not data:
            break
        head += data
    return head


def _chunks(decoded: BinaryIO, hasher: hashlib._Hash, hashes: HashThread) -> Iterator[bytes]:
    while chunk := decoded.read(CHUNK):
        hashes.update(hasher, chunk)
        yield chunk


class _Prefixed(io.RawIOBase):
    """`head`, then the rest of `source`."""

    def __init__(self, head: bytes, source: BinaryIO) -> None:
        self._head = head
        self._source = source

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size < 0 or size >= len(self._head):
                data, self._head = self._head, b""
                return data
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._source.read(size) or b""

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


class Prefetch:
    """Runs an iterator of chunks in a thread, PREFETCH chunks ahead of the consumer; its
    exceptions come out of the consumer's `next`. Leaving the `with` stops the thread,
    waiting for it, whether or not the chunks were all taken. `total` counts bytes taken."""

    _END = object()

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._queue: queue.Queue[object] = queue.Queue(PREFETCH)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="layer-read", daemon=True)
        self.total = 0

    def __enter__(self) -> Prefetch:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self._thread.join()

    def __iter__(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes)
            self.total += len(item)
            yield item

    def _run(self) -> None:
        try:
            for chunk in self._chunks:
                if not self._put(chunk):
                    return
        except BaseException as e:  # handed to the consumer, which raises it
            self._put(e)
            return
        self._put(self._END)

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                pass
        return False
