"""Real containers through a real dockyard-containerd: the busybox image served by
dockyard-registry on loopback and pulled through the transfer service, tasks run by
dockyard-shim and dockyard-runc.

Shims outlive the supervisor by design, so stopping it is not enough: `supervisor` (and
`reap`) kill every shim and container under its state directory, delete them from the runtime,
unmount their rootfs and remove their cgroups (/<namespace>/<id>), also when a test fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from dockyard.containerd.client import Client
from dockyard.distribution.transfer import push
from dockyard.image.imports import bootstrap
from dockyard.image.library import ImageLibrary
from dockyard.shim.cleanup import cleanup_dead
from tests.integration.containerd.daemon import Daemon, unique, workdir
from tests.integration.registry.processes import process
from tests.refdocker import cgroup_dirs, kill_cgroup, remove_cgroups

pytestmark = pytest.mark.root

IMAGE = "library/busybox:latest"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """host:port of a dockyard-registry holding busybox as library/busybox:latest."""
    work = tmp_path_factory.mktemp("supervisor-registry")
    host = f"127.0.0.1:{free_port()}"
    with process(["serve", "--addr", host, "--root", str(work / "registry")],
                 f"http://{host}/v2/"), ImageLibrary(work / "lib") as lib:
        bootstrap(lib)

        async def upload() -> None:
            async with aiohttp.ClientSession() as session:
                await push(lib, "docker.io/library/busybox:latest", f"{host}/{IMAGE}",
                           session=session)
        asyncio.run(upload())
        yield host


def reap(state: Path) -> list[str]:
    """Kill and remove every container and shim of the supervisor whose state is `state`;
    returns the cgroups it could not remove (none, normally)."""
    tasks = state / "tasks"
    bundles = [b for ns in tasks.iterdir() for b in ns.iterdir()] if tasks.is_dir() else []
    for bundle in bundles:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int((bundle / "shim.pid").read_text()), signal.SIGKILL)
    left = []
    for bundle in bundles:
        ns = bundle.parent.name
        with contextlib.suppress(Exception):
            cleanup_dead(bundle, bundle.name, runtime=None, runtime_root=state / "runc" / ns)
        kill_cgroup(f"/{ns}/{bundle.name}")
        remove_cgroups(f"/{ns}/{bundle.name}")
        left += [str(d) for d in cgroup_dirs(f"/{ns}/{bundle.name}")]
    for ns in {b.parent.name for b in bundles}:
        remove_cgroups(f"/{ns}")
    return left


class Supervisor:
    """A dockyard-containerd process and clients of it in test namespaces."""

    def __init__(self, daemon: Daemon, registry: str) -> None:
        self.daemon, self.registry = daemon, registry
        self.image_ref = f"{registry}/{IMAGE}"
        self.namespaces: set[str] = set()

    @property
    def state(self) -> Path:
        return self.daemon.state

    def client(self, namespace: str | None = None, timeout: float | None = 60) -> Client:
        ns = namespace or unique("ns")
        self.namespaces.add(ns)
        return Client(str(self.daemon.address), ns, timeout=timeout)

    def pulled(self, namespace: str | None = None) -> Client:
        """A client of a namespace that has busybox (pulled through the transfer service)."""
        c = self.client(namespace)
        for _ in c.pull(self.image_ref):
            pass
        return c

    def restart(self) -> None:
        self.daemon.start()


@pytest.fixture
def supervisor(registry: str) -> Iterator[Supervisor]:
    with workdir() as base:
        # short: shim sockets live under the state directory
        daemon = Daemon(base)
        sup = Supervisor(daemon, registry)
        try:
            daemon.start()
            yield sup
        finally:
            if daemon.proc is not None and daemon.proc.poll() is None:
                daemon.stop()
            left = reap(daemon.state)
            for ns in sup.namespaces:
                remove_cgroups(f"/{ns}")
            assert not left, left


def wait_until(predicate, timeout: float = 10, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
