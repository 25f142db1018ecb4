"""What the side-by-side benchmarks share: timing a command after a sync, and a stand-in
for a reference that is not installed."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable, Iterator


def timed(cmd: list[str] | Callable[[], object]) -> float:
    """Seconds a command (or a call) takes, after a sync that is not counted."""
    subprocess.run(["sync"], check=True)
    start = time.perf_counter()
    if callable(cmd):
        cmd()
        return time.perf_counter() - start
    done = subprocess.run(cmd, capture_output=True, text=True)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr or done.stdout}")
    return took


@contextlib.contextmanager
def nothing() -> Iterator[None]:
    """In place of a reference daemon that is not available: the side is skipped."""
    yield None
