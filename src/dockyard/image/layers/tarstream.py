"""A tar read from a stream of chunks, one pass, in the formats layers come in: ustar,
GNU (long names 'L'/'K', base-256 numbers) and PAX (POSIX.1-2001 'x' and 'g' records).

    ┌──────────┬──────────────┬──────────┬──────────────┬─ ─ ─┬────────┬────────┐
    │ header   │ data, padded │ header   │ data, padded │     │ zeros  │ zeros  │ (rest
    │ 512 B    │ to 512 B     │ 512 B    │ to 512 B     │     │ 512 B  │ 512 B  │  to EOF)
    └──────────┴──────────────┴──────────┴──────────────┴─ ─ ─┴────────┴────────┘

tarfile's "r|" mode would do, but its per-member cost (TarInfo objects, a read per block,
file data through Python buffers) shows on layers of many small files. Here a header is
parsed from the chunk it lies in, and a member's data is written to a descriptor straight
from the chunks, without a copy.

Errors are InvalidArgument: a stream that stops inside a header or inside a member's data
is "unexpected EOF"; a bad checksum or number is a corrupt header. A stream that stops at a
header boundary, without the two zero blocks, ends the archive (as Go's archive/tar reads it).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote

from dockyard.image.errors import InvalidArgument

BLOCK = 512
REGULAR, LINK, SYMLINK, CHAR, BLOCKDEV, DIR, FIFO = "0", "1", "2", "3", "4", "5", "6"
_TYPES = {b"0": REGULAR, b"\0": REGULAR, b"7": REGULAR, b"1": LINK, b"2": SYMLINK,
          b"3": CHAR, b"4": BLOCKDEV, b"5": DIR, b"6": FIFO}
_PAX, _PAX_GLOBAL, _GNU_NAME, _GNU_LINK = b"x", b"g", b"L", b"K"
_META_MAX = 1 << 20  # a PAX record set or GNU long name larger than this is refused


@dataclass(frozen=True, slots=True)
class Member:
    """One entry, with PAX and GNU extensions already folded in. `name` and `linkname` are
    as written (not yet cleaned); `mode` holds permissions and set-id/sticky bits only."""

    name: str
    type: str
    mode: int
    uid: int
    gid: int
    size: int
    mtime_ns: int
    atime_ns: int | None
    linkname: str
    devmajor: int
    devminor: int
    xattrs: tuple[tuple[str, bytes], ...]


class TarReader:
    """`next()` returns the next member or None at the end; its data is then read with
    `write_data(fd)` or `read_data()`, or skipped by the next `next()`. `drain()` reads the
    rest of the stream, so that whatever follows the archive is still hashed."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = memoryview(b"")
        self._pos = 0
        self._left = 0  # data bytes of the current member not yet read
        self._pad = 0  # then padding to the next block
        self._global: dict[str, bytes] = {}

    def next(self) -> Member | None:
        self._skip(self._left + self._pad)
        self._left = self._pad = 0
        pax: dict[str, bytes] = {}
        while True:
            block = self._take(BLOCK, header=True)
            if block is None or not any(block):
                return None
            fields = _parse_header(block)
            kind = fields[1]
            if kind in (_PAX, _PAX_GLOBAL, _GNU_NAME, _GNU_LINK):
                data = self._meta(fields[5])
                if kind == _PAX:
                    pax.update(_parse_pax(data))
                elif kind == _PAX_GLOBAL:
                    self._global.update(_parse_pax(data))
                else:
                    pax["path" if kind == _GNU_NAME else "linkpath"] = data.rstrip(b"\0")
                continue
            return self._member(fields, {**self._global, **pax} if self._global else pax)

    def write_data(self, fd: int) -> None:
        """The current member's data, written to `fd` from the chunks as they come."""
        left, pos, buf = self._left, self._pos, self._buf
        try:
            while left:
                avail = len(buf) - pos
                if not avail:
                    self._pos = pos
                    if not self._refill():
                        raise InvalidArgument("layer tar: unexpected EOF")
                    buf, pos = self._buf, self._pos
                    continue
                n = left if left < avail else avail
                view = buf[pos:pos + n]
                while view:
                    view = view[os.write(fd, view):]
                pos += n
                left -= n
        finally:
            self._pos, self._left = pos, left

    def read_data(self) -> bytes:
        data = self._take(self._left) or b""
        self._left = 0
        return data

    def drain(self) -> None:
        self._skip(self._left + self._pad)
        self._left = self._pad = 0
        self._buf, self._pos = memoryview(b""), 0
        for _ in self._chunks:
            pass

    def _member(self, fields: tuple, pax: dict[str, bytes]) -> Member:
        name, kind, mode, uid, gid, size, mtime, linkname, devmajor, devminor = fields
        mtime_ns, atime_ns, xattrs = mtime * 1_000_000_000, None, ()
        if pax:
            name = pax.get("path") or name
            linkname = pax.get("linkpath") or linkname
            uid = _pax_int(pax, "uid", uid)
            gid = _pax_int(pax, "gid", gid)
            size = _pax_int(pax, "size", size)
            devmajor = _pax_int(pax, "SCHILY.devmajor", devmajor)
            devminor = _pax_int(pax, "SCHILY.devminor", devminor)
            if pax.get("mtime"):
                mtime_ns = _pax_time(pax["mtime"])
            if pax.get("atime"):
                atime_ns = _pax_time(pax["atime"])
            xattrs = _pax_xattrs(pax)
        type_ = _TYPES.get(kind)
        if type_ is None:
            raise InvalidArgument(f"tar member {_show(name)}: unsupported entry type {kind!r}")
        if type_ == REGULAR and kind == b"\0" and name.endswith(b"/"):
            type_ = DIR  # a pre-POSIX directory
        if b"\0" in name or b"\0" in linkname:
            raise InvalidArgument(f"tar member {_show(name)}: NUL in a name")
        if size < 0:
            raise InvalidArgument(f"tar member {_show(name)}: negative size {size}")
        self._left = size if type_ == REGULAR else 0  # the others have none, whatever
        self._pad = -self._left % BLOCK                 # their size says (tarfile, Go)
        return Member(os.fsdecode(name), type_, mode & 0o7777, uid, gid, self._left, mtime_ns,
                      atime_ns, os.fsdecode(linkname), devmajor, devminor, xattrs)

    def _meta(self, size: int) -> bytes:
        if size > _META_MAX:
            raise InvalidArgument(f"tar extended header of {size} bytes (at most {_META_MAX})")
        data = self._take(size) or b""
        self._skip(-size % BLOCK)
        return data

    def _take(self, n: int, header: bool = False) -> bytes | None:
        """The next `n` bytes; None at a clean end (a header wanted, the stream over)."""
        if len(self._buf) - self._pos < n and not self._refill(n):
            if header and len(self._buf) == self._pos:
                return None
            raise InvalidArgument("layer tar: unexpected EOF")
        data = self._buf[self._pos:self._pos + n].tobytes()
        self._pos += n
        return data

    def _skip(self, n: int) -> None:
        while n:
            avail = len(self._buf) - self._pos
            if not avail:
                if not self._refill():
                    raise InvalidArgument("layer tar: unexpected EOF")
                continue
            step = min(avail, n)
            self._pos += step
            n -= step

    def _refill(self, want: int = 1) -> bool:
        """At least `want` bytes unread in the buffer; False if the stream ended first."""
        rest = self._buf[self._pos:]
        parts = [rest.tobytes()] if len(rest) else []
        have = len(rest)
        while have < want:
            chunk = next(self._chunks, b"")
            if not chunk:
                break
            parts.append(chunk)
            have += len(chunk)
        self._buf = memoryview(parts[0] if len(parts) == 1 else b"".join(parts))
        self._pos = 0
        return have >= want


