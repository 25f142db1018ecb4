"""OCI hooks: each runs with the container's state as JSON on its stdin.

prestart and createRuntime, poststart and poststop run in the runtime's namespaces (the
parent); createContainer runs in the container's mount namespace before pivot_root and
startContainer after it, both from the init. A failing hook fails create/start, except
poststop, whose failures are only logged (the container is already gone). Standard library
only, no `subprocess`: the init runs hooks after pivot_root, where no module can be imported.
"""

from __future__ import annotations

import os
import select
import time

from dockyard.runtime.errors import StartError

TYPE_CHECKING = False  # not from typing: importing typing costs ~9 ms
if TYPE_CHECKING:
    from typing import Any


def run_hook(hook: dict[str, Any], state_json: bytes) -> None:
    path = hook["path"]
    args = hook.get("args") or [path]
    env = dict(e.split("=", 1) for e in hook.get("env") or [])
    timeout = hook.get("timeout")
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        pid = os.posix_spawn(path, args, env, file_actions=[
            (os.POSIX_SPAWN_DUP2, in_r, 0),
            (os.POSIX_SPAWN_DUP2, out_w, 1),
            (os.POSIX_SPAWN_DUP2, err_w, 2),
        ], setsigdef=(13, 25))  # SIGPIPE, SIGXFSZ: Python ignores them, a hook should not
    except OSError as e:
        for fd in (in_r, in_w, out_r, out_w, err_r, err_w):
            os.close(fd)
        raise StartError(f"error running hook {path}: {e.strerror}") from None
    for fd in (in_r, out_w, err_w):
        os.close(fd)
    try:
        os.write(in_w, state_json)
    except BrokenPipeError:
        pass
    os.close(in_w)
    out, err, status = _collect(pid, out_r, err_r, timeout)
    if status is None:
        raise StartError(f"error running hook {path}: timeout after {timeout} seconds")
    if status != 0:
        reason = (f"exit status {os.waitstatus_to_exitcode(status)}"
                  if os.WIFEXITED(status) else f"signal: {os.WTERMSIG(status)}")
        raise StartError(f"error running hook {path}: {reason}, stdout: "
                         f"{out.decode(errors='replace')}, stderr: "
                         f"{err.decode(errors='replace')}")


def _collect(pid: int, out_r: int, err_r: int, timeout: int | None):
    bufs = {out_r: bytearray(), err_r: bytearray()}
    deadline = None if timeout is None else time.monotonic() + timeout
    open_fds = [out_r, err_r]
    while open_fds:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select(open_fds, [], [], left)
        if not ready:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            for fd in (out_r, err_r):
                os.close(fd)
            return b"", b"", None
        for fd in ready:
            data = os.read(fd, 65536)
            if data:
                bufs[fd] += data
            else:
                open_fds.remove(fd)
    os.close(out_r)
    os.close(err_r)
    _, status = os.waitpid(pid, 0)
    return bytes(bufs[out_r]), bytes(bufs[err_r]), status


def run_hooks(hooks: dict[str, list[dict[str, Any]]], kind: str, state: dict[str, Any]) -> None:
    entries = hooks.get(kind) or []
    if not entries:
        return
    from dockyard.runtime import jsonio

    data = jsonio.dumps(state).encode()
    for i, hook in enumerate(entries):
        try:
            run_hook(hook, data)
        except StartError as e:
            raise StartError(f"{kind} hook #{i}: {e}") from None
