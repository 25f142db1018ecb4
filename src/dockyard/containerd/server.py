"""The gRPC server of dockyard-containerd: its services, its socket, its start and stop.

    serve(config)
      Supervisor.open      lock root and state, open meta.db, choose the snapshotter, sweep
                           what unfinished namespace deletions left
      claim the socket     refuse if something answers on it; remove it if stale
      SERVICES             each factory makes its Registration from the supervisor
      start hooks          in order (a task service recovers its shims here)
      listen               unix socket, 0660 (root and the configured gid)
      ... until SIGTERM or SIGINT (or `stop` is set) ...
      stop listening       in-flight calls get a short grace; event streams end first
      stop hooks           in reverse order
      close                the libraries, the metadata, the locks; the socket is removed

To add a service (tasks, transfer): write `services/<name>.py` with
`def service(sup: Supervisor) -> Registration` and add it to SERVICES below.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import stat
import time
from collections.abc import Sequence
from pathlib import Path

import grpc

from dockyard.containerd.config import Config
from dockyard.containerd.errors import ErrorInterceptor, FailedPrecondition, Unavailable
from dockyard.containerd.service import Registration, ServiceFactory
from dockyard.containerd.services import (
    containers,
    content,
    diff,
    events,
    images,
    leases,
    namespaces,
    snapshots,
    tasks,
    transfer,
    version,
)
from dockyard.containerd.supervisor import Supervisor

log = logging.getLogger("dockyard.containerd")

# The services, in the order they start (and, reversed, stop). Explicit: importing a module
# registers nothing.
SERVICES: tuple[ServiceFactory, ...] = (
    version.service,
    namespaces.service,
    content.service,
    snapshots.service,
    images.service,
    containers.service,
    leases.service,
    events.service,
    tasks.service,
    transfer.service,
    diff.service,
)

STOP_GRACE = 2.0  # seconds in-flight calls get when the supervisor stops
MAX_SOCKET_PATH = 107


def socket_path(address: str) -> Path:
    """containerd's --address: a path, or unix://<path>."""
    path = address.removeprefix("unix://")
    if not path.startswith("/"):
        raise FailedPrecondition(f"address {address!r}: want an absolute path to a unix socket")
    if len(path.encode()) > MAX_SOCKET_PATH:
        raise FailedPrecondition(f"address {path}: longer than the {MAX_SOCKET_PATH} bytes a "
                                 "unix socket path may have")
    return Path(path)


def claim_socket(path: Path) -> None:
    """Make `path` free for us: refuse while something answers on it (another supervisor),
    remove it if nothing does (a stale socket from a process that died)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        path.parent.mkdir(mode=0o711, parents=True, exist_ok=True)
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise FailedPrecondition(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    probe.settimeout(2)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    except OSError as e:
        raise Unavailable(f"{path}: cannot tell whether another process serves on it: "
                          f"{e.strerror}") from None
    finally:
        probe.close()
    raise Unavailable(f"{path}: another process is serving on it")


def _listen(server: grpc.aio.Server, path: Path, config: Config) -> None:
    """Bind, then make the socket 0660 with the configured owner (as containerd does). Until
    the chmod the socket has the umask's mode, which lets nobody but its owner connect (a
    connect needs write permission) unless the umask is unusually open. The umask itself is
    left alone: it is the whole process's, worker threads included."""
    server.add_insecure_port(f"unix:{path}")
    if config.uid >= 0 or config.gid >= 0:
        os.chown(path, config.uid, config.gid)
    os.chmod(path, 0o660)


def make_server(config: Config) -> grpc.aio.Server:
    return grpc.aio.server(
        interceptors=[ErrorInterceptor()],
        options=[("grpc.max_receive_message_length", config.max_recv_message_size),
                 ("grpc.max_send_message_length", config.max_send_message_size)])


async def serve(config: Config, *, services: Sequence[ServiceFactory] = SERVICES,
                stop: asyncio.Event | None = None) -> None:
    """Serve until SIGTERM or SIGINT (or until `stop` is set)."""
    began = time.monotonic()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    path = socket_path(config.address)
    sup = await asyncio.to_thread(Supervisor.open, config)
    sup.events.bind(loop)
    started: list[Registration] = []
    server: grpc.aio.Server | None = None
    listening = False
    for sig in (signal.SIGTERM, signal.SIGINT):  # a stop during the start comes after it
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.to_thread(claim_socket, path)
        registrations = [factory(sup) for factory in services]
        server = make_server(config)
        for registration in registrations:
            registration.add(server)
        for registration in registrations:
            if registration.start is not None:
                await registration.start()
            started.append(registration)
        _listen(server, path, config)
        await server.start()
        listening = True
        log.info("serving...", extra={"fields": {"address": str(path)}})
        log.info("dockyard-containerd successfully booted in %.3fs", time.monotonic() - began,
                 extra={"fields": {"snapshotter": sup.snapshotter,
                                   "services": len(registrations)}})
        notify_ready()
        await stop.wait()
        log.info("stop received: shutting down")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        sup.events.close()
        if server is not None:
            await server.stop(STOP_GRACE)
        for registration in reversed(started):
            if registration.stop is not None:
                try:
                    await registration.stop()
                except Exception:
                    log.exception("stopping %s", registration.name)
        await asyncio.to_thread(sup.close)
        if listening:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        log.info("stopped")


def notify_ready() -> None:
    """Tell systemd we are up (Type=notify), as containerd does; nothing without it."""
    target = os.environ.get("NOTIFY_SOCKET")
    if not target:
        return
    address = "\0" + target[1:] if target.startswith("@") else target
    with contextlib.suppress(OSError), \
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        s.sendto(b"READY=1", address)
