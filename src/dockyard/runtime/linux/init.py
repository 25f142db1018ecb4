"""The child side of create and exec: stage-1, the container's init, and an exec'd process.

This module runs in a fresh interpreter started from a sealed memfd copy of the Python
binary (see runtime/process.py), so that /proc/<pid>/exe of anything visible inside the
container is never a writable host binary (the CVE-2019-5736 class). The protocol with the
parent is drawn in runtime/sync.py.

Everything the steps need is imported before pivot_root: afterwards the host's files, and so
our modules, are out of reach. The steps of `init`, top to bottom, and why in this order:

 1. setsid                      a session leader can take a controlling terminal
 2. loopback up                 a new network namespace starts with lo down
 3. rootfs.prepare              mounts and devices inside the new mount namespace
 4. prestart/createRuntime      run by the parent, in the runtime's namespaces, before pivot
 5. createContainer hooks       in the container's mount namespace, before pivot
 6. rootfs.enter                pivot_root: from here on only the container's files exist
 7. console                     the pty must come from the container's own devpts
 8. hostname, sysctls           before readonlyPaths makes /proc/sys read-only
 9. rootfs.finalize             masked and read-only paths, read-only root
10. signals, rlimits,           default signal actions (execve keeps ignored ones);
    oom_score_adj               the limits need privileges we are about to drop
11. no_new_privs, seccomp       seccomp before dropping caps unless no_new_privs (loading a
                                filter needs CAP_SYS_ADMIN or no_new_privs); the program
                                comes compiled in BOOT (seccomp.py says why)
12. credentials                 bounding set, uid/gid, groups, capabilities, umask
13. descriptors                 everything above 2 + preserve_fds is close-on-exec
                                (the CVE-2024-21626 class)
14. READY, then block opening exec.fifo until `start`
15. startContainer hooks, execve
"""

from __future__ import annotations

import _socket
import fcntl
import os
import struct
import sys
import time

from dockyard.runtime import jsonio, sync, tracepoints
from dockyard.runtime.linux import (
    capabilities,  # noqa: F401  (imported now: after pivot_root nothing can be imported)
    credentials,
    rootfs,
)
from dockyard.runtime.linux import syscalls as sc
from dockyard.runtime.spec import JOIN_ORDER, NAMESPACE_PROC, Spec

TYPE_CHECKING = False  # not from typing: importing typing costs ~9 ms
if TYPE_CHECKING:
    from collections.abc import Callable

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


class Boot:
    """What the parent sends: the config and the options of this create or exec."""

    __slots__ = ("console_fd", "doc", "mode", "preserve_fds", "spec")

    def __init__(self, doc: dict) -> None:
        self.doc = doc
        self.mode = doc["mode"]
        self.spec = Spec(doc["config"], doc["bundle"])
        self.console_fd = doc.get("console_fd")
        self.preserve_fds = doc.get("preserve_fds", 0)


def main(sock: int) -> None:
    """Entry point of the memfd interpreter (stage-1)."""
    imported = time.monotonic_ns() // 1000
    try:
        payload, fds = sync.recv_fds(sock, sync.BOOT)
        # Received descriptors take the lowest free numbers; 0-2 are for stdio (below).
        fds = [_above_stdio(fd) for fd in fds]
        doc = jsonio.loads(payload)
        for name, fd in zip(doc.pop("fd_names", ()), fds, strict=False):
            if name.endswith("[]"):
                doc.setdefault(f"{name[:-2]}_fds", []).append(fd)
            else:
                doc[f"{name}_fd"] = fd
        _adopt_stdio(doc)
        tracepoints.adopt(doc.pop("trace_fd", None))
        tracepoints.mark_at(imported, "stage-1: imported")
        tracepoints.mark("stage-1: got the config")
        _join_cgroup(doc.pop("cgroup_fds", ()))
        boot = Boot(doc)
        _import_what_it_uses(boot.spec)
        if boot.mode == "create":
            _stage1_create(sock, boot)
        else:
            _stage1_exec(sock, boot)
    except BaseException as e:  # report every failure to the parent, then exit
        _fail(sock, e)
    os._exit(0)


def _above_stdio(fd: int) -> int:
    if fd > 2:
        return fd
    lifted = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    os.close(fd)
    return lifted


