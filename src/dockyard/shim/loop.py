"""The shim's event loop: one thread, one epoll, and generators for anything that waits.

Everything the shim does is a reaction to a descriptor becoming ready or a child exiting:

    epoll ─┬─ listening socket, client connections ─► server.py
           ├─ the process's stdout/stderr/pty, stdin ─► stdio.py
           ├─ an OOM eventfd                         ─► oom.py
           └─ the SIGCHLD wakeup pipe ─► reap(): waitpid(-1, WNOHANG) until nothing is left;
                each exit resolves the Future of its pid, or waits in `orphans` until
                someone asks for that pid (an exec that ends before its pid file is read)

Modules are the C ones where the Python wrapper costs memory: `select.epoll` rather than
selectors, `_signal` rather than signal (whose enums cost more than the rest of the loop).

The shim is the subreaper of its container, so it must reap every child itself: the runtime's
processes included, which is why it starts them with posix_spawn and waits on their Futures
instead of subprocess (whose wait would race the reaper for the exit status).

A request that waits (for the runtime, for an exit) is a generator that yields Futures;
`run` resumes it with each result. No asyncio: its import and its loop cost more memory
than the whole shim should use.
"""

from __future__ import annotations

import _signal
import heapq
import os
import select
import time

TYPE_CHECKING = False  # not from typing: the shim imports nothing it can do without
if TYPE_CHECKING:
    from collections.abc import Callable, Generator

GeneratorType = type((lambda: (yield))())
MAX_ORPHANS = 4096
SPAWN_SIGDEF = (_signal.SIGPIPE, _signal.SIGHUP, _signal.SIGXFSZ)
READ, WRITE = select.EPOLLIN, select.EPOLLOUT
ERRORS = select.EPOLLERR | select.EPOLLHUP


class Future:
    """A value that will come: resolved once, with a result or an exception."""

    __slots__ = ("_callbacks", "done", "error", "value")

    def __init__(self) -> None:
        self.done = False
        self.value: object = None
        self.error: BaseException | None = None
        self._callbacks: list[Callable[[Future], None]] = []

    def set_result(self, value: object = None) -> None:
        self._finish(value, None)

    def set_error(self, error: BaseException) -> None:
        self._finish(None, error)

    def _finish(self, value: object, error: BaseException | None) -> None:
        if self.done:
            return
        self.done, self.value, self.error = True, value, error
        callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            try:  # one waiter's bug must not keep the others from hearing
                cb(self)
            except Exception as e:
                report(e)

    def add_done(self, cb: Callable[[Future], None]) -> None:
        if self.done:
            cb(self)
        else:
            self._callbacks.append(cb)


def report(e: BaseException) -> None:
    """A bug that reached the loop: its traceback goes to the shim's stderr (shim.log)."""
    import traceback

    traceback.print_exception(e)


def resolved(value: object = None) -> Future:
    f = Future()
    f.set_result(value)
    return f


def first(*futures: Future) -> Future:
    """Resolves as the first of `futures` does."""
    out = Future()
    for f in futures:
        f.add_done(lambda f: out._finish(f.value, f.error))
    return out


class Lock:
    """First come, first served: `yield lock.acquire()`, then release() when done."""

    def __init__(self) -> None:
        self.held = False
        self._waiters: list[Future] = []

    def acquire(self) -> Future:
        if not self.held:
            self.held = True
            return resolved()
        f = Future()
        self._waiters.append(f)
        return f

    def release(self) -> None:
        if self._waiters:
            self._waiters.pop(0).set_result()
        else:
            self.held = False


def run(gen: Generator, on_done: Callable[[object, BaseException | None], None]) -> None:
    """Drive `gen`: each Future it yields resumes it when resolved (with the value, or the
    exception thrown in); `on_done(result, error)` gets how it ended."""

    def step(fut: Future | None) -> None:
        while True:
            try:
                if fut is None:
                    y = next(gen)
                elif fut.error is not None:
                    y = gen.throw(fut.error)
                else:
                    y = gen.send(fut.value)
            except StopIteration as e:
                on_done(e.value, None)
                return
            except Exception as e:
                on_done(None, e)
                return
            if y.done:
                fut = y
                continue
            y.add_done(step)
            return

    step(None)


