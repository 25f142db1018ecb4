"""A request body handed, as it arrives, to blocking code running in a worker thread.

A build context used to be spooled to a file and unpacked after the upload; read through a
pipe instead, it is unpacked (and its files hashed) while the client is still sending, and
the bytes touch the disk once. The pipe also carries the back-pressure both ways: a slow
reader stalls the upload, and a reader that stops early (a bad archive) closes its end, so
that the rest of the body is not read for nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Callable
from typing import BinaryIO, TypeVar

from aiohttp import StreamReader

T = TypeVar("T")
CHUNK = 1 << 20
_F_SETPIPE_SZ = 1031


async def consume(body: StreamReader, work: Callable[[BinaryIO], T]) -> T:
    """`work(stream)` in a thread, `stream` yielding `body` as it comes; its result, or what it
    raised. Should the body fail (the client went away), that error is raised once `work`,
    which then sees the stream end early, is over."""
    r, w = os.pipe2(os.O_CLOEXEC)
    with contextlib.suppress(OSError):  # fewer wake-ups than the default 64 KiB
        fcntl.fcntl(w, _F_SETPIPE_SZ, CHUNK)
    os.set_blocking(w, False)
    reader = open(r, "rb", buffering=CHUNK)  # noqa: SIM115 (closed by the thread)

    def run() -> T:
        with reader:
            return work(reader)

    task = asyncio.ensure_future(asyncio.to_thread(run))
    loop = asyncio.get_running_loop()
    try:
        while chunk := await body.readany():  # as it came: no joining
            if not await _write_all(loop, w, chunk):
                break  # the reader is done (or failed): the rest is not needed
    except BaseException:
        os.close(w)
        with contextlib.suppress(Exception):
            await task
        raise
    os.close(w)
    return await task


async def _write_all(loop: asyncio.AbstractEventLoop, fd: int, data: bytes) -> bool:
    """False once the reading end is closed."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            await _writable(loop, fd)
        except BrokenPipeError:
            return False
    return True


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    ready = loop.create_future()
    loop.add_writer(fd, lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        loop.remove_writer(fd)
