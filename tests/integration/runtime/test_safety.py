"""The runtime's safety properties: no leaked descriptors, no reachable host binary, no
mount outside the rootfs, nothing left behind by a bad config."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time

import pytest

from dockyard.bootstrap.busybox import read_config, write_config

pytestmark = pytest.mark.root


def cgroup_dirs(cid: str) -> list[str]:
    found = []
    for root, dirs, _files in os.walk("/sys/fs/cgroup"):
        for d in dirs:
            if cid in d:
                found.append(os.path.join(root, d))
        if root.count("/") > 4:
            dirs[:] = []
    return found


def test_no_descriptor_of_the_runtime_leaks_into_the_container(runc, make_bundle):
    leak_r, leak_w = os.pipe()
    os.set_inheritable(leak_r, True)
    try:
        b = make_bundle(["ls", "/proc/self/fd"])
        p = runc.run("run", "-b", str(b), "fds", pass_fds=(leak_r,))
        assert sorted(p.stdout.decode().split()) == ["0", "1", "2", "3"]  # 3: ls's own dir
    finally:
        os.close(leak_r)
        os.close(leak_w)


def test_a_runtime_started_with_stdin_closed_runs_the_container(runc, make_bundle):
    """Descriptors made or received then take the lowest numbers, 0 among them: none may
    end up where stage-1's stdio or sync socket go (runc runs it too, and shows the same)."""
    b = make_bundle(["ls", "/proc/self/fd"])
    p = runc.run("run", "-b", str(b), "closed-in", stdin=None, preexec_fn=lambda: os.close(0))
    assert sorted(p.stdout.decode().split()) == ["0", "1", "2", "3"]


def test_tracing_records_the_steps_and_leaks_nothing(runc, make_bundle, tmp_path):
    """DOCKYARD_RUNC_TRACE (the benchmark's timeline) passes a descriptor to stage-1 and the
    init: it must be gone by the time the container's process runs."""
    log = tmp_path / "trace.log"
    b = make_bundle(["ls", "/proc/self/fd"])
    p = runc.run("run", "-b", str(b), "traced", env={"DOCKYARD_RUNC_TRACE": str(log)})
    assert sorted(p.stdout.decode().split()) == ["0", "1", "2", "3"]
    steps = [line.split(" ", 2)[2] for line in log.read_text().splitlines()]
    for step in ("cli: started", "stage-1: imported", "init: rootfs prepared", "init: execve",
                 "cli: container exited", "cli: deleted"):
        assert step in steps


def test_preserve_fds_passes_descriptors_on(runc, make_bundle, tmp_path):
    b = make_bundle(["sh", "-c", "echo through-fd-3 >&3"])
    out = tmp_path / "out"
    cmd = " ".join(runc.cmd("run", "--preserve-fds", "1", "-b", str(b), "keepfd"))
    p = subprocess.run(["sh", "-c", f"exec 3>{out}; {cmd}"], capture_output=True)
    assert p.returncode == 0, p.stderr
    assert out.read_text() == "through-fd-3\n"


def test_exec_sees_no_leaked_descriptor_and_cwd_inside(runc, make_bundle):
    b = make_bundle(["sleep", "100"])
    runc.run("run", "-d", "-b", str(b), "fde")
    p = runc.run("exec", "fde", "sh", "-c", "ls /proc/self/fd; readlink /proc/self/cwd")
    lines = p.stdout.decode().split()
    assert sorted(lines[:-1]) == ["0", "1", "2", "3"]
    assert lines[-1] == "/"
    runc.run("delete", "--force", "fde")


def test_host_binary_is_not_reachable_through_proc_exe(runc, make_bundle):
    b = make_bundle(["sleep", "100"])
    runc.run("create", "-b", str(b), "exe")
    pid = json.loads(runc.run("state", "exe").stdout)["pid"]
    assert os.readlink(f"/proc/{pid}/exe").startswith("/memfd:")
    with pytest.raises(OSError):
        open(f"/proc/{pid}/exe", "r+b")  # sealed memfd: not writable even by root
    runc.run("start", "exe")
    # from inside: the init (now sleep) is dumpable, but an exec'd process's runtime stage
    # is not; the container cannot open any host interpreter.
    p = runc.run("exec", "exe", "sh", "-c", "for p in /proc/[0-9]*; do readlink $p/exe; done")
    for line in p.stdout.decode().split():
        assert "python" not in line, line
    runc.run("delete", "--force", "exe")


