"""A process the shim supervises (the init, or an exec) and the stdio it is given.

    status:  created ──start──► running ──pause──► paused ──resume──► running
                 └──────────────────┴── exit (reaped) ──────┴──► stopped ──delete──► gone

An exit that is reaped while the process is still being started (a /bin/true can end before
`runtime start` returns) is held until the start is answered, so that every client sees
start before exit, as containerd's shim orders them.

Stdio, made before the runtime is called so that an attach can come before start:
    pipes   stdout and stderr pipes, stdin a pipe or /dev/null; the runtime gets the child
            ends as its own stdio and hands them to the process, the shim closes them then
    tty     a console socket: the runtime sends the pty master over it (SCM_RIGHTS)
"""

from __future__ import annotations

import _socket
import os
import sys

from dockyard.shim.loop import Future, Loop
from dockyard.shim.protocol import ShimError
from dockyard.shim.stdio import Output, Stdin, pipe

STATUSES = ("created", "running", "paused", "stopped")


class Process:
    def __init__(self, exec_id: str, terminal: bool, stdin: bool) -> None:
        self.exec_id = exec_id
        self.terminal, self.stdin_wanted = terminal, stdin
        self.pid = 0
        self.status = "created"
        self.exit_status = 0
        self.exited_at: str | None = None
        self.exited = Future()  # resolves with {"exit_status", "exited_at"}
        self.starting = False
        self.held_exit: int | None = None
        self.spec: dict | None = None  # an exec's OCI process
        self.output: Output | None = None
        self.stdin: Stdin | None = None
        self.console = -1
        self.child_ends: list[int] = []
        self.child_stdio: tuple[int, int, int] | None = None  # an exec's, until it starts
        self._pipes: dict[int, str] = {}  # the shim's ends, until Output takes them
        self._stdin_fd = -1
        self.waiting_readers: list[tuple[object, set[str]]] = []
        self.stdin_writer: object | None = None
        self.stdin_once = False

    def state(self, cid: str) -> dict:
        return {"id": cid, "exec_id": self.exec_id, "pid": self.pid, "status": self.status,
                "exit_status": self.exit_status, "exited_at": self.exited_at,
                "terminal": self.terminal, "stdin": self.stdin_wanted}

    def exit_json(self) -> dict:
        return {"exit_status": self.exit_status, "exited_at": self.exited_at}

    @property
    def alive(self) -> bool:
        return self.status in ("created", "running", "paused") and self.pid > 0

    # -- stdio -----------------------------------------------------------------------------

    def make_pipes(self, devnull: int) -> tuple[int, int, int]:
        """Pipes for a process without a terminal; returns the child's (stdin, stdout,
        stderr). The shim's ends: stdin's write end, stdout's and stderr's read ends."""
        out_r, out_w = pipe()
        err_r, err_w = pipe()
        self.child_ends += [out_w, err_w]
        self._pipes = {out_r: "stdout", err_r: "stderr"}
        child_in = devnull
        if self.stdin_wanted:
            in_r, in_w = pipe()
            self.child_ends.append(in_r)
            self._stdin_fd = in_w
            child_in = in_r
        return child_in, out_w, err_w

    def attach_pipes(self, loop: Loop, log=None, on_log_error=None) -> None:
        self.output = Output(loop, self._pipes, log, on_log_error)
        if self.stdin_wanted:
            self.stdin = Stdin(loop, self._stdin_fd)
        self._readers_in()

    def attach_console(self, loop: Loop, master: int, log=None, on_log_error=None) -> None:
        self.console = master
        self.output = Output(loop, {os.dup(master): "stdout"}, log, on_log_error)
        if self.stdin_wanted:
            self.stdin = Stdin(loop, os.dup(master), tty=True)
        self._readers_in()

    def _readers_in(self) -> None:
        waiting, self.waiting_readers = self.waiting_readers, []
        for reader, streams in waiting:
            self.output.add_reader(reader, streams)

    def close_child_ends(self) -> None:
        for fd in self.child_ends:
            os.close(fd)
        self.child_ends = []

    def close_stdio(self) -> None:
        """Everything the shim holds of the process's stdio (at delete, or a failed start)."""
        self.close_child_ends()
        if self.output is None:
            for fd in self._pipes:
                os.close(fd)
            if self._stdin_fd >= 0:
                os.close(self._stdin_fd)
        self._pipes, self._stdin_fd = {}, -1
        if self.output is not None:
            self.output.close()
        if self.stdin is not None:
            self.stdin._close_now()
        if self.console >= 0:
            os.close(self.console)
            self.console = -1
        for reader, _streams in self.waiting_readers:
            reader.output_ended()
        self.waiting_readers = []

    def add_reader(self, reader: object, streams: set[str]) -> None:
        if self.output is not None:
            self.output.add_reader(reader, streams)
        elif self.status == "stopped":
            reader.output_ended()
        else:
            self.waiting_readers.append((reader, streams))

    def remove_reader(self, reader: object) -> None:
        if self.output is not None:
            self.output.remove_reader(reader)
        self.waiting_readers = [(r, s) for r, s in self.waiting_readers if r is not reader]

    # -- attach ----------------------------------------------------------------------------

    def take_stdin(self, conn: object, wanted: bool, once: bool) -> bool:
        """Make `conn` the stdin writer if it asks and stdin is open; one at a time."""
        if not wanted or not self.stdin_wanted or self.status == "stopped" \
                or (self.stdin is not None and self.stdin.closed):
            return False
        if self.stdin_writer is not None:
            raise ShimError("failed_precondition",
                            "another client is attached to the process's stdin")
        self.stdin_writer, self.stdin_once = conn, once
        return True

    def stdin_for(self, conn: object) -> Stdin | None:
        return self.stdin if self.stdin_writer is conn else None

    def release_stdin(self, conn: object) -> None:
        """The writer half-closed (or went away): stdin is free; with stdin_once, closed."""
        if self.stdin_writer is not conn:
            return
        self.stdin_writer = None
        if self.stdin_once and self.stdin is not None:
            self.stdin.close()

    def detach(self, conn: object) -> None:
        self.remove_reader(conn)
        self.release_stdin(conn)

    def resize(self, width: int, height: int) -> None:
        if self.console < 0:
            raise ShimError("failed_precondition",
                            f"process {self.exec_id or 'init'} has no terminal")
        import fcntl
        import termios

        winsize = height.to_bytes(2, "little") + width.to_bytes(2, "little") + bytes(4)
        fcntl.ioctl(self.console, termios.TIOCSWINSZ, winsize)


class ConsoleSocket:
    """Where the runtime sends a pty master (runc's --console-socket)."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
        self.sock.bind(path)
        self.sock.listen(1)

    def receive(self) -> int:
        """The master the runtime sent (it has exited by now: the connection is queued)."""
        self.sock.setblocking(False)
        try:
            fd, _ = self.sock._accept()
        except BlockingIOError:
            raise ShimError("internal", "the runtime sent no console") from None
        conn = _socket.socket(fileno=fd)
        try:
            conn.settimeout(5)
            _msg, ancdata, _flags, _addr = conn.recvmsg(4096, _socket.CMSG_SPACE(16))
        finally:
            conn.close()
        fds = []
        for level, kind, data in ancdata:
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                fds += [int.from_bytes(data[i:i + 4], sys.byteorder)
                        for i in range(0, len(data) - len(data) % 4, 4)]
        if not fds:
            raise ShimError("internal", "the runtime sent no console")
        for extra in fds[1:]:
            os.close(extra)
        os.set_inheritable(fds[0], False)
        return fds[0]

    def close(self) -> None:
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass
