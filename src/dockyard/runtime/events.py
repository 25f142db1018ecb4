"""`dockyard-runc events`: resource statistics, once (--stats) or every --interval, and OOM
notices, as runc prints them (one JSON object a line)."""

from __future__ import annotations

import sys
import time

from dockyard.runtime import jsonio
from dockyard.runtime.errors import ConfigError, FailedPrecondition

TYPE_CHECKING = False  # not from typing: importing typing costs ~9 ms
if TYPE_CHECKING:
    from dockyard.runtime.state import State

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration for the forms people type: 5s, 500ms, 1m30s."""
    total, num, i = 0.0, "", 0
    if not text:
        raise ConfigError('time: invalid duration ""')
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            num += ch
            i += 1
            continue
        unit = next((u for u in sorted(_UNITS, key=len, reverse=True)
                     if text.startswith(u, i)), None)
        if unit is None or not num:
            raise ConfigError(f'time: invalid duration "{text}"')
        total += float(num) * _UNITS[unit]
        num, i = "", i + len(unit)
    if num:
        raise ConfigError(f'time: missing unit in duration "{text}"')
    if total <= 0:
        raise ConfigError("duration interval must be greater than 0")
    return total


def _emit(kind: str, cid: str, data: dict | None = None) -> None:
    ev = {"type": kind, "id": cid}
    if data is not None:
        ev["data"] = data
    sys.stdout.write(jsonio.dumps(ev) + "\n")
    sys.stdout.flush()


def run(st: State, once: bool, interval: float) -> int:
    from dockyard.runtime.linux import cgroups

    if st.status() == "stopped" or not st.cgroup_paths:
        raise FailedPrecondition("container with id " + st.id + " is not running")
    mgr = cgroups.load(st.cgroup_paths)
    if once:
        _emit("stats", st.id, mgr.stats())
        return 0
    ooms = mgr.oom_kill_count()
    next_stats = time.monotonic()
    while st.alive():
        now = time.monotonic()
        if now >= next_stats:
            _emit("stats", st.id, mgr.stats())
            next_stats = now + interval
        count = mgr.oom_kill_count()
        if count > ooms:
            _emit("oom", st.id)
            ooms = count
        time.sleep(min(0.2, interval))
    return 0