def _adopt_stdio(doc: dict) -> None:
    """The CLI's stdio as ours (and so the container's): whoever started this process may
    not be the CLI (see process.prespawn). A stream the CLI had closed is closed here too."""
    got = [doc.pop(f"{name}_fd", None) for name in ("stdin", "stdout", "stderr")]
    for target, fd in enumerate(got):
        if fd is None:
            try:
                os.close(target)
            except OSError:
                pass
        else:
            os.dup2(fd, target)
    for fd in {fd for fd in got if fd is not None}:
        os.close(fd)


def _import_what_it_uses(spec: Spec) -> None:
    """The modules only some configurations need, now, while the host's files are in reach
    (after pivot_root nothing can be imported), and only those: each import is start-up
    time. The functions below import them again, from sys.modules."""
    if spec.hooks:
        import dockyard.runtime.hooks
    if spec.process.get("terminal"):
        import dockyard.runtime.linux.console
    if spec.process.get("rlimits"):
        import dockyard.runtime.linux.rlimits
    if spec.linux.get("seccomp"):  # its install(); the program comes compiled (BOOT)
        import dockyard.runtime.linux.seccomp  # noqa: F401


def _join_cgroup(fds: list[int]) -> None:
    """First of all, while we are one thread: "0" moves the caller (runtime/container.py)."""
    for fd in fds:
        try:
            os.write(fd, b"0")
        except OSError as e:
            raise OSError(e.errno, f"join the container's cgroup: {e.strerror}") from None
        os.close(fd)


def _fail(sock: int, e: BaseException) -> None:
    msg = str(e)
    if isinstance(e, OSError) and e.strerror:
        msg = f"{e.filename}: {e.strerror}" if e.filename else e.strerror
    try:
        sync.send(sock, sync.ERROR, msg.encode())
    except OSError:
        pass
    os._exit(1)


def _join(paths: list[tuple[str, str]]) -> None:
    """Open every namespace first, then join in JOIN_ORDER (joining mnt changes our root)."""
    fds = []
    for t, p in paths:
        try:
            fds.append((t, os.open(p, os.O_RDONLY | os.O_CLOEXEC)))
        except OSError as e:
            raise OSError(e.errno, f"open namespace {p}: {e.strerror}") from None
    for t, fd in fds:
        sc.setns(fd, 0, f"{t} namespace")
        os.close(fd)


def _stage1_create(sock: int, boot: Boot) -> None:
    spec = boot.spec
    flags = spec.new_ns_flags()
    paths = spec.ns_paths()
    if paths and paths[0][0] == "user":
        _join(paths[:1])
        paths = paths[1:]
    if flags & sc.CLONE_NEWUSER:
        sc.unshare(sc.CLONE_NEWUSER)
        sync.send(sock, sync.USERNS)
        sync.expect(sock, sync.ACK)
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    _join(paths)
    if flags & ~sc.CLONE_NEWUSER:
        sc.unshare(flags & ~sc.CLONE_NEWUSER)
    if flags & sc.CLONE_NEWTIME:
        _write_time_offsets(spec.linux.get("timeOffsets") or {})
    _fork(sock, boot, _init)


def _fork(sock: int, boot: Boot, child: Callable[[int, Boot], None]) -> None:
    """Fork the process that lives in the container (a new pid namespace only takes effect
    for children), tell the parent its pid, and leave: stage-1 exits after this."""
    # Visible from the container from now on: nobody may open our /proc/<pid>/exe.
    sc.prctl(sc.PR_SET_DUMPABLE, 0)
    r, w = os.pipe()  # fork's answer is the child's pid as the runtime sees it: tell it
    pid = os.fork()
    if pid == 0:
        os.close(w)
        try:
            boot.doc["pid_pipe"] = r
            child(sock, boot)
        except BaseException as e:
            _fail(sock, e)
        os._exit(1)
    os.close(r)
    # PID goes to the runtime before the child learns its pid: the child waits for that in
    # _host_pid, so its own messages (READY) cannot overtake PID on the socket we share.
    sync.send(sock, sync.PID, str(pid).encode())
    os.write(w, str(pid).encode())
    os.close(w)


def _write_time_offsets(offsets: dict) -> None:
    lines = []
    for clock in ("monotonic", "boottime"):
        o = offsets.get(clock)
        if o:
            lines.append(f"{clock} {o.get('secs', 0)} {o.get('nanosecs', 0)}\n")
    if lines:
        with open("/proc/self/timens_offsets", "w") as f:
            f.write("".join(lines))


def _loopback_up() -> None:
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        ifr = struct.pack("16sh22x", b"lo", 0)
        flags = struct.unpack("16sh22x", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, ifr))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", flags | IFF_UP))
    finally:
        s.close()


