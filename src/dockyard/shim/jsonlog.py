"""Docker's ``json-file`` log driver: the writer the shim runs, the reader ``docker logs`` uses.

On disk, exactly as moby's ``daemon/logger/jsonfilelog`` leaves it::

    <path>.<N>    oldest rotated file (N <= max_file - 1)
    ...
    <path>.1      newest rotated file
    <path>        current file, one JSON object per line, keys in this order:
    {"log":"hello\\n","stream":"stdout","time":"2026-11-29T05:44:08.123456789Z"}

Rules taken from moby, so that files are interchangeable with Docker's:

- Lines (``daemon/logger/copier.go``): a 16 KiB buffer per stream; a line that fills it
  without a newline is written in 16384-byte pieces whose "log" has no ``\\n``; the last
  piece (possibly empty) gets the ``\\n``. Every piece of one split line carries the first
  piece's time. At EOF the unterminated rest is written without ``\\n``.
- Escaping (``jsonlog/jsonlogbytes.go``): ``"`` ``\\`` -> backslash escapes, ``\\n`` ``\\r``
  short escapes, other bytes < 0x20 (tab too) and ``<`` ``>`` ``&`` -> ``\\u00XX``, U+2028
  and U+2029 -> ``\\u2028``/``\\u2029``, each byte of invalid UTF-8 (Go's ``DecodeRune``
  rejects one byte at a time) -> ``\\ufffd``; DEL and valid non-ASCII are written raw.
- Time (``jsonlog/time_marshalling.go``): Go's RFC3339Nano in UTC, trailing zeros of the
  fraction trimmed, no dot when the fraction is zero.
- Rotation (``loggerutils/logfile.go``): *before* writing an entry, if the file already
  holds ``>= max_size`` bytes, rotate; so a file may exceed max_size by one entry less a
  byte. With max_file >= 2, ``path.(max_file-1)`` is removed, ``path.i`` -> ``path.i+1``,
  ``path`` -> ``path.1``; with max_file == 1 ``path`` is unlinked. Either way a new file
  is created, so a follower keeps reading the old inode to its end.

The writer is stdlib-only and cheap to import because it runs in ``dockyard-shim``; the
reader imports :mod:`json` only when called. The writer is not thread-safe: the shim
drives it from one loop. Docker's ``compress`` option (gzipped ``path.N.gz``) is not
implemented: such files are neither written nor read.
"""

from __future__ import annotations

import codecs
import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

#: Docker's copier buffer: a line longer than this is written in pieces of this size.
LINE_BUFFER_SIZE = 16 * 1024

_OPEN_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
_FILE_MODE = 0o640
_READ_BLOCK = 1 << 20
_TAIL_BLOCK = 64 * 1024
_NS = 1_000_000_000

# Bytes that pass through the escaper untouched, plus "\n" (the entry separator in bulk).
_PLAIN = bytes(b for b in range(0x20, 0x80) if b not in b'"\\<>&') + b"\n"
_HIGH = bytes(range(0x80, 0x100))
_SHORT = {0x22: b'\\"', 0x0A: b"\\n", 0x0D: b"\\r"}
_ESCAPES = {b: _SHORT.get(b, b"\\u%04x" % b) for b in [*range(0x20), 0x22, 0x26, 0x3C, 0x3E]}


