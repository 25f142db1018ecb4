"""Debian's containerd 1.6 (with containerd-shim-runc-v2 and runc) as a reference for the
supervisor: started isolated, driven with its own `ctr`, and taken down without a trace.

    from tests.refcontainerd import ref_containerd, unavailable

    with ref_containerd(tmp) as ref:        # tmp: any existing directory
        ref.ctr("images", "import", str(archive))
        ref.ctr("run", "--rm", "docker.io/library/busybox:latest", "c1", "/bin/true")

What an instance owns, all unique and all removed on leaving, also on failure:
- `<tmp>/refcontainerd-<hex>/`: root, config and log;
- `/run/dyrefc-<hex>/`: state and the socket (short, for the 108-byte socket limit);
- the namespace `dyrefc-<hex>`, so the cgroups `ctr run` makes (`/<namespace>/<id>` in
  every hierarchy) are ours alone;
- the shims' sockets in /run/containerd/s (hard-coded in containerd 1.6; named by the
  sha256 of the socket address, namespace and container id) and that directory when empty
  and no other containerd runs.

No registry: `ctr` only ever imports archives here; containerd gets a dead proxy all the
same, as tests/refdocker.py gives dockerd.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from tests.refdocker import (
    CONTAINERD,
    SHIM_SOCKETS,
    RefDockerError,
    alive,
    cgroup_dirs,
    cgroup_pids,
    connects,
    containerd_config,
    daemon_running,
    detach,
    kill_cgroup,
    mounts_under,
    processes_naming,
    remove_cgroups,
    remove_shared_dirs,
    terminate,
)

CTR = "/usr/bin/ctr"
SHIM = "/usr/bin/containerd-shim-runc-v2"


def unavailable() -> str | None:
    """Why the reference cannot run here (None when it can)."""
    if os.geteuid() != 0:
        return "the reference containerd needs root"
    for path in (CONTAINERD, CTR, SHIM):
        if not os.access(path, os.X_OK):
            return f"{path} is not installed (Debian package containerd)"
    if not shutil.which("runc"):
        return "runc is not installed"
    return None


class RefContainerd:
    """One running containerd: `ctr(...)` drives it in its own namespace."""

    def __init__(self, base: Path, state: Path) -> None:
        self.base, self.state = base, state
        self.root = base / "root"
        self.socket = state / "containerd.sock"
        self.config = base / "containerd.toml"
        self.log_path = base / "containerd.log"
        self.namespace = state.name
        self.proc: subprocess.Popen | None = None
        self.ids: set[str] = set()

    def ctr(self, *args: str, check: bool = True, timeout: float = 120
            ) -> subprocess.CompletedProcess:
        """`ctr` against this instance; a `run` records its container id for the cleanup."""
        if args and args[0] == "run":
            positional = [a for a in args[1:] if not a.startswith("-")]
            if len(positional) >= 2:
                self.ids.add(positional[1])
        done = subprocess.run(self.command(*args), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        if check and done.returncode != 0:
            raise RefDockerError(f"ctr {' '.join(args)} exited {done.returncode}: "
                                 f"{done.stderr.strip()}")
        return done

    def command(self, *args: str) -> list[str]:
        """The argv of a `ctr` call, for benchmarks that time it themselves. A `run` keeps
        its FIFOs and runc's state in the instance's state directory (by default both go
        to hard-coded places under /run/containerd)."""
        if args and args[0] == "run":
            args = ("run", "--fifo-dir", str(self.state / "fifo"),
                    "--runc-root", str(self.state / "runc"), *args[1:])
        return [CTR, "--address", str(self.socket), "--namespace", self.namespace, *args]

    def shim_pids(self) -> list[int]:
        return [pid for pid, cmd in processes_naming([self.socket])
                if "containerd-shim" in cmd]

    def start(self, timeout: float = 30) -> None:
        for d in (self.root, self.state):
            d.mkdir(parents=True, exist_ok=True)
        self.config.write_text(containerd_config(self.root, self.state, self.socket))
        dead = "http://127.0.0.1:9"
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(self.base),
               "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "NO_PROXY": "localhost,127.0.0.0/8"}
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen([CONTAINERD, "--config", str(self.config)],
                                         stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True, cwd=self.base)
        deadline = time.monotonic() + timeout
        while not connects(self.socket):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = self.log_path.read_text(errors="replace")[-4000:]
                raise RefDockerError(f"containerd did not start:\n{log}")
            time.sleep(0.05)

    def stop(self) -> list[str]:
        """Takes everything down; returns what could not be cleaned."""
        cgroup = f"/{self.namespace}"
        kill_cgroup(cgroup)
        if self.proc is not None:
            terminate(self.proc, 10)
        for pid in self.shim_pids():
            with contextlib.suppress(OSError):
                os.kill(pid, 9)
        for cid in self.ids:
            key = f"{self.socket}/{self.namespace}/{cid}".encode()
            with contextlib.suppress(OSError):
                (SHIM_SOCKETS / hashlib.sha256(key).hexdigest()).unlink()
        for path in (self.base, self.state):
            for point in mounts_under(path):
                detach(point)
        remove_cgroups(cgroup)
        for path in (self.base, self.state):
            shutil.rmtree(path, ignore_errors=True)
        for d in ("/run/containerd/fifo", "/run/containerd/runc"):
            if not daemon_running():
                with contextlib.suppress(OSError):
                    os.rmdir(d)
        remove_shared_dirs()
        found = [f"process {pid}: {cmd}" for pid, cmd in
                 processes_naming([self.base, self.state]) if alive(pid)]
        found += [f"cgroup process {pid}" for pid in cgroup_pids(cgroup)]
        found += [f"cgroup {d}" for d in cgroup_dirs(cgroup)]
        found += [f"directory {p}" for p in (self.base, self.state) if p.exists()]
        return found


@contextlib.contextmanager
def ref_containerd(tmp: Path, timeout: float = 30) -> Iterator[RefContainerd]:
    """Starts an isolated containerd and waits for its socket; on leaving, stops it, kills
    what it left running and removes all it made. Raises RefDockerError when it does not
    come up or, on a normal exit, when something was left."""
    token = uuid.uuid4().hex[:12]
    base = Path(tmp).resolve() / f"refcontainerd-{token}"
    run = Path("/run") if os.access("/run", os.W_OK) else Path(tempfile.gettempdir())
    ref = RefContainerd(base, run / f"dyrefc-{token}")
    ok = False
    try:
        base.mkdir(mode=0o711)
        ref.start(timeout)
        yield ref
        ok = True
    finally:
        left = ref.stop()
        if left and ok:
            raise RefDockerError("the reference containerd left behind:\n  " + "\n  ".join(left))
