"""The json-file log driver against Docker's format, its copier's line rules and its rotation.

Two oracles are written here from moby's sources, independently of the bulk code under test:
``go_escape`` (``jsonlog/jsonlogbytes.go`` byte by byte, with Go's ``utf8.DecodeRune``) and
``go_copier`` (the loop of ``daemon/logger/copier.go``: 16 KiB buffer, reads of <= 2 KiB).
Golden lines come from moby's own tests (``jsonlogbytes_test.go``, ``jsonfilelog_test.go``,
``time_marshalling_test.go``).
"""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockyard.shim import jsonlog
from dockyard.shim.jsonlog import (
    LINE_BUFFER_SIZE,
    JsonLogWriter,
    LogEntry,
    LogWriteError,
    follow_logs,
    parse_time,
    read_logs,
)

T = 1_795_927_448_123_456_789  # 2026-11-29T04:44:08.123456789Z
TS = b"2026-11-29T04:44:08.123456789Z"
YEAR1 = -62_135_596_800 * 1_000_000_000  # Go's zero time, which moby's tests log with


# -- oracles -------------------------------------------------------------------------------


def go_decode_rune(s: bytes, i: int) -> tuple[int, int]:
    """Go's ``utf8.DecodeRune``: (rune, size), (0xFFFD, 1) for any invalid or short input."""
    c = s[i]
    if c < 0x80:
        return c, 1
    if 0xC2 <= c <= 0xDF:
        need, lo, hi = 1, 0x80, 0xBF
    elif c == 0xE0:
        need, lo, hi = 2, 0xA0, 0xBF
    elif c == 0xED:
        need, lo, hi = 2, 0x80, 0x9F
    elif 0xE1 <= c <= 0xEF:
        need, lo, hi = 2, 0x80, 0xBF
    elif c == 0xF0:
        need, lo, hi = 3, 0x90, 0xBF
    elif 0xF1 <= c <= 0xF3:
        need, lo, hi = 3, 0x80, 0xBF
    elif c == 0xF4:
        need, lo, hi = 3, 0x80, 0x8F
    else:
        return 0xFFFD, 1
    if len(s) - i - 1 < need or not lo <= s[i + 1] <= hi:
        return 0xFFFD, 1
    if any(not 0x80 <= s[i + k] <= 0xBF for k in range(2, need + 1)):
        return 0xFFFD, 1
    return ord(s[i : i + need + 1].decode("utf-8")), need + 1


def go_escape(s: bytes) -> bytes:
    """ffjsonWriteJSONBytesAsString, one byte or rune at a time."""
    out = bytearray()
    i = 0
    while i < len(s):
        b = s[i]
        if b < 0x80:
            if b >= 0x20 and b not in b'\\"<>&':
                out.append(b)
            elif b in b'\\"':
                out += b"\\" + bytes((b,))
            elif b == 0x0A:
                out += b"\\n"
            elif b == 0x0D:
                out += b"\\r"
            else:
                out += b"\\u00%02x" % b
            i += 1
            continue
        r, size = go_decode_rune(s, i)
        if r == 0xFFFD and size == 1:
            out += b"\\ufffd"
        elif r in (0x2028, 0x2029):
            out += b"\\u202%x" % (r & 0xF)
        else:
            out += s[i : i + size]
        i += size
    return bytes(out)


def go_copier(data: bytes, read_sizes: list[int]) -> list[bytes]:
    """Docker's copier loop over a pipe returning ``read_sizes`` bytes per read (cycled);
    returns each message's "log" value as the json-file marshaller sees it."""
    buf, n, src, eof, out, k = bytearray(LINE_BUFFER_SIZE), 0, 0, False, [], 0
    while True:
        upto = min(n + 2048, len(buf))
        if upto > n:
            got = min(upto - n, read_sizes[k % len(read_sizes)], len(data) - src)
            k += 1
            buf[n : n + got] = data[src : src + got]
            src, n, eof = src + got, n + got, got == 0
        if n == 0 and eof:
            return out
        p = 0
        while (q := buf.find(b"\n", p, n)) >= 0:
            out.append(bytes(buf[p:q]) + b"\n")  # a whole line, or the last of its pieces
            p = q + 1
        if eof or (p == 0 and n == len(buf)):
            if p < n:
                out.append(bytes(buf[p:n]))  # a partial piece: no newline
                p = n = 0
            if eof:
                return out
        if p > 0:
            buf[0 : n - p] = buf[p:n]
            n -= p