def _host_pid(sock: int, boot: Boot) -> int:
    """Our pid as the runtime sees it (in a new pid namespace we are 1): the hooks and the
    seccomp agent get that one. Stage-1 writes it to the pipe from _fork."""
    r = boot.doc.pop("pid_pipe")
    pid = int(os.read(r, 32))
    os.close(r)
    boot.doc["process_pid"] = pid
    if boot.mode == "create":
        boot.doc["state"]["pid"] = pid
    return pid


def _init(sock: int, boot: Boot) -> None:
    spec = boot.spec
    raw = spec.raw
    process = spec.process
    host_pid = _host_pid(sock, boot)
    os.setsid()
    if spec.has_ns("network") and not any(p[0] == "network" for p in spec.ns_paths()):
        _loopback_up()
    fifo = boot.doc["fifo_fd"]
    tracepoints.mark("init: started")
    root = rootfs.prepare(raw, spec.bundle, in_userns=spec.has_ns("user"),
                          cgroup_ns=spec.has_ns("cgroup"))
    tracepoints.mark("init: rootfs prepared")
    if spec.hooks.get("prestart") or spec.hooks.get("createRuntime"):
        sync.send(sock, sync.HOOKS)
        sync.expect(sock, sync.ACK)
    if spec.hooks.get("createContainer"):
        from dockyard.runtime import hooks

        hooks.run_hooks(spec.hooks, "createContainer", {**boot.doc["state"], "pid": host_pid,
                                                       "status": "creating"})
    _connect_listener(boot)  # a host path: reachable only before pivot_root
    rootfs.enter(raw, root, no_pivot=boot.doc.get("no_pivot", False))
    if process.get("terminal"):
        _setup_console(boot)
    if raw.get("hostname"):
        sc.sethostname(raw["hostname"])
    if raw.get("domainname"):
        sc.setdomainname(raw["domainname"])
    _sysctls(spec.linux.get("sysctl") or {})
    rootfs.finalize(raw)
    tracepoints.mark("init: pivoted and finalized")
    _finish_process(sock, boot, spec)
    sync.send(sock, sync.READY)
    # Blocks until `start` opens the fifo for reading.
    w = os.open(f"/proc/self/fd/{fifo}", os.O_WRONLY | os.O_CLOEXEC)
    os.write(w, b"0")
    os.close(w)
    os.close(fifo)
    if spec.hooks.get("startContainer"):
        from dockyard.runtime import hooks

        hooks.run_hooks(spec.hooks, "startContainer", {**boot.doc["state"], "pid": host_pid,
                                                      "status": "created"})
    _exec(sock, boot, spec)


def _connect_listener(boot: Boot) -> None:
    filt = boot.spec.linux.get("seccomp") or {}
    if filt.get("listenerPath") and "SCMP_ACT_NOTIFY" in jsonio.dumps(filt):
        from dockyard.runtime.linux import seccomp

        boot.doc["listener_fd"] = seccomp.connect_listener(filt["listenerPath"])


def _setup_console(boot: Boot) -> None:
    from dockyard.runtime.linux import console

    master, slave = console.open_pty()
    size = boot.spec.process.get("consoleSize")
    if size:
        console.set_size(slave, size["height"], size["width"])
    if boot.mode == "create":
        _bind_console(slave)
    console.send_fd(boot.console_fd, master)
    os.close(boot.console_fd)
    os.close(master)
    console.make_controlling(slave)
    if slave > 2:
        os.close(slave)


