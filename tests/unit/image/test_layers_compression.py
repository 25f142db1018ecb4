"""Layer compression: magic bytes, round trips, and damaged streams that must end as
InvalidArgument, never as a decoder's own exception or a silent short read."""

from __future__ import annotations

import gzip
import io
import os

import pytest
import zstandard

from dockyard.image.errors import InvalidArgument
from dockyard.image.layers.compression import compressor, decompressor, detect

DATA = os.urandom(100_000) + b"layer " * 200_000  # 1.3 MB, some of it compressible


def compress(data: bytes, compression: str) -> bytes:
    out = io.BytesIO()
    with compressor(out, compression) as c:
        c.write(data)
    assert not out.closed  # closing the compressor leaves `out` open
    return out.getvalue()


def decompress(blob: bytes, compression: str, size: int = 1 << 16) -> bytes:
    stream = decompressor(io.BytesIO(blob), compression)
    parts = []
    while chunk := stream.read(size):
        parts.append(chunk)
    return b"".join(parts)


@pytest.mark.parametrize(("head", "want"), [
    (b"\x1f\x8b\x08\x00", "gzip"), (b"\x28\xb5\x2f\xfd", "zstd"), (b"etc/passwd\0", ""),
    (b"", ""), (b"\x1f", ""), (b"\x28\xb5\x2f", ""),
])
def test_detect_reads_the_magic_bytes(head: bytes, want: str) -> None:
    assert detect(head) == want


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_detect_knows_what_compressor_wrote(compression: str) -> None:
    assert detect(compress(b"x", compression)[:4]) == compression


@pytest.mark.parametrize("compression", ["", "gzip", "zstd"])
def test_round_trip(compression: str) -> None:
    blob = compress(DATA, compression)
    assert decompress(blob, compression) == DATA
    if compression:
        assert len(blob) < len(DATA)


def test_plain_passes_the_stream_through() -> None:
    stream = io.BytesIO(b"abc")
    assert decompressor(stream, "") is stream
    assert compress(b"abc", "") == b"abc"


def test_gzip_is_reproducible_and_standard() -> None:
    blob = compress(DATA, "gzip")
    assert blob == compress(DATA, "gzip")
    assert blob[4:8] == b"\0\0\0\0"  # mtime 0, and no file name (flags byte 0)
    assert blob[3] == 0
    assert gzip.decompress(blob) == DATA


def test_zstd_is_standard_and_checksummed() -> None:
    blob = compress(DATA, "zstd")
    assert zstandard.ZstdDecompressor().decompressobj().decompress(blob) == DATA
    assert zstandard.get_frame_parameters(blob).has_checksum


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_concatenated_members_and_frames_read_as_one(compression: str) -> None:
    blob = compress(b"first ", compression) + compress(b"second", compression)
    assert decompress(blob, compression) == b"first second"


def test_zstd_skippable_frames_are_passed_over() -> None:
    skippable = b"\x50\x2a\x4d\x18" + (5).to_bytes(4, "little") + b"12345"
    blob = skippable + compress(b"data", "zstd") + skippable
    assert decompress(blob, "zstd") == b"data"


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
@pytest.mark.parametrize("keep", [0.1, 0.5, 0.99])
def test_truncated_stream_is_unexpected_eof(compression: str, keep: float) -> None:
    blob = compress(DATA, compression)
    with pytest.raises(InvalidArgument, match="unexpected EOF"):
        decompress(blob[:int(len(blob) * keep)], compression)


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_a_stream_cut_just_before_its_end_is_unexpected_eof(compression: str) -> None:
    blob = compress(DATA, compression)
    with pytest.raises(InvalidArgument, match="unexpected EOF"):
        decompress(blob[:-1], compression)


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_corrupt_stream_is_invalid_argument(compression: str) -> None:
    blob = bytearray(compress(DATA, compression))
    for i in range(200, len(blob) - 200, 997):
        blob[i] ^= 0x55
    with pytest.raises(InvalidArgument, match=r"corrupt|unexpected EOF"):
        decompress(bytes(blob), compression)


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_garbage_after_the_stream_is_invalid_argument(compression: str) -> None:
    with pytest.raises(InvalidArgument):
        decompress(compress(b"data", compression) + b"garbage!", compression)


def test_gzip_with_a_bad_crc_is_invalid_argument() -> None:
    blob = bytearray(compress(b"data" * 100, "gzip"))
    blob[-8] ^= 1  # the CRC32 in the trailer
    with pytest.raises(InvalidArgument, match="corrupt"):
        decompress(bytes(blob), "gzip")


def test_unknown_compression_is_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match="bzip2"):
        decompressor(io.BytesIO(b""), "bzip2")
    with pytest.raises(InvalidArgument, match="bzip2"):
        compressor(io.BytesIO(), "bzip2")


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_compression_level_is_used(compression: str) -> None:
    fast = compress(DATA, compression)
    out = io.BytesIO()
    with compressor(out, compression, level=0 if compression == "gzip" else 19) as c:
        c.write(DATA)
    assert decompress(out.getvalue(), compression) == DATA
    assert out.getvalue() != fast
