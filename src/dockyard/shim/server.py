"""The shim's socket: connections, requests, replies, and the two streaming modes.

    accept ─► Conn (mode "rpc") ─ frame ─► Service method ─► reply frame (any order, by id)
                 │ attach reply sent ─► mode "attach": Output offers frames, bytes in ─► Stdin
                 └ events reply sent ─► mode "events": one frame per published event

Every socket is non-blocking and every connection has its own write buffer: a connection
whose buffer passes its limit (a reader far behind, a subscriber that stopped reading) is
dropped, never waited for. A request that raises anything but ShimError is answered with an
"internal" error (its traceback goes to shim.log) and the shim goes on.

`_socket` rather than socket: the wrapper module's enums cost more than a megabyte.
"""

from __future__ import annotations

import _socket
import errno
import os
import select
import time

from dockyard.shim import loop as loop_mod
from dockyard.shim.protocol import (
    Decoder,
    FrameError,
    ShimError,
    encode,
    stream_header,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dockyard.shim.service import Service

RPC_LIMIT = 64 << 20
STREAM_LIMIT = 4 << 20
EVENTS_LIMIT = 4 << 20
RECV = 65536
LINGER = 2.0  # how long a stopping shim waits for its replies to drain


class Conn:
    def __init__(self, server: Server, sock: _socket.socket) -> None:
        self.server, self.sock = server, sock
        self.fd = sock.fileno()
        self.loop = server.loop
        self.decoder = Decoder()
        self.wbuf = bytearray()
        self.limit = RPC_LIMIT
        self.mode = "rpc"
        self.closed = False
        self.read_eof = False
        self.ending = False  # attach: output ended, close (or shut the writing side) once flushed
        self.process = None  # attach: the process whose output (and maybe stdin) this is
        self.streams: set[str] = set()
        self.pending = 0  # requests still waiting for their reply
        self.loop.watch_reader(self.fd, self._on_readable)

    # -- reading ---------------------------------------------------------------------------

    def _on_readable(self) -> None:
        try:
            data = self.sock.recv(RECV)
        except BlockingIOError:
            return
        except OSError:
            self.close()
            return
        if not data:
            self._on_eof()
            return
        if self.mode == "rpc":
            self._requests(data)
        elif self.mode == "attach":
            self._stdin(data)
        # events: whatever the subscriber sends is ignored

    def _requests(self, data: bytes) -> None:
        try:
            self.decoder.feed(data)
            while self.mode == "rpc" and not self.closed:
                frame = self.decoder.next()
                if frame is None:
                    return
                self.server.dispatch(self, frame)
        except FrameError as e:
            self.send_frame({"id": None, "error": e.to_json()})
            self.close_when_flushed()
            return
        if self.mode == "attach":
            rest = self.decoder.take_rest()
            if rest:
                self._stdin(rest)

    def stdin(self):
        return self.process.stdin_for(self) if self.process is not None else None

    def _stdin(self, data: bytes) -> None:
        stdin = self.stdin()
        if stdin is None:
            return
        if not stdin.write(data):
            self.loop.unwatch_reader(self.fd)
            stdin.on_drained.append(self._resume)

    def _resume(self) -> None:
        if not self.closed and not self.read_eof:
            self.loop.watch_reader(self.fd, self._on_readable)

    def _on_eof(self) -> None:
        """The client shut its writing side, or closed: a client that is gone is dropped
        now; one that only half-closed still gets its replies, or the rest of the output."""
        self.read_eof = True
        self.loop.unwatch_reader(self.fd)
        if self.mode == "attach":
            self.process.release_stdin(self)
        if _hung_up(self.fd) or (self.mode == "attach" and self.ending and not self.wbuf):
            self.close()
        elif self.mode == "rpc" and not self.pending:
            self.close_when_flushed()
        elif self.mode == "events":
            self.close()

    def replied(self) -> None:
        """A request that waited has been answered."""
        self.pending -= 1
        if self.read_eof and not self.pending:
            self.close_when_flushed()

    # -- writing ---------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        if self.closed:
            return
        if not self.wbuf:
            try:
                n = self.sock.send(data)
            except BlockingIOError:
                n = 0
            except OSError:
                self.close()
                return
            if n == len(data):
                return
            data = data[n:]
            self.loop.watch_writer(self.fd, self._on_writable)
        self.wbuf += data
        if len(self.wbuf) > self.limit:
            self.server.log(f"dropping connection {self.fd} ({self.mode}): "
                            f"{len(self.wbuf)} bytes unread")
            self.close()

    def send_frame(self, obj: object) -> None:
        self.send(encode(obj))

    def reply(self, rid: object, result: object, error: BaseException | None = None) -> None:
        if error is None:
            try:
                self.send(encode({"id": rid, "result": result}))
                return
            except (FrameError, TypeError, ValueError) as e:  # too big, or not JSON
                error = e if isinstance(e, ShimError) else ShimError("internal", str(e))
        if not isinstance(error, ShimError):
            self.server.log_exception(error)
            error = ShimError("internal", f"{type(error).__name__}: {error}")
        self.send_frame({"id": rid, "error": error.to_json()})

    def _on_writable(self) -> None:
        while self.wbuf:
            try:
                n = self.sock.send(self.wbuf)
            except BlockingIOError:
                return
            except OSError:
                self.close()
                return
            del self.wbuf[:n]
        self.loop.unwatch_writer(self.fd)
        self._flushed()

    def _flushed(self) -> None:
        if not self.ending or self.closed:
            return
        if self.read_eof or self.stdin() is None:
            self.close()
        else:
            try:
                self.sock.shutdown(_socket.SHUT_WR)
            except OSError:
                self.close()

    def close_when_flushed(self) -> None:
        self.ending = True
        if not self.wbuf:
            self._flushed()
            if not self.closed and self.mode != "attach":
                self.close()

    # -- attach: what Output needs of a reader ----------------------------------------------

    def offer(self, stream: int, data: bytes) -> None:
        self.send(stream_header(stream, len(data)) + data)

    def output_ended(self) -> None:
        self.ending = True
        if not self.wbuf:
            self._flushed()

    # -- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.loop.forget(self.fd)
        self.server.forget(self)
        self.wbuf.clear()
        self.sock.close()


class Server:
    def __init__(self, loop: loop_mod.Loop, path: str, service: Service) -> None:
        self.loop, self.path, self.service = loop, path, service
        self.conns: set[Conn] = set()
        self.subscribers: set[Conn] = set()
        self.sock = listen(path)
        self.ino = os.stat(path).st_ino
        self.loop.watch_reader(self.sock.fileno(), self._accept)
        self.debug = False

    def _accept(self) -> None:
        for _ in range(64):
            try:
                fd, _addr = self.sock._accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self.log(f"accept: {e}")
                    return
                raise
            sock = _socket.socket(fileno=fd)
            sock.setblocking(False)
            self.conns.add(Conn(self, sock))

    def dispatch(self, conn: Conn, frame: dict) -> None:
        rid, method, params = frame.get("id"), frame.get("method"), frame.get("params")
        if params is None:
            params = {}
        if self.debug:
            self.log(f"request {rid} {method} {params}")
        if not isinstance(method, str) or not isinstance(params, dict):
            conn.reply(rid, None, ShimError("invalid_argument",
                                            "a request needs a method and object params"))
            return
        if method == "attach" or method == "events":
            try:
                result = self.service.attach(conn, params) if method == "attach" else {}
            except Exception as e:
                conn.reply(rid, None, e)
                return
            conn.reply(rid, result)
            self._stream(conn, method)
            return
        handler = self.service.methods.get(method)
        if handler is None:
            conn.reply(rid, None, ShimError("invalid_argument", f"unknown method {method!r}"))
            return
        try:
            result = handler(params)
        except Exception as e:
            conn.reply(rid, None, e)
            return
        if type(result) is loop_mod.GeneratorType:
            conn.pending += 1

            def done(value: object, error: BaseException | None) -> None:
                conn.reply(rid, value, error)
                conn.replied()

            loop_mod.run(result, done)
        else:
            conn.reply(rid, result)

    def _stream(self, conn: Conn, mode: str) -> None:
        conn.mode = mode
        conn.limit = STREAM_LIMIT if mode == "attach" else EVENTS_LIMIT
        if mode == "events":
            self.subscribers.add(conn)
        else:
            conn.process.add_reader(conn, conn.streams)

    def publish(self, event: dict) -> None:
        if not self.subscribers:
            return
        frame = encode(event)
        for conn in list(self.subscribers):
            conn.send(frame)

    def forget(self, conn: Conn) -> None:
        self.conns.discard(conn)
        self.subscribers.discard(conn)
        if conn.mode == "attach" and conn.process is not None:
            conn.process.detach(conn)

    # -- stopping --------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop listening, let pending replies drain (for up to LINGER), then end the loop."""
        if self.sock is not None:
            self.loop.forget(self.sock.fileno())
            self.sock.close()
            self.sock = None
            try:
                if os.stat(self.path).st_ino == self.ino:
                    os.unlink(self.path)
            except OSError:
                pass
        deadline = time.monotonic() + LINGER

        def check() -> None:
            if all(not c.wbuf for c in self.conns) or time.monotonic() > deadline:
                for c in list(self.conns):
                    c.close()
                self.loop.stopping = True
            else:
                self.loop.call_later(0.01, check)

        check()

    # -- the shim's own log (its stderr: <bundle>/shim.log) ----------------------------------

    def log(self, message: str) -> None:
        try:
            os.write(2, f"{_now()} dockyard-shim: {message}\n".encode())
        except OSError:
            pass

    def log_exception(self, e: BaseException) -> None:
        import traceback

        self.log("".join(traceback.format_exception(e)).rstrip())


def _hung_up(fd: int) -> bool:
    """The peer closed its socket altogether (not just its writing side)."""
    p = select.poll()
    p.register(fd, select.POLLOUT)
    return any(mask & (select.POLLHUP | select.POLLERR) for _fd, mask in p.poll(0))


def _now() -> str:
    from dockyard.shim.records import rfc3339nano

    return rfc3339nano()


def listen(path: str) -> _socket.socket:
    """A listening socket at `path`. A stale socket file (nobody answers) is replaced; a live
    one is FileExistsError (another shim serves this container)."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        try:
            sock.bind(path)
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise
            if answers(path):
                raise FileExistsError(errno.EEXIST, "a shim already listens", path) from None
            os.unlink(path)
            sock.bind(path)
        os.chmod(path, 0o600)
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def answers(path: str) -> bool:
    probe = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()
