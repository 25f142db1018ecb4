"""`exec`: a new process in a running container, through the same memfd child as create."""

from __future__ import annotations

import os

from dockyard.runtime import container, foreground, log, process, spec, sync
from dockyard.runtime.errors import ConfigError, FailedPrecondition, StartError
from dockyard.runtime.linux import cgroups

TYPE_CHECKING = False  # not from typing: importing typing costs ~9 ms
if TYPE_CHECKING:
    from typing import Any

    from dockyard.runtime.state import State


def build_process(base: dict[str, Any], args: list[str], *, cwd: str | None = None,
                  env: list[str] | None = None, user: str | None = None,
                  additional_gids: list[str] | None = None, caps: list[str] | None = None,
                  tty: bool = False, no_new_privs: bool = False) -> dict[str, Any]:
    """runc's exec without --process: the container's process with these changes."""
    p = dict(base)
    p["args"] = list(args)
    p["terminal"] = tty
    p.pop("consoleSize", None)
    if cwd:
        p["cwd"] = cwd
    if env:
        p["env"] = list(base.get("env") or []) + list(env)
    if user:
        uid, _, gid = user.partition(":")
        try:
            p["user"] = {"uid": int(uid), "gid": int(gid) if gid else 0}
        except ValueError:
            raise ConfigError(f"parsing {user} as int: invalid syntax") from None
    if additional_gids:
        u = dict(p.get("user") or {"uid": 0, "gid": 0})
        try:
            u["additionalGids"] = [int(g) for g in additional_gids]
        except ValueError:
            raise ConfigError("additional gids must be integers") from None
        p["user"] = u
    if caps:
        c = {k: list(v) for k, v in (base.get("capabilities") or {}).items()}
        for name in caps:
            for kind in ("bounding", "effective", "permitted", "ambient"):
                if name not in c.setdefault(kind, []):
                    c[kind].append(name)
        p["capabilities"] = c
    if no_new_privs:
        p["noNewPrivileges"] = True
    return p


def exec_process(st: State, proc: dict[str, Any], *, detach: bool = False,
                 pid_file: str | None = None, console_socket: str | None = None,
                 preserve_fds: int = 0, ignore_paused: bool = False) -> int:
    status = st.status()
    if status == "stopped":
        raise FailedPrecondition("cannot exec in a stopped container")
    if status == "paused" and not ignore_paused:
        raise FailedPrecondition("cannot exec in a paused container (use --ignore-paused to "
                                 "override)")
    spec.validate_process(proc)
    config = dict(st.config)
    config["process"] = proc
    sp = spec.Spec(config, st.bundle)
    tty = bool(proc.get("terminal"))
    ours = theirs = None
    if tty and console_socket:
        from dockyard.runtime.linux import console

        theirs = console.connect(console_socket)
    elif tty and detach:
        raise ConfigError("cannot allocate tty if runc will detach without setting console "
                          "socket")
    elif tty:
        from dockyard.runtime.linux import console

        ours, theirs = console.socketpair()
    elif console_socket:
        raise ConfigError("cannot use console socket if runc will not detach or allocate tty")
    if not detach:
        foreground.become_subreaper()
    child = process.spawn(preserve_fds)
    try:
        join_fds = container.join_cgroup(cgroups.load(st.cgroup_paths), child.pid) \
            if st.cgroup_paths else []
        try:
            child.send_boot({"mode": "exec", "config": config, "bundle": st.bundle,
                             "init_pid": st.pid, "preserve_fds": preserve_fds,
                             "state": st.oci(status),
                             "seccomp": container.seccomp_program(sp, os.path.dirname(st.dir))},
                            {"console": theirs, "cgroup": join_fds})
        finally:
            for fd in [theirs, *join_fds]:
                if fd is not None:
                    os.close(fd)
        pid = container.answer_until_pid(child, sp)
        log.debug(f"exec'd process is pid {pid}")
        process.reap(child.pid)
        sync.expect(child.sock, sync.READY)
        # The socket is close-on-exec in the child: EOF means execve succeeded.
        msg = sync.recv(child.sock)
        if msg is not None and msg[0] == sync.ERROR:
            process.reap(pid)
            raise StartError(msg[1].decode(errors="replace"))
    except sync.ChildError as e:
        child.kill()
        raise StartError(str(e)) from None
    except BaseException:
        child.kill()
        raise
    finally:
        child.close()
    if pid_file:
        container.write_pid_file(pid_file, pid)
    if detach:
        return 0
    master = None
    if ours is not None:
        from dockyard.runtime.linux import console

        master = console.recv_fd(ours)
        os.close(ours)
    return foreground.wait(pid, master)
