"""AsyncShimClient: the shim protocol for asyncio code (the supervisor), the same methods as
ShimClient as coroutines. Calls borrow pooled connections; one that is cancelled half way
is closed rather than reused, since its reply may still be coming."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

from dockyard.shim.protocol import (
    HEADER,
    ShimError,
    decode,
    frame_length,
    request,
    result_of,
    unix_path,
)

__all__ = ["AsyncShimClient", "ShimError"]

POOL = 4
Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def read_frame(reader: asyncio.StreamReader, *, eof_ok: bool = False) -> dict | None:
    try:
        header = await reader.readexactly(HEADER)
    except asyncio.IncompleteReadError as e:
        if eof_ok and not e.partial:
            return None
        raise ShimError("unavailable", "the shim closed the connection") from None
    try:
        body = await reader.readexactly(frame_length(header))
    except asyncio.IncompleteReadError:
        raise ShimError("unavailable", "the shim closed the connection in the middle of a "
                        "frame") from None
    return decode(body)


class AsyncShimClient:
    def __init__(self, address: str) -> None:
        self.address, self.path = address, unix_path(address)
        self._idle: list[Conn] = []
        self._ids = itertools.count(1)
        self._closed = False

    async def _open(self) -> Conn:
        try:
            return await asyncio.open_unix_connection(self.path)
        except OSError as e:
            raise ShimError("unavailable", f"shim at {self.address}: {e.strerror or e}") from None

    async def _exchange(self, conn: Conn, method: str, params: dict) -> dict:
        reader, writer = conn
        rid = next(self._ids)
        try:
            writer.write(request(rid, method, params))
            await writer.drain()
            reply = await read_frame(reader)
        except OSError as e:
            raise ShimError("unavailable", f"shim at {self.address}: {e}") from None
        if reply.get("id") != rid:
            raise ShimError("internal", f"reply {reply.get('id')!r} to request {rid}")
        return reply

    async def call(self, method: str, **params: object) -> object:
        conn = self._idle.pop() if self._idle else await self._open()
        reusable = False  # only a connection whose reply was read whole goes back
        try:
            reply = await self._exchange(conn, method, params)
            reusable = True
        finally:
            if reusable and not self._closed and len(self._idle) < POOL:
                self._idle.append(conn)
            else:
                conn[1].close()
        return result_of(reply)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for _reader, writer in idle:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

    # -- methods ---------------------------------------------------------------------------

    async def connect(self) -> dict:
        return await self.call("connect")

    async def create(self, rootfs: list[dict] | None = None, terminal: bool = False,
                     stdin: bool = False, log: dict | None = None) -> dict:
        return await self.call("create", rootfs=rootfs or [], terminal=terminal, stdin=stdin,
                               log=log or {"path": None, "max_size": 0, "max_file": 1})

    async def start(self, exec_id: str = "") -> dict:
        return await self.call("start", exec_id=exec_id)

    async def state(self, exec_id: str = "") -> dict:
        return await self.call("state", exec_id=exec_id)

    async def kill(self, signal: int = 15, all: bool = False, exec_id: str = "") -> dict:
        return await self.call("kill", exec_id=exec_id, signal=signal, all=all)

    async def delete(self, exec_id: str = "") -> dict:
        return await self.call("delete", exec_id=exec_id)

    async def exec(self, exec_id: str, spec: dict, terminal: bool = False,
                   stdin: bool = False) -> dict:
        return await self.call("exec", exec_id=exec_id, spec=spec, terminal=terminal,
                               stdin=stdin)

    async def resize_pty(self, width: int, height: int, exec_id: str = "") -> dict:
        return await self.call("resize_pty", exec_id=exec_id, width=width, height=height)

    async def close_io(self, exec_id: str = "") -> dict:
        return await self.call("close_io", exec_id=exec_id)

    async def pause(self) -> dict:
        return await self.call("pause")

    async def resume(self) -> dict:
        return await self.call("resume")

    async def pids(self) -> list[dict]:
        return await self.call("pids")

    async def stats(self) -> dict:
        return await self.call("stats")

    async def update(self, resources: dict) -> dict:
        return await self.call("update", resources=resources)

    async def wait(self, exec_id: str = "") -> dict:
        return await self.call("wait", exec_id=exec_id)

    async def shutdown(self) -> dict:
        return await self.call("shutdown")

    # -- streams ---------------------------------------------------------------------------

    async def attach(self, exec_id: str = "", stdin: bool = False, stdout: bool = True,
                     stderr: bool = True, stdin_once: bool = False) -> Conn:
        """(reader, writer) of the process's multiplexed output and, if `stdin`, its input:
        writer.write_eof() ends the input."""
        conn = await self._open()
        try:
            result_of(await self._exchange(conn, "attach", {
                "exec_id": exec_id, "stdin": stdin, "stdout": stdout, "stderr": stderr,
                "stdin_once": stdin_once}))
        except BaseException:
            conn[1].close()
            raise
        return conn

    async def events(self) -> AsyncIterator[dict]:
        """The shim's events until it goes away (the iteration then ends)."""
        conn = await self._open()
        try:
            result_of(await self._exchange(conn, "events", {}))
            while True:
                frame = await read_frame(conn[0], eof_ok=True)
                if frame is None:
                    return
                yield frame
        finally:
            conn[1].close()
