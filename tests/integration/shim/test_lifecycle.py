"""A container's life through its shim: create, start, wait, kill, delete; exit statuses as
Docker reports them; events; the runtime's own errors; pause, update, pids, stats, OOM."""

from __future__ import annotations

import os
import threading
import time

import pytest

from dockyard.runtime.specgen import default_spec
from dockyard.shim.protocol import ShimError
from tests.integration.shim.conftest import alive, log_entries, mounted, wait_for

pytestmark = pytest.mark.root

BOTH = pytest.mark.parametrize("shims", ["dockyard-runc", "runc"], indirect=True)


def linux_without(ns: str) -> dict:
    linux = default_spec(["sh"], terminal=False)["linux"]
    linux["namespaces"] = [n for n in linux["namespaces"] if n["type"] != ns]
    return linux


@BOTH
@pytest.mark.parametrize(("script", "signal", "status"), [
    ("exit 0", None, 0),
    ("exit 3", None, 3),
    ("sleep 100", 15, 143),  # without a pid namespace: an init would ignore SIGTERM
    ("sleep 100", 9, 137),
])
def test_wait_reports_the_exit_status_as_docker_does(shims, script, signal, status):
    overrides = {"linux": linux_without("pid")} if signal == 15 else {}
    client, bundle, _cid = shims.container(["sh", "-c", script] if signal != 15
                                           else ["sleep", "100"], **overrides)
    pid = client.start()["pid"]
    assert client.state()["status"] in ("running", "stopped")
    if signal:
        client.kill(signal=signal)
    exited = client.wait()
    assert exited["exit_status"] == status
    assert exited["exited_at"].endswith("Z")
    state = client.state()
    assert (state["status"], state["exit_status"], state["pid"]) == ("stopped", status, pid)
    import json

    assert json.loads((bundle / "exit.json").read_text()) == exited  # durable before wait
    with pytest.raises(ShimError) as e:
        client.kill(signal=9)
    assert e.value.code == "not_found"
    assert client.delete() == {"pid": pid, **exited}
    with pytest.raises(ShimError) as e:
        client.state()
    assert e.value.code == "not_found"


@BOTH
def test_events_tell_start_exit_and_delete_in_order(shims):
    client, _bundle, cid = shims.container(["sh", "-c", "exit 4"])
    events = client.events()
    pid = client.start()["pid"]
    client.wait()
    client.delete()
    got = []
    for event in events:
        got.append(event)
        if event["topic"] == "/tasks/delete":
            break
    assert [e["topic"] for e in got] == ["/tasks/start", "/tasks/exit", "/tasks/delete"]
    assert got[1] == {"topic": "/tasks/exit", "id": cid, "exec_id": "", "pid": pid,
                      "exit_status": 4, "exited_at": got[1]["exited_at"]}


@BOTH
def test_a_runtime_failure_is_an_error_in_the_runtimes_words(shims):
    bundle, cid = shims.bundle(["/no/such/program"])
    client = shims.start(bundle, cid)
    with pytest.raises(ShimError) as e:
        client.create()
    assert e.value.message.startswith("OCI runtime create failed: ")
    assert "/no/such/program" in e.value.message and "Traceback" not in e.value.message
    with pytest.raises(ShimError) as e:
        client.state()
    assert e.value.code == "not_found"
    assert not (shims.runtime_root / cid).exists()
    client.shutdown()  # nothing was created: the shim goes
    pid = int((bundle / "shim.pid").read_text())
    wait_for(lambda: not alive(pid), what="the shim to exit")


def stage1_children(shim: int) -> list[int]:
    """The shim's children still running dockyard-runc's sealed interpreter."""
    found = []
    for d in os.listdir("/proc"):
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rpartition(")")[2].split()[1])
            if ppid == shim and os.readlink(f"/proc/{d}/exe").startswith("/memfd:dockyard-runc"):
                found.append(int(d))
        except (OSError, ValueError):
            pass
    return found


