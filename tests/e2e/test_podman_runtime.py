"""A real program that drives runc drives dockyard-runc instead: Debian's podman with
--runtime, through conmon. Run, exec, stop and remove containers, with a terminal and
without.

This machine lacks CAP_SYS_RESOURCE, and podman asks for RLIMIT_NOFILE/NPROC of 1048576 by
default, which no runtime can set here; the tests pass explicit --ulimit values instead.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import runc_binary

pytestmark = [pytest.mark.root, pytest.mark.interop,
              pytest.mark.skipif(shutil.which("podman") is None, reason="podman not installed")]

ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]


class Podman:
    def __init__(self, base) -> None:
        self.base = base
        self.runroot = f"/run/dyt-pm-{uuid.uuid4().hex[:8]}"  # podman: 50 characters at most
        self.image = f"localhost/dyt-busybox-{uuid.uuid4().hex[:6]}:latest"

    def __call__(self, *args: str, check: bool = True, timeout: float = 60):
        cmd = ["podman", "--root", str(self.base / "storage"), "--runroot",
               self.runroot, "--cgroup-manager", "cgroupfs", "--events-backend",
               "file", "--storage-driver", "overlay", "--runtime", runc_binary()[0],
               *args]
        p = subprocess.run(cmd, capture_output=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"podman {args} -> {p.returncode}: {p.stderr.decode()}")
        return p


CGROUP_V1 = Path("/sys/fs/cgroup")
# podman 4.3 passes --runtime-flag to create and start but not to delete, so the runtime
# runs with its default --root; conmon's cgroups go under libpod_parent; podman keeps its
# network state in /run/containers.
SHARED = [Path("/run/dockyard-runc"), Path("/run/containers/networks"), Path("/run/containers"),
          *(d / "libpod_parent" / "conmon" for d in CGROUP_V1.iterdir() if d.is_dir()),
          *(d / "libpod_parent" for d in CGROUP_V1.iterdir() if d.is_dir())]


@pytest.fixture
def podman(tmp_path, busybox_rootfs):
    if len(runc_binary()) != 1:
        pytest.skip("needs the installed dockyard-runc launcher (scripts/install.sh)")
    existed = {p for p in SHARED if p.exists()}
    pm = Podman(tmp_path)
    tar = tmp_path / "rootfs.tar"
    with tarfile.open(tar, "w") as t:
        t.add(busybox_rootfs, arcname=".")
    try:
        pm("import", str(tar), pm.image)
        yield pm
    finally:
        pm("rm", "-af", "-t", "0", check=False)
        pm("rmi", "-af", check=False)
        pm("system", "reset", "-f", check=False)
        subprocess.run(["sh", "-c", f"grep -o ' {tmp_path}[^ ]*' /proc/self/mountinfo | "
                                    "sort -r | xargs -r -n1 umount -l"], check=False)
        shutil.rmtree(pm.runroot, ignore_errors=True)
        # Only what this test made, once empty: conmon's cleanup may still be running.
        deadline = time.monotonic() + 5
        for p in SHARED:
            while p not in existed and p.exists() and time.monotonic() < deadline:
                with contextlib.suppress(OSError):
                    p.rmdir()
                    break
                time.sleep(0.05)


def test_podman_run_with_dockyard_runc(podman):
    p = podman("run", "--rm", "--network", "none", *ULIMITS, podman.image,
               "sh", "-c", "echo hello from dockyard-runc; hostname; id -u")
    lines = p.stdout.decode().splitlines()
    assert lines[0] == "hello from dockyard-runc"
    assert lines[2] == "0"


def test_podman_exit_code(podman):
    p = podman("run", "--rm", "--network", "none", *ULIMITS, podman.image,
               "sh", "-c", "exit 42", check=False)
    assert p.returncode == 42


def test_podman_detached_exec_stop_rm(podman):
    name = f"dyt-{uuid.uuid4().hex[:6]}"
    podman("run", "-d", "--name", name, "--network", "none", *ULIMITS, podman.image,
           "sleep", "300")
    p = podman("exec", name, "sh", "-c", "echo in-exec; cat /proc/1/cmdline")
    assert p.stdout.decode().startswith("in-exec\nsleep")
    p = podman("exec", "-t", name, "tty")
    assert p.stdout.decode().strip().startswith("/dev/pts/")
    podman("stop", "-t", "1", name)
    p = podman("inspect", "--format", "{{.State.Status}}", name)
    assert p.stdout.decode().strip() == "exited"
    podman("rm", name)


def test_podman_run_with_terminal(podman):
    p = podman("run", "--rm", "-t", "--network", "none", *ULIMITS, podman.image, "tty")
    assert p.stdout.decode().strip() == "/dev/pts/0"
