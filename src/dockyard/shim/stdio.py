"""A process's stdio as the shim holds it: output fanned out to the log and to attach readers,
and stdin fed from at most one attached writer.

    container ─stdout pipe─┐              ┌─► JsonLogWriter (the init only), written at once
    container ─stderr pipe─┼─► Output ────┼─► reader 1: its own bounded buffer (Reader.offer)
    (or the pty master)  ──┘              └─► reader 2 …  a reader too far behind is dropped
    container ◄─stdin pipe (or the pty)─── Stdin ◄── the one attached writer

The shim reads its output as soon as it is there, whoever listens: a stopped supervisor, or a
slow reader, never fills a pipe and blocks the container. Stdin is the other way round: when
the container does not read, its buffer fills and the writer's socket stops being read.
"""

from __future__ import annotations

import errno
import os

from dockyard.shim.loop import Future, Loop

TYPE_CHECKING = False  # not from typing, nor collections.abc at run time: memory
if TYPE_CHECKING:
    from collections.abc import Callable

CHUNK = 65536
STDIN_HIGH = 1 << 20
NAMES = {"stdout": 1, "stderr": 2}


def pipe() -> tuple[int, int]:
    """(read end, write end), both close-on-exec: a spawn dup2()s the child's end into place."""
    return os.pipe2(os.O_CLOEXEC)


def nonblocking(fd: int) -> int:
    os.set_blocking(fd, False)
    return fd


class Reader:
    """What Output needs of an attach reader (the connection implements it)."""

    def offer(self, stream: int, data: bytes) -> None: ...

    def output_ended(self) -> None: ...


class Output:
    """Reads a process's output descriptors ({fd: "stdout" | "stderr"}); each chunk goes to
    `log` (if any) and to the readers that asked for that stream."""

    def __init__(self, loop: Loop, fds: dict[int, str], log=None,
                 on_log_error: Callable[[OSError], None] | None = None) -> None:
        self.loop, self.fds, self.log = loop, dict(fds), log
        self.open = set(self.fds.values())
        self.readers: dict[Reader, set[str]] = {}
        self.ended = Future()
        self._on_log_error = on_log_error
        for fd in self.fds:
            nonblocking(fd)
            loop.watch_reader(fd, lambda fd=fd: self._read(fd))
        if not self.fds:
            self._finish()

    def add_reader(self, reader: Reader, streams: set[str]) -> None:
        """Register a reader for `streams`; if none of them is open any more (or it asked for
        none), it hears output_ended when all output has ended."""
        if self.ended.done or (not (streams & self.open) and streams):
            reader.output_ended()
            return
        self.readers[reader] = streams

    def remove_reader(self, reader: Reader) -> None:
        self.readers.pop(reader, None)

    def drain(self) -> None:
        """Read what is there now (the process has exited: its last words are in the pipes)."""
        for fd in list(self.fds):
            for _ in range(1024):
                if fd not in self.fds or not self._read(fd):
                    break

    def _read(self, fd: int) -> bool:
        """One read; True if it got data."""
        try:
            data = os.read(fd, CHUNK)
        except BlockingIOError:
            return False
        except OSError as e:
            if e.errno not in (errno.EIO, errno.EBADF):  # EIO: the pty's last slave closed
                raise
            data = b""
        stream = self.fds[fd]
        if not data:
            self._close(fd)
            return False
        if self.log is not None:
            try:
                self.log.write(stream, data)
            except OSError as e:
                if self._on_log_error is not None:
                    self._on_log_error(e)
        sid = NAMES[stream]
        for reader, streams in list(self.readers.items()):
            if stream in streams:
                reader.offer(sid, data)
        return True

    def _close(self, fd: int) -> None:
        stream = self.fds.pop(fd)
        self.loop.forget(fd)
        os.close(fd)
        if stream in self.fds.values():
            return
        self.open.discard(stream)
        if self.log is not None:
            try:
                self.log.flush_partial(stream)
            except OSError as e:
                if self._on_log_error is not None:
                    self._on_log_error(e)
        for reader, streams in list(self.readers.items()):
            if streams and not (streams & self.open):
                self.readers.pop(reader, None)
                reader.output_ended()
        if not self.fds:
            self._finish()

    def _finish(self) -> None:
        for reader in list(self.readers):
            reader.output_ended()
        self.readers.clear()
        if self.log is not None:
            try:
                self.log.close()
            except OSError as e:
                if self._on_log_error is not None:
                    self._on_log_error(e)
            self.log = None
        self.ended.set_result()

    def close(self) -> None:
        for fd in list(self.fds):
            self._close(fd)


class Stdin:
    """The process's stdin: a pipe's write end, or a dup of the pty master (`tty`)."""

    def __init__(self, loop: Loop, fd: int, tty: bool = False) -> None:
        self.loop, self.fd, self.tty = loop, nonblocking(fd), tty
        self.buf = bytearray()
        self.closing = False
        self.writer: object | None = None  # the attach connection that holds stdin
        self.on_drained: list[Callable[[], None]] = []

    @property
    def closed(self) -> bool:
        return self.fd < 0 or self.closing

    def write(self, data: bytes) -> bool:
        """Queue `data`; False when the buffer is past STDIN_HIGH (stop reading the writer
        until on_drained fires). Bytes for a closed stdin are dropped."""
        if self.closed:
            return True
        self.buf += data
        self._flush()
        return len(self.buf) < STDIN_HIGH

    def _flush(self) -> None:
        while self.buf and self.fd >= 0:
            try:
                n = os.write(self.fd, self.buf[:CHUNK])
            except BlockingIOError:
                self.loop.watch_writer(self.fd, self._flush)
                return
            except OSError:  # EPIPE, EIO: nobody reads any more
                self.buf.clear()
                break
            del self.buf[:n]
        if self.fd >= 0:
            self.loop.unwatch_writer(self.fd)
        if self.closing:
            self._close_now()
        drained, self.on_drained = self.on_drained, []
        for cb in drained:
            cb()

    def close(self) -> None:
        """Close stdin once what is queued is written (the container then reads EOF). A pty
        is not closed: that would hang up the terminal; its stdin just takes no more bytes."""
        if self.fd < 0 or self.closing:
            return
        self.closing = True
        if not self.buf:
            self._close_now()

    def _close_now(self) -> None:
        if self.fd >= 0:
            self.loop.forget(self.fd)
            os.close(self.fd)
            self.fd = -1
        self.buf.clear()