def test_the_stage1_the_shim_starts_early_serves_the_create_with_its_stdio(shims):
    bundle, cid = shims.bundle(["sh", "-c", "echo out; echo err >&2; exit 4"])
    client = shims.start(bundle, cid)
    shim = int((bundle / "shim.pid").read_text())
    assert len(stage1_children(shim)) == 1  # waiting before anyone asked for it
    init = client.create(log=shims.log(bundle))["pid"]
    # Taken over, not a second one: what remains is the init, waiting to be started.
    assert stage1_children(shim) == [init]
    client.start()
    assert client.wait()["exit_status"] == 4
    client.delete()
    entries = log_entries(bundle / "container.log")
    assert sorted((e["stream"], e["log"]) for e in entries) == [
        ("stderr", "err\n"), ("stdout", "out\n")]


def test_an_unused_stage1_goes_with_its_shim(shims):
    bundle, cid = shims.bundle(["true"])
    client = shims.start(bundle, cid)
    shim = int((bundle / "shim.pid").read_text())
    [stage1] = stage1_children(shim)
    client.shutdown()
    wait_for(lambda: not alive(shim) and not alive(stage1), what="shim and stage-1 to exit")


def test_create_mounts_the_rootfs_and_delete_unmounts_it(shims):
    bundle, cid = shims.bundle(["cat", "/etc/hostname"], copy=False)
    client = shims.start(bundle, cid)
    client.create(rootfs=[{"type": "bind", "source": str(shims.rootfs),
                           "options": ["rbind", "ro"]}], log=shims.log(bundle))
    target = str(bundle / "rootfs")
    assert mounted(target)
    client.start()
    assert client.wait()["exit_status"] == 0
    assert [e["log"] for e in log_entries(bundle / "container.log")] == ["dockyard\n"]
    client.delete()
    assert not mounted(target)
    with pytest.raises(ShimError) as e:
        client.create(rootfs=[{"type": "bind", "source": "/no/such/dir", "options": ["rbind"]}])
    assert e.value.code in ("already_exists", "unavailable")  # deleted: the shim is done


def test_a_failed_mount_is_an_error_and_leaves_nothing(shims):
    bundle, cid = shims.bundle(["true"], copy=False)
    client = shims.start(bundle, cid)
    with pytest.raises(ShimError) as e:
        client.create(rootfs=[{"type": "bind", "source": "/no/such/dir", "options": ["rbind"]}])
    assert "failed to mount rootfs" in e.value.message
    assert not mounted(bundle / "rootfs")


def test_delete_of_a_created_task_kills_its_init(shims):
    client, _bundle, _cid = shims.container(["sleep", "100"])
    pid = client.state()["pid"]
    with pytest.raises(ShimError) as e:
        client.exec("e1", {"args": ["true"], "cwd": "/"})
        client.start(exec_id="e1")
    done = client.delete()
    assert done["pid"] == pid and done["exit_status"] == 137
    assert not alive(pid)
    del e


def test_a_running_task_cannot_be_deleted_or_started_twice(shims):
    client, _bundle, _cid = shims.container(["sleep", "100"])
    client.start()
    for call in (client.delete, client.start):
        with pytest.raises(ShimError) as e:
            call()
        assert e.value.code == "failed_precondition"
    client.kill(signal=9, all=True)
    assert client.wait()["exit_status"] == 137


