"""dockyard-runc's lifecycle as a runc caller sees it: create, start, state, kill, delete,
run, list, exec — real containers on the busybox bundle."""

from __future__ import annotations

import json
import os
import time

import pytest

pytestmark = pytest.mark.root


def wait_status(runc, cid: str, want: str, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        st = json.loads(runc.run("state", cid).stdout)
        if st["status"] == want or time.monotonic() > deadline:
            return st
        time.sleep(0.02)


def test_run_returns_the_container_exit_code(runc, make_bundle):
    b = make_bundle(["sh", "-c", "echo out; echo err >&2; exit 3"])
    p = runc.run("run", "-b", str(b), "exit3", check=False)
    assert p.returncode == 3
    assert p.stdout == b"out\n"
    assert p.stderr == b"err\n"
    assert runc.run("list", "-q").stdout == b""


def test_run_true(runc, make_bundle):
    b = make_bundle(["/bin/true"])
    assert runc.run("run", "--bundle", str(b), "t").returncode == 0


def test_home_comes_from_the_containers_passwd_when_env_has_none(runc, make_bundle):
    from dockyard.runtime.specgen import default_spec

    def process(**changes) -> dict:
        p = default_spec(["sh", "-c", "echo $HOME"], terminal=False)["process"]
        p.update(changes)
        return p

    b = make_bundle(["sh", "-c", "echo $HOME"])
    assert runc.run("run", "-b", str(b), "home0").stdout == b"/root\n"
    b = make_bundle(process=process(user={"uid": 1000, "gid": 1000}))
    out = runc.run("run", "-b", str(b), "home1000", check=False)
    assert out.stdout == b"/home/user\n", out.stderr
    b = make_bundle(process=process(env=["HOME=/given", "PATH=/bin"]))
    assert runc.run("run", "-b", str(b), "homegiven").stdout == b"/given\n"


def test_container_is_pid_1_with_its_hostname(runc, make_bundle):
    b = make_bundle(["sh", "-c", "echo $$; hostname; cat /proc/1/cmdline | tr '\\0' ' '"])
    out = runc.run("run", "-b", str(b), "pid1").stdout.decode().split("\n")
    assert out[0] == "1"
    assert out[1] == "dockyard"
    assert out[2].startswith("sh -c")


def test_create_start_state_kill_delete(runc, make_bundle):
    b = make_bundle(["sleep", "100"])
    runc.run("create", "-b", str(b), "--pid-file", str(b / "pid"), "c1")
    st = json.loads(runc.run("state", "c1").stdout)
    assert st["status"] == "created"
    assert st["id"] == "c1" and st["bundle"] == str(b)
    assert st["pid"] == int((b / "pid").read_text())
    assert os.readlink(f"/proc/{st['pid']}/exe").startswith("/memfd:dockyard-runc")
    runc.run("start", "c1")
    st = wait_status(runc, "c1", "running")
    assert st["status"] == "running"
    assert os.readlink(f"/proc/{st['pid']}/exe").endswith("busybox")
    p = runc.run("delete", "c1", check=False)
    assert p.returncode == 1 and b"not stopped" in p.stderr
    runc.run("kill", "c1", "KILL")
    assert wait_status(runc, "c1", "stopped")["status"] == "stopped"
    runc.run("delete", "c1")
    p = runc.run("state", "c1", check=False)
    assert p.returncode == 1 and b"container does not exist" in p.stderr


def test_start_twice_is_refused(runc, make_bundle):
    b = make_bundle(["sleep", "100"])
    runc.run("run", "-d", "-b", str(b), "c2")
    p = runc.run("start", "c2", check=False)
    assert p.returncode == 1
    assert b"cannot start an already running container" in p.stderr
    runc.run("delete", "--force", "c2")


def test_create_of_an_existing_id_is_refused(runc, make_bundle):
    b = make_bundle(["sleep", "100"])
    runc.run("create", "-b", str(b), "dup")
    p = runc.run("create", "-b", str(b), "dup", check=False)
    assert p.returncode == 1 and b"container with id exists: dup" in p.stderr
    runc.run("delete", "--force", "dup")


def test_list_table_and_json(runc, make_bundle):
    b = make_bundle(["sleep", "100"])
    runc.run("create", "-b", str(b), "l1")
    table = runc.run("list").stdout.decode().splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert table[1].split()[0] == "l1" and table[1].split()[2] == "created"
    rows = json.loads(runc.run("list", "--format", "json").stdout)
    assert [r["id"] for r in rows] == ["l1"] and rows[0]["status"] == "created"
    runc.run("delete", "-f", "l1")


def test_exec_runs_in_the_container(runc, make_bundle):
    b = make_bundle(["sleep", "100"])
    runc.run("run", "-d", "-b", str(b), "e1")
    p = runc.run("exec", "e1", "sh", "-c", "hostname; echo $$ >/dev/null; cat /proc/1/cmdline")
    assert p.stdout.decode().startswith("dockyard\nsleep")
    p = runc.run("exec", "e1", "sh", "-c", "exit 7", check=False)
    assert p.returncode == 7
    p = runc.run("exec", "--env", "FOO=bar", "--cwd", "/tmp", "e1", "sh", "-c",
                 "echo $FOO $(pwd)")
    assert p.stdout == b"bar /tmp\n"
    p = runc.run("exec", "-u", "1000:1000", "e1", "id")
    assert p.stdout.startswith(b"uid=1000(user) gid=1000(user)")
    pidfile = b / "exec.pid"
    runc.run("exec", "-d", "--pid-file", str(pidfile), "e1", "sleep", "50")
    pid = int(pidfile.read_text())
    assert open(f"/proc/{pid}/cmdline").read().startswith("sleep")
    p = runc.run("exec", "e1", "nosuchcommand", check=False)
    assert p.returncode != 0 and b"executable file not found" in p.stderr
    runc.run("delete", "--force", "e1")


def test_exec_with_process_json(runc, make_bundle, tmp_path):
    b = make_bundle(["sleep", "100"])
    runc.run("run", "-d", "-b", str(b), "e2")
    proc = {"args": ["sh", "-c", "echo $A; id -u"], "env": ["A=1", "PATH=/bin"], "cwd": "/",
            "user": {"uid": 1000, "gid": 1000}, "terminal": False}
    (tmp_path / "p.json").write_text(json.dumps(proc))
    p = runc.run("exec", "--process", str(tmp_path / "p.json"), "e2")
    assert p.stdout == b"1\n1000\n"
    runc.run("delete", "--force", "e2")


def test_kill_and_delete_errors_in_runc_words(runc, make_bundle):
    p = runc.run("kill", "nosuch", check=False)
    assert p.returncode == 1 and b"container does not exist" in p.stderr
    p = runc.run("delete", "nosuch", check=False)
    assert p.returncode == 1
    assert runc.run("delete", "--force", "nosuch").returncode == 0
    b = make_bundle(["sleep", "100"])
    runc.run("run", "-d", "-b", str(b), "k1")
    p = runc.run("kill", "k1", "NOSIG", check=False)
    assert p.returncode == 1 and b'unknown signal \\"NOSIG\\"' in p.stderr
    runc.run("kill", "k1", "SIGKILL")  # pid 1 ignores SIGTERM without a handler
    assert wait_status(runc, "k1", "stopped")["status"] == "stopped"
    p = runc.run("kill", "k1", check=False)
    assert p.returncode == 1 and b"container not running" in p.stderr
    runc.run("delete", "k1")


def test_pause_resume(runc, make_bundle):
    b = make_bundle(["sleep", "100"])
    runc.run("run", "-d", "-b", str(b), "p1")
    runc.run("pause", "p1")
    assert wait_status(runc, "p1", "paused")["status"] == "paused"
    runc.run("resume", "p1")
    assert wait_status(runc, "p1", "running")["status"] == "running"
    runc.run("delete", "--force", "p1")


def test_ps_lists_the_container_processes(runc, make_bundle):
    b = make_bundle(["sleep", "100"])
    runc.run("run", "-d", "-b", str(b), "ps1")
    st = json.loads(runc.run("state", "ps1").stdout)
    assert json.loads(runc.run("ps", "--format", "json", "ps1").stdout) == [st["pid"]]
    table = runc.run("ps", "ps1").stdout.decode().splitlines()
    assert "PID" in table[0] and str(st["pid"]) in table[1]
    runc.run("delete", "--force", "ps1")


def test_logs_json_errors_as_runc(runc, tmp_path):
    log = tmp_path / "log.json"
    p = runc.run("--log", str(log), "--log-format", "json", "state", "nosuch", check=False)
    assert p.returncode == 1
    line = json.loads(log.read_text().splitlines()[-1])
    assert line["level"] == "error" and line["msg"] == "container does not exist"
    assert p.stderr == b"container does not exist\n"


def test_systemd_cgroup_is_a_clear_error(runc, make_bundle):
    b = make_bundle(["true"])
    p = runc.run("--systemd-cgroup", "create", "-b", str(b), "sd", check=False)
    assert p.returncode == 1 and b"systemd cgroup driver is not supported" in p.stderr
    assert runc.run("list", "-q").stdout == b""