def _go_replace(exc: UnicodeError) -> tuple[str, int]:
    """Decode error handler: one literal ``\\ufffd`` escape per bad byte, as Go's encoder."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return "\\ufffd", exc.start + 1


codecs.register_error("dockyard.jsonlog.go", _go_replace)


def _escape(raw: bytes) -> bytes:
    """Escape ``raw`` for a Go JSON string body, leaving ``\\n`` alone (the caller splits on it).

    Bulk byte operations instead of a per-character loop: a clean chunk costs one
    ``translate``; each special byte present costs one ``replace``.
    """
    specials = raw.translate(None, _PLAIN)
    if not specials:
        return raw
    ascii_specials = specials.translate(None, _HIGH)
    if ascii_specials:
        present = set(ascii_specials)
        if 0x5C in present:  # backslash first: the escapes below add backslashes
            raw = raw.replace(b"\\", b"\\\\")
            present.discard(0x5C)
        for b in present:
            raw = raw.replace(bytes((b,)), _ESCAPES[b])
    if len(ascii_specials) != len(specials):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raw = raw.decode("utf-8", "dockyard.jsonlog.go").encode("utf-8")
        if b"\xe2\x80\xa8" in raw or b"\xe2\x80\xa9" in raw:
            raw = raw.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
    return raw


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """Proleptic Gregorian (year, month, day) of a day count from 1970-01-01 (Hinnant)."""
    days += 719468
    era = days // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, doy - (153 * mp + 2) // 5 + 1


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Inverse of :func:`_civil_from_days`."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month - 3 if month > 2 else month + 9) + 2) // 5 + day - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def _format_seconds(sec: int) -> bytes:
    days, rem = divmod(sec, 86400)
    y, mo, d = _civil_from_days(days)
    return b"%04d-%02d-%02dT%02d:%02d:%02d" % (y, mo, d, rem // 3600, rem // 60 % 60, rem % 60)


class LogWriteError(OSError):
    """Writing or rotating the log failed (errno kept); entries of that call may be lost."""


class JsonLogWriter:
    """Turns raw pipe chunks into json-file entries in ``path``, rotating like Docker."""

    def __init__(self, path: str, max_size: int = 0, max_file: int = 1) -> None:
        if max_size < 0 or max_file < 1:
            raise ValueError(f"max_size must be >= 0 and max_file >= 1: {max_size}, {max_file}")
        self.path = path
        self.max_size = max_size
        self.max_file = max_file
        self._fd = os.open(path, _OPEN_FLAGS, _FILE_MODE)
        self._size = os.fstat(self._fd).st_size
        self._pending: dict[str, bytes] = {}
        self._split_time: dict[str, bytes] = {}  # stream -> time of an unfinished split line
        self._suffixes: dict[str, bytes] = {}  # stream -> b'","stream":"<escaped>","time":"'
        self._clock_sec: int | None = None
        self._clock_prefix = b""
        self._closed = False

    def write(self, stream: str, data: bytes, now_ns: int | None = None) -> None:
        """Log a chunk read from ``stream``'s pipe; complete lines are written at once.

        All lines of one chunk share one timestamp (Docker stamps each line as its copier
        finds it in the same read; the difference is the copier's loop time).
        """
        if self._closed:
            raise ValueError(f"write to closed log {self.path}")
        if not data:
            return
        ts = self._time(time.time_ns() if now_ns is None else now_ns)
        pending = self._pending.pop(stream, None)
        buf = bytes(data) if pending is None else pending + data
        out: list[bytes] = []
        end = buf.rfind(b"\n")
        if end >= 0:
            self._lines(stream, buf[:end], ts, out)
        if end + 1 < len(buf):
            rest = buf[end + 1 :]
            while len(rest) >= LINE_BUFFER_SIZE:
                self._piece(stream, rest[:LINE_BUFFER_SIZE], ts, False, out)
                rest = rest[LINE_BUFFER_SIZE:]
            if rest:
                self._pending[stream] = rest
        if out:
            self._append(out[0] if len(out) == 1 else b"".join(out))

    def flush_partial(self, stream: str, now_ns: int | None = None) -> None:
        """At EOF of ``stream``: write what is buffered, without a newline (as Docker)."""
        if self._closed:
            raise ValueError(f"write to closed log {self.path}")
        rest = self._pending.pop(stream, b"")
        out: list[bytes] = []
        if rest:
            self._piece(
                stream, rest, self._time(time.time_ns() if now_ns is None else now_ns), False, out
            )
        self._split_time.pop(stream, None)
        if out:
            self._append(out[0])

    def close(self) -> None:
        """Flush every stream's partial line, then close the file. Idempotent."""
        if self._closed:
            return
        try:
            for stream in list(self._pending):
                self.flush_partial(stream)
        finally:
            self._closed = True
            self._pending.clear()
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> JsonLogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- encoding ------------------------------------------------------------------------

    def _time(self, now_ns: int) -> bytes:
        sec, frac = divmod(now_ns, _NS)
        if sec != self._clock_sec:
            self._clock_sec, self._clock_prefix = sec, _format_seconds(sec)
        if frac:
            return self._clock_prefix + (b".%09d" % frac).rstrip(b"0") + b"Z"
        return self._clock_prefix + b"Z"

    def _suffix(self, stream: str) -> bytes:
        suffix = self._suffixes.get(stream)
        if suffix is None:
            escaped = _escape(stream.encode("utf-8", "surrogateescape")).replace(b"\n", b"\\n")
            suffix = self._suffixes[stream] = b'","stream":"' + escaped + b'","time":"'
        return suffix

    def _piece(self, stream: str, piece: bytes, ts: bytes, last: bool, out: list[bytes]) -> None:
        """One entry of a line longer than the buffer; all pieces get the first one's time."""
        ts = self._split_time.setdefault(stream, ts)
        if last:
            del self._split_time[stream]
        nl = b"\\n" if last else b""
        out.append(b'{"log":"' + _escape(piece) + nl + self._suffix(stream) + ts + b'"}\n')

    def _lines(self, stream: str, body: bytes, ts: bytes, out: list[bytes]) -> None:
        """Encode ``body``: complete lines joined by ``\\n``, its final newline stripped."""
        if stream in self._split_time:  # first line ends a split line: its pieces' time
            nl = body.find(b"\n")
            self._long_line(stream, body if nl < 0 else body[:nl], ts, out)
            if nl < 0:
                return
            body = body[nl + 1 :]
        if len(body) >= LINE_BUFFER_SIZE and max(map(len, body.split(b"\n"))) >= LINE_BUFFER_SIZE:
            for line in body.split(b"\n"):
                self._long_line(stream, line, ts, out)
            return
        tail = b"\\n" + self._suffix(stream) + ts + b'"}\n'
        out.append(b'{"log":"' + _escape(body).replace(b"\n", tail + b'{"log":"') + tail)

    def _long_line(self, stream: str, line: bytes, ts: bytes, out: list[bytes]) -> None:
        start = 0
        while len(line) - start >= LINE_BUFFER_SIZE:
            self._piece(stream, line[start : start + LINE_BUFFER_SIZE], ts, False, out)
            start += LINE_BUFFER_SIZE
        self._piece(stream, line[start:], ts, True, out)

    # -- file ----------------------------------------------------------------------------

    def _append(self, blob: bytes) -> None:
        """Write whole entries, rotating before any entry that starts at >= max_size."""
        if not self.max_size and self._fd >= 0:
            self._write_all(blob, 0)
            return
        rotate_error: OSError | None = None
        while blob:
            try:
                if self._fd < 0:  # a rotation could not create the new file: try again
                    self._reopen(truncate=False)
                if self.max_size and self._size >= self.max_size:
                    rotate_error = self._rotate() or rotate_error
            except OSError as exc:
                raise LogWriteError(exc.errno, f"open log: {exc.strerror}", self.path) from exc
            chunk = blob
            room = self.max_size - self._size
            if self.max_size and len(blob) > room:
                chunk = blob[: blob.find(b"\n", room - 1) + 1]  # the last entry starting < max
            blob = blob[len(chunk) :]
            self._write_all(chunk, len(blob))
        if rotate_error is not None:
            raise LogWriteError(
                rotate_error.errno,
                f"rotate log (current file truncated): {rotate_error.strerror}",
                self.path,
            ) from rotate_error

    def _write_all(self, chunk: bytes, queued: int) -> None:
        done = 0
        while done < len(chunk):
            try:
                done += os.write(self._fd, chunk[done:] if done else chunk)
            except OSError as exc:
                keep = chunk.rfind(b"\n", 0, done) + 1  # drop a torn entry, keep whole ones
                try:
                    os.ftruncate(self._fd, self._size + keep)
                except OSError:
                    pass
                self._size += keep
                lost = len(chunk) - keep + queued
                raise LogWriteError(
                    exc.errno,
                    f"write log: {exc.strerror}; {lost} bytes of entries lost",
                    self.path,
                ) from exc
        self._size += done

    def _rotate(self) -> OSError | None:
        """Docker's rotation. If shifting the old files fails the current one is truncated
        anyway (as Docker does, to keep logging) and the failure is returned."""
        os.close(self._fd)
        self._fd = -1
        failure: OSError | None = None
        try:
            if self.max_file < 2:
                _unlink(self.path)
            else:
                _unlink(f"{self.path}.{self.max_file - 1}")
                for i in range(self.max_file - 1, 1, -1):
                    _rename(f"{self.path}.{i - 1}", f"{self.path}.{i}")
                _rename(self.path, f"{self.path}.1")
        except OSError as exc:
            failure = exc
        self._reopen(truncate=True)
        return failure

    def _reopen(self, *, truncate: bool) -> None:
        self._fd = os.open(self.path, _OPEN_FLAGS | (os.O_TRUNC if truncate else 0), _FILE_MODE)
        self._size = os.fstat(self._fd).st_size


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _rename(src: str, dst: str) -> None:
    try:
        os.rename(src, dst)
    except FileNotFoundError:
        pass


# -- reading -----------------------------------------------------------------------------


class LogEntry:
    """One decoded entry. A hand-written slotted record rather than ``@dataclass(slots=True)``:
    importing :mod:`dataclasses` costs ~15 ms, more than the shim's whole log path."""

    __slots__ = ("data", "stream", "time_ns")
    __match_args__ = ("stream", "data", "time_ns")
    __hash__ = None  # type: ignore[assignment]  # mutable and compared by value, as a dataclass

    def __init__(self, stream: str, data: bytes, time_ns: int) -> None:
        self.stream = stream
        self.data = data
        self.time_ns = time_ns

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LogEntry):
            return NotImplemented
        return (self.stream, self.data, self.time_ns) == (other.stream, other.data, other.time_ns)

    def __repr__(self) -> str:
        return f"LogEntry(stream={self.stream!r}, data={self.data!r}, time_ns={self.time_ns!r})"