def _parse_header(block: bytes) -> tuple:
    """(name, typeflag, mode, uid, gid, size, mtime, linkname, devmajor, devminor)."""
    checksum = _number(block[148:156])
    if checksum != sum(block) - sum(block[148:156]) + 256:
        signed = sum(b - 256 if b > 127 else b for b in block) - sum(
            b - 256 if b > 127 else b for b in block[148:156]) + 256
        if checksum != signed:
            raise InvalidArgument("layer tar: corrupt header (bad checksum)")
    name = block[:100].split(b"\0", 1)[0]
    if block[257:263] == b"ustar\0" and block[345] != 0:
        name = block[345:500].split(b"\0", 1)[0] + b"/" + name
    kind = block[156:157]
    special = kind in (b"3", b"4")
    return (name, kind, _number(block[100:108]), _number(block[108:116]),
            _number(block[116:124]), _number(block[124:136]), _number(block[136:148]),
            block[157:257].split(b"\0", 1)[0],
            _number(block[329:337]) if special else 0, _number(block[337:345]) if special else 0)


def _number(field: bytes) -> int:
    """An octal field, or GNU's base-256 (first byte 0x80, or 0xff for a negative)."""
    if field and field[0] & 0x80:
        value = int.from_bytes(field[1:], "big")
        return value - (1 << (8 * (len(field) - 1))) if field[0] == 0xFF else value
    try:
        return int(field.rstrip(b"\0 "), 8)  # the usual "0000644\0" in one call
    except ValueError:
        pass
    digits = field.split(b"\0", 1)[0].strip()
    try:
        return int(digits, 8) if digits else 0
    except ValueError:
        raise InvalidArgument(f"layer tar: corrupt header (number {field!r})") from None