def _bind_console(slave: int) -> None:
    """/dev/console is the pty slave, bind-mounted, as runc does."""
    if not os.path.exists("/dev/console"):
        os.close(os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
    sc.LINUX.mount(os.readlink(f"/proc/self/fd/{slave}"), "/dev/console", None, sc.MS_BIND)


def _sysctls(sysctls: dict[str, str]) -> None:
    for name, value in sysctls.items():
        path = "/proc/sys/" + name.replace(".", "/")
        try:
            with open(path, "w") as f:
                f.write(value)
        except OSError as e:
            raise OSError(e.errno, f"write sysctl {name}={value}: {e.strerror}") from None


def _finish_process(sock: int, boot: Boot, spec: Spec) -> None:
    """Steps 10-13: limits, seccomp, credentials, descriptors, cwd; the exec path checked."""
    process = spec.process
    sc.reset_signals()  # before seccomp, which might not allow it
    if process.get("rlimits"):
        from dockyard.runtime.linux import rlimits

        rlimits.apply(process["rlimits"])
    adj = process.get("oomScoreAdj")
    if adj is not None:
        credentials.set_oom_score_adj(os.getpid(), adj)
    nnp = bool(process.get("noNewPrivileges"))
    filt = spec.linux.get("seccomp")
    if not boot.doc.get("seccomp"):  # the profile asks for no filter
        filt = None
    if nnp:
        credentials.set_no_new_privs()
    if filt and not nnp:
        _load_seccomp(sock, boot, filt)
    cwd = process.get("cwd") or "/"
    try:
        os.chdir(cwd)  # as root first: a directory only the user may enter is retried below
    except OSError:
        pass
    credentials.apply(process)
    if filt and nnp:
        _load_seccomp(sock, boot, filt)
    sc.close_range(3 + boot.preserve_fds, 0xFFFFFFFF, sc.CLOSE_RANGE_CLOEXEC)
    cwd = process.get("cwd") or "/"
    try:
        os.chdir(cwd)
    except OSError as e:
        raise OSError(e.errno, f"chdir to cwd ({cwd!r}) set in config.json failed: "
                               f"{e.strerror}") from None
    boot.doc["exe"] = _look_path(process["args"][0], process.get("env") or [])


def _load_seccomp(sock: int, boot: Boot, filt: dict) -> None:
    from dockyard.runtime.linux import seccomp

    notify = seccomp.install(seccomp.Program.from_json(boot.doc["seccomp"]))
    listener = boot.doc.pop("listener_fd", None)
    if notify is not None and listener is not None:
        state = dict(boot.doc["state"], status="creating" if boot.mode == "create" else
                     boot.doc["state"].get("status", "running"))
        seccomp.send_state(listener, notify, jsonio.dumps(
            {"ociVersion": state.get("ociVersion"), "fds": ["seccompFd"],
             "pid": boot.doc["process_pid"], "metadata": filt.get("listenerMetadata", ""),
             "state": state}).encode())
    elif listener is not None:
        os.close(listener)
    if notify is not None:
        os.close(notify)


def _look_path(name: str, env: list[str]) -> str:
    """Go's exec.LookPath against the container's PATH, with its error text."""
    if "/" in name:
        if not os.path.exists(name):
            raise FileNotFoundError(2, f"exec: {name!r}: stat {name}: no such file or directory"
                                       .replace("'", '"'))
        return name
    path = next((e[5:] for e in env if e.startswith("PATH=")), "")
    for d in path.split(":"):
        cand = os.path.join(d or ".", name)
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    raise FileNotFoundError(2, f'exec: "{name}": executable file not found in $PATH')


def _exec(sock: int, boot: Boot, spec: Spec) -> None:
    """execve; on failure an exec'd process tells its parent, an init its stderr."""
    process = spec.process
    env = dict(e.split("=", 1) for e in process.get("env") or [])
    if "HOME" not in env:  # as runc: from the container's passwd (we are past pivot_root)
        env["HOME"] = credentials.lookup_home(int((process.get("user") or {}).get("uid", 0)))
    tracepoints.mark("init: execve")
    try:
        os.execve(boot.doc["exe"], process["args"], env)
    except OSError as e:
        msg = f"exec {process['args'][0]}: {e.strerror}"
        if boot.mode == "exec":
            sync.send(sock, sync.ERROR, msg.encode())
        else:
            os.write(2, (msg + "\n").encode())
        os._exit(126 if e.errno in (13, 8) else 127)


def _stage1_exec(sock: int, boot: Boot) -> None:
    """Join the running container's namespaces; the exec'd process is forked into them."""
    init_pid = boot.doc["init_pid"]
    paths = []
    for t in JOIN_ORDER:
        if not boot.spec.has_ns(t):
            continue
        name = NAMESPACE_PROC[t]
        p = f"/proc/{init_pid}/ns/{name}"
        if os.stat(p).st_ino != os.stat(f"/proc/self/ns/{name}").st_ino:
            paths.append((t, p))
    if paths and paths[0][0] == "user":
        _join(paths[:1])
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
        paths = paths[1:]
    _connect_listener(boot)  # before the mount namespace is joined: a host path
    _join(paths)
    _fork(sock, boot, _exec_child)


def _exec_child(sock: int, boot: Boot) -> None:
    spec = boot.spec
    _host_pid(sock, boot)
    if spec.process.get("terminal"):
        os.setsid()
        _setup_console(boot)
    _finish_process(sock, boot, spec)
    sync.send(sock, sync.READY)
    _exec(sock, boot, spec)


if __name__ == "__main__":
    main(int(sys.argv[1]))
