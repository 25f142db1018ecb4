"""The flags of `exec`, `update`, `events`, the global ones, and what `state` prints: each
checked against a running busybox container."""

from __future__ import annotations

import json
import os
import socket
import time
import uuid

import pytest

from dockyard.bootstrap.busybox import read_config, write_config
from tests.integration.runtime.test_config import recv_fd
from tests.schemas import validate

pytestmark = pytest.mark.root


def edit(bundle, fn) -> None:
    cfg = read_config(bundle)
    fn(cfg)
    write_config(bundle, cfg)


def own_cgroup(pid: int, controller: str) -> str:
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _h, ctrls, path = line.rstrip("\n").split(":", 2)
            if controller in ctrls.split(","):
                return path
    raise AssertionError(f"no {controller} line for {pid}")


def cap_eff(status: str) -> int:
    line = next(x for x in status.splitlines() if x.startswith("CapEff:"))
    return int(line.split()[1], 16)


@pytest.fixture
def running(runc, make_bundle):
    """A detached `sleep` container; yields its id and state."""
    b = make_bundle(["sleep", "300"])
    cid = f"fl-{uuid.uuid4().hex[:6]}"
    runc.run("run", "-d", "-b", str(b), cid)
    st = json.loads(runc.run("state", cid).stdout)
    yield cid, st
    runc.run("delete", "--force", cid, check=False)


def test_state_validates_against_the_schema(runc, running):
    cid, st = running
    validate(st, "state-schema.json")
    assert st["status"] == "running" and st["id"] == cid and st["pid"] > 0


def test_exec_user_cap_and_no_new_privs(runc, running):
    cid, _ = running
    p = runc.run("exec", "--user", "1000:1000", "--additional-gids", "10", cid, "id")
    assert p.stdout.startswith(b"uid=1000(user) gid=1000(user) groups=10(")
    # --cap adds to the bounding, effective and permitted sets (runc 1.1: not inheritable),
    # so root gets it and a non-root user keeps it only in the bounding set.
    p = runc.run("exec", "--cap", "CAP_SYS_ADMIN", cid, "cat", "/proc/self/status")
    assert cap_eff(p.stdout.decode()) & (1 << 21)  # CAP_SYS_ADMIN
    p = runc.run("exec", "--user", "1000", "--cap", "CAP_NET_RAW", cid, "cat",
                 "/proc/self/status")
    status = p.stdout.decode()
    assert cap_eff(status) == 0
    bnd = next(x for x in status.splitlines() if x.startswith("CapBnd:"))
    assert int(bnd.split()[1], 16) & (1 << 13)  # CAP_NET_RAW
    p = runc.run("exec", "--no-new-privs", cid, "grep", "NoNewPrivs", "/proc/self/status")
    assert p.stdout.split() == [b"NoNewPrivs:", b"1"]


def test_exec_preserve_fds(runc, running, tmp_path):
    cid, _ = running
    f = tmp_path / "passed"
    f.write_text("through fd 3\n")
    # A descriptor of our own (never a fixed number, which another fixture's socket may
    # hold), moved to fd 3 in the child only.
    fd = os.open(f, os.O_RDONLY | os.O_CLOEXEC)
    try:
        p = runc.run("exec", "--preserve-fds", "1", cid, "cat", "/proc/self/fd/3",
                     pass_fds=(3,), preexec_fn=lambda: os.dup2(fd, 3))
    finally:
        os.close(fd)
    assert p.stdout == b"through fd 3\n"


def test_exec_terminal_through_console_socket(runc, running, tmp_path):
    cid, _ = running
    path = str(tmp_path / "c.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    try:
        runc.run("exec", "-d", "-t", "--console-socket", path, cid, "sh", "-c",
                 "tty; sleep 1")
        conn, _ = srv.accept()
        master = recv_fd(conn)
        out = b""
        deadline = time.monotonic() + 5
        while b"/dev/pts/" not in out and time.monotonic() < deadline:
            out += os.read(master, 256)
        assert b"/dev/pts/" in out
        os.close(master)
        conn.close()
    finally:
        srv.close()
    p = runc.run("exec", "-t", cid, "true", check=False)  # -t without -d: we relay it
    assert p.returncode == 0, p.stderr
    p = runc.run("exec", "-d", "-t", cid, "true", check=False)
    assert p.returncode == 1 and b"cannot allocate tty" in p.stderr


def test_exec_in_a_container_with_seccomp(runc, make_bundle):
    """libseccomp is a host library: exec must load it before joining the mount namespace."""
    b = make_bundle(["sleep", "300"])
    edit(b, lambda c: c["linux"].update(seccomp={
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdirat", "mkdir"], "action": "SCMP_ACT_ERRNO",
                      "errnoRet": 1}]}))
    runc.run("run", "-d", "-b", str(b), "sc1")
    try:
        p = runc.run("exec", "sc1", "mkdir", "/tmp/x", check=False)
        assert p.returncode == 1 and b"Operation not permitted" in p.stderr
    finally:
        runc.run("delete", "--force", "sc1")