def parse_time(text: str) -> int | None:
    """Nanoseconds since the epoch of an RFC 3339 time as Go writes it, or None if malformed."""
    secs = _parse_head(text[:19])
    rest = _parse_rest(text[19:])
    return None if secs is None or rest is None else (secs - rest[1]) * _NS + rest[0]


def _parse_head(head: str) -> int | None:
    """Seconds since the epoch of ``YYYY-MM-DDTHH:MM:SS`` read as UTC."""
    if len(head) != 19 or head[4] + head[7] + head[10] + head[13] + head[16] != "--T::":
        return None
    fields = (head[0:4], head[5:7], head[8:10], head[11:13], head[14:16], head[17:19])
    if not all(f.isdigit() and f.isascii() for f in fields):
        return None
    year, month, day, hour, minute, sec = map(int, fields)
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and sec < 60):
        return None
    return _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + sec


def _parse_rest(rest: str) -> tuple[int, int] | None:
    """(nanoseconds, UTC offset in seconds) of ``[.fraction](Z|±hh:mm)``."""
    frac = 0
    if rest[:1] == ".":
        digits = len(rest) - len(rest[1:].lstrip("0123456789")) - 1
        if not 1 <= digits <= 9:
            return None
        frac = int(rest[1 : 1 + digits].ljust(9, "0"))
        rest = rest[1 + digits :]
    if rest == "Z":
        return frac, 0
    if len(rest) != 6 or rest[0] not in "+-" or rest[3] != ":":
        return None
    hh, mm = rest[1:3], rest[4:6]
    if not (hh.isdigit() and mm.isdigit() and hh.isascii() and mm.isascii()):
        return None
    return frac, (int(hh) * 3600 + int(mm) * 60) * (1 if rest[0] == "+" else -1)


