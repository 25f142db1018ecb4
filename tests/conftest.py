"""Shared fixtures: a busybox rootfs built once per session, bundles per test, and a
runtime root per test so that containers of different tests never meet."""

from __future__ import annotations

import contextlib
import os

# grpc (imported by the supervisor's tests) re-creates its threads in a forked child unless
# told not to; tests that fork the test process (seccomp, credentials) need children with
# only the forking thread, as they would have without grpc loaded. Read at grpc's import.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.bootstrap import busybox

IS_ROOT = os.geteuid() == 0
REPO = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if IS_ROOT:
        return
    skip = pytest.mark.skip(reason="needs root: namespaces, mounts and cgroups")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return busybox.make_rootfs(tmp_path_factory.mktemp("busybox") / "rootfs")


@pytest.fixture
def make_bundle(tmp_path: Path, busybox_rootfs: Path):
    """Factory: make_bundle(args, **config overrides) -> bundle path with a fresh rootfs copy."""
    count = 0

    def make(args: list[str] | None = None, **overrides) -> Path:
        nonlocal count
        count += 1
        return busybox.make_bundle(tmp_path / f"bundle{count}", args, rootfs=busybox_rootfs,
                                   **overrides)

    return make


def unique(prefix: str = "dyt") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def runc_binary() -> list[str]:
    """How tests invoke our runtime: the installed launcher if present, else the module."""
    launcher = REPO / ".venv" / "bin" / "dockyard-runc"
    if launcher.exists():
        return [str(launcher)]
    return [sys.executable, "-m", "dockyard.runtime.main"]


class Runc:
    """Drives `dockyard-runc` as a program with its own --root, as containerd would."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.created: list[str] = []

    def cmd(self, *args: str) -> list[str]:
        return [*runc_binary(), "--root", str(self.root), *args]

    def run(self, *args: str, check: bool = True, input: bytes | None = None,
            timeout: float = 30, **kw) -> subprocess.CompletedProcess:
        """Output goes through files, not pipes: a detached container inherits them and
        would keep a pipe open long after the runtime returned."""
        if args and args[0] in ("create", "run"):
            self.created.append(args[-1])
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            kw.setdefault("stdin", subprocess.DEVNULL if input is None else None)
            p = subprocess.run(self.cmd(*args), stdout=out, stderr=err, input=input,
                               timeout=timeout, **kw)
            out.seek(0)
            err.seek(0)
            p.stdout, p.stderr = out.read(), err.read()
        if check and p.returncode != 0:
            raise AssertionError(f"{args} exited {p.returncode}: {p.stderr.decode()}")
        return p

    def cleanup(self) -> None:
        for cid in self.created:
            subprocess.run(self.cmd("delete", "--force", cid), capture_output=True, timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def runc(tmp_path: Path) -> Iterator[Runc]:
    r = Runc(Path("/run") / unique("dockyard-test-root") if IS_ROOT else tmp_path / "root")
    try:
        yield r
    finally:
        r.cleanup()


@pytest.fixture(scope="session", autouse=True)
def _ip_forward_restored() -> Iterator[None]:
    """dockyardd sets net.ipv4.ip_forward as dockerd does (bridge networks route through the
    host); the suite gives the machine back as it found it."""
    path = Path("/proc/sys/net/ipv4/ip_forward")
    try:
        before = path.read_text()
    except OSError:
        yield
        return
    yield
    if os.geteuid() == 0 and path.read_text() != before:
        with contextlib.suppress(OSError):
            path.write_text(before)
