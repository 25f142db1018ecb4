"""`dockyard-containerd` run as a real process for tests, each on its own socket, root and
state under a short unique directory (a unix socket path must fit in 107 bytes), always
stopped and removed.

    with running_daemon() as d:
        d.stub(ContainersStub).Get(request, metadata=d.ns("moby"))
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf import empty_pb2

from dockyard.api.services.events.v1 import events_pb2, events_pb2_grpc
from dockyard.api.services.version.v1 import version_pb2_grpc

COMMAND = [sys.executable, "-m", "dockyard.containerd.main"]
S = TypeVar("S")


class Daemon:
    def __init__(self, base: Path, *, address: Path | None = None, root: Path | None = None,
                 state: Path | None = None, extra: list[str] | None = None) -> None:
        self.base = base
        self.address = address or base / "c.sock"
        self.root = root or base / "root"
        self.state = state or base / "state"
        self.extra = extra or []
        self.log = base / f"daemon-{os.urandom(3).hex()}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._channel: grpc.Channel | None = None

    def command(self) -> list[str]:
        return [*COMMAND, "--address", str(self.address), "--root", str(self.root),
                "--state", str(self.state), "--log-level", "debug", *self.extra]

    def start(self, timeout: float = 20) -> None:
        """Start it and wait until it answers. The socket is polled with plain connects: a
        gRPC channel whose first connects fail backs off for a second or more."""
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while not _accepts(self.address):
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockyard-containerd exited {self.proc.returncode}:\n"
                                   f"{self.logs()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"dockyard-containerd did not listen:\n{self.logs()}")
            time.sleep(0.01)
        with grpc.insecure_channel(f"unix:{self.address}") as channel:
            version_pb2_grpc.VersionStub(channel).Version(empty_pb2.Empty(), timeout=timeout)

    def logs(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    @property
    def channel(self) -> grpc.Channel:
        if self._channel is None:
            self._channel = grpc.insecure_channel(f"unix:{self.address}")
        return self._channel

    def stub(self, kind: Callable[[grpc.Channel], S]) -> S:
        return kind(self.channel)

    def close_channel(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        """Signal it and wait; SIGKILL if it does not go. Returns its exit status."""
        self.close_channel()
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"dockyard-containerd ignored signal {sig}:\n"
                                 f"{self.logs()}") from None

    def kill9(self) -> None:
        self.close_channel()
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)


def _die_with_parent() -> None:
    """In the child: SIGKILL when the test process dies, so that a pytest killed by a
    timeout leaves no supervisor behind (its fixtures' cleanup never runs then)."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _accepts(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def ns(name: str) -> list[tuple[str, str]]:
    """The metadata of a call in namespace `name`."""
    return [("containerd-namespace", name)]


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{os.urandom(5).hex()}"


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="dyc-", dir="/tmp"))
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def running_daemon(**kwargs: Any) -> Iterator[Daemon]:
    with workdir() as base:
        d = Daemon(base, **kwargs)
        try:
            d.start()
            yield d
        finally:
            if d.proc is not None and d.proc.poll() is None:
                d.stop()


class Subscriber:
    """Events of a Subscribe call, collected by a thread; `get()` the next one."""

    def __init__(self, d: Daemon, *filters: str) -> None:
        self.call = d.stub(events_pb2_grpc.EventsStub).Subscribe(
            events_pb2.SubscribeRequest(filters=list(filters)))
        self.call.initial_metadata()  # the service sends it once the subscription is live
        self.events: queue.Queue[Any] = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for env in self.call:
                self.events.put(env)
        except grpc.RpcError as e:
            self.events.put(e)

    def get(self, timeout: float = 5) -> Any:
        item = self.events.get(timeout=timeout)
        if isinstance(item, grpc.RpcError) and item.code() != grpc.StatusCode.CANCELLED:
            raise item
        return item

    def nothing_more(self, wait: float = 0.3) -> bool:
        try:
            self.events.get(timeout=wait)
        except queue.Empty:
            return True
        return False

    def close(self) -> None:
        self.call.cancel()
        self.thread.join(5)
