"""The runtime's operations on containers, as a library: the CLI parses flags and calls these.

create is the one long path: validate, claim the id, make the cgroup, start the child
(process.py), answer its requests (sync.py), record the state. If any step fails, the
ExitStack undoes the earlier ones in reverse: no process, cgroup, mount or state directory is
left behind (mounts live in the container's own mount namespace and die with it).
"""

from __future__ import annotations

import os
import time

from dockyard.runtime import hooks, jsonio, log, process, spec, state, sync, tracepoints
from dockyard.runtime.errors import ConfigError, FailedPrecondition, NotFound, StartError
from dockyard.runtime.linux import cgroups

TYPE_CHECKING = False  # not from typing: importing typing costs ~9 ms
if TYPE_CHECKING:
    from typing import Any


class Options:
    """Flags of create/run that are not in config.json."""

    __slots__ = (
        "console_ours",
        "console_socket",
        "foreground",
        "no_new_keyring",
        "no_pivot",
        "pid_file",
        "preserve_fds",
        "systemd_cgroup",
    )

    def __init__(self, *, console_socket: str | None = None,
                 pid_file: str | None = None, no_pivot: bool = False,
                 no_new_keyring: bool = False, preserve_fds: int = 0,
                 systemd_cgroup: bool = False) -> None:
        self.console_socket = console_socket
        self.pid_file = pid_file
        self.no_pivot = no_pivot
        self.no_new_keyring = no_new_keyring
        self.preserve_fds = preserve_fds
        self.systemd_cgroup = systemd_cgroup
        # `run` in the foreground relays the terminal itself: create makes a socket pair
        # and leaves our end here for the caller to receive the pty master on.
        self.foreground = False
        self.console_ours: int | None = None


class Undo:
    """contextlib.ExitStack's callback/pop_all, without importing contextlib (~3 ms): on an
    exception, the callbacks run in reverse and their own errors are swallowed."""

    __slots__ = ("_steps",)

    def __init__(self) -> None:
        self._steps: list[tuple[Any, tuple]] = []

    def callback(self, fn: Any, *args: Any) -> None:
        self._steps.append((fn, args))

    def pop_all(self) -> None:
        self._steps.clear()

    def __enter__(self) -> Undo:
        return self

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        while self._steps:
            fn, args = self._steps.pop()
            try:
                fn(*args)
            except Exception:  # undoing is best effort: the first error is what counts
                pass


def write_pid_file(path: str, pid: int) -> None:
    """Atomically, as runc does: a reader never sees a partial pid."""
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}")
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.rename(tmp, path)


def _console_fd(sp: spec.Spec, opts: Options) -> int | None:
    terminal = bool(sp.process.get("terminal"))
    if terminal and not opts.console_socket and opts.foreground:
        from dockyard.runtime.linux import console

        opts.console_ours, theirs = console.socketpair()
        return theirs
    if terminal and not opts.console_socket:
        raise ConfigError("cannot allocate tty if runc will detach without setting console "
                          "socket")
    if not terminal and opts.console_socket:
        raise ConfigError("cannot use console socket if runc will not detach or allocate tty")
    if opts.console_socket:
        from dockyard.runtime.linux import console

        return console.connect(opts.console_socket)
    return None


