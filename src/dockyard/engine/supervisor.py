"""The engine's side of dockyard-containerd: start our own (as dockerd starts its managed
containerd) unless `--containerd` names a running one, and talk to it over grpc.aio in the
namespace "moby".

    <exec-root>/containerd/containerd.sock      its socket
    <exec-root>/containerd/                     its state (shims, bundles)
    <data-root>/containerd/                     its root (content, snapshots, metadata)
    <exec-root>/containerd/containerd.log       its stderr

The supervisor we start is not our child for long: like dockerd's managed containerd it must
outlive us (live restore), so it runs in its own session and a restarted engine finds it by
its socket.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import grpc

from dockyard.api.services.containers.v1 import containers_pb2_grpc as containers_rpc
from dockyard.api.services.content.v1 import content_pb2_grpc as content_rpc
from dockyard.api.services.diff.v1 import diff_pb2_grpc as diff_rpc
from dockyard.api.services.events.v1 import events_pb2_grpc as events_rpc
from dockyard.api.services.images.v1 import images_pb2_grpc as images_rpc
from dockyard.api.services.leases.v1 import leases_pb2_grpc as leases_rpc
from dockyard.api.services.snapshots.v1 import snapshots_pb2_grpc as snapshots_rpc
from dockyard.api.services.tasks.v1 import tasks_pb2_grpc as tasks_rpc
from dockyard.api.services.transfer.v1 import transfer_pb2_grpc as transfer_rpc
from dockyard.api.services.version.v1 import version_pb2_grpc as version_rpc
from dockyard.engine.errors import Unavailable
from dockyard.shim.spawn import answers

NAMESPACE = "moby"
START_TIMEOUT = 20.0


class Supervisor:
    """The stubs behind one aio channel; every call carries the namespace."""

    def __init__(self, address: str, namespace: str = NAMESPACE) -> None:
        self.address = address
        target = address if address.startswith("unix:") else f"unix://{address}"
        self.channel = grpc.aio.insecure_channel(target, options=[
            ("grpc.max_receive_message_length", 64 << 20)])
        self.namespace = namespace
        self.metadata = (("containerd-namespace", namespace),)
        self.containers = containers_rpc.ContainersStub(self.channel)
        self.content = content_rpc.ContentStub(self.channel)
        self.diff = diff_rpc.DiffStub(self.channel)
        self.events = events_rpc.EventsStub(self.channel)
        self.images = images_rpc.ImagesStub(self.channel)
        self.leases = leases_rpc.LeasesStub(self.channel)
        self.snapshots = snapshots_rpc.SnapshotsStub(self.channel)
        self.tasks = tasks_rpc.TasksStub(self.channel)
        self.transfer = transfer_rpc.TransferStub(self.channel)
        self.version = version_rpc.VersionStub(self.channel)

    async def call(self, method, request, timeout: float | None = None):
        """A unary call in our namespace."""
        return await method(request, metadata=self.metadata, timeout=timeout)

    def stream(self, method, request, timeout: float | None = None):
        return method(request, metadata=self.metadata, timeout=timeout)

    async def close(self) -> None:
        await self.channel.close()


def managed_paths(data_root: str, exec_root: str) -> tuple[Path, Path, Path]:
    """(socket, state, root) of the supervisor an engine with these roots manages."""
    state = Path(exec_root) / "containerd"
    return state / "containerd.sock", state, Path(data_root) / "containerd"


def ensure_managed(data_root: str, exec_root: str, log_level: str = "info") -> str:
    """The address of our managed supervisor: the one already serving its socket (a previous
    engine's: live restore), else a new one, started detached."""
    sock, state, root = managed_paths(data_root, exec_root)
    if answers(sock):
        return str(sock)
    state.mkdir(parents=True, exist_ok=True, mode=0o711)
    root.mkdir(parents=True, exist_ok=True, mode=0o711)
    exe = Path(sys.executable).parent / "dockyard-containerd"
    argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "dockyard.containerd.main"]
    level = {"debug": "debug", "info": "info", "warn": "warn", "error": "error",
             "fatal": "fatal"}.get(log_level, "info")
    with open(state / "containerd.log", "ab") as log:
        proc = subprocess.Popen([*argv, "--address", str(sock), "--root", str(root),
                                 "--state", str(state), "--log-level", level],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True, close_fds=True)
    deadline = time.monotonic() + START_TIMEOUT
    while not answers(sock):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise Unavailable(f"dockyard-containerd did not start: see {state / 'containerd.log'}")
        time.sleep(0.02)
    (state / "containerd.pid").write_text(str(proc.pid))
    return str(sock)


def stop_managed(exec_root: str, timeout: float = 10.0) -> None:
    """SIGTERM to the supervisor we started (not when live restore keeps it running)."""
    import signal

    pid_file = Path(exec_root) / "containerd" / "containerd.pid"
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        try:  # our child when we started it in this process
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.02)
    else:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    pid_file.unlink(missing_ok=True)


async def wait_ready(sup: Supervisor, timeout: float = START_TIMEOUT) -> None:
    from google.protobuf import empty_pb2

    deadline = time.monotonic() + timeout
    while True:
        try:
            await sup.call(sup.version.Version, empty_pb2.Empty(), timeout=2)
            return
        except grpc.RpcError as e:
            if time.monotonic() > deadline:
                raise Unavailable(f"dockyard-containerd at {sup.address}: {e}") from None
            await asyncio.sleep(0.05)
