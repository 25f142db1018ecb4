"""The shim's methods: one task (the init) and its execs, driven through the runtime.

Each method takes the request's params and returns its result, or a generator that yields
Futures (runtime calls, exits) and returns it. Methods that change the task (create, start,
kill, delete, pause, resume, update) take the task lock, so that two clients never
interleave runtime calls; state, wait, pids, stats and the stdio methods do not.

    create ─► mount rootfs ─► stdio ─► RUNTIME create ─► read init.pid ─► watch exit, OOM
    start  ─► RUNTIME start                      (exec: RUNTIME exec --detach --process F)
    exit   ─► drain output ─► exit.json durably ─► waiters ─► /tasks/exit
    delete ─► RUNTIME delete ─► close stdio ─► unmount rootfs ─► /tasks/delete ─► shim exits
"""

from __future__ import annotations

import os

from dockyard import __version__
from dockyard.runtime import jsonio
from dockyard.shim import oom, params, records, rootfs
from dockyard.shim.loop import Lock, Loop, first
from dockyard.shim.process import ConsoleSocket, Process
from dockyard.shim.protocol import ShimError
from dockyard.shim.runtime import Runtime

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Generator

    from dockyard.shim.server import Conn, Server

EXIT_GRACE = 1.0  # after the init's delete, the shim waits this long for a shutdown
EXEC_FAILED = 255


