"""POST /containers/{name}/attach (hijacked) and POST /containers/{name}/resize."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import WSMsgType, web

from dockyard.engine.api.hijack import (
    MULTIPLEXED_STREAM,
    RAW_STREAM,
    Hijack,
    HijackedConnection,
    conn_response,
)
from dockyard.engine.api.server import DAEMON, Route, add_headers, api_version, query_bool
from dockyard.engine.containers.stdcopy import DEFAULT_DETACH_KEYS, frame, parse_detach_keys
from dockyard.engine.containers.streams import pump
from dockyard.engine.errors import Conflict, EngineError, InvalidParameter

HEAD_SETTLE = 0.05  # seconds between the head and output that is ready at once (logs=1)


def stream_headers() -> list[tuple[str, str]]:
    """dockerd's headers (Api-Version, Server, …), which it copies into a hijacked answer."""
    probe = web.StreamResponse()
    add_headers(probe)
    return [(k, v) for k, v in probe.headers.items() if k != "Content-Type"]


def content_type(request: web.Request, tty: bool) -> str:
    return RAW_STREAM if tty or api_version(request) < (1, 42) else MULTIPLEXED_STREAM


def detach_keys(text: str) -> bytes:
    try:
        return parse_detach_keys(text or DEFAULT_DETACH_KEYS)
    except ValueError:
        raise InvalidParameter(f"Invalid detach keys ({text}) provided") from None


def write_error(conn: HijackedConnection, tty: bool, message: str) -> None:
    """An error after the hijack, as dockerd writes one: a line on stdout."""
    data = (message + "\r\n").encode()
    conn.write(data if tty else frame(1, data))


def replay_log(conn: Any, c: Any, stdout: bool, stderr: bool,
               tty: bool) -> None:
    """`logs=1`: what the container's json-file log holds, before the live output."""
    try:
        with open(c.log_path, "rb") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                stream = 2 if entry.get("stream") == "stderr" else 1
                if (stream == 1 and not stdout) or (stream == 2 and not stderr):
                    continue
                data = (entry.get("log") or "").encode()
                conn.write(data if tty else frame(stream, data))
    except OSError:
        pass


async def attach(request: web.Request) -> web.StreamResponse:
    daemon: Any = request.app[DAEMON]
    c = await daemon.containers.get(request.match_info["name"])
    if c.state.paused:
        raise Conflict(f"container {request.match_info['name']} is paused, unpause the "
                       f"container before attach")
    keys = detach_keys(request.query.get("detachKeys", ""))
    stream, logs = query_bool(request, "stream"), query_bool(request, "logs")
    stdout, stderr = query_bool(request, "stdout"), query_bool(request, "stderr")
    tty = bool(c.config.get("Tty"))
    stdin = query_bool(request, "stdin") and bool(c.config.get("OpenStdin"))
    async with Hijack(request, content_type(request, tty), stream_headers()) as conn:
        if logs:
            # The docker SDK reads the head through a buffered reader and the rest from the
            # socket beneath: bytes that arrive with the head are lost to it. Let it go first.
            await asyncio.sleep(HEAD_SETTLE)
            replay_log(conn, c, stdout, stderr, tty)
        if stream:
            try:
                call = await daemon.streams.attach(c, stdin=stdin, stdout=stdout,
                                                   stderr=stderr, gone=conn.lost)
            except ConnectionResetError:
                return conn_response()
            except EngineError as e:
                write_error(conn, tty, e.message)
                return conn_response()
            close_stdin = bool(c.config.get("StdinOnce")) and not tty
            await pump(conn, call, tty=tty, stdin=stdin, close_stdin=close_stdin,
                       detach_keys=keys)
    return conn_response()


class WebSocketConnection:
    """A websocket as pump's connection: each message in is stdin, output goes out as binary
    messages (text before API 1.42, as dockerd sends them)."""

    def __init__(self, ws: web.WebSocketResponse, binary: bool) -> None:
        self.ws, self.binary = ws, binary
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.out: list[bytes] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type == WSMsgType.BINARY:
                    self.queue.put_nowait(msg.data)
                elif msg.type == WSMsgType.TEXT:
                    self.queue.put_nowait(msg.data.encode())
        finally:
            self.queue.put_nowait(b"")
            if not self.lost.done():
                self.lost.set_result(None)

    async def read(self) -> bytes:
        return await self.queue.get()

    def write(self, data: bytes) -> None:
        self.out.append(data)

    async def drain(self) -> None:
        data, self.out = b"".join(self.out), []
        if data and not self.ws.closed:
            with contextlib.suppress(ConnectionError):
                if self.binary:
                    await self.ws.send_bytes(data)
                else:
                    await self.ws.send_str(data.decode("utf-8", "replace"))

    async def close(self) -> None:
        await self.drain()
        await self.ws.close()
        self.reader.cancel()
        with contextlib.suppress(BaseException):
            await self.reader


async def attach_ws(request: web.Request) -> web.StreamResponse:
    """GET /containers/{name}/attach/ws: the same streams over a websocket, never in frames."""
    daemon: Any = request.app[DAEMON]
    c = await daemon.containers.get(request.match_info["name"])
    keys = detach_keys(request.query.get("detachKeys", ""))
    stream, logs = query_bool(request, "stream"), query_bool(request, "logs")
    stdout, stderr = query_bool(request, "stdout"), query_bool(request, "stderr")
    tty = bool(c.config.get("Tty"))
    stdin = query_bool(request, "stdin") and bool(c.config.get("OpenStdin"))
    ws = web.WebSocketResponse()
    add_headers(ws)
    await ws.prepare(request)
    conn = WebSocketConnection(ws, binary=api_version(request) >= (1, 42))
    try:
        if logs:
            replay_log(conn, c, stdout, stderr, True)
            await conn.drain()
        if stream:
            try:
                call = await daemon.streams.attach(c, stdin=stdin, stdout=stdout,
                                                   stderr=stderr, gone=conn.lost)
            except (ConnectionResetError, EngineError):
                return ws
            close_stdin = bool(c.config.get("StdinOnce")) and not tty
            await pump(conn, call, tty=tty, stdin=stdin, close_stdin=close_stdin,
                       detach_keys=keys, frames=False)
    finally:
        await conn.close()
    return ws


def size_params(request: web.Request) -> tuple[int, int]:
    """h and w, refused in Go's words when they are not numbers."""
    out = []
    for name in ("h", "w"):
        value = request.query.get(name, "")
        try:
            out.append(int(value))
        except ValueError:
            raise InvalidParameter(f'strconv.Atoi: parsing "{value}": invalid syntax') from None
    return out[0], out[1]


async def resize(request: web.Request) -> web.Response:
    daemon: Any = request.app[DAEMON]
    height, width = size_params(request)
    c = await daemon.containers.get(request.match_info["name"])
    if not c.state.running:
        raise Conflict(f"container {c.id} is not running")
    await daemon.streams.resize(c.id, "", height, width)
    return web.Response(status=200)


def routes(daemon: Any) -> list[Route]:
    return [Route("POST", "/containers/{name}/attach", attach),
            Route("POST", "/containers/{name}/resize", resize),
            Route("GET", "/containers/{name}/attach/ws", attach_ws)]
