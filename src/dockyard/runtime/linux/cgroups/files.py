"""The few operations that touch cgroupfs: read and write a file, perform a plan of writes,
join a process, list processes, remove a directory tree.

Errors keep the file, the value and the errno in runc's words (`failed to write "1":
write /sys/fs/cgroup/.../memory.limit_in_bytes: device or resource busy`), so that
`dockyard-runc` prints what `runc` would.
"""

from __future__ import annotations

import errno
import os
import time

from dockyard.runtime.errors import ConfigError, RuntimeError_

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


class CgroupError(RuntimeError_):
    """A cgroup operation other than applying the config failed (freeze, remove, join)."""


def strerror(e: OSError) -> str:
    """Go's lower-case errno text: "device or resource busy"."""
    s = e.strerror or os.strerror(e.errno or 0)
    return s[:1].lower() + s[1:]


def read(dirpath: str, name: str) -> str:
    with open(os.path.join(dirpath, name), encoding="ascii", errors="replace") as f:
        return f.read()


def read_or_none(dirpath: str, name: str) -> str | None:
    try:
        return read(dirpath, name)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        if e.errno in (errno.ENODEV, errno.EOPNOTSUPP, errno.EINVAL):
            return None
        raise


def write(dirpath: str, name: str, value: str) -> None:
    """One write(2) of the whole value: cgroupfs parses each write as one request."""
    fd = os.open(os.path.join(dirpath, name), os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def quote(s: str) -> str:
    """Go's %q for the plain strings cgroup files take."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def write_error(dirpath: str, name: str, value: str, e: OSError) -> str:
    return f"failed to write {quote(value)}: write {os.path.join(dirpath, name)}: {strerror(e)}"


def perform(writes: list[tuple[str, str, str]], dir_of: Callable[[str], str | None],
            explain: Callable[[str, str, str, str, OSError], Exception] | None = None) -> None:
    """Write the plan in order. A write refused with EINVAL is tolerated when the same file
    is written again later (the plan's retry-after-partner idiom, see resources.py)."""
    for i, (ctl, name, value) in enumerate(writes):
        d = dir_of(ctl)
        if d is None:
            raise ConfigError(f"cannot set {ctl} limit: container could not join or "
                              "create cgroup")
        try:
            write(d, name, value)
        except OSError as e:
            if e.errno == errno.EINVAL and any(w[0] == ctl and w[1] == name
                                               for w in writes[i + 1:]):
                continue
            if explain is not None:
                raise explain(d, ctl, name, value, e) from None
            raise ConfigError(write_error(d, name, value, e)) from None


def join(dirpath: str, pid: int) -> None:
    """Write pid to cgroup.procs; EINVAL can mean the pid is mid-fork: retry briefly."""
    for attempt in range(5):
        try:
            write(dirpath, "cgroup.procs", str(pid))
            return
        except OSError as e:
            if e.errno == errno.EINVAL and attempt < 4:
                time.sleep(0.03)
                continue
            raise CgroupError(f"failed to write {quote(str(pid))}: write "
                              f"{os.path.join(dirpath, 'cgroup.procs')}: {strerror(e)}") from None


def procs(dirpath: str) -> list[int]:
    text = read_or_none(dirpath, "cgroup.procs")
    return [int(x) for x in text.split()] if text else []


def all_procs(dirpath: str) -> list[int]:
    """Pids in this cgroup and every sub-cgroup (runc's GetAllPids)."""
    out: list[int] = []
    stack = [dirpath]
    while stack:
        d = stack.pop()
        out += procs(d)
        try:
            with os.scandir(d) as it:
                stack += [e.path for e in it if e.is_dir(follow_symlinks=False)]
        except FileNotFoundError:
            continue
    return out


def _rmdir_tree(path: str) -> None:
    """rmdir children first: a cgroup directory holds only kernel files and sub-cgroups,
    and rmdir is the only way to remove it (unlink of its files fails)."""
    with os.scandir(path) as it:
        subs = [e.path for e in it if e.is_dir(follow_symlinks=False)]
    for s in subs:
        _rmdir_tree(s)
    os.rmdir(path)


def remove(path: str, attempts: int = 8) -> None:
    """Remove a cgroup tree. EBUSY lasts while dying processes leave: retry with backoff
    (10 ms doubling, ~2.5 s in all). A missing directory is success."""
    delay = 0.01
    for attempt in range(attempts):
        try:
            _rmdir_tree(path)
            return
        except FileNotFoundError:
            if not os.path.isdir(path):
                return
        except OSError as e:
            if e.errno not in (errno.EBUSY, errno.ENOTEMPTY, errno.EAGAIN) \
                    or attempt == attempts - 1:
                raise CgroupError(f"unable to remove cgroup {path}: {strerror(e)}") from None
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
    if os.path.isdir(path):
        raise CgroupError(f"unable to remove cgroup {path}: device or resource busy")


def kill_pids(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