def create(root: str, cid: str, bundle: str, opts: Options) -> state.State:
    bundle = os.path.abspath(bundle)
    state.check_id(cid)
    if opts.systemd_cgroup:
        raise ConfigError("systemd cgroup driver is not supported by dockyard-runc; "
                          "use the cgroupfs driver (drop --systemd-cgroup)")
    raw = spec.read_json(bundle)
    with Undo() as undo:
        cdir = state.make_dir(root, cid)
        undo.callback(state.remove_dir, cdir)
        child = process.spawn(opts.preserve_fds)
        undo.callback(child.close)
        undo.callback(child.kill)
        sp = spec.from_json(raw, bundle)
        tracepoints.mark("cli: config validated")
        fifo = os.path.join(cdir, state.FIFO)
        os.mkfifo(fifo, 0o622)
        os.chmod(fifo, 0o622)
        if sp.has_ns("user"):  # the init reopens it as the container's root
            os.chown(fifo, sp.root_uid(), sp.root_gid())
        # Passed as O_PATH: the container's root may not traverse our --root.
        fifo_fd = os.open(fifo, os.O_PATH | os.O_CLOEXEC)
        console_fd = _console_fd(sp, opts)
        if opts.console_ours is not None:
            undo.callback(os.close, opts.console_ours)
        mgr = cgroups.manager_for(sp.linux.get("cgroupsPath"), cid)
        resources = sp.linux.get("resources") or {}
        doc: dict[str, Any] = {
            "id": cid, "pid": 0, "pid_start": None, "bundle": bundle,
            "rootfs": _rootfs(sp), "created": state.rfc3339(time.time_ns()),
            "owner": "", "annotations": sp.annotations, "cgroup_paths": mgr.paths,
            "resources": resources, "config": sp.raw, "ready": False,
        }
        # Saved before anything that outlives us is made: killed from here on, we leave a
        # record that `delete` cleans up from (the cgroup, and whatever runs in it).
        st = state.State(cdir, doc)
        st.save()
        mgr.create()
        undo.callback(_destroy_cgroup, mgr, child)
        mgr.set(resources)  # even empty: the default device rules come from here
        join_fds = join_cgroup(mgr, child.pid)
        tracepoints.mark("cli: cgroup made")
        oci = {"ociVersion": sp.raw["ociVersion"], "id": cid, "status": "creating",
               "bundle": bundle, "annotations": sp.annotations}
        child.send_boot({"mode": "create", "config": sp.raw, "bundle": bundle,
                         "preserve_fds": opts.preserve_fds,
                         "no_pivot": opts.no_pivot, "state": oci,
                         "seccomp": seccomp_program(sp, root)},
                        {"console": console_fd, "fifo": fifo_fd, "cgroup": join_fds,
                         "trace": tracepoints.fd() if tracepoints.fd() >= 0 else None})
        os.close(fifo_fd)
        for fd in join_fds:
            os.close(fd)
        if console_fd is not None:
            os.close(console_fd)
        log.debug(f"stage-1 (pid {child.pid}) got the configuration")
        init_pid = answer_until_pid(child, sp)
        tracepoints.mark("cli: init forked")
        log.debug(f"container init is pid {init_pid}")
        process.reap(child.pid)
        doc["pid"] = init_pid
        doc["pid_start"] = state.proc_start_time(init_pid)
        st.save()
        undo.callback(_kill_pid, init_pid)
        oci["pid"] = init_pid
        _answer(child, sp, sync.READY, oci)
        tracepoints.mark("cli: init ready")
        doc["ready"] = True
        st.save()
        if opts.pid_file:
            write_pid_file(opts.pid_file, init_pid)
        child.close()
        undo.pop_all()
    return st


def seccomp_program(sp: spec.Spec, root: str) -> dict[str, Any] | None:
    """The container's seccomp filter compiled for its init (None: it has none), from the
    cache under `root` when this profile was compiled before (linux/seccomp.py says why
    here rather than in the init)."""
    config = sp.linux.get("seccomp")
    if not config:
        return None
    from dockyard.runtime.linux import seccomp, seccompcache

    prog = seccomp.program(config, seccompcache.directory(root))
    return prog.to_json() if prog is not None else None


def _destroy_cgroup(mgr: cgroups.Manager, child: process.Child) -> None:
    child.kill()  # first: a cgroup with a process in it cannot be removed
    mgr.destroy()


def join_cgroup(mgr: cgroups.Manager, pid: int) -> list[int]:
    """Where stage-1 can move itself in (v1), the files it writes "0" to, opened here (it
    starts in our namespaces but gets them over the socket); else we move it now."""
    names = mgr.join_files()
    if not names:
        mgr.apply(pid)
        return []
    fds: list[int] = []
    try:
        for name in names:
            fds.append(os.open(name, os.O_WRONLY | os.O_CLOEXEC))
    except OSError as e:
        for fd in fds:
            os.close(fd)
        raise StartError(f"open {name}: {e.strerror}") from None
    return fds


def _rootfs(sp: spec.Spec) -> str:
    p = sp.raw["root"]["path"]
    return os.path.join(sp.bundle, p) if not p.startswith("/") else p


def _kill_pid(pid: int) -> None:
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass


def _write_id_maps(pid: int, sp: spec.Spec) -> None:
    for key, fname in (("uidMappings", "uid_map"), ("gidMappings", "gid_map")):
        text = "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n"
                       for m in sp.linux.get(key) or [])
        try:
            with open(f"/proc/{pid}/{fname}", "w") as f:
                f.write(text)
        except OSError as e:
            raise StartError(f"failed to write {fname} {text.strip()!r}: {e.strerror}") from None


