"""What a config.json gets: namespaces, user namespaces, hooks, terminal, resources —
each checked from inside a real container."""

from __future__ import annotations

import array
import json
import os
import shutil
import socket
import stat
import time
from pathlib import Path

import pytest

from dockyard.bootstrap.busybox import read_config, write_config
from tests.conftest import unique

pytestmark = pytest.mark.root


def edit(bundle, fn) -> None:
    cfg = read_config(bundle)
    fn(cfg)
    write_config(bundle, cfg)


def test_namespaces_are_new(runc, make_bundle):
    b = make_bundle(["sh", "-c", "for n in pid net ipc uts mnt cgroup; do "
                                 "readlink /proc/self/ns/$n; done"])
    out = runc.run("run", "-b", str(b), "ns").stdout.decode().split()
    for line in out:
        name = line.split(":")[0]
        assert line != os.readlink(f"/proc/self/ns/{name}"), name


def test_network_namespace_has_loopback_up(runc, make_bundle):
    b = make_bundle(["cat", "/sys/class/net/lo/operstate", "/sys/class/net/lo/flags"])
    out = runc.run("run", "-b", str(b), "lo").stdout.decode().split()
    assert int(out[1], 16) & 1


def test_joining_a_namespace_by_path(runc, make_bundle):
    b = make_bundle(["readlink", "/proc/self/ns/net"])
    edit(b, lambda c: c["linux"]["namespaces"].__setitem__(
        [n["type"] for n in c["linux"]["namespaces"]].index("network"),
        {"type": "network", "path": "/proc/self/ns/net".replace("self", str(os.getpid()))}))
    out = runc.run("run", "-b", str(b), "joinnet").stdout.decode().strip()
    assert out == os.readlink("/proc/self/ns/net")


def test_user_namespace_with_mappings(runc, make_bundle):
    b = make_bundle(["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; "
                                 "stat -c %u /bin/busybox"])

    def userns(c):
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        c["mounts"] = [m for m in c["mounts"] if m["destination"] != "/sys/fs/cgroup"]
        for m in c["mounts"]:
            if m["destination"] == "/sys":
                m.update(type="none", source="/sys", options=["rbind", "nosuid", "noexec",
                                                              "nodev", "ro"])

    edit(b, userns)
    # The container's root (host uid 100000) must be able to reach the bundle: pytest's
    # temporary directories are 0700, so the bundle moves to a traversable place.
    base = Path("/run") / unique("dockyard-userns")
    base.mkdir(mode=0o711)
    try:
        shutil.copytree(b, base / "bundle", symlinks=True)
        b = base / "bundle"
        os.chown(b / "rootfs", 100000, 100000)
        p = runc.run("run", "-b", str(b), "userns", check=False)
    finally:
        shutil.rmtree(base)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.decode().split("\n")
    assert lines[0].split() == ["0", "100000", "65536"]
    assert lines[1].split() == ["0", "100000", "65536"]
    assert lines[2] == "0"


def test_hooks_run_in_order_with_state_on_stdin(runc, make_bundle, tmp_path):
    log = tmp_path / "hooks.log"
    b = make_bundle(["sh", "-c", "echo main >> /hooklog"])

    def hook(kind):
        return {"path": "/bin/sh", "args": ["sh", "-c", f"echo {kind} $(cat | head -c 400 | "
                                           f"grep -o '\"status\":\"[a-z]*\"') >> {log}"]}

    def add(c):
        c["hooks"] = {k: [hook(k)] for k in ("prestart", "createRuntime", "createContainer",
                                             "poststart", "poststop")}
        c["hooks"]["startContainer"] = [{"path": "/bin/sh",
                                         "args": ["sh", "-c", "echo startContainer >> /hooklog"]}]
        c["root"]["readonly"] = False

    edit(b, add)
    runc.run("run", "-b", str(b), "hooks")
    kinds = [line.split()[0] for line in log.read_text().splitlines()]
    assert kinds == ["prestart", "createRuntime", "createContainer", "poststart", "poststop"]
    assert "stopped" in log.read_text().splitlines()[-1]
    assert (b / "rootfs" / "hooklog").read_text() == "startContainer\nmain\n"


def test_failing_prestart_hook_fails_create_and_leaves_nothing(runc, make_bundle):
    b = make_bundle(["true"])
    edit(b, lambda c: c.update(hooks={"prestart": [{"path": "/bin/false"}]}))
    p = runc.run("create", "-b", str(b), "badhook", check=False)
    assert p.returncode == 1 and b"prestart" in p.stderr
    assert runc.run("list", "-q").stdout == b""
    assert not (runc.root / "badhook").exists()


def recv_fd(sock: socket.socket) -> int:
    fds = array.array("i")
    _msg, anc, _f, _a = sock.recvmsg(1024, socket.CMSG_LEN(fds.itemsize))
    fds.frombytes(anc[0][2][: fds.itemsize])
    return fds[0]


