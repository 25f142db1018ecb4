"""What the side-by-side benchmarks share: timing a command after a sync, and a stand-in
for a reference that is not installed."""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path


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


def image_parser(doc: str, mb: int) -> argparse.ArgumentParser:
    """The options of the image benchmarks: runs, image size (MiB of content) and layers,
    where to work and where generated layers are cached."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mb", type=int, default=mb)
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--dir", type=Path, default=Path("/var/tmp"))
    ap.add_argument("--cache", type=Path, default=Path("/var/tmp/dockyard-bench-layers"))
    return ap


@contextlib.contextmanager
def ip_forward_kept() -> Iterator[None]:
    """net.ipv4.ip_forward as it was before the block: dockyardd, as dockerd, sets it to 1
    when it brings its bridge up, and leaves it so."""
    path = Path("/proc/sys/net/ipv4/ip_forward")
    before = path.read_text()
    try:
        yield
    finally:
        path.write_text(before)