def line(log: bytes, stream: bytes = b"stdout", ts: bytes = TS) -> bytes:
    return b'{"log":"' + go_escape(log) + b'","stream":"' + stream + b'","time":"' + ts + b'"}\n'


def written(tmp_path: Path, chunks: list[bytes], *, stream: str = "stdout") -> bytes:
    path = tmp_path / "c.log"
    with JsonLogWriter(str(path)) as w:
        for chunk in chunks:
            w.write(stream, chunk, now_ns=T)
        w.flush_partial(stream, now_ns=T)
    return path.read_bytes()


# -- format --------------------------------------------------------------------------------


def test_a_line_is_written_exactly_as_docker_writes_it(tmp_path: Path) -> None:
    assert written(tmp_path, [b"hello\n"]) == (
        b'{"log":"hello\\n","stream":"stdout","time":"2026-11-29T04:44:08.123456789Z"}\n'
    )


@pytest.mark.parametrize(
    ("log", "expected"),
    [  # moby's TestJSONLogsMarshalJSONBuf, logged as EOF partials so "log" has no newline
        (b'"A log line with \\\\"', b'\\"A log line with \\\\\\\\\\"'),
        (b"A log line", b"A log line"),
        (b"A log line with \r", b"A log line with \\r"),
        (b"A log line with & < >", b"A log line with \\u0026 \\u003c \\u003e"),
        ("A log line with utf8 : 🚀 ψ ω β".encode(), "A log line with utf8 : 🚀 ψ ω β".encode()),
        ("\u2028 \u2029".encode(), b"\\u2028 \\u2029"),
        (b"\xaf", b"\\ufffd"),
        (b"\x7f", b"\x7f"),
        # Go's rules beyond moby's table: tab and other controls get \u00XX, not \t
        (b"\t\x00\x08\x0c\x1b\x1f", b"\\u0009\\u0000\\u0008\\u000c\\u001b\\u001f"),
        # invalid UTF-8 is replaced byte by byte (Python's "replace" would merge these)
        (b"\xe2\x82A", b"\\ufffd\\ufffdA"),
        (b"\xed\xa0\x80", b"\\ufffd\\ufffd\\ufffd"),  # a UTF-16 surrogate
        (b"\xc0\x80", b"\\ufffd\\ufffd"),  # overlong NUL
        (b"\xf4\x90\x80\x80", b"\\ufffd" * 4),  # above U+10FFFF
        (b"\xf0\x9f\x9a", b"\\ufffd" * 3),  # truncated emoji
        ("\ufffd".encode(), "\ufffd".encode()),  # a real U+FFFD stays raw
    ],
)
def test_escaping_matches_docker(tmp_path: Path, log: bytes, expected: bytes) -> None:
    assert go_escape(log) == expected  # the oracle agrees with moby's table
    out = written(tmp_path, [log])
    assert out == b'{"log":"' + expected + b'","stream":"stdout","time":"' + TS + b'"}\n'
    json.loads(out)


def test_empty_line_and_cr_lf(tmp_path: Path) -> None:
    assert written(tmp_path, [b"\nwin\r\n"]) == line(b"\n") + line(b"win\r\n")
    assert b'"log":"win\\r\\n"' in line(b"win\r\n")


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (T, "2026-11-29T04:44:08.123456789Z"),
        (1_795_927_448_120_000_000, "2026-11-29T04:44:08.12Z"),  # trailing zeros trimmed
        (1_795_927_448_000_000_000, "2026-11-29T04:44:08Z"),  # and the dot with them
        (1_795_927_448_000_000_001, "2026-11-29T04:44:08.000000001Z"),
        (1_504_227_661_000_000_001, "2017-09-01T01:01:01.000000001Z"),  # moby
        (1_432_897_262_000_000_003, "2015-05-29T11:01:02.000000003Z"),  # moby
        (YEAR1, "0001-01-01T00:00:00Z"),  # moby's zero time
        (951_782_400 * 1_000_000_000, "2000-02-29T00:00:00Z"),
    ],
)
def test_time_is_gos_rfc3339nano(tmp_path: Path, ns: int, text: str) -> None:
    path = tmp_path / "c.log"
    with JsonLogWriter(str(path)) as w:
        w.write("stdout", b"x\n", now_ns=ns)
    assert json.loads(path.read_bytes())["time"] == text
    assert parse_time(text) == ns


