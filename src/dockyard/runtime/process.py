"""Starting the child side of create/exec (runtime/linux/init.py) from a sealed memfd.

Why a memfd: whatever runs inside the container before execve — the init, an exec'd process —
is visible there, and its /proc/<pid>/exe is the binary it was started from. If that were the
host's Python, a container process could open it for writing (the CVE-2019-5736 class, e.g.
through a `#!/proc/self/exe` entrypoint). A sealed memfd copy cannot be written by anyone.
The copy is of the interpreter only (17 KB for a shared-libpython build); the child is a
fresh `python -I -S` that imports just the init's modules.
"""

from __future__ import annotations

import _socket
import fcntl
import os

import dockyard

F_ADD_SEALS = 1033
F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE = 1, 2, 4, 8

_PKG_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(dockyard.__file__)))
_BOOT = ("import sys;sys.path[:0]=[{path!r}];"
         "from dockyard.runtime.linux.init import main;main({fd})")


def _interpreter() -> str:
    """The binary running us, as the kernel knows it: sys.executable is derived from argv[0]
    and names a script when a caller gave us another argv[0] (the shim does), or when we run
    in a process forked from one that was started so."""
    return os.path.realpath("/proc/self/exe")


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

    __slots__ = ("pid", "preserve_fds", "sock")

    def __init__(self, pid: int, sock: int, preserve_fds: int) -> None:
        self.pid = pid
        self.sock = sock
        self.preserve_fds = preserve_fds

    def send_boot(self, doc: dict, fds: dict[str, int | list[int] | None] | None = None) -> None:
        """BOOT carries the descriptors too (SCM_RIGHTS): stage-1 starts before we know them.
        It finds each as doc["<name>_fd"], and a list as doc["<name>_fds"]."""
        names: list[str] = []
        numbers: list[int] = []
        for name, value in (fds or {}).items():
            if isinstance(value, list):
                names += [f"{name}[]"] * len(value)
                numbers += value
            elif value is not None:
                names.append(name)
                numbers.append(value)
        # Our stdio too: stage-1 may have been started by another process (the shim starts
        # it before it knows the container's pipes), so it takes these over as its own.
        for n, name in enumerate(STDIO):
            if _is_open(n):
                names.append(name)
                numbers.append(n)
        doc["fd_names"] = names
        from dockyard.runtime import jsonio, sync  # not before: stage-1 starts first

        sync.send(self.sock, sync.BOOT, jsonio.dumps(doc).encode(), numbers)

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


STDIO = ("stdin", "stdout", "stderr")


def _is_open(fd: int) -> bool:
    try:
        fcntl.fcntl(fd, fcntl.F_GETFD)
    except OSError:
        return False
    return True


def reap(pid: int) -> int | None:
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return None


_early: Child | None = None


def prespawn(preserve_fds: int) -> None:
    """Start stage-1 before the CLI has even imported what it needs: its interpreter start
    and imports (~15 ms) then overlap with ours, on another core. A no-op when one is
    waiting already: the shim starts one as it starts, and runs the CLI in a fork of
    itself, which inherits it (it is then the CLI's sibling, which reap() allows)."""
    global _early
    if _early is not None and _early.preserve_fds == preserve_fds:
        return
    discard_prespawned()
    _early = _start(preserve_fds)


def hand_over_prespawned() -> None:
    """In the shim, once a fork of it runs the CLI: that fork has stage-1 now. Close our end
    of its socket without killing it, so that it sees the end of the stream if the fork
    dies; the shim reaps it like every other child."""
    global _early
    if _early is not None:
        _early.close()
        _early = None


def discard_prespawned() -> None:
    global _early
    if _early is not None:
        _early.close()
        _early.kill()
        _early = None


def spawn(preserve_fds: int = 0) -> Child:
    """Stage-1, waiting for BOOT: the prespawned one if it matches, else a new one."""
    global _early
    child, _early = _early, None
    if child is not None and child.preserve_fds == preserve_fds:
        return child
    if child is not None:
        child.close()
        child.kill()
    return _start(preserve_fds)


def _start(preserve_fds: int) -> Child:
    """posix_spawn the sealed interpreter with the sync socket at 3 + preserve_fds (the
    preserved descriptors 3 .. 2 + preserve_fds stay where they are)."""
    a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
    ours, theirs = a.detach(), b.detach()
    sock_no = 3 + preserve_fds
    # The source above the target, so that dup2 cannot clobber it.
    high = fcntl.fcntl(theirs, fcntl.F_DUPFD_CLOEXEC, sock_no + 1)
    os.close(theirs)
    try:
        memfd = sealed_interpreter()
        if memfd <= sock_no:  # a closed stdin frees low numbers: keep it clear of the dup2
            lifted = fcntl.fcntl(memfd, fcntl.F_DUPFD_CLOEXEC, sock_no + 1)
            os.close(memfd)
            memfd = lifted
        try:
            pid = os.posix_spawn(
                f"/proc/self/fd/{memfd}",
                [_interpreter(), "-I", "-S", "-c", _BOOT.format(path=_PKG_PARENT, fd=sock_no)],
                {}, file_actions=[(os.POSIX_SPAWN_DUP2, high, sock_no)])
        finally:
            os.close(memfd)
    finally:
        os.close(high)
    fcntl.fcntl(ours, fcntl.F_SETFD, fcntl.FD_CLOEXEC)
    return Child(pid, ours, preserve_fds)