def _parse_pax(data: bytes) -> dict[str, bytes]:
    """PAX records, "<length> <key>=<value>\\n" each; values stay bytes (xattrs are binary)."""
    out: dict[str, bytes] = {}
    pos = 0
    try:
        while pos < len(data) and data[pos]:
            space = data.index(b" ", pos)
            length = int(data[pos:space])
            record = data[space + 1:pos + length]
            if length <= space - pos or not record.endswith(b"\n") or b"=" not in record:
                raise ValueError(record)
            key, _, value = record[:-1].partition(b"=")
            out[key.decode("utf-8", "surrogateescape")] = value
            pos += length
    except ValueError:
        raise InvalidArgument("layer tar: corrupt PAX header") from None
    if any(k.startswith("GNU.sparse.") for k in out):
        raise InvalidArgument("layer tar: sparse files (GNU.sparse PAX records) are not supported")
    return out


def _pax_int(pax: dict[str, bytes], key: str, default: int) -> int:
    value = pax.get(key)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidArgument(f"layer tar: corrupt PAX {key}={value!r}") from None


def _pax_time(value: bytes) -> int:
    """Decimal seconds with an optional fraction ("1700000000.123456789", "-1.5") in ns,
    without a float's rounding."""
    try:
        text = value.decode("ascii")
        negative = text.startswith("-")
        whole, _, frac = text.lstrip("-").partition(".")
        if not whole.isdigit() or (frac and not frac.isdigit()):
            raise ValueError(text)
        ns = int(whole) * 1_000_000_000 + int((frac + "000000000")[:9])
    except ValueError:
        raise InvalidArgument(f"layer tar: corrupt PAX time {value!r}") from None
    return -ns if negative else ns


def _pax_xattrs(pax: dict[str, bytes]) -> tuple[tuple[str, bytes], ...]:
    """SCHILY.xattr.<name>=<raw value> (star, GNU tar, Go) and LIBARCHIVE.xattr.<%-escaped
    name>=<base64 value> (bsdtar)."""
    out = []
    for key, value in pax.items():
        if key.startswith("SCHILY.xattr."):
            out.append((key[13:], value))
        elif key.startswith("LIBARCHIVE.xattr."):
            try:
                out.append((unquote(key[17:]), base64.b64decode(value + b"==")))
            except ValueError:
                raise InvalidArgument(f"layer tar: corrupt PAX {key}") from None
    return tuple(out)


def _show(name: bytes) -> str:
    return repr(os.fsdecode(name.replace(b"\0", b"\\0")))