def test_wait_blocks_until_the_exit_for_every_waiter(shims):
    client, _bundle, _cid = shims.container(["sleep", "0.3"])
    client.start()
    results = []
    threads = [threading.Thread(target=lambda: results.append(client.wait())) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    assert results == [] and client.state()["status"] == "running"
    for t in threads:
        t.join(10)
    assert [r["exit_status"] for r in results] == [0, 0, 0]


def test_pause_freezes_and_resume_thaws(shims):
    bundle, cid = shims.bundle(["sh", "-c", "while true; do echo tick; sleep 0.01; done"])
    client = shims.start(bundle, cid)
    client.create(log=shims.log(bundle))
    events = client.events()
    client.start()
    log = bundle / "container.log"
    wait_for(lambda: log.exists() and log.stat().st_size > 0, what="output")
    client.pause()
    assert client.state()["status"] == "paused"
    with pytest.raises(ShimError) as e:
        client.pause()
    assert e.value.code == "failed_precondition"
    time.sleep(0.05)
    frozen = log.stat().st_size
    time.sleep(0.2)
    assert log.stat().st_size == frozen
    client.resume()
    assert client.state()["status"] == "running"
    wait_for(lambda: log.stat().st_size > frozen, what="output after resume")
    topics = [next(events)["topic"] for _ in range(3)]
    assert topics == ["/tasks/start", "/tasks/paused", "/tasks/resumed"]
    client.kill(signal=9)
    client.wait()


def own_memory_cgroup(pid: int) -> str:
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _h, ctrls, path = line.rstrip("\n").split(":", 2)
            if "memory" in ctrls.split(","):
                return "/sys/fs/cgroup/memory" + path
    raise AssertionError("no memory cgroup")


@pytest.mark.skipif(not os.path.isdir("/sys/fs/cgroup/memory"), reason="no cgroup v1 memory")
@BOTH
def test_update_sets_the_memory_limit_in_the_containers_cgroup(shims):
    client, _bundle, _cid = shims.container(["sleep", "100"])
    pid = client.start()["pid"]
    client.update({"memory": {"limit": 64 << 20}})
    with open(os.path.join(own_memory_cgroup(pid), "memory.limit_in_bytes")) as f:
        assert int(f.read()) == 64 << 20
    with pytest.raises(ShimError) as e:
        client.call("update", resources="lots")
    assert e.value.code == "invalid_argument"
    client.kill(signal=9)
    client.wait()


@BOTH
def test_pids_and_stats_come_from_the_runtime(shims):
    client, _bundle, _cid = shims.container(["sh", "-c", "sleep 100 & sleep 100; exit"])
    pid = client.start()["pid"]
    wait_for(lambda: len(client.pids()) == 3, what="three processes")
    assert {"pid": pid} in client.pids()
    stats = client.stats()
    assert stats["pids"]["current"] == 3
    assert stats["memory"]["usage"]["usage"] > 0
    client.kill(signal=9, all=True)
    client.wait()
    try:
        assert client.pids() == []  # runc lists no process
    except ShimError:
        pass  # dockyard-runc: the container is not running


@pytest.mark.skipif(not os.path.isdir("/sys/fs/cgroup/memory"), reason="no cgroup v1 memory")
def test_an_oom_kill_is_an_event(shims):
    linux = default_spec(["sh"], terminal=False)["linux"]
    linux["resources"] = {**linux.get("resources", {}),
                          "memory": {"limit": 16 << 20, "swap": 16 << 20}}
    client, _bundle, _cid = shims.container(["tail", "/dev/zero"], linux=linux)
    events = client.events()
    client.start()
    assert client.wait()["exit_status"] == 137
    topics = set()
    for event in events:
        topics.add(event["topic"])
        if event["topic"] == "/tasks/exit":
            break
    assert "/tasks/oom" in topics


def test_create_start_wait_delete_of_true_is_quick(shims, capsys):
    timings = []
    for _ in range(5):
        bundle, cid = shims.bundle(["true"])
        client = shims.start(bundle, cid)
        t0 = time.perf_counter()
        client.create()
        client.start()
        client.wait()
        client.delete()
        timings.append((time.perf_counter() - t0) * 1000)
    with capsys.disabled():
        print(f"\ncreate+start+wait+delete of /bin/true through the shim: "
              f"{', '.join(f'{t:.0f}' for t in timings)} ms")
