"""What happens after an exit: restart policies, auto-remove, and an engine restarted with
containers running (live restore) or stopped with them (no live restore)."""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.engine.harness import Engine

pytestmark = pytest.mark.root


def inspect(engine, name: str) -> dict:
    return json.loads(engine.docker("inspect", name).stdout)[0]


def wait_for(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_on_failure_restarts_up_to_its_count(engine):
    cid = engine.docker("run", "-d", "--restart", "on-failure:2", "busybox", "sh", "-c",
                        "exit 4").stdout.decode().strip()

    def settled() -> bool:
        doc = inspect(engine, cid)
        return doc["RestartCount"] == 2 and doc["State"]["Status"] == "exited"

    wait_for(settled)
    time.sleep(0.5)  # no third restart comes
    doc = inspect(engine, cid)
    assert doc["RestartCount"] == 2 and doc["State"]["ExitCode"] == 4
    engine.docker("rm", cid)


def test_on_failure_does_not_restart_a_success(engine):
    cid = engine.docker("run", "-d", "--restart", "on-failure", "busybox", "true"
                        ).stdout.decode().strip()
    engine.docker("wait", cid)
    time.sleep(0.4)
    assert inspect(engine, cid)["RestartCount"] == 0
    engine.docker("rm", cid)


def test_always_restarts_until_stopped(engine):
    cid = engine.docker("run", "-d", "--restart", "always", "busybox", "true"
                        ).stdout.decode().strip()
    wait_for(lambda: inspect(engine, cid)["RestartCount"] >= 2)
    engine.docker("stop", cid)
    count = inspect(engine, cid)["RestartCount"]
    time.sleep(0.5)
    doc = inspect(engine, cid)
    assert doc["RestartCount"] == count and doc["State"]["Status"] == "exited"
    engine.docker("rm", cid)


def test_auto_remove_removes_after_exit(engine):
    cid = engine.docker("run", "-d", "--rm", "busybox", "true").stdout.decode().strip()
    wait_for(lambda: engine.docker("inspect", cid, check=False).returncode != 0)
    keys = engine.sdk.containers.list(all=True, filters={"id": cid})
    assert keys == []


def test_run_rm_with_no_network_exits_zero(engine):
    p = engine.docker("run", "--rm", "--network", "none", "busybox", "true", check=False)
    assert p.returncode == 0, p.stderr
    p = engine.docker("run", "--rm", "busybox", "sh", "-c", "exit 3", check=False)
    assert p.returncode == 3


def test_live_restore_keeps_a_running_container(busybox_tar, tmp_path):
    from pathlib import Path

    e = Engine(Path("/var/tmp"), config={"live-restore": True})
    try:
        e.start()
        e.load(busybox_tar)
        cid = e.docker("run", "-d", "--name", "keeper", "busybox", "sleep", "1000"
                       ).stdout.decode().strip()
        pid = inspect(e, cid)["State"]["Pid"]
        e.stop()
        e.start()
        doc = inspect(e, "keeper")
        assert doc["State"]["Running"] and doc["State"]["Pid"] == pid
        assert cid in e.docker("ps", "-q", "--no-trunc").stdout.decode().split()
        e.docker("stop", "-t", "0", "keeper")  # still ours: the exit is seen
        assert inspect(e, "keeper")["State"]["Status"] == "exited"
    finally:
        assert not e.destroy()



def test_after_a_live_restore_logs_and_attach_work_again(busybox_tar):
    """The container logs while the engine is down (the shim writes its log); afterwards
    `docker logs` has every line, with no gap, and a new attach sees what comes next."""
    import subprocess
    from pathlib import Path

    e = Engine(Path("/var/tmp"), config={"live-restore": True})
    try:
        e.start()
        e.load(busybox_tar)
        # the lines come from a loop in the background, stdin is read by a blocking read: a
        # `read -t` whose timeout ran out half way through a line would lose its start
        script = ("i=0; (while true; do echo line $i; i=$((i+1)); sleep 0.1; done) & "
                  "read x; [ \"$x\" = stop ] && exit 0; exit 1")
        cid = e.docker("run", "-d", "-i", "--name", "talker", "busybox", "sh", "-c", script
                       ).stdout.decode().strip()
        wait_for(lambda: b"line 3" in e.docker("logs", cid).stdout)
        e.stop()
        time.sleep(1)  # about ten lines while nobody listens
        e.start()
        wait_for(lambda: b"line 20" in e.docker("logs", cid).stdout)
        lines = e.docker("logs", cid).stdout.decode().split("\n")
        numbers = [int(x.split()[1]) for x in lines if x.startswith("line ")]
        assert numbers == list(range(len(numbers)))  # every line, in order: no gap
        env = {"DOCKER_HOST": e.host, "DOCKER_CONFIG": str(e.docker_config),
               "PATH": "/usr/bin:/bin"}
        attach = subprocess.Popen(["docker", "attach", cid], env=env, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(0.5)
        attach.stdin.write(b"stop\n")
        attach.stdin.flush()
        out, err = attach.communicate(timeout=20)
        assert b"line " in out, err  # new output reached the new attach
        assert attach.returncode == 0
        assert inspect(e, cid)["State"]["ExitCode"] == 0  # our "stop" went in through it
    finally:
        assert not e.destroy()

def test_exit_while_the_engine_is_down_is_recorded(busybox_tar):
    from pathlib import Path

    e = Engine(Path("/var/tmp"), config={"live-restore": True})
    try:
        e.start()
        e.load(busybox_tar)
        cid = e.docker("run", "-d", "busybox", "sh", "-c", "sleep 1; exit 7"
                       ).stdout.decode().strip()
        e.stop()
        time.sleep(1.5)
        e.start()
        wait_for(lambda: inspect(e, cid)["State"]["Status"] == "exited")
        assert inspect(e, cid)["State"]["ExitCode"] == 7
    finally:
        assert not e.destroy()


def test_engine_stop_without_live_restore_stops_containers(fresh_engine):
    e = fresh_engine
    e.docker("run", "-d", "--name", "stops", "busybox", "sleep", "1000")
    e.docker("run", "-d", "--name", "back", "--restart", "always", "busybox", "sleep", "1000")
    e.stop()
    e.start()
    assert inspect(e, "stops")["State"]["Status"] == "exited"
    wait_for(lambda: inspect(e, "back")["State"]["Running"])  # always: started again


def test_kill_9_of_the_engine_loses_nothing_written(fresh_engine):
    e = fresh_engine
    created = e.docker("create", "--name", "kept", "busybox", "true").stdout.decode().strip()
    e.docker("run", "-d", "--name", "runner", "busybox", "sleep", "1000")
    half = e.data_root / "containers" / ("f" * 64)  # a create cut short
    half.mkdir()
    (half / "hostconfig.json").write_text("{}")
    e.kill()
    e.start()
    assert inspect(e, "kept")["Id"] == created
    assert inspect(e, "runner")["State"]["Running"]
    assert not half.exists()
    e.docker("rm", "-f", "kept", "runner")


def test_logs_follow_ends_when_the_container_does(engine):
    cid = engine.docker("run", "-d", "busybox", "sh", "-c",
                        "for i in 1 2 3; do echo $i; sleep 0.2; done").stdout.decode().strip()
    p = engine.docker("logs", "-f", cid, timeout=20)
    assert p.stdout == b"1\n2\n3\n"
    engine.docker("rm", cid)


def test_a_killed_supervisor_is_started_again_and_finds_its_containers(fresh_engine):
    import os
    import signal

    e = fresh_engine
    cid = e.docker("run", "-d", "busybox", "sleep", "1000").stdout.decode().strip()
    pid_file = e.exec_root / "containerd" / "containerd.pid"
    old = int(pid_file.read_text())
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: pid_file.exists() and int(pid_file.read_text()) != old, timeout=20)
    out = e.docker("run", "--rm", "busybox", "echo", "again", timeout=60).stdout
    assert out == b"again\n"
    assert inspect(e, cid)["State"]["Running"]  # the shim kept it; the new one took it back
    e.docker("stop", "-t", "0", cid)
    assert inspect(e, cid)["State"]["Status"] == "exited"