class _Selector:
    """Decodes lines and applies Docker's filters: since skips, until ends, streams skip."""

    def __init__(self, since_ns: int | None, until_ns: int | None, streams: Iterable[str]) -> None:
        from json import loads  # the engine pays for json, the shim's writer does not

        self._loads = loads
        self.since_ns = since_ns
        self.until_ns = until_ns
        self.streams = frozenset(streams)
        self.done = False
        self._head, self._head_secs = "", 0  # lines mostly share their second: parse it once

    def decode(self, line: bytes) -> LogEntry | None:
        """The entry of one line, or None for a malformed one (skipped, as a torn write)."""
        try:
            obj = self._loads(line)
        except (ValueError, RecursionError):
            return None
        if not isinstance(obj, dict):
            return None
        log, stream, stamp = obj.get("log", ""), obj.get("stream", ""), obj.get("time")
        if not (isinstance(log, str) and isinstance(stream, str) and isinstance(stamp, str)):
            return None
        head = stamp[:19]
        if head != self._head:
            secs = _parse_head(head)
            if secs is None:
                return None
            self._head, self._head_secs = head, secs
        rest = _parse_rest(stamp[19:])
        if rest is None:
            return None
        time_ns = (self._head_secs - rest[1]) * _NS + rest[0]
        try:
            data = log.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate escape: Go decodes it as U+FFFD
            data = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in log).encode()
        return LogEntry(stream, data, time_ns)

    def pick(self, lines: Iterable[bytes]) -> Iterator[LogEntry]:
        for line in lines:
            entry = self.decode(line)
            if entry is None or (self.since_ns is not None and entry.time_ns < self.since_ns):
                continue
            if self.until_ns is not None and entry.time_ns > self.until_ns:
                self.done = True
                return
            if entry.stream in self.streams:
                yield entry


