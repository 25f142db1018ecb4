"""TarReader on the formats layers come in (ustar, GNU, PAX), however the stream is cut
into chunks, and on damaged archives, which must be InvalidArgument."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator

import pytest

from dockyard.image.errors import InvalidArgument
from dockyard.image.layers.tarstream import DIR, LINK, REGULAR, SYMLINK, Member, TarReader
from tests.unit.image.test_layers_tarfiles import MTIME, file, layer


def make(*members: tuple[tarfile.TarInfo, bytes], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def info(name: str, kind: bytes = tarfile.REGTYPE, **attrs: object) -> tarfile.TarInfo:
    t = tarfile.TarInfo(name)
    t.type = kind
    for k, v in attrs.items():
        setattr(t, k, v)
    return t


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    return (data[i:i + size] for i in range(0, len(data), size))


def read_all(data: bytes, size: int = 1 << 20) -> list[tuple[Member, bytes]]:
    reader = TarReader(chunked(data, size))
    out = []
    while (m := reader.next()) is not None:
        out.append((m, reader.read_data()))
    reader.drain()
    return out


@pytest.mark.parametrize("size", [1, 7, 511, 512, 513, 4096, 1 << 20])
def test_any_chunking_reads_the_same(size: int) -> None:
    data = make((info("a"), b"x" * 1000), (info("b", tarfile.DIRTYPE), b""),
                (info("c" * 120), b"y" * 513))
    got = read_all(data, size)
    assert [(m.name, m.type, d) for m, d in got] == [
        ("a", REGULAR, b"x" * 1000), ("b/", DIR, b""), ("c" * 120, REGULAR, b"y" * 513)]


def test_fields_are_read() -> None:
    t = info("f", mode=0o4755, uid=1000, gid=100, mtime=1_700_000_000)
    [(m, data)] = read_all(make((t, b"abc"), fmt=tarfile.USTAR_FORMAT))
    assert (m.mode, m.uid, m.gid, m.size, m.mtime_ns) == (0o4755, 1000, 100, 3,
                                                          1_700_000_000 * 10**9)
    assert data == b"abc"


def test_links_and_devices() -> None:
    data = make((info("s", tarfile.SYMTYPE, linkname="../t"), b""),
                (info("h", tarfile.LNKTYPE, linkname="s"), b""),
                (info("c", tarfile.CHRTYPE, devmajor=4, devminor=64), b""))
    (s, _), (h, _), (c, _) = read_all(data)
    assert (s.type, s.linkname, h.type, h.linkname) == (SYMLINK, "../t", LINK, "s")
    assert (c.devmajor, c.devminor) == (4, 64)


def test_ustar_prefix_makes_long_names() -> None:
    name = "p" * 100 + "/" + "n" * 90
    [(m, _)] = read_all(make((info(name), b""), fmt=tarfile.USTAR_FORMAT))
    assert m.name == name


def test_gnu_long_names_and_base256_numbers() -> None:
    long_name, long_link = "d/" + "n" * 300, "t/" + "l" * 300
    data = make((info(long_name, uid=8**8, mtime=8**12), b"z"),
                (info("s", tarfile.SYMTYPE, linkname=long_link), b""), fmt=tarfile.GNU_FORMAT)
    (f, d), (s, _) = read_all(data)
    assert (f.name, f.uid, f.mtime_ns, d) == (long_name, 8**8, 8**12 * 10**9, b"z")
    assert s.linkname == long_link


def test_pax_records_override_the_header() -> None:
    t = info("short", pax_headers={"path": "é/" + "x" * 200, "uid": "123456789",
                                   "mtime": "1700000000.123456789", "atime": "-1.5",
                                   "SCHILY.xattr.user.a": "1",
                                   "SCHILY.xattr.security.capability": "\x01\x00"})
    [(m, _)] = read_all(make((t, b"")))
    assert m.name == "é/" + "x" * 200
    assert m.uid == 123456789
    assert m.mtime_ns == 1_700_000_000_123_456_789
    assert m.atime_ns == -1_500_000_000
    assert dict(m.xattrs) == {"user.a": b"1", "security.capability": b"\x01\x00"}


def test_pax_global_header_applies_to_what_follows() -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT,
                      pax_headers={"uid": "4242"}) as tar:
        tar.addfile(info("a"), io.BytesIO(b""))
    [(m, _)] = read_all(out.getvalue())
    assert m.uid == 4242


def test_libarchive_xattrs() -> None:
    t = info("f", pax_headers={"LIBARCHIVE.xattr.user.a%20b": "dmFsdWU="})
    [(m, _)] = read_all(make((t, b"")))
    assert m.xattrs == (("user.a b", b"value"),)


def test_nanosecond_mtimes_round_trip_through_the_writer() -> None:
    [(m, _)] = read_all(layer(file("f", mtime_ns=MTIME + 1)))
    assert m.mtime_ns == MTIME + 1
    [(m, _)] = read_all(layer(file("f", mtime_ns=-5 * 10**9 - 7)))
    assert m.mtime_ns == -5 * 10**9 - 7


def test_pre_posix_directory_is_a_directory() -> None:
    [(m, _)] = read_all(make((info("old/", tarfile.AREGTYPE), b""), fmt=tarfile.USTAR_FORMAT))
    assert m.type == DIR


def test_an_archive_without_end_blocks_ends_at_eof() -> None:
    data = make((info("a"), b"x"))
    assert [m.name for m, _ in read_all(data[:1024])] == ["a"]


def test_data_after_the_end_is_read_and_ignored() -> None:
    assert [m.name for m, _ in read_all(layer(file("a")) + b"trailing" * 1000)] == ["a"]


@pytest.mark.parametrize("cut", [100, 512 + 10, 700])
def test_truncated_archive_is_unexpected_eof(cut: int) -> None:
    data = make((info("a"), b"x" * 1000))
    with pytest.raises(InvalidArgument, match="unexpected EOF"):
        read_all(data[:cut])


def test_bad_checksum_is_corrupt() -> None:
    data = bytearray(make((info("a"), b"x")))
    data[0] ^= 1
    with pytest.raises(InvalidArgument, match="checksum"):
        read_all(bytes(data))


def test_bad_number_is_corrupt() -> None:
    block = bytearray(make((info("a"), b""), fmt=tarfile.USTAR_FORMAT)[:512])
    block[100:108] = b"09999999"
    block[148:156] = b"%06o\0 " % (sum(block[:148]) + 256 + sum(block[156:]))
    with pytest.raises(InvalidArgument, match="corrupt header"):
        read_all(bytes(block) + bytes(1024))


def test_negative_size_is_refused() -> None:
    block = bytearray(make((info("a"), b""), fmt=tarfile.USTAR_FORMAT)[:512])
    block[124:136] = b"\xff" * 12  # base-256 -1
    block[148:156] = b"%06o\0 " % (sum(block[:148]) + 256 + sum(block[156:]))
    with pytest.raises(InvalidArgument, match="negative size"):
        read_all(bytes(block) + bytes(1024))


def test_nul_in_a_pax_path_is_refused() -> None:
    t = info("a", pax_headers={"path": "etc/passwd\x00.txt"})
    with pytest.raises(InvalidArgument, match="NUL"):
        read_all(make((t, b"")))


def test_sparse_files_are_refused() -> None:
    t = info("s", pax_headers={"GNU.sparse.major": "1", "GNU.sparse.minor": "0"})
    with pytest.raises(InvalidArgument, match="sparse"):
        read_all(make((t, b"")))


def test_unknown_entry_types_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="unsupported entry type"):
        read_all(make((info("v", b"V"), b"")))


@pytest.mark.parametrize("bad", [b"8 path=x\n", b"9 pathxx\n", b"x path=x\n"])
def test_corrupt_pax_records_are_refused(bad: bytes) -> None:
    data = make((info("a", pax_headers={"path": "x"}), b""))
    assert data.count(b"9 path=x\n") == 1
    with pytest.raises(InvalidArgument, match="PAX"):
        read_all(data.replace(b"9 path=x\n", bad))


def test_unread_data_is_skipped() -> None:
    data = make((info("a"), b"x" * 5000), (info("b"), b"y"))
    reader = TarReader(chunked(data, 333))
    assert reader.next().name == "a"  # type: ignore[union-attr]
    b = reader.next()
    assert b is not None and b.name == "b" and reader.read_data() == b"y"
    assert reader.next() is None
