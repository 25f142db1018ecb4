"""Layer compression: "" (a plain tar), "gzip" (isal's igzip) and "zstd" (zstandard).

A layer's media type names its compression (mediatypes.layer_compression); a `docker save`
archive does not, so `detect` reads it from the magic bytes (RFC 1952 §2.3.1 for gzip,
RFC 8878 §3.1.1 for zstd). A tar starts with a file name, which neither magic can begin.

The streams these functions return are where a decoder's own exceptions end: a stream cut
short raises InvalidArgument("... unexpected EOF ..."), corrupt data InvalidArgument with the
decoder's words; I/O errors of the source pass through as they are.

zstandard's stream_reader returns a clean end of file for a stream cut inside a frame, so
the compressed bytes are also followed frame by frame and block by block (`ZstdFrames`, a
few integer operations per 128 KiB block): only a stream that stops between frames ends.
"""

from __future__ import annotations

import gzip
import io
from typing import BinaryIO, cast

import zstandard
from isal import igzip, isal_zlib

from dockyard.image.errors import InvalidArgument

NONE, GZIP, ZSTD = "", "gzip", "zstd"
COMPRESSIONS = (NONE, GZIP, ZSTD)
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
HEAD = 4  # bytes `detect` needs
READ_SIZE = 1 << 20

# isal's levels are 0-3. On 200 MB of bench/layer_apply.py's tar, level 1 made 108 MB in
# 0.4 s, zlib's level 6 (gzip's default) 96 MB in 5.1 s, zlib's level 1 107 MB in 2.1 s.
GZIP_LEVEL = 1
ZSTD_LEVEL = 3  # zstd's own default


def detect(head: bytes) -> str:
    """"gzip", "zstd" or "" (not compressed) from the first bytes of a stream."""
    if head.startswith(GZIP_MAGIC):
        return GZIP
    if head.startswith(ZSTD_MAGIC):
        return ZSTD
    return NONE


def decompressor(stream: BinaryIO, compression: str) -> BinaryIO:
    """A readable stream of `stream` decompressed; "" returns `stream` itself."""
    _check(compression)
    if compression == GZIP:
        return cast(BinaryIO, _Decoded(igzip.IGzipFile(fileobj=stream, mode="rb"), GZIP))
    if compression == ZSTD:
        frames = ZstdFrames(stream)
        reader = zstandard.ZstdDecompressor().stream_reader(
            frames, read_size=READ_SIZE, read_across_frames=True, closefd=False)
        return cast(BinaryIO, _Decoded(reader, ZSTD, frames))
    return stream


def compressor(out: BinaryIO, compression: str, level: int | None = None) -> BinaryIO:
    """A writable stream compressing into `out`; closing it ends the gzip member or zstd
    frame and leaves `out` open. The gzip header holds no name and mtime 0, so that the same
    tar compresses to the same bytes."""
    _check(compression)
    if compression == GZIP:
        return cast(BinaryIO, igzip.IGzipFile(
            filename="", mode="wb", fileobj=out, mtime=0,
            compresslevel=GZIP_LEVEL if level is None else level))
    if compression == ZSTD:
        params = zstandard.ZstdCompressor(
            level=ZSTD_LEVEL if level is None else level, write_checksum=True)
        return cast(BinaryIO, params.stream_writer(out, closefd=False))
    return cast(BinaryIO, _Uncloseable(out))


def _check(compression: str) -> None:
    if compression not in COMPRESSIONS:
        raise InvalidArgument(f"unknown layer compression {compression!r}: want one of "
                              "'', 'gzip', 'zstd'")


_CORRUPT = (gzip.BadGzipFile, isal_zlib.error, zstandard.ZstdError)


class _Decoded(io.RawIOBase):
    """A decoder's reader with its exceptions turned into InvalidArgument."""

    def __init__(self, inner: io.IOBase, name: str, frames: ZstdFrames | None = None) -> None:
        self._inner = inner
        self._name = name
        self._frames = frames

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        try:
            data = self._inner.read(size)
        except EOFError as e:
            raise InvalidArgument(f"{self._name} layer: unexpected EOF ({e})") from e
        except _CORRUPT as e:
            raise InvalidArgument(f"{self._name} layer: corrupt data: {e}") from e
        if not data and self._frames is not None and size != 0:
            self._frames.finish()
        return data

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self._inner.close()
        super().close()


class ZstdFrames(io.RawIOBase):
    """Passes `source` through, following its zstd frames (RFC 8878 §3.1): magic, frame
    header, blocks (3-byte headers: last-block bit, type, size), optional checksum; and
    skippable frames (magic 0x184D2A5?, a 4-byte size). `finish` raises unless the stream
    ended on a frame boundary."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._state = "magic"
        self._head = b""
        self._want = 4
        self._skip = 0
        self._checksum = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size) or b""
        self._feed(data)
        return data

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def finish(self) -> None:
        if self._source.read(1):
            raise InvalidArgument("zstd layer: data after the last frame")
        if self._state != "magic" or self._head or self._skip:
            raise InvalidArgument("zstd layer: unexpected EOF inside a frame")

    def _feed(self, data: bytes) -> None:
        pos, end = 0, len(data)
        while pos < end:
            if self._skip:
                step = min(self._skip, end - pos)
                self._skip -= step
                pos += step
                continue
            take = min(self._want - len(self._head), end - pos)
            self._head += data[pos:pos + take]
            pos += take
            if len(self._head) == self._want:
                head, self._head = self._head, b""
                self._advance(head)

    def _advance(self, head: bytes) -> None:
        state, value = self._state, int.from_bytes(head, "little")
        if state == "magic":
            if value == 0xFD2FB528:
                self._state, self._want = "descriptor", 1
            elif value & 0xFFFFFFF0 == 0x184D2A50:
                self._state, self._want = "skippable", 4
            else:
                raise InvalidArgument("zstd layer: corrupt data: no frame magic")
        elif state == "skippable":
            self._state, self._want, self._skip = "magic", 4, value
        elif state == "descriptor":
            single = (value >> 5) & 1
            self._checksum = 4 if value & 0x04 else 0
            rest = ((0 if single else 1) + (0, 1, 2, 4)[value & 3]
                    + (single, 2, 4, 8)[value >> 6])
            self._state, self._want = ("header", rest) if rest else ("block", 3)
        elif state == "header":
            self._state, self._want = "block", 3
        else:  # a block header
            kind, size = (value >> 1) & 3, value >> 3
            if kind == 3:
                raise InvalidArgument("zstd layer: corrupt data: reserved block type")
            self._skip = 1 if kind == 1 else size
            if value & 1:
                self._skip += self._checksum
                self._state, self._want = "magic", 4


class _Uncloseable(io.RawIOBase):
    """`out` for writing, where closing does not close `out`."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[no-untyped-def]
        self._out.write(data)
        return memoryview(data).nbytes

    def flush(self) -> None:
        if not self.closed:
            self._out.flush()
