"""Timestamps of the steps of a create, start or exec, for bench/runtime_run.py.

When DOCKYARD_RUNC_TRACE names a file, every mark appends "<monotonic µs> <pid> <step>" to
it; stage-1 and the container's init inherit the descriptor (close-on-exec: the container
process never sees it). Otherwise a mark costs one comparison.
"""

from __future__ import annotations

import os
import time

_fd = [-1]


def setup(path: str | None) -> None:
    if path and _fd[0] < 0:
        try:
            _fd[0] = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            pass


def setup_from_env() -> None:
    setup(os.environ.get("DOCKYARD_RUNC_TRACE"))


def fd() -> int:
    return _fd[0]


def adopt(fd: int | None) -> None:
    """In stage-1: the descriptor the parent passed on."""
    if fd is not None:
        _fd[0] = fd


def mark(step: str) -> None:
    if _fd[0] >= 0:
        mark_at(time.monotonic_ns() // 1000, step)


def mark_at(us: int, step: str) -> None:
    if _fd[0] >= 0:
        os.write(_fd[0], f"{us} {os.getpid()} {step}\n".encode())
