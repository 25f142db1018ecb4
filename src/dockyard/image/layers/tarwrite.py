"""A tar written member by member, the same bytes for the same members.

Each member is a ustar header (POSIX.1-1988: "ustar\\0" "00"), preceded by a PAX extended
header ('x', POSIX.1-2001) only for what ustar cannot hold: a name longer than 100 bytes or
not ASCII, a size or id too large for its octal field, an mtime before 1970 or with
nanoseconds, extended attributes (SCHILY.xattr.<name>, as GNU tar, star and Go write them).
Owners are numeric only (uname and gname empty), atime and ctime are not written, PAX
records come in a fixed order, and the archive ends with two zero blocks (as Go's
archive/tar ends it; GNU tar pads to 10 KiB more), so equal members make equal bytes.
"""

from __future__ import annotations

import io
import os
from typing import BinaryIO

from dockyard.image.layers.tarstream import BLOCK, BLOCKDEV, CHAR, DIR, REGULAR, Member

_PAX_NAME = b"././@PaxHeader"  # what tarfile and GNU tar call it
_NAME, _SIZE, _ID = 100, 8 ** 11, 8 ** 7
_ZEROS = bytes(BLOCK)
COPY_SIZE = 1 << 20


class TarWriter:
    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._buffer = bytearray(COPY_SIZE)

    def add(self, m: Member, data_fd: int | None = None) -> None:
        """One member; a regular file's `m.size` bytes are read from `data_fd`, and a file
        that is shorter than that now is an error (it changed while being written)."""
        self._out.write(header(m))
        if m.type != REGULAR or not m.size:
            return
        if data_fd is None:
            raise ValueError(f"tar member {m.name!r}: no data for {m.size} bytes")
        left = m.size
        reader = io.FileIO(data_fd, closefd=False)
        view = memoryview(self._buffer)
        while left:
            n = reader.readinto(view[:min(left, COPY_SIZE)])
            if not n:
                raise OSError(f"tar member {m.name!r}: file shrank by {left} bytes while "
                              "being read")
            self._out.write(view[:n])
            left -= n
        self._out.write(_ZEROS[:-m.size % BLOCK])

    def close(self) -> None:
        self._out.write(_ZEROS * 2)


def header(m: Member) -> bytes:
    """The header block(s) of `m`: a PAX header first where ustar does not suffice."""
    name = os.fsencode(m.name) + (b"/" if m.type == DIR and not m.name.endswith("/") else b"")
    linkname = os.fsencode(m.linkname)
    pax: list[tuple[bytes, bytes]] = []
    if len(name) > _NAME or not name.isascii():
        pax.append((b"path", name))
    if len(linkname) > _NAME or not linkname.isascii():
        pax.append((b"linkpath", linkname))
    size = m.size if m.type == REGULAR else 0
    if size >= _SIZE:
        pax.append((b"size", b"%d" % size))
    for key, value in ((b"uid", m.uid), (b"gid", m.gid)):
        if not 0 <= value < _ID:
            pax.append((key, b"%d" % value))
    seconds, fraction = divmod(abs(m.mtime_ns), 1_000_000_000)
    if fraction or m.mtime_ns < 0 or seconds >= _SIZE:
        text = b"%s%d" % (b"-" if m.mtime_ns < 0 else b"", seconds)
        if fraction:
            text += (b".%09d" % fraction).rstrip(b"0")
        pax.append((b"mtime", text))
    for key, value in sorted(m.xattrs):
        pax.append((b"SCHILY.xattr." + key.encode("utf-8", "surrogateescape"), value))
    main = _ustar(name[:_NAME], m.type.encode(), m.mode, m.uid, m.gid, size,
                  seconds if m.mtime_ns >= 0 else 0, linkname[:_NAME],
                  m.devmajor if m.type in (CHAR, BLOCKDEV) else 0,
                  m.devminor if m.type in (CHAR, BLOCKDEV) else 0)
    if not pax:
        return main
    records = b"".join(_record(k, v) for k, v in pax)
    return (_ustar(_PAX_NAME, b"x", 0, 0, 0, len(records), 0, b"", 0, 0)
            + records + _ZEROS[:-len(records) % BLOCK] + main)


def _record(key: bytes, value: bytes) -> bytes:
    """"<length> <key>=<value>\\n", the length counting its own digits."""
    body = b" " + key + b"=" + value + b"\n"
    length = len(body) + 1
    while len(b"%d" % length) + len(body) != length:
        length = len(b"%d" % length) + len(body)
    return b"%d" % length + body


def _ustar(name: bytes, kind: bytes, mode: int, uid: int, gid: int, size: int, mtime: int,
           linkname: bytes, devmajor: int, devminor: int) -> bytes:
    block = b"".join((
        name.ljust(100, b"\0"), _octal(mode & 0o7777, 8), _octal(uid, 8), _octal(gid, 8),
        _octal(size, 12), _octal(mtime, 12), b" " * 8, kind, linkname.ljust(100, b"\0"),
        b"ustar\x0000", bytes(64), _octal(devmajor, 8), _octal(devminor, 8),
    )).ljust(BLOCK, b"\0")
    return block[:148] + b"%06o\0 " % sum(block) + block[156:]


def _octal(value: int, width: int) -> bytes:
    """Octal, NUL-terminated; a value that does not fit is 0 (its PAX record holds it)."""
    if not 0 <= value < 8 ** (width - 1):
        value = 0
    return b"%0*o\0" % (width - 1, value)
