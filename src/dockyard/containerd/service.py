"""What a service hands the server: how to add itself, and what to do at start and stop.

    def service(sup: Supervisor) -> Registration: ...     one per module in services/

The server calls each factory of its explicit list (server.SERVICES) with the shared
`Supervisor`, adds every servicer, awaits each `start` (recovery, background work) before it
listens, and each `stop` in reverse order after it stopped listening.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import grpc

from dockyard.containerd.supervisor import Supervisor

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class Registration:
    name: str  # the gRPC service's full name, for the log
    add: Callable[[grpc.aio.Server], None]
    start: Callable[[], Awaitable[None]] | None = None
    stop: Callable[[], Awaitable[None]] | None = None


ServiceFactory = Callable[[Supervisor], Registration]


async def blocking(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a store call (SQLite, fsync, file copies) on a worker thread: the event loop
    serves every other call meanwhile."""
    return await asyncio.to_thread(fn, *args, **kwargs)
