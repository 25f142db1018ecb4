"""`run` and `exec` without --detach: wait for the process, pass signals on, relay its tty.

We are the child subreaper (set before the child starts), so the container process, whose
parent stage-1 has exited, is reparented to us and we can wait for it. Every catchable signal
we receive goes to it, as runc forwards them; SIGWINCH resizes its terminal instead.
"""

from __future__ import annotations

import _signal
import os

from dockyard.runtime.linux import syscalls as sc

# Not forwarded: the uncatchable, SIGCHLD (ours), SIGPIPE (our own writes), SIGWINCH (resize).
_SKIP = {9, 13, 17, 19, 28}


def become_subreaper() -> None:
    sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)


def exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


def wait(pid: int, master: int | None = None) -> int:
    """Wait for `pid` (reaping any other orphan handed to us meanwhile); its exit code."""
    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for sig in range(1, _signal.NSIG):
        if sig in _SKIP or 32 <= sig < 34:
            continue
        try:
            _signal.signal(sig, forward)
        except (OSError, ValueError):
            pass
    result: list[int] = []

    def reap(block: bool) -> bool:
        while True:
            try:
                got, status = os.waitpid(-1, 0 if block else os.WNOHANG)
            except ChildProcessError:
                return True
            if got == 0:
                return bool(result)
            if got == pid:
                result.append(status)
                return True

    if master is not None:
        from dockyard.runtime.linux.console import Proxy

        with Proxy(master) as proxy:
            _signal.signal(28, lambda *_: proxy.resize())
            proxy.pump(lambda: reap(False))
        os.close(master)
    if not result:
        reap(True)
    return exit_code(result[0]) if result else 255