class _LineSource:
    """Complete lines of an open file from an offset on; a torn last line waits for more."""

    def __init__(self, fd: int, pos: int) -> None:
        self.fd = fd
        self.pos = pos
        self._rest = b""

    def read(self, end: int | None = None) -> Iterator[bytes]:
        while end is None or self.pos < end:
            want = _READ_BLOCK if end is None else min(_READ_BLOCK, end - self.pos)
            block = os.pread(self.fd, want, self.pos)
            if not block:
                return
            self.pos += len(block)
            lines = (self._rest + block).split(b"\n")
            self._rest = lines.pop()
            yield from lines

    def truncated(self) -> bool:
        if os.fstat(self.fd).st_size >= self.pos:
            return False
        self.pos, self._rest = 0, b""
        return True


def _rotated_numbers(path: str) -> list[int]:
    """Numbers N of the existing ``path.N``, oldest (highest) first; gaps are tolerated."""
    directory, base = os.path.split(path)
    prefix = base + "."
    numbers = []
    with os.scandir(directory or ".") as entries:
        for entry in entries:
            suffix = entry.name[len(prefix) :]
            if entry.name.startswith(prefix) and suffix.isdigit() and suffix.isascii():
                numbers.append(int(suffix))
    return sorted(numbers, reverse=True)


def _open_snapshot(path: str) -> list[tuple[int, int]]:
    """Open ``path.N … path.1, path`` as (fd, end of complete lines), retrying if a rotation
    moves the files while they are being opened (an open fd pins a file's contents)."""
    attempts = 20
    while True:
        attempts -= 1
        try:
            current = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:  # between a rotation's unlink or rename and its create
            if attempts == 0:
                raise
            time.sleep(0.001)
            continue
        fds: list[int] = []
        for n in _rotated_numbers(path):
            try:
                fds.append(os.open(f"{path}.{n}", os.O_RDONLY | os.O_CLOEXEC))
            except FileNotFoundError:
                pass
        fds.append(current)
        if attempts == 0 or _names(path, current):
            return [(fd, _complete_end(fd)) for fd in fds]
        for fd in fds:
            os.close(fd)
        time.sleep(0.001)


def _complete_end(fd: int) -> int:
    """Offset just past the file's last newline (0 if none): where complete entries end."""
    pos = os.fstat(fd).st_size
    while pos > 0:
        lo = max(0, pos - _TAIL_BLOCK)
        nl = os.pread(fd, pos - lo, lo).rfind(b"\n")
        if nl >= 0:
            return lo + nl + 1
        pos = lo
    return 0


def _tail_start(fd: int, end: int, n: int) -> tuple[int, int]:
    """(offset, count): where the last ``n`` lines of ``[0, end)`` start, scanning backwards
    in blocks; count < n when the file holds fewer lines."""
    if n <= 0 or end == 0:
        return end, 0
    pos, found = end - 1, 0  # skip the final newline: look for the n-th one before it
    while pos > 0:
        lo = max(0, pos - _TAIL_BLOCK)
        block = os.pread(fd, pos - lo, lo)
        count = block.count(b"\n")
        if found + count >= n:
            idx = len(block)
            for _ in range(n - found):
                idx = block.rindex(b"\n", 0, idx)
            return lo + idx + 1, n
        found += count
        pos = lo
    return 0, found + 1


def _history(files: list[tuple[int, int]], tail: int | None) -> Iterator[tuple[_LineSource, int]]:
    """(source, end) per file, oldest first, positioned for ``tail`` lines across files."""
    if tail is None or tail < 0:
        for fd, end in files:
            yield _LineSource(fd, 0), end
        return
    picked: list[tuple[_LineSource, int]] = []
    for fd, end in reversed(files):
        if tail <= 0:
            break
        start, count = _tail_start(fd, end, tail)
        picked.append((_LineSource(fd, start), end))
        tail -= count
    yield from reversed(picked)


class _Entries:
    """The iterator :func:`read_logs` and :func:`follow_logs` return. It owns the open files
    (the snapshot is taken at the call, as Docker captures its read position in ReadLogs)
    and closes them when exhausted, on :meth:`close`, or when collected."""

    def __init__(self, fds: list[int], entries: Iterator[LogEntry]) -> None:
        self._fds = fds
        self._entries = entries

    def __iter__(self) -> _Entries:
        return self

    def __next__(self) -> LogEntry:
        try:
            return next(self._entries)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._entries = iter(())  # never touch the fds again: their numbers get reused
        while self._fds:
            os.close(self._fds.pop())

    def __del__(self) -> None:
        self.close()


