"""Docker's 8-byte-header stream frames."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dockyard.client.stream import STDERR, STDOUT, Demuxer, demux, frame


def test_frames_split_anywhere_come_out_whole():
    data = frame(STDOUT, b"hello\n") + frame(STDERR, b"oops\n") + frame(STDOUT, b"")
    for cut in range(len(data) + 1):
        d = Demuxer()
        got = d.feed(data[:cut]) + d.feed(data[cut:])
        assert got == [(1, b"hello\n"), (2, b"oops\n"), (1, b"")]
        assert not d.incomplete


def test_a_tty_stream_is_raw():
    assert list(demux([b"raw", b"bytes"], tty=True)) == [(1, b"raw"), (1, b"bytes")]


@given(st.lists(st.tuples(st.sampled_from([1, 2]), st.binary(max_size=300)), max_size=8),
       st.integers(min_value=1, max_value=50))
def test_any_frames_in_any_chunking(frames, size):
    data = b"".join(frame(s, p) for s, p in frames)
    chunks = [data[i:i + size] for i in range(0, len(data), size)]
    assert list(demux(chunks)) == frames
