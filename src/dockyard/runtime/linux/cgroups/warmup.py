"""Start the kernel's wait for a cgroup attach before we know which cgroup.

Moving a process into a cgroup takes the global cgroup_threadgroup_rwsem for writing, and
the first writer after a quiet spell waits for an RCU grace period: 8-15 ms on this machine
(runc pays it too), and with cgroup_mutex held, so that even making a cgroup waits behind
it. Writers that follow within a few milliseconds do not wait. So when the CLI is about to
create or exec, a thread first moves the CLI into the cgroup it is already in (a move that
changes nothing) and repeats that every few milliseconds until the real attach is done:
the grace period passes while Python imports and reads the config, not after.

Best effort: where the file cannot be written, nothing happens and the attach just waits.
"""

from __future__ import annotations

import _thread
import os
import time

_INTERVAL = 0.003  # well inside the window in which a following writer does not wait
_LIMIT = 0.25  # never run on, whatever happens to the caller
_stop = [False]


def _own_procs_file() -> str | None:
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _hier, controllers, path = line.split(":", 2)
        if "pids" in controllers.split(","):
            return f"/sys/fs/cgroup/pids{path}/cgroup.procs"
    for line in lines:
        if line.startswith("0::") and os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
            return f"/sys/fs/cgroup{line[3:]}/cgroup.procs"
    return None


def _run(path: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return
    pid = str(os.getpid()).encode()
    deadline = time.monotonic() + _LIMIT
    try:
        while not _stop[0] and time.monotonic() < deadline:
            os.write(fd, pid)
            time.sleep(_INTERVAL)
    except OSError:
        pass
    finally:
        os.close(fd)


def start() -> None:
    path = _own_procs_file()
    if path is not None:
        _stop[0] = False
        _thread.start_new_thread(_run, (path,))


def stop() -> None:
    _stop[0] = True