def test_parse_time_reads_offsets_and_rejects_garbage() -> None:
    assert parse_time("2015-05-29T11:01:02.000000003+02:00") == 1_432_890_062_000_000_003
    assert parse_time("2015-05-29T11:01:02-00:30") == 1_432_899_062_000_000_000
    for bad in [
        "",
        "2015-05-29 11:01:02Z",
        "2015-13-29T11:01:02Z",
        "2015-05-29T11:01:02",
        "2015-05-29T11:01:02.Z",
        "2015-05-29T11:01:02.0000000001Z",
        "\uff12\uff1015-05-29T11:01:02Z",  # fullwidth digits are not ASCII digits
    ]:
        assert parse_time(bad) is None, bad


@given(st.lists(st.integers(YEAR1, 253_402_300_799_999_999_999), min_size=1, max_size=8))
def test_time_round_trips_through_the_file(
    tmp_path_factory: pytest.TempPathFactory, stamps: list[int]
) -> None:  # years 1 to 9999, the range Go's encoder accepts
    path = str(tmp_path_factory.mktemp("t") / "c.log")
    with JsonLogWriter(path) as w:
        for ns in stamps:
            w.write("stdout", b"x\n", now_ns=ns)
    assert [e.time_ns for e in read_logs(path)] == stamps


def test_stream_names_are_escaped(tmp_path: Path) -> None:
    out = written(tmp_path, [b"x\n"], stream='a"<b>')
    assert out == line(b"x\n", stream=b'a\\"\\u003cb\\u003e')


# -- lines, pieces and chunks ----------------------------------------------------------------


