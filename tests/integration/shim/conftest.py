"""Shims for real containers (root): each test gets its own state directory, runtime root and
bundles under /run/dyshim-<uuid>, and everything is taken down afterwards, also when the test
failed: every shim is killed, then cleanup_dead (the runtime's delete --force, the rootfs
unmounted) runs for each container it held."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.bootstrap import busybox
from dockyard.runtime.specgen import default_spec
from dockyard.shim.cleanup import cleanup_dead
from dockyard.shim.client import ShimClient
from dockyard.shim.spawn import default_runtime, start_shim
from tests.conftest import unique

RUNTIMES = {"dockyard-runc": None, "runc": ["runc"]}


class Shims:
    def __init__(self, base: Path, rootfs: Path, runtime: list[str] | None = None) -> None:
        self.base, self.rootfs, self.runtime = base, rootfs, runtime
        self.state = base / "state"
        self.runtime_root = base / "runc"
        self.held: list[tuple[Path, str]] = []
        self.clients: list[ShimClient] = []

    def bundle(self, args: list[str], *, copy: bool = True, **overrides) -> tuple[Path, str]:
        cid = unique("dys")
        bundle = self.base / cid
        if copy:
            busybox.make_bundle(bundle, args, rootfs=self.rootfs, **overrides)
        else:  # an empty rootfs directory: the rootfs comes as a mount, at create
            (bundle / "rootfs").mkdir(parents=True)
            spec = default_spec(args, terminal=overrides.pop("terminal", False))
            spec.update(overrides)
            busybox.write_config(bundle, spec)
        return bundle, cid

    def start(self, bundle: Path, cid: str) -> ShimClient:
        self.held.append((bundle, cid))
        address = start_shim("test", cid, bundle, state_dir=self.state, runtime=self.runtime,
                             runtime_root=self.runtime_root)
        client = ShimClient(address, timeout=30)
        self.clients.append(client)
        return client

    def container(self, args: list[str], *, log: dict | None = None, terminal: bool = False,
                  stdin: bool = False, **overrides) -> tuple[ShimClient, Path, str]:
        """A created (not started) container behind its own shim."""
        bundle, cid = self.bundle(args, terminal=terminal, **overrides)
        client = self.start(bundle, cid)
        client.create(terminal=terminal, stdin=stdin, log=log)
        return client, bundle, cid

    def log(self, bundle: Path, **kw) -> dict:
        return {"path": str(bundle / "container.log"), "max_size": 0, "max_file": 1, **kw}

    def cleanup(self) -> None:
        for c in self.clients:
            c.close()
        for bundle, cid in self.held:
            kill_shim(bundle)
            try:
                cleanup_dead(bundle, cid, runtime=self.runtime or default_runtime(),
                             runtime_root=self.runtime_root)
            except Exception as e:  # keep cleaning the others
                print(f"cleanup of {cid}: {e}")
        shutil.rmtree(self.base, ignore_errors=True)


def shim_pid(bundle: Path) -> int:
    return int((bundle / "shim.pid").read_text())


def kill_shim(bundle: Path) -> None:
    try:
        pid = shim_pid(bundle)
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"dockyard-shim" not in f.read():
                return
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError):
        return
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.005)


def alive(pid: int) -> bool:
    """`pid` runs (a zombie is not alive: this VM's init reaps orphans only every so often)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except OSError:
        return False


@pytest.fixture(params=["dockyard-runc"])
def shims(request, busybox_rootfs: Path) -> Iterator[Shims]:
    s = Shims(Path("/run") / unique("dyshim"), busybox_rootfs, RUNTIMES[request.param])
    s.base.mkdir(mode=0o711)
    try:
        yield s
    finally:
        s.cleanup()


# -- reading what the shim sends --------------------------------------------------------------

class Demux:
    """Docker's multiplexed frames from an attach connection: .out = {1: stdout, 2: stderr}."""

    def __init__(self, sock: socket.socket, timeout: float = 20) -> None:
        sock.settimeout(timeout)
        self.sock, self.buf, self.eof = sock, b"", False
        self.out = {1: b"", 2: b""}

    def until(self, cond) -> dict[int, bytes]:
        """Read until cond(out) holds, or to the end of the stream (cond=None)."""
        while not self.eof and not (cond is not None and cond(self.out)):
            chunk = self.sock.recv(65536)
            if not chunk:
                self.eof = True
                assert self.buf == b"", "the stream ended in the middle of a frame"
                break
            self.buf += chunk
            while len(self.buf) >= 8:
                stream, size = self.buf[0], struct.unpack(">I", self.buf[4:8])[0]
                if len(self.buf) < 8 + size:
                    break
                self.out[stream] += self.buf[8:8 + size]
                self.buf = self.buf[8 + size:]
        return self.out


def read_stream(sock: socket.socket, timeout: float = 20) -> dict[int, bytes]:
    """Everything until the shim ends the stream: {1: stdout, 2: stderr}."""
    return Demux(sock, timeout).until(None)


def log_entries(path: Path) -> list[dict]:
    import json

    return [json.loads(line) for line in path.read_text().splitlines()]


def wait_for(cond, timeout: float = 10, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def mounted(path: Path | str) -> bool:
    """Something is mounted on `path` (os.path.ismount misses a bind within one file system)."""
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)