def read_logs(
    path: str,
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
    tail: int | None = None,
    streams: Iterable[str] = ("stdout", "stderr"),
) -> Iterator[LogEntry]:
    """Entries of ``path`` and its rotated files, oldest first.

    As Docker: ``tail`` counts entries of every stream from the end (None or < 0: all,
    0: none), then ``since_ns`` skips older entries, ``until_ns`` ends at the first newer
    one, and ``streams`` filters last, so ``tail=5`` of stdout alone may give fewer than 5.
    """
    files = _open_snapshot(path)
    select = _Selector(since_ns, until_ns, streams)
    return _Entries([fd for fd, _end in files], _read(files, tail, select))


def _read(files: list[tuple[int, int]], tail: int | None, select: _Selector) -> Iterator[LogEntry]:
    for source, end in _history(files, tail):
        yield from select.pick(source.read(end))
        if select.done:
            return


def follow_logs(
    path: str,
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
    tail: int | None = None,
    streams: Iterable[str] = ("stdout", "stderr"),
    stop: Callable[[], bool],
    poll: float = 0.1,
    pause: Callable[[float], object] = time.sleep,
) -> Iterator[LogEntry]:
    """:func:`read_logs`, then the entries written after this call, across rotations.

    A rotation shows as ``path`` naming another inode: the old file is read to its end
    (the writer closes it before renaming), then the file written after it, found by
    inode, so a reader that slept through several rotations skips none that still exist.
    Once ``stop()`` is true, the files are read to their end once more, then it ends.
    Between looks it calls ``pause(poll)``: an Event's wait, set when ``stop()`` turns
    true, ends the following at once rather than up to ``poll`` later.
    """
    files = _open_snapshot(path)
    fds = [fd for fd, _end in files]
    select = _Selector(since_ns, until_ns, streams)
    return _Entries(fds, _follow(path, files, fds, tail, select, stop, poll, pause))


def _follow(
    path: str,
    files: list[tuple[int, int]],
    fds: list[int],  # shared with _Entries: what is open now
    tail: int | None,
    select: _Selector,
    stop: Callable[[], bool],
    poll: float,
    pause: Callable[[float], object],
) -> Iterator[LogEntry]:
    yield from _read(files, tail, select)
    if select.done:
        return
    for fd in fds[:-1]:
        os.close(fd)
    del fds[:-1]
    current = _LineSource(files[-1][0], files[-1][1])
    stopping = False
    while True:
        yield from select.pick(current.read())
        if select.done:
            return
        if _names(path, current.fd):
            if current.truncated():  # truncated in place (by hand): start over
                continue
        else:
            newer = _open_newer(path, current.fd)
            if newer is not None:
                fds.append(newer)
                yield from select.pick(current.read())  # written before the rotation
                fds.remove(current.fd)
                os.close(current.fd)
                current = _LineSource(newer, 0)
                if select.done:
                    return
                continue
        if stopping:
            return
        stopping = stop()
        if not stopping:
            pause(poll)


def _names(path: str, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    fst = os.fstat(fd)
    return (st.st_ino, st.st_dev) == (fst.st_ino, fst.st_dev)


def _open_newer(path: str, fd: int) -> int | None:
    """Open the file written after ``fd``'s: the next name in ``path.N … path.1, path``, or
    the oldest one left if ``fd``'s was deleted. None while it is not there (yet)."""
    for _attempt in range(20):
        names = [f"{path}.{n}" for n in _rotated_numbers(path)] + [path]
        keys = [_key(name) for name in names]
        st = os.fstat(fd)
        own = (st.st_dev, st.st_ino)
        if own in keys:
            idx = keys.index(own) + 1
        else:  # ours was deleted by a later rotation: every file left is newer than it
            idx = next((i for i, key in enumerate(keys) if key is not None), len(keys))
        if idx >= len(keys) or keys[idx] is None:
            return None  # still current, or the file after ours is being created
        try:
            newer = os.open(names[idx], os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        nst = os.fstat(newer)
        if (nst.st_dev, nst.st_ino) == keys[idx]:
            return newer
        os.close(newer)  # renamed under us by another rotation: look again
    return None


def _key(name: str) -> tuple[int, int] | None:
    try:
        st = os.stat(name)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


__all__ = [
    "LINE_BUFFER_SIZE",
    "JsonLogWriter",
    "LogEntry",
    "LogWriteError",
    "follow_logs",
    "parse_time",
    "read_logs",
]