def test_a_line_filling_the_16k_buffer_is_cut_and_its_pieces_share_the_first_time(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.log"
    with JsonLogWriter(str(path)) as w:
        w.write("stdout", b"x" * LINE_BUFFER_SIZE, now_ns=T)
        w.write("stdout", b"y" * 10, now_ns=T + 5)
        w.write("stdout", b"\nnext\n", now_ns=T + 9)
    entries = [json.loads(x) for x in path.read_bytes().splitlines()]
    assert [e["log"] for e in entries] == ["x" * LINE_BUFFER_SIZE, "y" * 10 + "\n", "next\n"]
    assert [e["time"] for e in entries] == [TS.decode()] * 2 + ["2026-11-29T04:44:08.123456798Z"]


def test_line_lengths_around_the_buffer(tmp_path: Path) -> None:
    n = LINE_BUFFER_SIZE
    data = b"a" * (n - 1) + b"\n" + b"b" * n + b"\n" + b"c" * 40000 + b"\n"
    out = written(tmp_path, [data])
    assert out == _pieces(data)
    logs = [json.loads(x)["log"] for x in out.splitlines()]
    assert [len(x) for x in logs] == [n, n, 1, n, n, 40000 - 2 * n + 1]
    assert logs[1] == "b" * n and logs[2] == "\n"  # a 16384-byte line ends with an empty piece


def _pieces(data: bytes) -> bytes:
    return b"".join(line(log) for log in go_copier(data, [2048]))


def test_a_multibyte_character_cut_at_16k_becomes_two_replacements(tmp_path: Path) -> None:
    data = b"a" * (LINE_BUFFER_SIZE - 1) + "é".encode() + b"\n"
    logs = [json.loads(x)["log"] for x in written(tmp_path, [data]).splitlines()]
    assert logs == ["a" * (LINE_BUFFER_SIZE - 1) + "\ufffd", "\ufffd\n"]


def test_eof_writes_the_rest_without_newline_and_streams_buffer_apart(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    w = JsonLogWriter(str(path))
    w.write("stdout", b"ab", now_ns=T)
    w.write("stderr", b"cd", now_ns=T)
    w.write("stdout", b"c\n", now_ns=T)
    w.flush_partial("stderr", now_ns=T)
    w.write("stdout", b"tail", now_ns=T)
    w.close()  # flushes stdout's partial
    out = path.read_bytes().splitlines(keepends=True)
    assert out[:2] == [line(b"abc\n"), line(b"cd", stream=b"stderr")]
    assert json.loads(out[2])["log"] == "tail"
    with pytest.raises(ValueError):
        w.write("stdout", b"x\n")
    w.close()  # idempotent


SEGMENTS = st.one_of(
    st.sampled_from(
        [
            b"\n",
            b"a",
            b"<",
            b"\\",
            b'"',
            b"\t",
            b"\r",
            b"\x00",
            b"\x7f",
            "é".encode(),
            "€".encode(),
            "🚀".encode(),
            b"\xe2\x80\xa8",
            b"\xff",
            b"\xc3",
            b"\xed\xa0\x80",
            b"\xef\xbf\xbd",
            b"\xf0\x9f",
        ]
    ),
    st.binary(max_size=24),
    st.integers(LINE_BUFFER_SIZE - 3, LINE_BUFFER_SIZE + 3).map(lambda n: b"x" * n),
    st.just(b"y" * 40000),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(SEGMENTS, max_size=30).map(b"".join), st.data())
def test_any_chunking_gives_dockers_output(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, draw: st.DataObject
) -> None:
    cuts = sorted(draw.draw(st.lists(st.integers(0, len(data)), max_size=12)))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    reads = draw.draw(st.lists(st.integers(1, 2048), min_size=1, max_size=5))
    out = written(tmp_path_factory.mktemp("c"), chunks)
    assert out == b"".join(line(log) for log in go_copier(data, reads))
    for raw in out.splitlines():  # and every line is JSON whose text is Go's decoding
        json.loads(raw)


@given(st.text())
def test_valid_text_round_trips_through_json(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    out = written(tmp_path_factory.mktemp("t"), [text.encode() + b"\n"])
    assert "".join(json.loads(x)["log"] for x in out.splitlines()) == text + "\n"


# -- files and rotation ---------------------------------------------------------------------


def test_rotation_matches_mobys_golden_files(tmp_path: Path) -> None:
    # moby TestJSONFileLoggerWithOpts: max-file 3, max-size "1k" (go-units: 1000 bytes)
    path = tmp_path / "container.log"
    with JsonLogWriter(str(path), max_size=1000, max_file=3) as w:
        for i in range(36):
            w.write("src1", b"line%d\n" % i, now_ns=YEAR1)

    def golden(numbers: range) -> bytes:
        return b"".join(
            b'{"log":"line%d\\n","stream":"src1","time":"0001-01-01T00:00:00Z"}\n' % i
            for i in numbers
        )

    assert (tmp_path / "container.log.2").read_bytes() == golden(range(16))
    assert (tmp_path / "container.log.1").read_bytes() == golden(range(16, 32))
    assert path.read_bytes() == golden(range(32, 36))


def test_rotation_happens_before_the_entry_that_starts_past_max_size(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    entry = len(line(b"0\n"))
    with JsonLogWriter(str(path), max_size=entry + 1, max_file=2) as w:
        for i in range(3):
            w.write("stdout", b"%d\n" % i, now_ns=T)
    # 0 bytes < max: write; entry < max: write (the file now exceeds max); >= max: rotate
    assert (tmp_path / "c.log.1").read_bytes() == line(b"0\n") + line(b"1\n")
    assert path.read_bytes() == line(b"2\n")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 300), min_size=1, max_size=60),
    st.integers(1, 2000),
    st.integers(1, 4),
    st.data(),
)
def test_one_chunk_rotates_like_line_by_line_writes(
    tmp_path_factory: pytest.TempPathFactory,
    lengths: list[int],
    max_size: int,
    max_file: int,
    draw: st.DataObject,
) -> None:
    lines = [b"%d:" % i + b"z" * n + b"\n" for i, n in enumerate(lengths)]
    one, many = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("many")
    with JsonLogWriter(str(one / "c.log"), max_size, max_file) as w:
        w.write("stdout", b"".join(lines), now_ns=T)
    with JsonLogWriter(str(many / "c.log"), max_size, max_file) as w:
        for x in lines:
            w.write("stdout", x, now_ns=T)
    names = sorted(os.listdir(one))
    assert names == sorted(os.listdir(many))
    assert len(names) <= max_file
    for name in names:
        assert (one / name).read_bytes() == (many / name).read_bytes()
    got = [e.data for e in read_logs(str(one / "c.log"))]
    assert got == lines[len(lines) - len(got) :]  # a contiguous suffix: nothing reordered


def test_rotated_files_keep_continuity_and_the_count(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    with JsonLogWriter(str(path), max_size=500, max_file=4) as w:
        for i in range(1000):
            w.write("stdout", b"%04d\n" % i, now_ns=T)
    assert sorted(os.listdir(tmp_path)) == ["c.log", "c.log.1", "c.log.2", "c.log.3"]
    numbers = [int(e.data) for e in read_logs(str(path))]
    assert numbers == list(range(1000 - len(numbers), 1000))
    longest = len(line(b"0000\n"))
    for name in ("c.log.1", "c.log.2", "c.log.3"):
        assert 500 <= (tmp_path / name).stat().st_size < 500 + longest


def test_max_file_1_starts_a_new_file_in_place(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    with JsonLogWriter(str(path), max_size=200, max_file=1) as w:
        w.write("stdout", b"first\n" * 3, now_ns=T)
        inode = path.stat().st_ino
        with open(path, "rb") as old:  # as a follower would hold it
            w.write("stdout", b"second\n", now_ns=T)
            assert old.read() == line(b"first\n") * 3  # Docker unlinks, it does not truncate
    assert os.listdir(tmp_path) == ["c.log"]
    assert path.read_bytes() == line(b"second\n")
    assert path.stat().st_ino != inode


def test_reopening_counts_the_existing_size(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    entry = len(line(b"0\n"))
    for i in range(3):
        with JsonLogWriter(str(path), max_size=2 * entry, max_file=3) as w:
            w.write("stdout", b"%d\n" % i, now_ns=T)
    assert (tmp_path / "c.log.1").read_bytes() == line(b"0\n") + line(b"1\n")


def test_file_mode_and_cloexec(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        w = JsonLogWriter(str(tmp_path / "c.log"))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "c.log").stat().st_mode) == 0o640
    assert not os.get_inheritable(w._fd)
    w.close()


def test_a_full_disk_raises_a_clear_error_and_the_writer_survives() -> None:
    w = JsonLogWriter("/dev/full")
    for _ in range(2):
        with pytest.raises(LogWriteError) as info:
            w.write("stdout", b"hello\n")
        assert info.value.errno == errno.ENOSPC
        assert info.value.filename == "/dev/full" and "lost" in str(info.value)
    w.close()


def test_a_short_write_leaves_only_whole_entries(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    child = f"""
import resource, signal
from dockyard.shim.jsonlog import JsonLogWriter, LogWriteError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
w = JsonLogWriter({str(path)!r})
try:
    w.write("stdout", b"".join(b"%03d\\n" % i for i in range(100)))
except LogWriteError as e:
    print(e.errno)
"""
    run = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == str(errno.EFBIG)
    data = path.read_bytes()
    assert 0 < len(data) <= 1000 and data.endswith(b"\n")
    assert [json.loads(x)["log"] for x in data.splitlines()] == [
        f"{i:03d}\n" for i in range(len(data.splitlines()))
    ]


# -- reading --------------------------------------------------------------------------------


def _rotated_log(tmp_path: Path, n: int = 100) -> tuple[str, list[LogEntry]]:
    """n entries alternating stdout/stderr, 1 ms apart, rotated over several files."""
    path = str(tmp_path / "c.log")
    expected = []
    with JsonLogWriter(path, max_size=1500, max_file=20) as w:
        for i in range(n):
            stream = ("stdout", "stderr")[i % 2]
            w.write(stream, b"entry %d\n" % i, now_ns=T + i * 1_000_000)
            expected.append(LogEntry(stream, b"entry %d\n" % i, T + i * 1_000_000))
    assert os.path.exists(path + ".3")
    return path, expected


def test_read_returns_every_entry_oldest_first(tmp_path: Path) -> None:
    path, expected = _rotated_log(tmp_path)
    assert list(read_logs(path)) == expected


def test_read_since_and_until_are_inclusive(tmp_path: Path) -> None:
    path, expected = _rotated_log(tmp_path)
    got = list(read_logs(path, since_ns=T + 10_000_000, until_ns=T + 20_000_000))
    assert got == expected[10:21]


@pytest.mark.parametrize("tail", [0, 1, 5, 37, 99, 100, 1000])
def test_tail_counts_from_the_end_across_rotated_files(tmp_path: Path, tail: int) -> None:
    path, expected = _rotated_log(tmp_path)
    assert list(read_logs(path, tail=tail)) == expected[len(expected) - tail :][:tail]


@pytest.mark.parametrize("block", [1, 7, 64, 4096])
def test_tail_block_boundaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    path, expected = _rotated_log(tmp_path)
    monkeypatch.setattr(jsonlog, "_TAIL_BLOCK", block)
    for tail in (1, 2, 13, 50, 150):
        assert list(read_logs(path, tail=tail)) == expected[-tail:]


def test_tail_counts_before_the_stream_filter_as_docker(tmp_path: Path) -> None:
    path, expected = _rotated_log(tmp_path)
    assert list(read_logs(path, tail=4, streams=("stdout",))) == [expected[96], expected[98]]
    assert list(read_logs(path, streams=("stderr",))) == expected[1::2]


def test_tail_on_a_big_file_reads_only_its_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "c.log")
    with JsonLogWriter(path) as w:
        w.write("stdout", b"0123456789abcdef\n" * 200_000, now_ns=T)  # ~14 MB
    reads: list[int] = []
    real = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, n, off: reads.append(n) or real(fd, n, off))
    assert len(list(read_logs(path, tail=10))) == 10
    assert sum(reads) < 3 * jsonlog._TAIL_BLOCK


def test_malformed_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    good = line(b"ok\n")
    path.write_bytes(
        b"garbage\n"
        + good
        + b"[1,2]\n"
        + b'{"log":1,"stream":"stdout","time":"x"}\n'
        + good.replace(TS, b"yesterday")
        + b"\xff\xfe\n"
        + b"[" * 100_000
        + b"\n"
        + good
        + b'{"log":"torn'
    )
    assert [e.data for e in read_logs(str(path))] == [b"ok\n", b"ok\n"]


def test_reads_lines_written_by_docker(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    path.write_bytes(
        b'{"log":"line1\\n","stream":"src1","attrs":{"tag":"a7317399f3f8/test"},'
        b'"time":"0001-01-01T00:00:00Z"}\n'
        b'{"log":"\\u003c\\ufffd\\u0009","stream":"stdout","time":"2015-05-29T11:01:02.000000003+02:00"}\n'
        b'{"stream":"stderr","time":"2017-09-01T01:01:01.000000001Z"}\n'
    )
    assert list(read_logs(str(path), streams=("src1", "stdout", "stderr"))) == [
        LogEntry("src1", b"line1\n", YEAR1),
        LogEntry("stdout", "<\ufffd\t".encode(), 1_432_890_062_000_000_003),
        LogEntry("stderr", b"", 1_504_227_661_000_000_001),
    ]


def test_gaps_in_rotated_numbers_are_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    (tmp_path / "c.log.3").write_bytes(line(b"a\n"))
    (tmp_path / "c.log.1").write_bytes(line(b"b\n"))
    (tmp_path / "c.log.x").write_bytes(line(b"no\n"))
    path.write_bytes(line(b"c\n"))
    assert [e.data for e in read_logs(str(path))] == [b"a\n", b"b\n", b"c\n"]


def test_invalid_utf8_reads_back_as_go_decodes_it(tmp_path: Path) -> None:
    written(tmp_path, [b"\xe2\x82A\n"])
    [entry] = read_logs(str(tmp_path / "c.log"))
    assert entry.data == "\ufffd\ufffdA\n".encode()


# -- following ------------------------------------------------------------------------------


def test_follow_walks_through_several_rotations_between_reads(tmp_path: Path) -> None:
    path = str(tmp_path / "c.log")
    w = JsonLogWriter(path, max_size=len(line(b"00\n")), max_file=5)
    w.write("stdout", b"00\n", now_ns=T)
    done = False
    follower = follow_logs(path, stop=lambda: done, poll=0.001)
    assert next(follower).data == b"00\n"
    for i in range(1, 4):  # three rotations before the follower reads again
        w.write("stdout", b"%02d\n" % i, now_ns=T)
    assert [next(follower).data for _ in range(3)] == [b"01\n", b"02\n", b"03\n"]
    w.write("stdout", b"04\n", now_ns=T)
    w.close()
    done = True
    assert [e.data for e in follower] == [b"04\n"]


def test_follow_with_tail_0_gives_only_new_entries(tmp_path: Path) -> None:
    path = str(tmp_path / "c.log")
    w = JsonLogWriter(path)
    w.write("stdout", b"old\nhalf", now_ns=T)
    w.write("stderr", b"torn", now_ns=T)
    w.flush_partial("stderr", now_ns=T)  # the file now ends without a newline...
    with open(path, "ab") as f:
        f.write(b'{"log":"torn by hand')  # ...and with a torn entry
    stop = threading.Event()
    follower = follow_logs(path, tail=0, stop=stop.is_set, poll=0.001)
    with open(path, "ab") as f:
        f.write(b'","stream":"stdout","time":"' + TS + b'"}\n')
    w.write("stdout", b"-new\n", now_ns=T)
    assert [next(follower).data for _ in range(2)] == [b"torn by hand", b"half-new\n"]
    stop.set()
    assert list(follower) == []


def test_follow_until_ends_at_a_newer_entry(tmp_path: Path) -> None:
    path = str(tmp_path / "c.log")
    w = JsonLogWriter(path)
    w.write("stdout", b"a\n", now_ns=T)
    follower = follow_logs(path, until_ns=T + 10, stop=lambda: False, poll=0.001)
    assert next(follower).data == b"a\n"
    w.write("stdout", b"b\n", now_ns=T + 10)
    w.write("stdout", b"c\n", now_ns=T + 11)
    assert [e.data for e in follower] == [b"b\n"]
    w.close()


def test_follow_a_writer_thread_across_rotations(tmp_path: Path) -> None:
    path = str(tmp_path / "c.log")
    total = 3000
    w = JsonLogWriter(path, max_size=4096, max_file=4)
    w.write("stdout", b"start\n")
    finished = threading.Event()

    def produce() -> None:
        for i in range(total):
            w.write("stdout", b"%05d\n" % i)
            if i % 50 == 0:
                time.sleep(0.002)
        w.close()
        finished.set()

    deadline = time.monotonic() + 30
    producer = threading.Thread(target=produce)
    producer.start()
    got = [
        e.data
        for e in follow_logs(
            path, stop=lambda: finished.is_set() or time.monotonic() > deadline, poll=0.001
        )
    ]
    producer.join()
    assert got == [b"start\n"] + [b"%05d\n" % i for i in range(total)]
    assert len(os.listdir(tmp_path)) == 4


def test_a_woken_follower_ends_at_once_with_what_was_written(tmp_path: Path) -> None:
    path = str(tmp_path / "c.log")
    w = JsonLogWriter(path)
    w.write("stdout", b"a\n", now_ns=T)
    wake = threading.Event()
    got: list[bytes] = []

    def follow() -> None:
        got.extend(e.data for e in follow_logs(path, stop=wake.is_set, poll=60,
                                               pause=wake.wait))

    reader = threading.Thread(target=follow)
    reader.start()
    w.write("stdout", b"b\n", now_ns=T)
    w.close()
    wake.set()  # a poll of a minute: only the wake can end it in time
    reader.join(5)
    assert not reader.is_alive()
    assert got == [b"a\n", b"b\n"]
