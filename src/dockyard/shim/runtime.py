"""The OCI runtime as the shim calls it: runc's command line, nothing more, so that
dockyard-runc and runc (or crun) serve alike.

    RUNTIME --root R --log <bundle>/log.json --log-format json <command> … <id>

Each call is a child of the shim, started with posix_spawn and reaped by the loop like every
other child; its output goes to a memfd (nothing to drain while it runs, nothing to block on).
When it fails, the error is the last "error" entry it appended to log.json, else the last
line of its stderr, worded as containerd words it: "OCI runtime create failed: <message>".
"""

from __future__ import annotations

import os

from dockyard.runtime import jsonio
from dockyard.shim.loop import Loop
from dockyard.shim.protocol import ShimError

TYPE_CHECKING = False  # not from typing, nor collections.abc at run time: memory
if TYPE_CHECKING:
    from collections.abc import Generator

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def resolve(argv: list[str]) -> list[str]:
    """`argv` with its program as an absolute path (posix_spawn does not search PATH)."""
    prog = argv[0]
    if "/" in prog:
        return [os.path.abspath(prog), *argv[1:]]
    for d in os.environ.get("PATH", DEFAULT_PATH).split(":"):
        cand = os.path.join(d or ".", prog)
        if os.access(cand, os.X_OK) and not os.path.isdir(cand):
            return [cand, *argv[1:]]
    raise ShimError("failed_precondition", f"runtime {prog!r}: executable file not found in $PATH")


def error_code(message: str) -> str:
    """The protocol code for a runtime's error message (runc's and ours say the same)."""
    low = message.lower()
    if "does not exist" in low:
        return "not_found"
    if "not running" in low or "not paused" in low or "not stopped" in low \
            or "is paused" in low or "already" in low:
        return "failed_precondition"
    return "internal"


class Runtime:
    def __init__(self, loop: Loop, argv: list[str], root: str, bundle: str, cid: str) -> None:
        self.loop, self.argv, self.root, self.bundle, self.id = loop, argv, root, bundle, cid
        self.log = os.path.join(bundle, "log.json")
        self.devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        if not os.environ.get("PATH"):
            os.environ["PATH"] = DEFAULT_PATH

    @property
    def native(self) -> bool:
        """The runtime is dockyard-runc, whose start and delete this process can do itself."""
        return os.path.basename(self.argv[0]) == "dockyard-runc" \
            or "dockyard.runtime.main" in self.argv

    def prespawn(self) -> None:
        """dockyard-runc's stage-1 for the coming create, started now: its interpreter start
        (~10 ms) then overlaps the rest of the shim's start, the supervisor's request and
        the CLI's own work. The CLI, run in a fork of ours, takes it over."""
        if self.native:
            from dockyard.runtime import process

            process.prespawn(0)

    def here(self, verb: str) -> bool:
        """Do `start` or `delete --force` of the init in this process, as dockyard-runc's
        CLI would (its own functions), sparing an interpreter start (~12 ms each). Only
        where nothing else would run: no hook of that step (hooks are processes, whose exit
        our reaper must not take), and a delete only of a stopped container (a running one
        is killed and waited for, which the CLI may take its time over). False: not done
        here, call the CLI."""
        if not self.native:
            return False
        from dockyard.runtime import container, errors, state

        try:
            st = state.load(self.root, self.id)
            hook = "poststart" if verb == "start" else "poststop"
            if (st.config.get("hooks") or {}).get(hook):
                return False
            if verb == "start":
                container.start(st)
            elif st.status() == "stopped":
                container.delete(self.root, self.id, force=True)
            else:
                return False
        except errors.RuntimeError_ as e:
            raise ShimError(error_code(str(e)), f"OCI runtime {verb} failed: {e}") from None
        return True

    def command(self, *args: str) -> list[str]:
        return [*self.argv, "--root", self.root, "--log", self.log, "--log-format", "json",
                *args]

    def call(self, verb: str, *args: str, stdio: tuple[int, int, int] | None = None,
             input: bytes | None = None, capture: bool = False) -> Generator:
        """Run `RUNTIME … verb args…`; returns its stdout if `capture`. ShimError, in the
        runtime's words, if it fails. `stdio` replaces /dev/null (create, exec: the
        process inherits the runtime's stdio)."""
        opened = []
        try:
            err = _memfd("stderr")
            opened.append(err)
            stdin = stdout = self.devnull
            if input is not None:
                stdin = _memfd("stdin")
                opened.append(stdin)
                os.write(stdin, input)
                os.lseek(stdin, 0, os.SEEK_SET)
            if capture:
                stdout = _memfd("stdout")
                opened.append(stdout)
            start = _size(self.log)
            try:
                command = self.command(verb, *args)
                if self.native:  # dockyard-runc's own main, in a fork: no interpreter start
                    pid = self.loop.fork_main(_runtime_main, command[len(self.argv):],
                                              stdio or (stdin, stdout, err))
                    _hand_over_stage1()
                else:
                    pid = self.loop.spawn(command, stdio or (stdin, stdout, err))
            except OSError as e:
                raise ShimError("failed_precondition", f"OCI runtime {verb} failed: "
                                f"{self.argv[0]}: {e.strerror}") from None
            code = yield self.loop.child_exit(pid)
            if code != 0:
                message = self.error(start) or _last_line(_read_all(err)) \
                    or f"{self.argv[0]} {verb} exited with status {code}"
                raise ShimError(error_code(message), f"OCI runtime {verb} failed: {message}")
            return _read_all(stdout) if capture else b""
        finally:
            for fd in opened:
                os.close(fd)

    def error(self, start: int) -> str:
        """The last error the runtime logged past offset `start` of log.json."""
        try:
            with open(self.log, "rb") as f:
                f.seek(start)
                text = f.read(1 << 20)
        except OSError:
            return ""
        message = ""
        for line in text.splitlines():
            try:
                entry = jsonio.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("level") in ("error", "fatal"):
                message = str(entry.get("msg", ""))
        return message


def _hand_over_stage1() -> None:
    import sys

    process = sys.modules.get("dockyard.runtime.process")
    if process is not None:
        process.hand_over_prespawned()


def _runtime_main(argv: list[str]) -> int | None:
    from dockyard.runtime.main import main

    return main(argv)


def _memfd(name: str) -> int:
    return os.memfd_create(name, os.MFD_CLOEXEC)


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def _last_line(data: bytes) -> str:
    lines = [ln for ln in data.decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1].strip() if lines else ""