def test_console_socket_receives_the_pty_master(runc, make_bundle, tmp_path):
    b = make_bundle(["sh", "-c", "tty; stty size; echo done"])
    edit(b, lambda c: c["process"].update(terminal=True,
                                          consoleSize={"height": 30, "width": 100}))
    path = str(tmp_path / "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    runc.run("create", "-b", str(b), "--console-socket", path, "tty1")
    conn, _ = srv.accept()
    master = recv_fd(conn)
    assert stat.S_ISCHR(os.fstat(master).st_mode)
    runc.run("start", "tty1")
    out = b""
    deadline = time.monotonic() + 5
    while b"done" not in out and time.monotonic() < deadline:
        try:
            out += os.read(master, 1024)
        except OSError:
            break
    assert b"/dev/pts/0" in out and b"30 100" in out
    os.close(master)
    conn.close()
    srv.close()
    runc.run("delete", "--force", "tty1")


def test_terminal_without_console_socket_is_refused_on_create(runc, make_bundle):
    b = make_bundle(["sh"])
    edit(b, lambda c: c["process"].update(terminal=True))
    p = runc.run("create", "-b", str(b), "notty", check=False)
    assert p.returncode == 1 and b"cannot allocate tty" in p.stderr


def test_memory_and_pids_limits_apply_and_update(runc, make_bundle):
    b = make_bundle(["sleep", "100"])
    edit(b, lambda c: c["linux"]["resources"].update(memory={"limit": 64 * 1024 * 1024},
                                                     pids={"limit": 20}))
    runc.run("run", "-d", "-b", str(b), "res")
    st = json.loads(runc.run("state", "res").stdout)
    cg = open(f"/proc/{st['pid']}/cgroup").read()
    mem = next(line.split(":")[2] for line in cg.splitlines() if ":memory:" in line)
    base = f"/sys/fs/cgroup/memory{mem}"
    assert open(f"{base}/memory.limit_in_bytes").read().strip() == str(64 * 1024 * 1024)
    runc.run("update", "--memory", "128m", "--pids-limit", "30", "res")
    assert open(f"{base}/memory.limit_in_bytes").read().strip() == str(128 * 1024 * 1024)
    pids = next(line.split(":")[2] for line in cg.splitlines() if ":pids:" in line)
    assert open(f"/sys/fs/cgroup/pids{pids}/pids.max").read().strip() == "30"
    runc.run("update", "-r", "-", "res", input=json.dumps({"pids": {"limit": 40}}).encode())
    assert open(f"/sys/fs/cgroup/pids{pids}/pids.max").read().strip() == "40"
    stats = json.loads(runc.run("events", "--stats", "res").stdout)
    assert stats["type"] == "stats" and stats["id"] == "res"
    assert stats["data"]["pids"]["current"] >= 1
    runc.run("delete", "--force", "res")
    assert not os.path.exists(base)


def test_rlimits_sysctl_and_oom_score(runc, make_bundle):
    b = make_bundle(["sh", "-c", "ulimit -n; cat /proc/sys/net/ipv4/ip_forward"])

    def f(c):
        c["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}]
        c["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
        c["process"]["oomScoreAdj"] = 500

    edit(b, f)
    out = runc.run("run", "-b", str(b), "lim").stdout.decode().split()
    assert out == ["256", "1"]


def test_capabilities_user_and_no_new_privs(runc, make_bundle):
    b = make_bundle(["sh", "-c", "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status; "
                                 "id -u; id -G; umask"])

    def f(c):
        c["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [10, 100],
                                "umask": 0o027}
        c["process"]["capabilities"] = {k: ["CAP_KILL"] for k in
                                        ("bounding", "effective", "permitted", "inheritable",
                                         "ambient")}

    edit(b, f)
    out = runc.run("run", "-b", str(b), "caps").stdout.decode().splitlines()
    assert out[0].split() == ["CapEff:", f"{1 << 5:016x}"]
    assert out[1].split() == ["CapBnd:", f"{1 << 5:016x}"]
    assert out[2].split() == ["NoNewPrivs:", "1"]
    assert out[3] == "1000"
    assert out[4].split() == ["1000", "10", "100"]
    assert out[5] == "0027"


def test_seccomp_profile_applies(runc, make_bundle):
    b = make_bundle(["sh", "-c", "mkdir /tmp/x; echo $?"])
    edit(b, lambda c: c["linux"].update(seccomp={
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                      "errnoRet": 1}]}))
    p = runc.run("run", "-b", str(b), "sec")
    assert p.stdout.strip() == b"1"
    assert b"Operation not permitted" in p.stderr


def test_time_namespace_with_offsets(runc, make_bundle):
    b = make_bundle(["sh", "-c", "readlink /proc/self/ns/time; cat /proc/self/timens_offsets; "
                                 "cut -d. -f1 /proc/uptime"])

    def f(c):
        c["linux"]["namespaces"].append({"type": "time"})
        c["linux"]["timeOffsets"] = {"boottime": {"secs": 86400}, "monotonic": {"secs": 3600}}

    edit(b, f)
    lines = runc.run("run", "-b", str(b), "timens").stdout.decode().splitlines()
    assert lines[0] != os.readlink("/proc/self/ns/time")
    offsets = {line.split()[0]: line.split()[1:] for line in lines[1:3]}
    assert offsets == {"monotonic": ["3600", "0"], "boottime": ["86400", "0"]}
    with open("/proc/uptime") as up:
        assert int(lines[3]) >= 86400 + int(float(up.read().split()[0])) - 5


def test_hostname_and_domainname(runc, make_bundle):
    b = make_bundle(["sh", "-c", "hostname; cat /proc/sys/kernel/domainname"])
    edit(b, lambda c: c.update(hostname="box", domainname="example.test"))
    assert runc.run("run", "-b", str(b), "names").stdout == b"box\nexample.test\n"


@pytest.mark.parametrize("version", ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.1", "1.3.0"])
def test_any_1x_oci_version_is_accepted(runc, make_bundle, version):
    b = make_bundle(["true"])
    edit(b, lambda c: c.update(ociVersion=version))
    assert runc.run("run", "-b", str(b), f"v{version.replace('.', '-')}").returncode == 0
