"""`docker logs`: the container's json-file log (written by its shim) read with the shim's
reader in a thread, sent as Docker frames: without a terminal each entry is multiplexed
behind an 8-byte header (stream 1 stdout / 2 stderr, 3 zero bytes, the length big-endian);
with one, the bytes go raw.
"""

from __future__ import annotations

import asyncio
import struct
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from dockyard.engine.containers.model import Container
from dockyard.engine.errors import InvalidParameter
from dockyard.shim import jsonlog

_END = object()
UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def size_bytes(text: str) -> int:
    """docker's max-size ("10m", "512k", "1g", "100"): bytes."""
    text = (text or "").strip().lower().removesuffix("b")
    if not text:
        return 0
    mult = UNITS.get(text[-1], 1)
    try:
        return int(float(text[:-1] if text[-1] in UNITS else text) * mult)
    except ValueError:
        raise InvalidParameter(f"invalid max-size: {text}") from None


@dataclass(frozen=True)
class LogQuery:
    follow: bool = False
    stdout: bool = False
    stderr: bool = False
    since_ns: int | None = None
    until_ns: int | None = None
    timestamps: bool = False
    tail: int | None = None


def frame(stream: str, data: bytes) -> bytes:
    return struct.pack(">BxxxL", 2 if stream == "stderr" else 1, len(data)) + data


def fixed_time(ns: int) -> bytes:
    """Docker's RFC3339NanoFixed: nine digits of fraction, always."""
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000))
    return f"{base}.{ns % 1_000_000_000:09d}Z".encode()


async def entries(c: Container, q: LogQuery, running: Callable[[], bool],
                  wanted: Callable[[], bool] = lambda: True, poll: float = 0.1,
                  wake: threading.Event | None = None) -> AsyncIterator[jsonlog.LogEntry]:
    """The selected entries, from a reader thread; following ends when the container does
    (seen within `poll` seconds, at once if `wake` is set then), or when `wanted()` turns
    false (the client went away)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue(1024)
    stop = threading.Event()
    streams = [s for s, on in (("stdout", q.stdout), ("stderr", q.stderr)) if on]

    def put(item: object) -> None:
        fut = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
        while not stop.is_set():
            try:
                fut.result(0.5)
                return
            except TimeoutError:
                continue

    def read() -> None:
        try:
            kw = dict(since_ns=q.since_ns, until_ns=q.until_ns, tail=q.tail, streams=streams)
            try:
                if q.follow:
                    it = jsonlog.follow_logs(c.log_path, stop=lambda: stop.is_set()
                                             or not running(), poll=poll,
                                             pause=wake.wait if wake else time.sleep, **kw)
                else:
                    it = jsonlog.read_logs(c.log_path, **kw)
            except FileNotFoundError:
                return
            try:
                for entry in it:
                    if stop.is_set():
                        break
                    put(entry)
            finally:
                it.close()
        except FileNotFoundError:
            pass
        finally:
            if not stop.is_set():
                put(_END)

    thread = threading.Thread(target=read, name=f"logs-{c.id[:12]}", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), 1.0)
            except TimeoutError:
                if not wanted():
                    return
                continue
            if item is _END:
                return
            assert isinstance(item, jsonlog.LogEntry)
            yield item
    finally:
        stop.set()


def encode(entry: jsonlog.LogEntry, *, tty: bool, timestamps: bool) -> bytes:
    data = entry.data
    if timestamps:
        data = fixed_time(entry.time_ns) + b" " + data
    return data if tty else frame(entry.stream, data)
