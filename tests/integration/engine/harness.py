"""A real `dockyardd` for tests: its own data root, exec root (short, under /run: sockets
live there), API socket and cgroup parent; busybox loaded into it from the archive Dockyard
saves from Debian's busybox-static. Stopping it is not enough (shims outlive it by design):
`Engine.destroy` kills every shim and container of its supervisor, deletes them from the
runtime, unmounts what is left under its roots and removes its cgroups.

    with running_engine(tmp) as e:
        e.docker("run", "--rm", "busybox", "true")     # the docker CLI against it
        e.sdk.containers.list()                         # the docker SDK against it
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import unique
from tests.refdocker import cgroup_dirs, kill_cgroup, mounts_under, remove_cgroups

V = Path(sys.executable).parent
IMAGE = "docker.io/library/busybox:latest"


def busybox_archive(dest: Path) -> Path:
    """`docker save` of busybox:latest, built from Debian's busybox-static."""
    from dockyard.image.archive.save import save
    from dockyard.image.imports import bootstrap
    from dockyard.image.library import ImageLibrary

    path = dest / "busybox.tar"
    with ImageLibrary(dest / "lib") as lib:
        bootstrap(lib)
        save(lib, [IMAGE], path)
    shutil.rmtree(dest / "lib", ignore_errors=True)
    return path


class Engine:
    def __init__(self, base: Path, *, config: dict | None = None,
                 extra: list[str] | None = None) -> None:
        token = unique("dye")
        self.base = base / token
        self.data_root = self.base / "data"
        self.exec_root = Path("/run") / token
        self.sock = self.exec_root / "api.sock"
        self.cgroup_parent = f"/{token}"
        self.bridge = token.replace("dye", "dyb")[:15]
        self.nft_table = token.replace("dye-", "dyt_").replace("-", "_")
        self.resolv_conf = self.base / "resolv.conf"
        # No registry outside this machine, ever: docker.io (where the docker CLI pulls a
        # missing image from) goes to a closed port on loopback unless a test redirects it.
        # The host's bridge, nftables table, subnets and resolvers are its own: nothing
        # another engine (or the host) has, and no DNS query leaves loopback.
        self.config = {"cgroup-parent": self.cgroup_parent,
                       "registry-hosts": {"docker.io": {"redirect": "http://127.0.0.1:1"}},
                       "bridge": self.bridge, "bip": _random_bip(),
                       "default-address-pools": [{"base": _random_pool(), "size": 24}],
                       "nft-table": self.nft_table, "resolv-conf": str(self.resolv_conf),
                       **(config or {})}
        self.extra = extra or []
        self.log = self.base / "dockyardd.log"
        self.docker_config = self.base / "docker-config"
        self.proc: subprocess.Popen[bytes] | None = None
        self._sdk = None

    @property
    def host(self) -> str:
        return f"unix://{self.sock}"

    @property
    def supervisor_address(self) -> Path:
        return self.exec_root / "containerd" / "containerd.sock"

    def command(self) -> list[str]:
        return [str(V / "dockyardd"), "--data-root", str(self.data_root), "--exec-root",
                str(self.exec_root), "-H", self.host, "--config-file",
                str(self.base / "daemon.json"), *self.extra]

    def start(self, timeout: float = 30) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self.docker_config.mkdir(exist_ok=True)
        (self.base / "daemon.json").write_text(json.dumps(self.config))
        if not self.resolv_conf.exists():  # a closed port on loopback unless a test says
            self.resolv_conf.write_text("nameserver 127.0.0.1\noptions timeout:1\n")
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self.pings():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"dockyardd did not start:\n{self.log_text()}")
            time.sleep(0.05)

    def pings(self) -> bool:
        from dockyard.demo import pings  # the README's first command waits the same way

        return pings(self.sock)

    def log_text(self, limit: int = 8000) -> str:
        try:
            return self.log.read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM, as an operator stops dockerd; the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def docker(self, *args: str, check: bool = True, input: bytes | str | None = None,
               timeout: float = 60) -> subprocess.CompletedProcess:
        """The docker CLI (28.x) against this engine."""
        env = {**os.environ, "DOCKER_HOST": self.host,
               "DOCKER_CONFIG": str(self.docker_config), "DOCKER_CLI_HINTS": "false"}
        env.pop("DOCKER_CONTEXT", None)
        p = subprocess.run(["docker", *args], env=env, capture_output=True, timeout=timeout,
                           input=input.encode() if isinstance(input, str) else input)
        if check and p.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} exited {p.returncode}:\n"
                                 f"{p.stderr.decode(errors='replace')}")
        return p

    @property
    def sdk(self):
        """A docker SDK client of this engine."""
        if self._sdk is None:
            import docker

            self._sdk = docker.DockerClient(base_url=self.host, timeout=60)
        return self._sdk

    def load(self, archive: Path) -> None:
        """Load an image archive straight into the engine's supervisor (what `docker load`
        does, without depending on the engine's own /images/load)."""
        from dockyard.containerd.client import Client

        with Client(str(self.supervisor_address), "moby", timeout=60) as c:
            for _ in c.import_archive(str(archive)):
                pass

    def destroy(self) -> list[str]:
        """Stop it and remove everything it made; what could not be removed (a failure)."""
        if self._sdk is not None:
            with contextlib.suppress(Exception):
                self._sdk.close()
        self.stop()
        from tests.integration.supervisor.conftest import reap

        state = self.exec_root / "containerd"
        pid_file = state / "containerd.pid"
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
        left: list[str] = []
        if state.is_dir():
            left += reap(state)
        kill_cgroup(self.cgroup_parent)
        remove_cgroups(self.cgroup_parent)
        left += [str(d) for d in cgroup_dirs(self.cgroup_parent)]
        for root in (self.exec_root, self.base):
            for point in sorted(mounts_under(root), key=len, reverse=True):
                subprocess.run(["umount", "-l", point], capture_output=True)
        shutil.rmtree(self.exec_root, ignore_errors=True)
        shutil.rmtree(self.base, ignore_errors=True)
        left += remove_network_state(self.nft_table, [
            self.config.get("bip") or "", *(p["base"] for p in
                                            self.config.get("default-address-pools") or [])])
        return left


def _random_bip() -> str:
    return f"10.{random.randrange(128, 192)}.{random.randrange(256)}.1/24"


def _random_pool() -> str:
    return f"10.{random.randrange(64, 128)}.{random.randrange(0, 256, 16)}.0/20"


def remove_network_state(table: str, subnets: list[str]) -> list[str]:
    """What a daemon leaves when it was killed: its nftables table, and the bridges with an
    address in the subnets only it used (the default one, br-* of its networks; their
    veths go with them). What cannot be removed is returned."""
    import ipaddress

    left: list[str] = []
    subprocess.run(["nft", "delete", "table", "inet", table], capture_output=True)
    if subprocess.run(["nft", "list", "table", "inet", table],
                      capture_output=True).returncode == 0:
        left.append(f"nft table {table}")
    ours = [ipaddress.ip_network(s, strict=False) for s in subnets]
    shown = subprocess.run(["ip", "-j", "addr", "show", "type", "bridge"],
                           capture_output=True, text=True).stdout
    for link in json.loads(shown or "[]"):
        addresses = [ipaddress.ip_address(a["local"]) for a in link.get("addr_info", [])
                     if a.get("family") == "inet"]
        if any(a in net for a in addresses for net in ours) and subprocess.run(
                ["ip", "link", "delete", link["ifname"]], capture_output=True).returncode:
            left.append(f"bridge {link['ifname']}")
    return left


@contextlib.contextmanager
def running_engine(base: Path, archive: Path | None = None, **kw) -> Iterator[Engine]:
    e = Engine(base, **kw)
    try:
        e.start()
        if archive is not None:
            e.load(archive)
        yield e
    finally:
        left = e.destroy()
        assert not left, left
