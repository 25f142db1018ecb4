"""Debian's Docker daemon (package docker.io: dockerd 20.10 with containerd 1.6) as a reference,
started isolated for interop tests and benchmarks, and taken down without a trace.

    from tests.refdocker import ref_dockerd, skip_unless_available

    skip_unless_available()                 # in a test: pytest.skip when it is not installed
    with ref_dockerd(tmp) as ref:           # tmp: any existing directory
        ref.docker("load", "-i", str(archive))
        print(ref.docker("images").stdout, ref.host)

From a benchmark (bench/*.py run as scripts): put the repository on sys.path first,
`sys.path.insert(0, str(Path(__file__).resolve().parent.parent))`, then import the same way.

What an instance owns, all of it unique and all of it removed on leaving, also on failure:
- `<tmp>/refdocker-<hex>/`: the data root (`data/`, containerd's root in `data/containerd`),
  an empty-ish daemon.json (only the trust key's path, see below), containerd's config, the
  logs, the CLI's DOCKER_CONFIG, and the API socket `docker.sock`;
- `/run/dyref-<hex>/`: the exec root (a tmpfs like dockerd's own /var/run/docker; short, so
  that the unix sockets in it stay under the 108-byte limit whatever `tmp` is), with
  containerd's state and socket in `containerd/`;
- the cgroup parent `/dyref-<hex>` in every hierarchy (only made once a container runs).

Its own containerd: dockerd 20.10 given no `--containerd` uses the system's
(/run/containerd/containerd.sock) when that socket exists, and otherwise starts a managed one
whose plugin `opt` creates /opt/containerd. So the harness starts containerd itself, with a
config of its own (cri and opt disabled), and hands its socket to dockerd; the namespace
stays "moby", as nothing else talks to that containerd.

What dockerd would leave on the host, and what is done about it:
- /etc/docker/key.json (the libtrust key): daemon.json sets `deprecated-key-path` to a file
  in the instance's directory instead (20.10 has no flag for it);
- net.ipv4.ip_forward=1: `--ip-forward=false`; no docker0: `--bridge=none`; no iptables or
  nftables rules: `--iptables=false --ip6tables=false --ip-masq=false`;
- /run/docker/plugins (hard-coded plugin discovery directory) and, once a container ran,
  /run/containerd/s/<sha256> (shim sockets, hard-coded in containerd 1.6): our sockets are
  removed, and the directories too when empty and no other dockerd/containerd runs;
- the data root bind-mounted on itself (dockerd makes its mount shared), overlay mounts of
  containers: everything mounted under the instance's directories is detached.

No registry outside the machine: dockerd gets HTTP(S)_PROXY pointing at a closed port on
127.0.0.1 and NO_PROXY for loopback, so a pull from anywhere but a local registry (or
`registry_mirror` on 127.0.0.1) fails at once. Containers get no network (`--bridge=none`
makes "none" the default network).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

DOCKERD = "/usr/sbin/dockerd"
CONTAINERD = "/usr/bin/containerd"
# Debian's CLI (20.10, the daemon's own) first; the newer one in /usr/local works as well.
DOCKER_CLIS = ("/usr/bin/docker", "/usr/local/bin/docker")
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
NAMESPACE = "moby"
# Shared, hard-coded places that dockerd/containerd create: removed when empty and unused.
SHARED_DIRS = ("/run/docker/plugins", "/run/docker", "/run/containerd/s", "/run/containerd")
SHIM_SOCKETS = Path("/run/containerd/s")
SOCKET_MAX = 100  # sun_path is 108 bytes with the NUL; keep a margin
MNT_DETACH = 2


class RefDockerError(RuntimeError):
    pass


class DockerCLIError(subprocess.CalledProcessError):
    def __str__(self) -> str:
        err = self.stderr.decode(errors="replace") if isinstance(self.stderr, bytes) \
            else self.stderr
        return f"{' '.join(map(str, self.cmd))} exited {self.returncode}: {err.strip()}"


def docker_cli() -> str | None:
    return next((c for c in DOCKER_CLIS if os.access(c, os.X_OK)), None)


def unavailable() -> str | None:
    """Why the reference daemon cannot run here, or None."""
    if os.geteuid() != 0:
        return "the reference dockerd needs root"
    for path, what in ((DOCKERD, "dockerd"), (CONTAINERD, "containerd")):
        if not os.access(path, os.X_OK):
            return (f"Debian's {what} ({path}) is not installed: scripts/install.sh installs "
                    "the package docker.io")
    if docker_cli() is None:
        return f"no docker CLI in {' or '.join(DOCKER_CLIS)}"
    return None


def skip_unless_available() -> None:
    reason = unavailable()
    if reason is not None:
        import pytest

        pytest.skip(reason)


class RefDocker:
    """One running instance: `host` (unix://…), `docker(...)` to drive it with the CLI."""

    def __init__(self, base: Path, exec_root: Path, registry_mirror: str | None = None,
                 extra_args: Sequence[str] = ()) -> None:
        self.base = base
        self.exec_root = exec_root
        self.data_root = base / "data"
        self.containerd_root = self.data_root / "containerd"
        self.containerd_state = exec_root / "containerd"
        self.containerd_socket = self.containerd_state / "containerd.sock"
        sock = base / "docker.sock"
        self.socket = sock if len(str(sock)) <= SOCKET_MAX else exec_root / "docker.sock"
        self.host = f"unix://{self.socket}"
        self.pidfile = base / "docker.pid"
        self.config_file = base / "daemon.json"
        self.containerd_config = base / "containerd.toml"
        self.log_path = base / "dockerd.log"
        self.containerd_log_path = base / "containerd.log"
        self.cli_config = base / "cli"
        self.cgroup_parent = f"/dyref-{exec_root.name.removeprefix('dyref-')}"
        self.registry_mirror = registry_mirror
        self.extra_args = list(extra_args)
        self.dockerd: subprocess.Popen | None = None
        self.containerd: subprocess.Popen | None = None
        self.cli = docker_cli() or DOCKER_CLIS[0]
        self.closed = False

    # -- the API -------------------------------------------------------------------------

    def docker(self, *args: str, input: bytes | str | None = None, check: bool = True,
               timeout: float = 600, text: bool | None = None) -> subprocess.CompletedProcess:
        """Runs the docker CLI against this daemon; output is text unless `input` is bytes
        (or text=False)."""
        if self.closed:
            raise RefDockerError("the reference dockerd is stopped")
        if text is None:
            text = not isinstance(input, bytes)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env["DOCKER_CONFIG"] = str(self.cli_config)
        done = subprocess.run([self.cli, "-H", self.host, *args], input=input,
                              capture_output=True, text=text, env=env, timeout=timeout,
                              stdin=subprocess.DEVNULL if input is None else None)
        if check and done.returncode != 0:
            raise DockerCLIError(done.returncode, done.args, done.stdout, done.stderr)
        return done

    def logs(self, limit: int = 6000) -> str:
        parts = []
        for name, path in (("dockerd", self.log_path), ("containerd", self.containerd_log_path)):
            try:
                text = path.read_text(errors="replace")
            except OSError:
                text = ""
            parts.append(f"--- {name} log ({path}) ---\n{text[-limit:]}")
        return "\n".join(parts)

    @property
    def owned_paths(self) -> list[Path]:
        return [self.base, self.exec_root]

    # -- start ---------------------------------------------------------------------------

    def _write_configs(self) -> None:
        for d in (self.data_root, self.cli_config, self.containerd_root, self.containerd_state):
            d.mkdir(parents=True, exist_ok=True)
        # Nothing from /etc/docker/daemon.json; the one key keeps the trust key out of /etc.
        key = str(self.base / "key.json")
        self.config_file.write_text(json.dumps({"deprecated-key-path": key}))
        self.containerd_config.write_text(containerd_config(
            self.containerd_root, self.containerd_state, self.containerd_socket))

    def _env(self) -> dict[str, str]:
        dead = "http://127.0.0.1:9"  # discard port, nothing listens: fails at once
        env = {"PATH": SYSTEM_PATH, "HOME": str(self.base), "LANG": "C.UTF-8",
               "HTTP_PROXY": dead, "HTTPS_PROXY": dead,
               "NO_PROXY": "localhost,127.0.0.0/8,::1"}
        env.update({k.lower(): v for k, v in env.items() if k.endswith("PROXY")})
        return env

    def dockerd_args(self) -> list[str]:
        args = [DOCKERD,
                "--config-file", str(self.config_file),
                "--data-root", str(self.data_root),
                "--exec-root", str(self.exec_root),
                "--pidfile", str(self.pidfile),
                "-H", self.host,
                "--containerd", str(self.containerd_socket),
                "--containerd-namespace", NAMESPACE,
                "--containerd-plugins-namespace", f"plugins.{NAMESPACE}",
                "--cgroup-parent", self.cgroup_parent,
                "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
                "--ip-forward=false", "--userland-proxy=false",
                "--storage-driver=overlay2", "--log-level=warn", "--shutdown-timeout=3"]
        if self.registry_mirror:
            args += ["--registry-mirror", self.registry_mirror]
        return args + self.extra_args

    def _spawn(self, args: list[str], log: Path) -> subprocess.Popen:
        with open(log, "ab") as out:
            return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, env=self._env(),
                                    start_new_session=True, cwd=self.base)

    def start(self, timeout: float = 30) -> None:
        self._write_configs()
        deadline = time.monotonic() + timeout
        self.containerd = self._spawn([CONTAINERD, "--config", str(self.containerd_config)],
                                      self.containerd_log_path)
        self._wait(lambda: connects(self.containerd_socket), self.containerd, "containerd",
                   deadline, timeout)
        self.dockerd = self._spawn(self.dockerd_args(), self.log_path)
        self._wait(lambda: _ping(self.socket), self.dockerd, "dockerd", deadline, timeout)

    def _wait(self, ready, proc: subprocess.Popen, name: str, deadline: float,
              timeout: float) -> None:
        while not ready():
            if proc.poll() is not None:
                raise RefDockerError(f"{name} exited {proc.returncode} while starting\n"
                                     + self.logs())
            if time.monotonic() > deadline:
                what = "answer /_ping" if name == "dockerd" else "open its socket"
                raise RefDockerError(f"{name} did not {what} within {timeout:.0f} s\n"
                                     + self.logs())
            time.sleep(0.05)

    # -- stop ----------------------------------------------------------------------------

    def stop(self) -> list[str]:
        """Takes everything down; returns what could not be cleaned (empty when all went)."""
        self.closed = True
        ids = _container_ids(self.data_root)
        # Containers first: dockerd would give each its stop timeout (10 s by default).
        kill_cgroup(self.cgroup_parent)
        for proc, grace in ((self.dockerd, 20.0), (self.containerd, 10.0)):
            if proc is not None:
                terminate(proc, grace)
        _kill_leftovers(self)
        for cid in ids:
            key = f"{self.containerd_socket}/{NAMESPACE}/{cid}".encode()
            with contextlib.suppress(OSError):
                (SHIM_SOCKETS / hashlib.sha256(key).hexdigest()).unlink()
        for path in self.owned_paths:
            for point in mounts_under(path):
                detach(point)
        remove_cgroups(self.cgroup_parent)
        for path in self.owned_paths:
            shutil.rmtree(path, ignore_errors=True)
        remove_shared_dirs()
        return self.leftovers()

    def leftovers(self) -> list[str]:
        """Anything of this instance still on the host."""
        found = [f"process {pid}: {cmd}" for pid, cmd in processes_naming(self.owned_paths)]
        found += [f"cgroup process {pid}" for pid in cgroup_pids(self.cgroup_parent)]
        for path in self.owned_paths:
            found += [f"mount {m}" for m in mounts_under(path)]
            if path.exists():
                found.append(f"directory {path}")
        found += [f"cgroup {d}" for d in cgroup_dirs(self.cgroup_parent)]
        return found


@contextlib.contextmanager
def ref_dockerd(tmp: Path, *, registry_mirror: str | None = None,
                extra_args: Sequence[str] = (), timeout: float = 30) -> Iterator[RefDocker]:
    """Starts an isolated reference dockerd (and its containerd) and waits until it answers
    /_ping; on leaving, stops both and removes all they made. Raises RefDockerError when
    it does not come up (with its logs) or, on a normal exit, when something was left."""
    token = uuid.uuid4().hex[:12]
    base = Path(tmp).resolve() / f"refdocker-{token}"
    run = Path("/run") if os.access("/run", os.W_OK) else Path(tempfile.gettempdir())
    exec_root = run / f"dyref-{token}"
    ref = RefDocker(base, exec_root, registry_mirror, extra_args)
    ok = False
    try:
        base.mkdir(mode=0o711)
        exec_root.mkdir(mode=0o700)
        ref.start(timeout)
        yield ref
        ok = True
    finally:
        left = ref.stop()
        if left and ok:
            raise RefDockerError("the reference dockerd left behind:\n  " + "\n  ".join(left))


def containerd_config(root: Path, state: Path, address: Path) -> str:
    """An isolated containerd's config: its own root, state and socket; no CRI, no `opt`
    plugin (which would create /opt/containerd), no snapshotters this host lacks, no ttrpc,
    debug or metrics listeners."""
    disabled = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt",
                "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
                "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.aufs",
                "io.containerd.tracing.processor.v1.otlp"]
    return "\n".join([
        "version = 2",
        f'root = "{root}"',
        f'state = "{state}"',
        f"disabled_plugins = {json.dumps(disabled)}",
        "[grpc]",
        f'  address = "{address}"',
        "[ttrpc]",
        '  address = ""',
        "[debug]",
        '  address = ""',
        '  level = "warn"',
        "[metrics]",
        '  address = ""',
        "",
    ])


# -- helpers (also for tests that check the cleanup themselves) -----------------------------

def connects(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(1)
        try:
            s.connect(str(path))
        except OSError:
            return False
    return True


def _ping(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(2)
        try:
            s.connect(str(path))
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        except OSError:
            return False
    status = data.split(b"\r\n", 1)[0].split()
    return len(status) > 1 and status[1] == b"200" and data.endswith(b"OK")


def terminate(proc: subprocess.Popen, grace: float) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)


_ESCAPE = re.compile(r"\\([0-7]{3})")


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below `path` in this mount namespace, deepest first."""
    prefix = str(path)
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), line.split()[4])
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    return sorted(set(points), key=lambda p: (p.count("/"), len(p)), reverse=True)


def detach(point: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(point.encode(), MNT_DETACH) != 0:
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def processes_naming(paths: Sequence[Path]) -> list[tuple[int, str]]:
    """Live processes (not zombies) whose command line names one of `paths`."""
    needles = [str(p).encode() for p in paths]
    mine = {os.getpid(), os.getppid()}
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in mine:
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if cmd and any(n in cmd for n in needles):
            found.append((int(entry), cmd.replace(b"\0", b" ").decode(errors="replace").strip()))
    return found


def cgroup_roots() -> list[Path]:
    roots = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[0] in ("cgroup", "cgroup2"):
                roots.append(Path(left.split()[4]))
    return roots


def cgroup_dirs(parent: str) -> list[Path]:
    dirs = []
    for root in cgroup_roots():
        top = root / parent.lstrip("/")
        if top.is_dir():
            dirs += [Path(d) for d, _, _ in os.walk(top)]
    return sorted(dirs, key=lambda p: len(p.parts), reverse=True)


def cgroup_pids(parent: str) -> set[int]:
    pids = set()
    for d in cgroup_dirs(parent):
        with contextlib.suppress(OSError):
            pids.update(int(x) for x in (d / "cgroup.procs").read_text().split())
    return pids


def _container_ids(data_root: Path) -> list[str]:
    try:
        return [p.name for p in (data_root / "containers").iterdir()]
    except OSError:
        return []


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def _kill_leftovers(ref: RefDocker, timeout: float = 10) -> None:
    """Container processes (by cgroup) and shims (their command line names our exec root):
    dockerd stops them when it can; after a SIGKILL of the daemons they are still there."""
    deadline = time.monotonic() + timeout
    while True:
        pids = cgroup_pids(ref.cgroup_parent) | {p for p, _ in processes_naming(ref.owned_paths)}
        pids = {p for p in pids if alive(p)}
        if not pids or time.monotonic() > deadline:
            return
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def kill_cgroup(parent: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while (pids := {p for p in cgroup_pids(parent) if alive(p)}) \
            and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def remove_cgroups(parent: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while True:
        for d in cgroup_dirs(parent):
            with contextlib.suppress(OSError):
                d.rmdir()
        if not cgroup_dirs(parent) or time.monotonic() > deadline:
            return
        time.sleep(0.05)


def daemon_running() -> bool:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                comm = Path(f"/proc/{entry}/comm").read_text().strip()
            except OSError:
                continue
            if comm in ("dockerd", "containerd") and alive(int(entry)):
                return True
    return False


def remove_shared_dirs() -> None:
    if daemon_running():
        return
    for d in SHARED_DIRS:
        with contextlib.suppress(OSError):
            os.rmdir(d)
