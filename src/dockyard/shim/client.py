"""ShimClient: the shim protocol from synchronous code, safe to share between threads.

Each call borrows a connection from a small pool (or opens one), so a blocking `wait` in one
thread never holds up a `state` in another; attach and events get connections of their own.
Errors come back as ShimError; a shim that is gone is ShimError("unavailable", …).
"""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Iterator

from dockyard.shim.protocol import (
    HEADER,
    ShimError,
    decode,
    frame_length,
    request,
    result_of,
    unix_path,
)

__all__ = ["ShimClient", "ShimError"]

POOL = 4


def _recv_exactly(sock: socket.socket, n: int, *, eof_ok: bool = False) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            if eof_ok and not buf:
                return None
            raise ShimError("unavailable", "the shim closed the connection in the middle of a "
                            "frame" if buf or not eof_ok else "the shim closed the connection")
        buf += chunk
    return bytes(buf)


def read_frame(sock: socket.socket, *, eof_ok: bool = False) -> dict | None:
    """One frame from a blocking socket; None at a clean end of stream if `eof_ok`."""
    header = _recv_exactly(sock, HEADER, eof_ok=eof_ok)
    if header is None:
        return None
    body = _recv_exactly(sock, frame_length(header))
    return decode(body)


class ShimClient:
    def __init__(self, address: str, timeout: float | None = None) -> None:
        self.address, self.path, self.timeout = address, unix_path(address), timeout
        self._idle: list[socket.socket] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def _open(self) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.path)
        except OSError as e:
            s.close()
            raise ShimError("unavailable", f"shim at {self.address}: {e.strerror or e}") from None
        return s

    def _exchange(self, sock: socket.socket, method: str, params: dict) -> dict:
        with self._lock:
            rid = next(self._ids)
        try:
            sock.sendall(request(rid, method, params))
            reply = read_frame(sock)
        except OSError as e:
            raise ShimError("unavailable", f"shim at {self.address}: {e}") from None
        if reply.get("id") != rid:
            raise ShimError("internal", f"reply {reply.get('id')!r} to request {rid}")
        return reply

    def call(self, method: str, **params: object) -> object:
        with self._lock:
            sock = self._idle.pop() if self._idle else None
        sock = sock or self._open()
        reusable = False  # only a connection whose reply was read whole goes back
        try:
            reply = self._exchange(sock, method, params)
            reusable = True
        finally:
            with self._lock:
                if reusable and len(self._idle) < POOL:
                    self._idle.append(sock)
                    sock = None
            if sock is not None:
                sock.close()
        return result_of(reply)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for s in idle:
            s.close()

    def __enter__(self) -> ShimClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- methods ---------------------------------------------------------------------------

    def connect(self) -> dict:
        return self.call("connect")

    def create(self, rootfs: list[dict] | None = None, terminal: bool = False,
               stdin: bool = False, log: dict | None = None) -> dict:
        return self.call("create", rootfs=rootfs or [], terminal=terminal, stdin=stdin,
                         log=log or {"path": None, "max_size": 0, "max_file": 1})

    def start(self, exec_id: str = "") -> dict:
        return self.call("start", exec_id=exec_id)

    def state(self, exec_id: str = "") -> dict:
        return self.call("state", exec_id=exec_id)

    def kill(self, signal: int = 15, all: bool = False, exec_id: str = "") -> dict:
        return self.call("kill", exec_id=exec_id, signal=signal, all=all)

    def delete(self, exec_id: str = "") -> dict:
        return self.call("delete", exec_id=exec_id)

    def exec(self, exec_id: str, spec: dict, terminal: bool = False,
             stdin: bool = False) -> dict:
        return self.call("exec", exec_id=exec_id, spec=spec, terminal=terminal, stdin=stdin)

    def resize_pty(self, width: int, height: int, exec_id: str = "") -> dict:
        return self.call("resize_pty", exec_id=exec_id, width=width, height=height)

    def close_io(self, exec_id: str = "") -> dict:
        return self.call("close_io", exec_id=exec_id)

    def pause(self) -> dict:
        return self.call("pause")

    def resume(self) -> dict:
        return self.call("resume")

    def pids(self) -> list[dict]:
        return self.call("pids")

    def stats(self) -> dict:
        return self.call("stats")

    def update(self, resources: dict) -> dict:
        return self.call("update", resources=resources)

    def wait(self, exec_id: str = "") -> dict:
        return self.call("wait", exec_id=exec_id)

    def shutdown(self) -> dict:
        return self.call("shutdown")

    # -- streams ---------------------------------------------------------------------------

    def attach(self, exec_id: str = "", stdin: bool = False, stdout: bool = True,
               stderr: bool = True, stdin_once: bool = False) -> socket.socket:
        """A connection carrying the process's output (Docker's multiplexed frames) and, if
        `stdin`, taking its input; shut its writing side to end the input."""
        sock = self._open()
        try:
            result_of(self._exchange(sock, "attach", {
                "exec_id": exec_id, "stdin": stdin, "stdout": stdout, "stderr": stderr,
                "stdin_once": stdin_once}))
        except BaseException:
            sock.close()
            raise
        return sock

    def events(self) -> Iterator[dict]:
        """The shim's events until it goes away (the iterator then ends)."""
        sock = self._open()
        sock.settimeout(None)
        try:
            result_of(self._exchange(sock, "events", {}))
        except BaseException:
            sock.close()
            raise
        return _events(sock)


def _events(sock: socket.socket) -> Iterator[dict]:
    try:
        while True:
            try:
                frame = read_frame(sock, eof_ok=True)
            except (OSError, ShimError):
                return
            if frame is None:
                return
            yield frame
    finally:
        sock.close()