def test_update_cpu_cpuset_and_blkio_live(runc, running):
    cid, st = running
    runc.run("update", "--cpu-share", "512", "--cpu-period", "100000", "--cpu-quota",
             "50000", "--cpuset-cpus", "0", "--blkio-weight", "300", cid)
    pid = st["pid"]
    cpu = f"/sys/fs/cgroup/cpu{own_cgroup(pid, 'cpu')}"
    assert open(f"{cpu}/cpu.shares").read().strip() == "512"
    assert open(f"{cpu}/cpu.cfs_quota_us").read().strip() == "50000"
    cpuset = f"/sys/fs/cgroup/cpuset{own_cgroup(pid, 'cpuset')}"
    assert open(f"{cpuset}/cpuset.cpus").read().strip() == "0"
    blkio = f"/sys/fs/cgroup/blkio{own_cgroup(pid, 'blkio')}"
    weight = [n for n in ("blkio.weight", "blkio.bfq.weight") if os.path.exists(f"{blkio}/{n}")]
    if weight:
        assert open(f"{blkio}/{weight[0]}").read().split()[-1] == "300"
    p = runc.run("update", "--cpu-share", "1", cid, check=False)
    assert p.returncode == 1 and b"the minimum allowed cpu-shares is 2" in p.stderr


def test_cgroups_path_is_honoured_and_removed(runc, make_bundle):
    parent = f"dyt-cg-{uuid.uuid4().hex[:6]}"
    b = make_bundle(["sleep", "300"])
    edit(b, lambda c: c["linux"].update(cgroupsPath=f"/{parent}/box"))
    runc.run("run", "-d", "-b", str(b), "cgp")
    try:
        st = json.loads(runc.run("state", "cgp").stdout)
        pidfile = b / "exec.pid"
        runc.run("exec", "-d", "--pid-file", str(pidfile), "cgp", "sleep", "30")
        for pid in (st["pid"], int(pidfile.read_text())):  # the init and an exec'd process
            for ctrl in ("cpu", "cpuset", "memory", "pids", "devices", "freezer", "blkio"):
                assert own_cgroup(pid, ctrl) == f"/{parent}/box", (pid, ctrl)
    finally:
        runc.run("delete", "--force", "cgp")
        for ctrl in os.listdir("/sys/fs/cgroup"):
            d = f"/sys/fs/cgroup/{ctrl}/{parent}"
            assert not os.path.exists(f"{d}/box")
            if os.path.isdir(d):
                os.rmdir(d)


def test_events_stats_is_one_json_line(runc, running):
    cid, _ = running
    p = runc.run("events", "--stats", cid)
    lines = p.stdout.decode().splitlines()
    assert len(lines) == 1
    ev = json.loads(lines[0])
    assert ev["type"] == "stats" and ev["id"] == cid
    assert ev["data"]["memory"]["usage"]["usage"] > 0
    assert "cpu" in ev["data"] and "pids" in ev["data"]


def test_debug_and_log_file(runc, running, tmp_path):
    cid, _ = running
    log = tmp_path / "runc.log"
    p = runc.run("--debug", "--log", str(log), "--log-format", "json", "exec", cid, "true")
    assert p.returncode == 0
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert lines and all({"level", "msg", "time"} <= set(x) for x in lines)
    assert any(x["level"] == "debug" for x in lines)


def test_container_processes_start_with_default_signals(runc, running):
    """Python ignores SIGPIPE and SIGXFSZ and glibc's posix_spawn ignores its internal
    signals: none of that may reach the container (`yes | head` must end by SIGPIPE)."""
    cid, st = running
    with open(f"/proc/{st['pid']}/status") as f:
        status = dict(line.split(":\t", 1) for line in f.read().splitlines())
    assert int(status["SigIgn"], 16) == 0 and int(status["SigBlk"], 16) == 0
    p = runc.run("exec", cid, "grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status")
    assert p.stdout.split() == [b"SigBlk:", b"0" * 16, b"SigIgn:", b"0" * 16]