class Service:
    def __init__(self, loop: Loop, runtime: Runtime, *, namespace: str, cid: str,
                 bundle: str, console_dir: str) -> None:
        self.loop, self.runtime = loop, runtime
        self.namespace, self.id, self.bundle = namespace, cid, bundle
        self.console_dir = console_dir
        self.server: Server | None = None
        self.init: Process | None = None
        self.execs: dict[str, Process] = {}
        self.lock = Lock()
        self.deleted = False
        self.oom: oom.OomWatch | None = None
        self._consoles = 0
        self._log_errors = 0
        self.methods: dict[str, Callable[[dict], object]] = {
            "connect": self.connect, "create": self.create, "start": self.start,
            "state": self.state, "kill": self.kill, "delete": self.delete, "exec": self.exec,
            "resize_pty": self.resize_pty, "close_io": self.close_io, "pause": self.pause,
            "resume": self.resume, "pids": self.pids, "stats": self.stats,
            "update": self.update, "wait": self.wait, "shutdown": self.shutdown,
        }

    # -- lookups ---------------------------------------------------------------------------

    def _init(self) -> Process:
        if self.init is None:
            raise ShimError("not_found", f"task {self.id} not found")
        return self.init

    def _process(self, p: dict) -> Process:
        exec_id = params.exec_id(p)
        if not exec_id:
            return self._init()
        proc = self.execs.get(exec_id)
        if proc is None:
            raise ShimError("not_found", f"process {exec_id} not found in task {self.id}")
        return proc

    def publish(self, topic: str, **fields: object) -> None:
        if self.server is not None:
            self.server.publish({"topic": topic, "id": self.id, **fields})

    def log(self, message: str) -> None:
        if self.server is not None:
            self.server.log(message)

    # -- create ----------------------------------------------------------------------------

    def connect(self, p: dict) -> dict:
        return {"shim_pid": os.getpid(), "task_pid": self.init.pid if self.init else 0,
                "version": __version__}

    def create(self, p: dict) -> Generator:
        mounts = rootfs.check(p.get("rootfs") or [])
        terminal, stdin = params.boolean(p, "terminal"), params.boolean(p, "stdin")
        log_path, max_size, max_file = params.log_options(p)
        yield self.lock.acquire()
        try:
            if self.init is not None or self.deleted:
                raise ShimError("already_exists", f"task {self.id}: already exists")
            proc = self.init = Process("", terminal, stdin)
            try:
                yield from self._create(proc, mounts, log_path, max_size, max_file)
            except BaseException:
                self.init = None
                raise
        finally:
            self.lock.release()
        self.loop.child_exit(proc.pid).add_done(lambda f: self._reaped(proc, f.value))
        self.oom = oom.watch(self.loop, proc.pid, lambda: self.publish("/tasks/oom"))
        return {"pid": proc.pid}

    def _create(self, proc: Process, mounts: list[dict], log_path: str | None,
                max_size: int, max_file: int) -> Generator:
        target = os.path.join(self.bundle, "rootfs")
        mounted, console, writer = False, None, None
        args = ["--bundle", self.bundle,
                "--pid-file", os.path.join(self.bundle, "init.pid")]
        try:
            if mounts:
                rootfs.mount(mounts, target)
                mounted = True
            if log_path:
                writer = self._open_log(log_path, max_size, max_file)
            stdio = None
            if proc.terminal:
                console = self._console_socket()
                args += ["--console-socket", console.path]
            else:
                stdio = proc.make_pipes(self.runtime.devnull)
            try:
                yield from self.runtime.call("create", *args, self.id, stdio=stdio)
            finally:
                proc.close_child_ends()
            proc.pid = records.read_pid(os.path.join(self.bundle, "init.pid"))
            if console is not None:
                proc.attach_console(self.loop, console.receive(), writer, self._log_error)
            else:
                proc.attach_pipes(self.loop, writer, self._log_error)
        except BaseException as e:
            proc.close_stdio()
            if writer is not None and proc.output is None:
                writer.close()
            try:  # a runtime that failed half way may have left its state behind
                yield from self._runtime_delete()
            except ShimError as again:
                self.log(f"after a failed create ({e}): {again}")
            if mounted:
                rootfs.unmount(target)
            raise
        finally:
            if console is not None:
                console.close()

    def _open_log(self, path: str, max_size: int, max_file: int):
        from dockyard.shim.jsonlog import JsonLogWriter

        try:
            return JsonLogWriter(path, max_size=max_size, max_file=max_file)
        except OSError as e:
            raise ShimError("internal", f"failed to create log {path}: {e.strerror}") from None

    def _log_error(self, e: OSError) -> None:
        if self._log_errors % 1000 == 0:
            self.log(f"container log: {e} (errors so far: {self._log_errors + 1})")
        self._log_errors += 1

    def _console_socket(self) -> ConsoleSocket:
        self._consoles += 1
        name = f"c{os.getpid()}-{self._consoles}"
        path = os.path.join(self.console_dir, name)
        if len(path) > 100:  # sun_path holds 108 bytes
            path = os.path.join("/tmp", f"dockyard-shim-{name}")
        return ConsoleSocket(path)

    def _runtime_delete(self) -> Generator:
        try:
            if not self.runtime.here("delete"):
                yield from self.runtime.call("delete", "--force", self.id)
        except ShimError as e:
            if e.code != "not_found":
                raise

    # -- start and exits -------------------------------------------------------------------

    def start(self, p: dict) -> Generator:
        proc = self._process(p)
        yield self.lock.acquire()
        try:
            if proc.status != "created" or proc.starting or (proc.pid and proc.exec_id):
                raise ShimError("failed_precondition",
                                f"cannot start a process in the {proc.status} state")
            proc.starting = True
            try:
                if proc.exec_id:
                    yield from self._start_exec(proc)
                elif not self.runtime.here("start"):
                    yield from self.runtime.call("start", self.id)
            finally:
                proc.starting = False
            if proc.status == "created":
                proc.status = "running"
            if proc.exec_id:
                self.publish("/tasks/exec-started", exec_id=proc.exec_id, pid=proc.pid)
            else:
                self.publish("/tasks/start", pid=proc.pid)
            if proc.held_exit is not None:
                code, proc.held_exit = proc.held_exit, None
                self.loop.call_later(0, lambda: self._exited(proc, code))
            return {"pid": proc.pid}
        finally:
            self.lock.release()

    def _start_exec(self, proc: Process) -> Generator:
        spec_path = os.path.join(self.bundle, f"exec-{proc.exec_id}.json")
        pid_path = os.path.join(self.bundle, f"exec-{proc.exec_id}.pid")
        args = ["--process", spec_path, "--detach", "--pid-file", pid_path]
        console = None
        try:
            records.write_quickly(spec_path, jsonio.dumps(proc.spec))
            if proc.terminal:
                console = self._console_socket()
                args += ["--console-socket", console.path]
            try:
                yield from self.runtime.call("exec", *args, self.id, stdio=proc.child_stdio)
            finally:
                proc.close_child_ends()
            proc.pid = records.read_pid(pid_path)
            if console is not None:
                proc.attach_console(self.loop, console.receive())
        except BaseException:
            proc.close_stdio()
            if proc.pid:  # it runs, without its terminal: its exit is still told
                self.loop.child_exit(proc.pid).add_done(lambda f: self._reaped(proc, f.value))
            else:
                self._exited(proc, EXEC_FAILED, publish=False)
            raise
        finally:
            if console is not None:
                console.close()
            for path in (spec_path, pid_path):
                try:
                    os.unlink(path)
                except OSError:
                    pass
        self.loop.child_exit(proc.pid).add_done(lambda f: self._reaped(proc, f.value))

    def _reaped(self, proc: Process, code: int) -> None:
        if proc.starting:
            proc.held_exit = code
        else:
            self._exited(proc, code)

    def _exited(self, proc: Process, code: int, publish: bool = True) -> None:
        """The process is gone: its last output read, its exit recorded (the init's durably,
        in exit.json) before anyone hears of it."""
        if proc.status == "stopped":
            return
        if proc.output is not None:
            proc.output.drain()
        if proc is self.init and self.oom is not None:
            self.oom.check()  # an OOM kill is told before the exit it caused
        proc.exit_status, proc.exited_at = code, records.rfc3339nano()
        if proc is self.init:
            try:
                records.write_exit(self.bundle, code, proc.exited_at)
            except OSError as e:
                self.log(f"recording the exit: {e}")
        proc.status = "stopped"
        proc.exited.set_result(proc.exit_json())
        if publish:
            self.publish("/tasks/exit", exec_id=proc.exec_id, pid=proc.pid, exit_status=code,
                         exited_at=proc.exited_at)

    def wait(self, p: dict) -> Generator:
        proc = self._process(p)
        result = yield proc.exited
        return result

    def state(self, p: dict) -> dict:
        return self._process(p).state(self.id)

    # -- signals, delete, shutdown ---------------------------------------------------------

    def kill(self, p: dict) -> Generator:
        sig = params.integer(p, "signal", 15, low=1, high=64)
        every = params.boolean(p, "all")
        proc = self._process(p)
        yield self.lock.acquire()
        try:
            if proc.status == "stopped":
                raise ShimError("not_found", "process already finished")
            if proc.exec_id:
                if not proc.pid:
                    raise ShimError("failed_precondition",
                                    f"process {proc.exec_id} has not been started")
                try:
                    os.kill(proc.pid, sig)
                except ProcessLookupError:
                    raise ShimError("not_found", "process already finished") from None
                return {}
            try:
                yield from self.runtime.call("kill", *(["--all"] if every else []), self.id,
                                             str(sig))
            except ShimError as e:
                if proc.status == "stopped" or "not running" in e.message:
                    raise ShimError("not_found", "process already finished") from None
                raise
            return {}
        finally:
            self.lock.release()

    def delete(self, p: dict) -> Generator:
        proc = self._process(p)
        yield self.lock.acquire()
        try:
            if proc.status in ("running", "paused") or proc.starting:
                what = f"exec {proc.exec_id}" if proc.exec_id else f"task {self.id}"
                raise ShimError("failed_precondition", f"cannot delete {what}: it is running")
            if proc.exec_id:
                proc.close_stdio()
                del self.execs[proc.exec_id]
                if not proc.exited.done:
                    proc.exited.set_error(ShimError("not_found",
                                                    f"process {proc.exec_id} was deleted"))
                return {"pid": proc.pid, **proc.exit_json()}
            yield from self._runtime_delete()
            if proc.status != "stopped":  # created: the runtime killed it
                yield first(proc.exited, self.loop.sleep(5))
            for each in (proc, *self.execs.values()):
                each.close_stdio()
            if self.oom is not None:
                self.oom.close()
                self.oom = None
            try:
                rootfs.unmount(os.path.join(self.bundle, "rootfs"))
            except OSError as e:
                raise ShimError("internal", f"failed to unmount rootfs: {e}") from None
            self.init, self.execs, self.deleted = None, {}, True
            done = {"pid": proc.pid, **proc.exit_json()}
            self.publish("/tasks/delete", **done)
            self.loop.call_later(EXIT_GRACE, self._stop)
            return done
        finally:
            self.lock.release()

    def shutdown(self, p: dict) -> dict:
        """Exit, if the task was deleted or never created; otherwise nothing."""
        if self.init is None and not self.lock.held:
            self.loop.call_later(0, self._stop)
        return {}

    def _stop(self) -> None:
        if self.server is not None and self.init is None:
            self.server.stop()

    # -- the running task ------------------------------------------------------------------

    def pause(self, p: dict) -> Generator:
        return self._freeze("pause", "running", "paused", "/tasks/paused")

    def resume(self, p: dict) -> Generator:
        return self._freeze("resume", "paused", "running", "/tasks/resumed")

    def _freeze(self, verb: str, before: str, after: str, topic: str) -> Generator:
        proc = self._init()
        yield self.lock.acquire()
        try:
            if proc.status != before:
                raise ShimError("failed_precondition",
                                f"cannot {verb} task {self.id}: it is {proc.status}")
            yield from self.runtime.call(verb, self.id)
            if proc.status == before:
                proc.status = after
            self.publish(topic)
            return {}
        finally:
            self.lock.release()

    def update(self, p: dict) -> Generator:
        resources = p.get("resources")
        if not isinstance(resources, dict):
            raise params.invalid("resources must be an object")
        self._init()
        yield self.lock.acquire()
        try:
            yield from self.runtime.call("update", "--resources", "-", self.id,
                                         input=jsonio.dumps(resources).encode())
            return {}
        finally:
            self.lock.release()

    def pids(self, p: dict) -> Generator:
        self._init()
        out = yield from self.runtime.call("ps", "--format", "json", self.id, capture=True)
        try:
            pids = jsonio.loads(out) or []
        except ValueError as e:
            raise ShimError("internal", f"runtime ps: {e}") from None
        return [{"pid": pid} for pid in pids]

    def stats(self, p: dict) -> Generator:
        self._init()
        out = yield from self.runtime.call("events", "--stats", self.id, capture=True)
        for line in out.splitlines():
            if line.strip():
                try:
                    event = jsonio.loads(line)
                except ValueError as e:
                    raise ShimError("internal", f"runtime events: {e}") from None
                return event.get("data") if isinstance(event, dict) else None
        raise ShimError("internal", "runtime events printed no stats")

    def exec(self, p: dict) -> dict:
        exec_id = params.new_exec_id(p)
        spec, terminal = params.process_spec(p)
        stdin = params.boolean(p, "stdin")
        init = self._init()
        if init.status == "stopped":
            raise ShimError("failed_precondition", f"container {self.id} is not running")
        if exec_id in self.execs:
            raise ShimError("already_exists", f"exec {exec_id} already exists")
        proc = Process(exec_id, terminal, stdin)
        proc.spec = spec
        if not terminal:
            proc.child_stdio = proc.make_pipes(self.runtime.devnull)
            proc.attach_pipes(self.loop)
        else:
            proc.child_stdio = None
        self.execs[exec_id] = proc
        return {}

    # -- stdio -----------------------------------------------------------------------------

    def resize_pty(self, p: dict) -> dict:
        width = params.integer(p, "width", high=0xFFFF)
        height = params.integer(p, "height", high=0xFFFF)
        self._process(p).resize(width, height)
        return {}

    def close_io(self, p: dict) -> dict:
        proc = self._process(p)
        if proc.stdin is not None:
            proc.stdin.close()
        return {}

    def attach(self, conn: Conn, p: dict) -> dict:
        """Check an attach and note on `conn` which process and streams it gets (the server
        registers it once the reply is on its way: the output may end at once)."""
        proc = self._process(p)
        streams = {s for s in ("stdout", "stderr") if params.boolean(p, s)}
        granted = proc.take_stdin(conn, params.boolean(p, "stdin"),
                                  params.boolean(p, "stdin_once"))
        conn.process, conn.streams = proc, streams
        return {"stdin": granted}
