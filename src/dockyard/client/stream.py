"""Docker's multiplexed stream: frames of an 8-byte header and a payload.

    header := stream (1 byte: 0 stdin, 1 stdout, 2 stderr) · 3 zero bytes · size (uint32 BE)

A container without a TTY is attached through frames; with a TTY, the stream is raw.
"""

from __future__ import annotations

STDIN, STDOUT, STDERR = 0, 1, 2


class Demuxer:
    """Incremental: feed bytes as they arrive, get whole (stream, payload) frames back."""

    def __init__(self) -> None:
        self.pending = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self.pending += data
        frames = []
        buf = self.pending
        pos = 0
        while len(buf) - pos >= 8:
            size = int.from_bytes(buf[pos + 4:pos + 8], "big")
            if len(buf) - pos - 8 < size:
                break
            frames.append((buf[pos], bytes(buf[pos + 8:pos + 8 + size])))
            pos += 8 + size
        del buf[:pos]
        return frames

    @property
    def incomplete(self) -> bool:
        return bool(self.pending)


def frame(stream: int, payload: bytes) -> bytes:
    return bytes((stream, 0, 0, 0)) + len(payload).to_bytes(4, "big") + payload


def demux(chunks, tty: bool = False):
    """(stream, payload) for each frame of an iterable of byte chunks; raw when `tty`."""
    if tty:
        for chunk in chunks:
            if chunk:
                yield STDOUT, chunk
        return
    d = Demuxer()
    for chunk in chunks:
        yield from d.feed(chunk)
