"""Taking over an HTTP connection, as dockerd does for attach and exec start.

    client ── POST /containers/x/attach?stream=1&stdin=1   (Connection: Upgrade, Upgrade: tcp)
    engine ── HTTP/1.1 101 UPGRADED                        (or "200 OK" when not asked to)
              Content-Type: application/vnd.docker.multiplexed-stream   (raw-stream: a TTY)
              Connection: Upgrade
              Upgrade: tcp
              <blank line>
    then both ways raw bytes: the client's are the process's stdin; ours its output, in
    frames (an 8-byte header: stream 1 or 2, three zero bytes, big-endian length) unless the
    process has a terminal. The client half-closing its side is stdin's EOF; we close the
    connection when the output has ended.

aiohttp parses the request (and its body, as exec start has one); then `Hijack` moves the
transport to a small protocol of ours and writes the head itself, so that a half-close keeps
the connection open for the rest of the output (aiohttp's protocol closes it on EOF). The
handler returns `conn_response()`: aiohttp then writes nothing and closes the transport.
Docker's clients send nothing before they have read the head; bytes a client pipelines
behind the request may be lost (aiohttp's C parser upgrades only to websocket), and so is a
half-close that comes before the head.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
from collections.abc import Iterable

from aiohttp import web

RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream"
HIGH_WATER = 1 << 20
HANGUP_CHECK = 1.0  # seconds between checks that a half-closed client is still there


def wants_upgrade(request: web.Request) -> bool:
    """Docker upgrades when the client sent an Upgrade header (its clients send `tcp`)."""
    return "Upgrade" in request.headers


def response_head(*, upgrade: bool, content_type: str,
                  headers: Iterable[tuple[str, str]] = ()) -> bytes:
    lines = (["HTTP/1.1 101 UPGRADED", f"Content-Type: {content_type}",
              "Connection: Upgrade", "Upgrade: tcp"] if upgrade
             else ["HTTP/1.1 200 OK", f"Content-Type: {content_type}"])
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Collector:
    """Takes aiohttp's buffered bytes (what followed the request) when we take the socket."""

    def __init__(self) -> None:
        self.data = bytearray()

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.data += data
        return False, b""

    def feed_eof(self) -> None:
        pass


class HijackedConnection(asyncio.Protocol):
    """The connection once it is ours: read() the client's bytes (b"" once it half-closed or
    went away), write() and drain() ours, close() at the end."""

    def __init__(self, transport: asyncio.Transport, tail: bytes = b"") -> None:
        self.transport = transport
        self.buffer = bytearray(tail)
        self.eof = False
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._readable = asyncio.Event()
        if tail:
            self._readable.set()
        self._writable = asyncio.Event()
        self._writable.set()
        self._paused_reading = False
        self._watch: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._readable.set()
        if len(self.buffer) > HIGH_WATER and not self._paused_reading:
            self._paused_reading = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        """The client shut its writing side (stdin's end), or closed the socket: then we
        close too. A half-closed client is checked now and then for leaving altogether."""
        self.eof = True
        self._readable.set()
        if self._hung_up():
            return False
        self._watch = asyncio.get_running_loop().call_later(HANGUP_CHECK, self._check_hangup)
        return True  # keep the writing side open: the output goes on

    def _hung_up(self) -> bool:
        sock = self.transport.get_extra_info("socket")
        if sock is None:
            return False
        try:
            p = select.poll()
            p.register(sock.fileno(), select.POLLOUT)
            return any(mask & (select.POLLHUP | select.POLLERR) for _fd, mask in p.poll(0))
        except (OSError, ValueError):
            return True

    def _check_hangup(self) -> None:
        self._watch = None
        if self.lost.done():
            return
        if self._hung_up():
            self.transport.close()
        else:
            self._watch = asyncio.get_running_loop().call_later(HANGUP_CHECK,
                                                                self._check_hangup)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        self.eof = True
        self._readable.set()
        self._writable.set()
        if not self.lost.done():
            self.lost.set_result(None)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- ours ------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.lost.done() or self.transport.is_closing()

    async def read(self) -> bytes:
        """The client's next bytes; b"" when it has no more to send."""
        while not self.buffer:
            if self.eof:
                return b""
            self._readable.clear()
            await self._readable.wait()
        data = bytes(self.buffer)
        self.buffer.clear()
        if self._paused_reading and not self.closed:
            self._paused_reading = False
            self.transport.resume_reading()
        return data

    def write(self, data: bytes) -> None:
        if data and not self.closed:
            self.transport.write(data)

    async def drain(self) -> None:
        if not self.closed:
            await self._writable.wait()

    def close(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()


class _Hijacked(web.StreamResponse):
    """What a hijacking handler returns: the answer went out already, aiohttp writes nothing
    and closes the connection (keep_alive is off)."""

    def __init__(self) -> None:
        super().__init__(status=200)
        self.force_close()

    async def prepare(self, request: web.BaseRequest):  # type: ignore[override]
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None


class Hijack:
    """`async with Hijack(request, content_type) as conn:` writes the head, hands over the
    connection, and gives it back to aiohttp (closed) at the end; the handler then returns
    `conn_response()`."""

    def __init__(self, request: web.Request, content_type: str,
                 headers: Iterable[tuple[str, str]] = ()) -> None:
        self.request = request
        self.content_type = content_type
        self.headers = list(headers)
        self.conn: HijackedConnection | None = None
        self._original: asyncio.BaseProtocol | None = None

    async def __aenter__(self) -> HijackedConnection:
        request = self.request
        transport = request.transport
        protocol = request.protocol
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client went away")
        collector = _Collector()
        with contextlib.suppress(AssertionError, AttributeError):
            protocol.set_parser(collector)  # type: ignore[arg-type]
        self._original = transport.get_protocol()
        conn = HijackedConnection(transport, bytes(collector.data))  # type: ignore[arg-type]
        transport.set_protocol(conn)
        transport.write(response_head(upgrade=wants_upgrade(request),
                                      content_type=self.content_type, headers=self.headers))
        self.conn = conn
        return conn

    async def __aexit__(self, *exc: object) -> None:
        conn = self.conn
        if conn is None:
            return
        transport = conn.transport
        if not transport.is_closing():
            with contextlib.suppress(OSError, RuntimeError):
                if transport.can_write_eof():
                    transport.write_eof()
        transport.close()
        if self._original is not None:
            transport.set_protocol(self._original)  # type: ignore[arg-type]
            if conn.lost.done():  # the loop told us, not aiohttp: pass it on
                with contextlib.suppress(Exception):
                    self._original.connection_lost(None)


def conn_response() -> web.StreamResponse:
    return _Hijacked()