def exit_code(status: int) -> int:
    """A wait status as Docker reports it: the exit code, or 128 + the signal's number."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return 255


class Loop:
    def __init__(self) -> None:
        self.epoll = select.epoll()
        self._fds: dict[int, list] = {}  # fd -> [reader, writer, registered mask]
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0
        self._exits: dict[int, Future] = {}
        self.orphans: dict[int, int] = {}  # pid -> exit code nobody asked for yet
        self.stopping = False
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        _signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        _signal.signal(_signal.SIGCHLD, lambda *_: None)
        self.watch_reader(self._wake_r, self._on_wakeup)

    # -- descriptors -----------------------------------------------------------------------

    def _update(self, fd: int) -> None:
        entry = self._fds[fd]
        reader, writer, registered = entry
        mask = (READ if reader else 0) | (WRITE if writer else 0)
        if mask == registered:
            if not mask:
                del self._fds[fd]
            return
        if mask == 0:
            del self._fds[fd]
            try:
                self.epoll.unregister(fd)
            except OSError:
                pass
        elif registered == 0:
            self.epoll.register(fd, mask)
        else:
            self.epoll.modify(fd, mask)
        entry[2] = mask

    def watch_reader(self, fd: int, cb: Callable[[], None]) -> None:
        self._fds.setdefault(fd, [None, None, 0])[0] = cb
        self._update(fd)

    def watch_writer(self, fd: int, cb: Callable[[], None]) -> None:
        self._fds.setdefault(fd, [None, None, 0])[1] = cb
        self._update(fd)

    def unwatch_reader(self, fd: int) -> None:
        if fd in self._fds:
            self._fds[fd][0] = None
            self._update(fd)

    def unwatch_writer(self, fd: int) -> None:
        if fd in self._fds:
            self._fds[fd][1] = None
            self._update(fd)

    def forget(self, fd: int) -> None:
        """Stop watching `fd` at all (before it is closed)."""
        if fd in self._fds:
            self._fds[fd][0] = self._fds[fd][1] = None
            self._update(fd)

    # -- time ------------------------------------------------------------------------------

    def call_later(self, delay: float, cb: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (time.monotonic() + delay, self._seq, cb))

    def sleep(self, delay: float) -> Future:
        f = Future()
        self.call_later(delay, f.set_result)
        return f

    # -- children --------------------------------------------------------------------------

    def child_exit(self, pid: int) -> Future:
        """Resolves with the exit code of child `pid` (also if it was reaped already)."""
        fut = self._exits.get(pid)
        if fut is None:
            fut = self._exits[pid] = Future()
            if pid in self.orphans:
                self._exits.pop(pid)
                fut.set_result(self.orphans.pop(pid))
        return fut

    def spawn(self, argv: list[str], stdio: tuple[int, int, int],
              env: dict[str, str] | None = None) -> int:
        """Start `argv` with stdin, stdout and stderr from `stdio` (descriptors above 2; every
        other descriptor of ours is close-on-exec), its signals back to their defaults."""
        actions = [(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(stdio)]
        return os.posix_spawn(argv[0], argv, os.environ if env is None else env,
                              file_actions=actions, setsigdef=SPAWN_SIGDEF)

    def fork_main(self, main: Callable[[list[str]], int | None], argv: list[str],
                  stdio: tuple[int, int, int]) -> int:
        """As spawn, but the program is a Python `main(argv)` run in a forked child: no exec,
        no interpreter start, the modules we have imported already there. The child gets
        the signal dispositions and stdio an exec'd program would, and exits with main's
        status (1 if it raised)."""
        pid = os.fork()
        if pid:
            return pid
        code = 1
        try:
            _signal.set_wakeup_fd(-1)
            for sig in (_signal.SIGCHLD, *SPAWN_SIGDEF):
                _signal.signal(sig, _signal.SIG_DFL)
            for target, fd in enumerate(stdio):
                os.dup2(fd, target)
            code = main(argv) or 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:
            try:
                import traceback

                traceback.print_exc()
            except BaseException:
                pass
        try:
            import sys

            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            pass
        os._exit(code)

    def _on_wakeup(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        self.reap()

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = exit_code(status)
            fut = self._exits.pop(pid, None)
            if fut is not None:
                fut.set_result(code)
            else:
                self.orphans[pid] = code
                if len(self.orphans) > MAX_ORPHANS:
                    del self.orphans[next(iter(self.orphans))]

    # -- running ---------------------------------------------------------------------------

    def run_forever(self) -> None:
        while not self.stopping:
            timeout = -1.0
            if self._timers:
                timeout = max(0.0, self._timers[0][0] - time.monotonic())
            for fd, mask in self.epoll.poll(timeout):
                entry = self._fds.get(fd)
                if entry is not None and mask & (READ | ERRORS) and entry[0] is not None:
                    self._call(entry[0])
                entry = self._fds.get(fd)
                if entry is not None and mask & (WRITE | ERRORS) and entry[1] is not None:
                    self._call(entry[1])
            if self._timers:
                now = time.monotonic()
                while self._timers and self._timers[0][0] <= now:
                    _when, _seq, cb = heapq.heappop(self._timers)
                    self._call(cb)

    def close(self) -> None:
        """Give back the signal wakeup and the SIGCHLD handler (tests run loops in-process)."""
        _signal.set_wakeup_fd(-1)
        _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        self.epoll.close()

    def _call(self, cb: Callable[[], None]) -> None:
        """One callback; a bug in one must not take the shim (and its container) down."""
        try:
            cb()
        except Exception as e:
            report(e)
