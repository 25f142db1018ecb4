"""Starting the child side of create/exec (runtime/linux/init.py) from a sealed memfd.

Why a memfd: whatever runs inside the container before execve — the init, an exec'd process —
is visible there, and its /proc/<pid>/exe is the binary it was started from. If that were the
host's Python, a container process could open it for writing (the CVE-2019-5736 class, e.g.
through a `#!/proc/self/exe` entrypoint). A sealed memfd copy cannot be written by anyone.
The copy is of the interpreter only (17 KB for a shared-libpython build); the child is a
fresh `python -I -S` that imports just the init's modules.
"""

from __future__ import annotations

import fcntl
import os
import sys

import dockyard
from dockyard.runtime import jsonio, sync
from dockyard.runtime.linux import console

F_ADD_SEALS = 1033
F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE = 1, 2, 4, 8

_PKG_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(dockyard.__file__)))
_BOOT = ("import sys;sys.path[:0]=[{path!r}];"
         "from dockyard.runtime.linux.init import main;main({fd})")


def _interpreter() -> str:
    return os.path.realpath(sys.executable)


def sealed_interpreter() -> int:
    """A memfd holding a copy of our Python binary, sealed against any change."""
    exe = _interpreter()
    fd = os.memfd_create("dockyard-runc", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    with open(exe, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        sent = 0
        while sent < size:
            sent += os.sendfile(fd, f.fileno(), sent, size - sent)
    fcntl.fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)
    return fd


class Child:
    """The stage-1 process and our end of its sync socket."""

    __slots__ = ("pid", "sock")

    def __init__(self, pid: int, sock: int) -> None:
        self.pid = pid
        self.sock = sock

    def send_boot(self, doc: dict) -> None:
        sync.send(self.sock, sync.BOOT, jsonio.dumps(doc).encode())

    def kill(self) -> None:
        try:
            os.kill(self.pid, 9)
        except ProcessLookupError:
            pass
        reap(self.pid)

    def close(self) -> None:
        if self.sock >= 0:
            os.close(self.sock)
            self.sock = -1


def reap(pid: int) -> int | None:
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return None


def spawn(preserve_fds: int = 0,
          passed: dict[str, int | None] | None = None) -> tuple[Child, dict[str, int]]:
    """Start stage-1 with the sync socket, then each descriptor of `passed`, numbered from
    3 + preserve_fds up (the preserved ones stay where they are).

    Returns the child and the numbers the passed descriptors have in it, by name.
    """
    ours, theirs = console.socketpair()
    given = {"sync": theirs, **{k: v for k, v in (passed or {}).items() if v is not None}}
    base = 3 + preserve_fds
    numbers: dict[str, int] = {}
    high: list[int] = []
    actions = []
    try:
        # Sources above every target, so that one dup2 cannot clobber another's source.
        for i, (name, fd) in enumerate(given.items()):
            high.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, base + len(given)))
            numbers[name] = base + i
            actions.append((os.POSIX_SPAWN_DUP2, high[-1], base + i))
        os.close(theirs)
        memfd = sealed_interpreter()
        exe = _interpreter()
        try:
            pid = os.posix_spawn(
                f"/proc/self/fd/{memfd}",
                [exe, "-I", "-S", "-c", _BOOT.format(path=_PKG_PARENT, fd=numbers["sync"])],
                {}, file_actions=actions)
        finally:
            os.close(memfd)
    finally:
        for fd in high:
            os.close(fd)
    fcntl.fcntl(ours, fcntl.F_SETFD, fcntl.FD_CLOEXEC)
    return Child(pid, ours), numbers
