"""Tasks through dockyard-containerd: run, exec, attach, resize, signals, exit codes, logs with
rotation, pause/resume, resource updates, events and many containers at once; and
`dockyard-ctr` doing the same from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from google.protobuf import any_pb2

from dockyard.api.services.tasks.v1 import tasks_pb2 as tpb
from dockyard.api.types import task_pb2
from dockyard.containerd.client import Client, Image
from tests.integration.containerd.daemon import Subscriber, unique
from tests.integration.supervisor.conftest import Supervisor, wait_until

pytestmark = pytest.mark.root

CTR = [sys.executable, "-m", "dockyard.containerd.ctr.main"]


def detached(c: Client, image: Image, cid: str, args: list[str], **task: object) -> int:
    mounts = c.new_container(cid, image, args)
    c.create_task(cid, mounts, **task)  # type: ignore[arg-type]
    return c.start(cid)


def status(c: Client, cid: str, exec_id: str = "") -> int:
    return c.call(c.tasks.Get, tpb.GetRequest(container_id=cid, exec_id=exec_id)).process.status


def remove(c: Client, cid: str) -> None:
    c.delete_task(cid)
    c.remove_container(cid)


@pytest.fixture
def client(supervisor: Supervisor) -> Client:
    return supervisor.pulled()


@pytest.fixture
def image(client: Client, supervisor: Supervisor) -> Image:
    return client.image(supervisor.image_ref)


def test_exit_codes_and_signals(client: Client, image: Image) -> None:
    assert client.run(unique("c"), image, ["sh", "-c", "exit 3"]) == 3
    assert client.run(unique("c"), image, ["/bin/true"]) == 0
    cid = unique("c")
    # the init handles SIGTERM (as pid 1 it would ignore a signal it does not handle)
    detached(client, image, cid,
             ["sh", "-c", "trap 'exit 42' TERM; while true; do sleep 0.05; done"])
    # an exec'd process dies of SIGTERM: 128 + 15
    spec = {"args": ["sleep", "600"], "cwd": "/", "env": ["PATH=/bin"],
            "user": {"uid": 0, "gid": 0}}
    client.call(client.tasks.Exec, tpb.ExecProcessRequest(
        container_id=cid, exec_id="s", spec=any_pb2.Any(value=json.dumps(spec).encode())))
    client.start(cid, "s")
    client.call(client.tasks.Kill, tpb.KillRequest(container_id=cid, exec_id="s", signal=15))
    assert client.wait(cid, "s") == 143
    client.call(client.tasks.DeleteProcess, tpb.DeleteProcessRequest(container_id=cid,
                                                                     exec_id="s"))
    client.call(client.tasks.Kill, tpb.KillRequest(container_id=cid, signal=15))
    assert client.wait(cid) == 42
    assert status(client, cid) == task_pb2.STOPPED
    remove(client, cid)
    cid = unique("c")
    detached(client, image, cid, ["sleep", "600"])
    client.call(client.tasks.Kill, tpb.KillRequest(container_id=cid, signal=9))
    assert client.wait(cid) == 137
    remove(client, cid)
    assert client.call(client.tasks.List, tpb.ListTasksRequest()).tasks == []


def test_exec_pause_resume_update_pids_metrics(client: Client, image: Image) -> None:
    cid = unique("c")
    pid = detached(client, image, cid, ["sleep", "600"])
    spec = {"args": ["sh", "-c", "echo out; echo err >&2; exit 5"], "cwd": "/",
            "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}}
    client.call(client.tasks.Exec, tpb.ExecProcessRequest(
        container_id=cid, exec_id="e1", stdin=False,
        spec=any_pb2.Any(type_url="process", value=json.dumps(spec).encode())))
    out = attach(client, cid, "e1")
    assert client.wait(cid, "e1") == 5
    assert out == {1: b"out\n", 2: b"err\n"}
    client.call(client.tasks.DeleteProcess, tpb.DeleteProcessRequest(container_id=cid,
                                                                     exec_id="e1"))
    pids = client.call(client.tasks.ListPids, tpb.ListPidsRequest(container_id=cid)).processes
    assert [p.pid for p in pids] == [pid]

    client.call(client.tasks.Pause, tpb.PauseTaskRequest(container_id=cid))
    assert status(client, cid) == task_pb2.PAUSED
    client.call(client.tasks.Resume, tpb.ResumeTaskRequest(container_id=cid))
    assert status(client, cid) == task_pb2.RUNNING

    limit = 64 << 20
    client.call(client.tasks.Update, tpb.UpdateTaskRequest(
        container_id=cid, resources=any_pb2.Any(
            type_url="resources", value=json.dumps({"memory": {"limit": limit}}).encode())))
    cgroup = Path(f"/sys/fs/cgroup/memory/{client.namespace}/{cid}/memory.limit_in_bytes")
    if cgroup.exists():  # cgroup v1 here
        assert int(cgroup.read_text()) == limit
    metrics = client.call(client.tasks.Metrics, tpb.MetricsRequest(filters=[f"id=={cid}"]))
    assert [m.id for m in metrics.metrics] == [cid]
    client.call(client.tasks.Kill, tpb.KillRequest(container_id=cid, signal=9))
    assert client.wait(cid) == 137
    remove(client, cid)


def attach(c: Client, cid: str, exec_id: str = "", stdin: bytes | None = None,
           start: bool = True) -> dict[int, bytes]:
    """Attach, start, collect the output by stream until the process ends."""
    def requests():  # type: ignore[no-untyped-def]
        yield tpb.AttachRequest(container_id=cid, exec_id=exec_id, stdin=stdin is not None,
                                stdout=True, stderr=True, stdin_once=True)
        if stdin is not None:
            yield tpb.AttachRequest(data=stdin, close_stdin=True)

    out: dict[int, bytes] = {}
    responses = c.tasks.Attach(requests(), metadata=c.metadata, timeout=30)
    first = next(responses)
    assert first.stream == 0
    if start:
        c.start(cid, exec_id)
    for r in responses:
        out[r.stream] = out.get(r.stream, b"") + r.data
    return out


def test_attach_with_stdin(client: Client, image: Image) -> None:
    cid = unique("c")
    mounts = client.new_container(cid, image, ["sh", "-c", "tr a-z A-Z; echo done >&2"])
    client.create_task(cid, mounts, stdin=True)
    out = attach(client, cid, stdin=b"hello\nworld\n")
    assert client.wait(cid) == 0
    assert out == {1: b"HELLO\nWORLD\n", 2: b"done\n"}
    remove(client, cid)


def test_stdin_stays_open_after_an_attach_without_stdin_once(client: Client,
                                                             image: Image) -> None:
    cid = unique("c")
    mounts = client.new_container(cid, image, ["cat"])
    client.create_task(cid, mounts, stdin=True)
    client.start(cid)

    def feed(data: bytes, once: bool):  # type: ignore[no-untyped-def]
        def requests():  # type: ignore[no-untyped-def]
            yield tpb.AttachRequest(container_id=cid, stdin=True, stdout=True, stderr=True,
                                    stdin_once=once)
            yield tpb.AttachRequest(data=data, close_stdin=True)
        return client.tasks.Attach(requests(), metadata=client.metadata, timeout=30)

    first = feed(b"first\n", once=False)
    assert next(first).stream == 0
    assert next(first).data == b"first\n"  # cat echoed it: its stdin is still open ...
    first.cancel()
    second = feed(b"second\n", once=True)  # ... for the next writer, whose end closes it
    assert [r.data for r in second] == [b"", b"second\n"]
    assert client.wait(cid) == 0
    remove(client, cid)


def test_terminal_and_resize(client: Client, image: Image) -> None:
    cid = unique("c")
    mounts = client.new_container(cid, image, ["sh", "-c", "sleep 0.3; stty size"],
                                  terminal=True)
    client.create_task(cid, mounts, terminal=True)
    client.call(client.tasks.ResizePty, tpb.ResizePtyRequest(container_id=cid, width=123,
                                                             height=45))
    out = attach(client, cid)
    assert client.wait(cid) == 0
    assert out[1].strip() == b"45 123"
    remove(client, cid)


def test_logs_with_rotation(client: Client, image: Image, tmp_path: Path) -> None:
    cid = unique("c")
    log = tmp_path / "c.log"
    script = "i=0; while [ $i -lt 400 ]; do echo line-$i; i=$((i+1)); done; echo bye >&2"
    mounts = client.new_container(cid, image, ["sh", "-c", script])
    client.create_task(cid, mounts, log_path=str(log), log_max_size=4000, log_max_file=3)
    client.start(cid)
    assert client.wait(cid) == 0
    remove(client, cid)
    files = sorted(tmp_path.glob("c.log*"), reverse=True)  # c.log.2, c.log.1, c.log
    assert [f.name for f in files] == ["c.log.2", "c.log.1", "c.log"]
    entries = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert all(f.stat().st_size <= 4000 + 100 for f in files)
    lines = [e["log"] for e in entries if e["stream"] == "stdout"]
    numbers = [int(x.removeprefix("line-")) for x in lines]
    assert numbers == list(range(numbers[0], 400))  # the oldest rotated away, no gap
    assert numbers[0] > 0
    assert [e["log"] for e in entries if e["stream"] == "stderr"] == ["bye\n"]
    assert all(e["time"].endswith("Z") for e in entries)


def test_events_of_a_task(client: Client, image: Image, supervisor: Supervisor) -> None:
    sub = Subscriber(supervisor.daemon,
                     f'namespace=={client.namespace},topic~="^/tasks/"')
    try:
        client.run(unique("c"), image, ["sh", "-c", "exit 4"])
        topics = []
        while len(topics) < 4:
            env = sub.get(timeout=10)
            topics.append(env.topic)
        assert topics == ["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"]
    finally:
        sub.close()


def test_many_containers_at_once(client: Client, image: Image) -> None:
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: client.run(f"m{i}-{unique()}", image,
                                                   ["sh", "-c", f"exit {i % 5}"]), range(24)))
    assert codes == [i % 5 for i in range(24)]
    assert client.call(client.tasks.List, tpb.ListTasksRequest()).tasks == []


def test_errors_are_grpc_statuses(client: Client, image: Image) -> None:
    with pytest.raises(grpc.RpcError) as e:
        client.start("nope")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    cid = unique("c")
    detached(client, image, cid, ["sleep", "600"])
    with pytest.raises(grpc.RpcError) as e:
        client.create_task(cid)
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    client.call(client.tasks.Kill, tpb.KillRequest(container_id=cid, signal=9))
    client.wait(cid)
    remove(client, cid)


def ctr(supervisor: Supervisor, ns: str, *args: str, input: bytes | None = None
        ) -> subprocess.CompletedProcess:
    return subprocess.run([*CTR, "--address", str(supervisor.daemon.address), "-n", ns, *args],
                          capture_output=True, input=input, timeout=60)


def test_ctr(supervisor: Supervisor) -> None:
    ns = unique("ns")
    supervisor.namespaces.add(ns)
    ref = supervisor.image_ref
    pulled = ctr(supervisor, ns, "images", "pull", ref)
    assert pulled.returncode == 0, pulled.stderr
    assert ctr(supervisor, ns, "images", "ls", "-q").stdout.decode().split() == [ref]
    done = ctr(supervisor, ns, "run", "--rm", ref, "once", "sh", "-c", "echo hi; exit 3")
    assert (done.returncode, done.stdout) == (3, b"hi\n")
    echoed = ctr(supervisor, ns, "run", "--rm", ref, "cat1", "cat", input=b"piped\n")
    assert (echoed.returncode, echoed.stdout) == (0, b"piped\n")
    assert ctr(supervisor, ns, "run", "-d", ref, "bg", "sleep", "600").returncode == 0
    listed = ctr(supervisor, ns, "tasks", "ls").stdout.decode().splitlines()
    assert listed[0].split() == ["TASK", "PID", "STATUS"]
    assert listed[1].split()[::2] == ["bg", "RUNNING"]
    exec_ = ctr(supervisor, ns, "tasks", "exec", "--exec-id", "e", "bg", "sh", "-c",
                "echo in; exit 6")
    assert (exec_.returncode, exec_.stdout) == (6, b"in\n")
    assert ctr(supervisor, ns, "tasks", "ps", "bg").stdout.decode().split()[:2] == ["PID", "INFO"]
    assert ctr(supervisor, ns, "tasks", "kill", "-s", "SIGKILL", "bg").returncode == 0
    wait_until(lambda: "STOPPED" in ctr(supervisor, ns, "tasks", "ls").stdout.decode(),
               what="the task to stop")
    assert ctr(supervisor, ns, "tasks", "rm", "bg").returncode == 0
    assert ctr(supervisor, ns, "containers", "ls", "-q").stdout.decode().split() == ["bg"]
    assert ctr(supervisor, ns, "containers", "rm", "bg").returncode == 0
    assert ctr(supervisor, ns, "containers", "ls", "-q").stdout == b""
    missing = ctr(supervisor, ns, "tasks", "kill", "nope")
    assert missing.returncode == 1
    assert missing.stderr.decode().startswith("ctr: ") and "not found" in missing.stderr.decode()


def test_ctr_import_export(supervisor: Supervisor, tmp_path: Path) -> None:
    from dockyard.image.archive.save import save
    from dockyard.image.imports import bootstrap
    from dockyard.image.library import ImageLibrary

    name = "docker.io/library/busybox:latest"
    with ImageLibrary(tmp_path / "lib") as lib:
        bootstrap(lib)
        save(lib, [name], tmp_path / "busybox.tar")
    first, second = unique("ns"), unique("ns")
    supervisor.namespaces |= {first, second}
    imported = ctr(supervisor, first, "images", "import", str(tmp_path / "busybox.tar"))
    assert imported.returncode == 0, imported.stderr
    assert name in imported.stdout.decode()
    done = ctr(supervisor, first, "run", "--rm", name, "c", "echo", "imported")
    assert (done.returncode, done.stdout) == (0, b"imported\n")
    out = tmp_path / "out.tar"
    assert ctr(supervisor, first, "images", "export", str(out), name).returncode == 0
    assert ctr(supervisor, second, "images", "import", str(out)).returncode == 0
    assert ctr(supervisor, second, "images", "ls", "-q").stdout.decode().split() == [name]
    missing = ctr(supervisor, second, "images", "export", str(tmp_path / "x.tar"), "nope:1")
    assert missing.returncode == 1 and not (tmp_path / "x.tar").exists()
    assert "not found" in missing.stderr.decode()