def test_proc_self_exe_entrypoint_reaches_only_the_sealed_copy(runc, make_bundle):
    """The CVE-2019-5736 attack: an entrypoint `#!/proc/self/exe` makes the kernel run
    whatever binary the runtime's process was started from, inside the container."""
    interpreter = os.path.realpath(sys.executable)
    before = hashlib.sha256(open(interpreter, "rb").read()).hexdigest()
    b = make_bundle(["sleep", "100"])
    evil = b / "rootfs" / "bin" / "evil"
    evil.write_text("#!/proc/self/exe\n")
    evil.chmod(0o755)
    runc.run("run", "-d", "-b", str(b), "evil")
    p = runc.run("exec", "evil", "/bin/evil", check=False)
    assert p.returncode != 0  # the sealed interpreter finds no library in the container
    runc.run("delete", "--force", "evil")
    assert hashlib.sha256(open(interpreter, "rb").read()).hexdigest() == before


def test_mount_destination_through_symlink_stays_inside_rootfs(runc, make_bundle, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    b = make_bundle(["sh", "-c", "touch /escape/pwned && echo ok"])
    os.symlink(str(outside), b / "rootfs" / "escape")

    def f(c):
        c["mounts"].append({"destination": "/escape", "type": "tmpfs", "source": "tmpfs"})

    cfg = read_config(b)
    f(cfg)
    write_config(b, cfg)
    runc.run("run", "-b", str(b), "sym", check=False)
    assert list(outside.iterdir()) == []


def runtime_processes() -> list[int]:
    """Processes still running our sealed interpreter: a stage-1 or an init not yet exec'd."""
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.readlink(f"/proc/{d}/exe").startswith("/memfd:dockyard-runc"):
                    found.append(int(d))
            except OSError:
                pass
    return found


def test_bad_config_leaves_nothing_behind(runc, make_bundle):
    b = make_bundle(["true"])
    cases = [
        lambda c: c.update(ociVersion="2.0.0"),
        lambda c: c["process"].update(args=[]),
        lambda c: c["linux"]["namespaces"].append({"type": "bogus"}),
        lambda c: c["mounts"].append({"destination": "/x", "type": "nosuchfs", "source": "x"}),
        lambda c: c["process"].update(capabilities={"bounding": ["CAP_NOPE"]}),
        lambda c: c["process"].update(args=["/no/such/binary"]),
        lambda c: c["linux"].update(seccomp={"defaultAction": "SCMP_ACT_BOGUS"}),
    ]
    original = read_config(b)
    for i, change in enumerate(cases):
        cfg = json.loads(json.dumps(original))
        change(cfg)
        write_config(b, cfg)
        cid = f"bad{i}"
        p = runc.run("create", "-b", str(b), cid, check=False)
        assert p.returncode == 1, (i, p.stderr)
        assert b"Traceback" not in p.stderr, p.stderr
        assert not (runc.root / cid).exists(), i
        assert cgroup_dirs(cid) == [], i
        assert runtime_processes() == [], i
    (b / "config.json").write_text("{not json")
    p = runc.run("create", "-b", str(b), "badjson", check=False)
    assert p.returncode == 1 and b"invalid JSON" in p.stderr
    assert not (runc.root / "badjson").exists()


@pytest.mark.parametrize("step", ["cli: stage-1 spawned", "cli: config validated",
                                  "cli: cgroup made", "cli: init forked", "cli: init ready"])
def test_create_killed_at_any_step_is_cleaned_up_by_delete(runc, make_bundle, tmp_path, step):
    """kill -9 of `create` after each step (found through DOCKYARD_RUNC_TRACE): what it left
    is a record that `delete --force` removes with everything it made."""
    b = make_bundle(["sleep", "100"])
    log = tmp_path / "trace.log"
    cid = "killed"
    runc.created.append(cid)
    p = subprocess.Popen(runc.cmd("create", "-b", str(b), cid), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env={"DOCKYARD_RUNC_TRACE": str(log)})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and p.poll() is None:
        if log.exists() and step in log.read_text():
            break
        time.sleep(0.0005)
    p.kill()
    p.wait()
    assert runc.run("delete", "--force", cid).returncode == 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (runtime_processes() or cgroup_dirs(cid)):
        time.sleep(0.05)
    assert not (runc.root / cid).exists()
    assert cgroup_dirs(cid) == []
    assert runtime_processes() == []
