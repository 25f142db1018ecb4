"""`dockyard-shim`: the process that holds one container.

    dockyard-shim -namespace NS -id ID -address unix:///…/s/<hash> -bundle B
                  -runtime-root R [-runtime '["runc"]'] [-ready-fd N] [-debug]

started by spawn.start_shim, which runs it as `python -I -S …/shim/__main__.py` with
argv[0] "dockyard-shim" and its own session:

    supervisor ──Popen──► dockyard-shim (session leader) ──fork──► dockyard-shim (daemon)
        │                       └─ exits at once: the supervisor reaps it, the daemon is
        │                          reparented to init and outlives everything above it
        ◄──── "ok" on the ready pipe ────────────────────────────── listening, pid files written

The daemon names itself (comm "dockyard-shim"), becomes the child subreaper of what the
runtime starts, ignores SIGHUP and SIGPIPE, writes <bundle>/shim.pid and <bundle>/address,
then serves until its task is deleted. Standard library (and ctypes) only.
"""

from __future__ import annotations

import _signal
import os
import sys

PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36

USAGE = ("usage: dockyard-shim -namespace NS -id ID -address ADDRESS -bundle DIR "
         "-runtime-root DIR [-runtime JSON-LIST] [-ready-fd N] [-debug] [-foreground]")
FLAGS = {"namespace", "id", "address", "bundle", "runtime-root", "runtime", "ready-fd"}
SWITCHES = {"debug", "foreground"}


def parse(argv: list[str]) -> dict[str, str | bool]:
    opts: dict[str, str | bool] = {}
    i = 0
    while i < len(argv):
        name = argv[i].lstrip("-")
        if name in SWITCHES:
            opts[name] = True
            i += 1
        elif name in FLAGS and i + 1 < len(argv):
            opts[name] = argv[i + 1]
            i += 2
        else:
            raise ValueError(f"unknown or incomplete flag {argv[i]!r}")
    missing = [f for f in ("namespace", "id", "address", "bundle", "runtime-root")
               if not opts.get(f)]
    if missing:
        raise ValueError("missing -" + ", -".join(missing))
    return opts


def default_runtime() -> list[str]:
    launcher = os.path.join(os.path.dirname(sys.executable or "/"), "dockyard-runc")
    if os.path.exists(launcher):
        return [launcher]
    return ["runc"]


def become_shim() -> None:
    """comm "dockyard-shim" in ps; subreaper of the container; deaf to hangups and pipes."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_NAME, ctypes.c_char_p(b"dockyard-shim"), 0, 0, 0)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, ctypes.c_ulong(1), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(err)}")
    _signal.signal(_signal.SIGHUP, _signal.SIG_IGN)
    _signal.signal(_signal.SIGPIPE, _signal.SIG_IGN)


def serve(opts: dict) -> tuple:
    from dockyard.runtime import jsonio
    from dockyard.shim import records
    from dockyard.shim.loop import Loop
    from dockyard.shim.protocol import unix_path
    from dockyard.shim.runtime import Runtime, resolve
    from dockyard.shim.server import Server
    from dockyard.shim.service import Service

    bundle = os.path.abspath(opts["bundle"])
    runtime = jsonio.loads(opts["runtime"]) if opts.get("runtime") else default_runtime()
    if not isinstance(runtime, list) or not runtime or \
            not all(isinstance(a, str) for a in runtime):
        raise ValueError("-runtime must be a JSON list of strings")
    path = unix_path(opts["address"])
    loop = Loop()
    rt = Runtime(loop, resolve(runtime), os.path.abspath(opts["runtime-root"]), bundle,
                 opts["id"])
    rt.prespawn()
    service = Service(loop, rt, namespace=opts["namespace"], cid=opts["id"], bundle=bundle,
                      console_dir=os.path.dirname(path))
    server = Server(loop, path, service)
    server.debug = bool(opts.get("debug"))
    service.server = server
    records.write_quickly(os.path.join(bundle, "shim.pid"), str(os.getpid()))
    records.write_quickly(os.path.join(bundle, "address"), opts["address"])
    return loop, server


def tell(fd: int | None, message: str) -> None:
    if fd is None:
        return
    try:
        os.write(fd, message.encode() + b"\n")
        os.close(fd)
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "-zygote" in argv:
        from dockyard.shim import zygote

        return zygote.main(argv)
    try:
        opts = parse(argv)
        ready = int(opts["ready-fd"]) if opts.get("ready-fd") else None
        if ready is not None:  # no child of ours may hold it: the reader waits for its end
            os.set_inheritable(ready, False)
    except ValueError as e:
        sys.stderr.write(f"dockyard-shim: {e}\n{USAGE}\n")
        return 2
    if not opts.get("foreground") and os.fork() != 0:
        os._exit(0)  # the daemon goes on in the child, reparented away from the supervisor
    try:
        os.chdir("/")
        become_shim()
        loop, _server = serve(opts)
    except FileExistsError:  # another shim of this container got there first: it serves
        tell(ready, "ok")
        return 0
    except Exception as e:
        import traceback

        traceback.print_exc()
        tell(ready, f"error: {e}")
        return 1
    tell(ready, "ok")
    loop.run_forever()
    return 0
