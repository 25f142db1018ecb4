"""A fork server for shims: one process per supervisor with the shim's modules (and
dockyard-runc's start and delete) already imported, which forks a shim on request. Starting a
shim then costs a fork instead of an interpreter start and its imports (~15 ms), and the
shims share the imported pages with it (copy on write).

    supervisor ──connect──► zygote ──fork──► child: setsid, fork ──► the shim (daemon)
        │  frame {"argv": [...]}               └─ exits: reaped by the zygote
        ◄──────────────── "ok" (or "error: …") then EOF, from the shim once it listens ──┘

The zygote listens on <state_dir>/s/zygote, dies with its supervisor (parent-death signal),
and is started again by the next one. A shim made by it renames itself: comm
"dockyard-shim", and its command line rewritten in place to the one spawn.start_shim would
have given it (the zygote is started with room for it), so ps shows each shim with its
container id however it was started.
"""

from __future__ import annotations

import os
import socket
import sys

TITLE_ROOM = 640  # bytes of command line a shim's title may take
PR_SET_PDEATHSIG = 1
SIGKILL = 9


def set_title(argv: list[str]) -> None:
    """Write `argv` over this process's command line (the memory /proc/<pid>/cmdline
    reads), cut to the room there is; NUL-separated and NUL-padded as the kernel expects."""
    import ctypes

    with open("/proc/self/stat", "rb") as f:
        fields = f.read().rpartition(b")")[2].split()
    start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end (fields 48 and 49)
    room = end - start
    data = b"\0".join(a.encode() for a in argv)[:room - 1]
    ctypes.memmove(start, data + b"\0" * (room - len(data)), room)


def preload() -> None:
    """What a shim imports as it starts and serves, imported once here instead: in each shim
    they would be its own pages, and the time to import them. dockyard-runc's CLI (which
    a shim runs in a fork of itself) with the modules its create validates a config with."""
    import encodings.ascii  # noqa: F401

    from dockyard import mounting  # noqa: F401
    from dockyard.runtime import cli, container, errors, state  # noqa: F401
    from dockyard.runtime import main as _runc_main  # noqa: F401
    from dockyard.runtime.linux import (  # noqa: F401
        capabilities,
        credentials,
        devices,
        mountopts,
        rlimits,
        rootfs,
        seccomp,
        seccompcache,
        securejoin,
    )
    from dockyard.runtime.linux.cgroups import devrules, resources, stats, v1, v2  # noqa: F401
    from dockyard.shim import jsonlog, loop, main, records, server, service  # noqa: F401
    from dockyard.shim import runtime as _runtime  # noqa: F401


def read_request(conn: socket.socket) -> dict:
    from dockyard.shim.protocol import HEADER, decode, frame_length

    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise EOFError("the supervisor closed the connection")
            data += chunk
        return data
    return decode(exactly(frame_length(exactly(HEADER))))


def run_shim(argv: list[str], conn: socket.socket) -> None:
    """In the forked daemon: stdio as start_shim gives it, the title, then the shim's main
    with the connection as its ready fd. Never returns."""
    from dockyard.shim import main as shim_main

    code = 1
    try:
        opts = shim_main.parse(argv)
        null = os.open(os.devnull, os.O_RDWR)
        log = os.open(os.path.join(str(opts["bundle"]), "shim.log"),
                      os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        set_title(["dockyard-shim", *argv])
        fd = conn.detach()
        code = shim_main.main([*argv, "-foreground", "-ready-fd", str(fd)]) or 0
    except BaseException as e:  # the supervisor reads why, and the zygote lives on
        try:
            conn.sendall(f"error: {e}\n".encode())
        except OSError:
            pass
    os._exit(code)


def serve(path: str, ready: int | None) -> int:
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)
    preload()
    import gc

    # The imported objects stay shared with every shim only while nobody writes to their
    # pages; a collection writes to each object it visits, and frozen ones it does not.
    gc.collect()
    gc.freeze()
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(64)
    if ready is not None:
        os.write(ready, b"ok\n")
        os.close(ready)
    while True:
        conn, _ = sock.accept()
        try:
            argv = read_request(conn)["argv"]
            if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
                raise ValueError("argv must be a list of strings")
        except (OSError, EOFError, ValueError, KeyError) as e:
            try:
                conn.sendall(f"error: {e}\n".encode())
            except OSError:
                pass
            conn.close()
            continue
        pid = os.fork()
        if pid == 0:
            sock.close()
            os.setsid()
            if os.fork() != 0:
                os._exit(0)  # the shim goes on in the grandchild, reparented away from us
            run_shim(argv, conn)
        conn.close()
        os.waitpid(pid, 0)


def main(argv: list[str]) -> int:
    """`dockyard-shim -zygote PATH [-ready-fd N] -title-room XXX…`"""
    path, ready = argv[argv.index("-zygote") + 1], None
    if "-ready-fd" in argv:
        ready = int(argv[argv.index("-ready-fd") + 1])
    os.chdir("/")
    try:
        return serve(path, ready)
    except Exception as e:
        sys.stderr.write(f"dockyard-shim zygote: {e}\n")
        return 1