def _answer(child: process.Child, sp: spec.Spec, until: int,
            oci: dict[str, Any] | None = None) -> bytes:
    """Serve the child's requests (id maps, hooks) until it sends `until`; its payload."""
    try:
        while True:
            msg = sync.recv(child.sock)
            if msg is None:
                raise StartError("container init exited before it was ready")
            kind, payload = msg
            if kind == until:
                return payload
            if kind == sync.USERNS:
                _write_id_maps(child.pid, sp)
                sync.send(child.sock, sync.ACK)
            elif kind == sync.HOOKS and oci is not None:
                hooks.run_hooks(sp.hooks, "prestart", {**oci, "status": "created"})
                hooks.run_hooks(sp.hooks, "createRuntime", {**oci, "status": "creating"})
                sync.send(child.sock, sync.ACK)
            elif kind == sync.ERROR:
                raise StartError(payload.decode(errors="replace"))
            else:
                raise StartError(f"unexpected message {kind} from the container's init")
    except sync.ProtocolError as e:
        raise StartError(str(e)) from None


def answer_until_pid(child: process.Child, sp: spec.Spec) -> int:
    return int(_answer(child, sp, sync.PID))


def start(st: state.State) -> None:
    status = st.status()
    if status == "stopped":
        raise FailedPrecondition("cannot start a container that has stopped")
    if status != "created":
        raise FailedPrecondition(f"cannot start an already {status} container")
    try:
        fd = os.open(st.fifo, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise FailedPrecondition("cannot start an already running container") from None
    try:
        data = _fifo_byte(fd, st)
    finally:
        os.close(fd)
    try:
        os.unlink(st.fifo)
    except FileNotFoundError:
        pass
    if not data:
        raise StartError("cannot start a container that has stopped")
    sp = spec.Spec(st.config, st.bundle)
    try:
        hooks.run_hooks(sp.hooks, "poststart", st.oci("running"))
    except StartError:
        kill(st, 9)
        raise


def _fifo_byte(fd: int, st: state.State) -> bytes:
    """The byte the init writes once a reader opened its FIFO (it waits in open(2) for us).
    Read without blocking forever: an init that died after create never writes, and a
    caller that lives on (the shim) must not hang on it; b"" then."""
    import select

    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while True:
        if poller.poll(50):
            try:
                return os.read(fd, 1)
            except BlockingIOError:
                continue
        if not st.alive():
            return b""


def kill(st: state.State, sig: int, all_procs: bool = False) -> None:
    status = st.status()
    if all_procs and st.cgroup_paths:
        cgroups.load(st.cgroup_paths).kill_all(sig)
        return
    if status == "stopped":
        raise FailedPrecondition("container not running")
    try:
        os.kill(st.pid, sig)
    except ProcessLookupError:
        raise FailedPrecondition("container not running") from None


def delete(root: str, cid: str, force: bool = False) -> None:
    try:
        st = state.load(root, cid)
    except NotFound:
        d = state.container_dir(root, cid)
        if os.path.isdir(d):  # a create killed before it wrote its state
            state.remove_dir(d)
            return
        raise
    status = st.status()
    if status in ("running", "paused") and not force:
        raise FailedPrecondition(f"cannot delete container {cid} that is not stopped: {status}")
    mgr = cgroups.load(st.cgroup_paths) if st.cgroup_paths else None
    if status != "stopped":
        if mgr is not None and mgr.exists():
            if status == "paused":
                mgr.thaw()
            mgr.kill_all(9)
        _kill_pid(st.pid)
        _wait_gone(st)
    elif mgr is not None and mgr.exists():
        mgr.kill_all(9)  # without a pid namespace, the init's children outlive it
    if mgr is not None:
        mgr.destroy()
    sp = spec.Spec(st.config, st.bundle)
    try:
        hooks.run_hooks(sp.hooks, "poststop", st.oci("stopped"))
    except StartError as e:
        from dockyard.runtime import log

        log.warning(str(e))
    state.remove_dir(st.dir)


def _wait_gone(st: state.State, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while st.alive() and time.monotonic() < deadline:
        time.sleep(0.002)


def oci_state_json(st: state.State) -> str:
    return jsonio.dumps_pretty(st.oci())
