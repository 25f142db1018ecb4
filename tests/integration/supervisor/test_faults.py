"""Faults around dockyard-containerd with real containers: the supervisor killed (-9) while
containers run, while one exits, and half way through a pull; a shim killed (-9) under a
running container. Whatever dies, containers keep running or are cleaned up, every waiter is
answered, and nothing half-done becomes visible.

Every call has a deadline (`Client(timeout=...)`, event gets with timeouts, `wait_until`):
a hang fails the test instead of stopping the run. The `supervisor` fixture reaps shims,
containers, mounts and cgroups even when a test fails.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc
import pytest
from google.protobuf import any_pb2

from dockyard.api.events import task_pb2 as task_events
from dockyard.api.services.content.v1 import content_pb2 as cpb
from dockyard.api.services.images.v1 import images_pb2 as ipb
from dockyard.api.services.tasks.v1 import tasks_pb2 as tpb
from dockyard.api.types import task_pb2
from dockyard.containerd.client import Client
from dockyard.distribution.transfer import push
from dockyard.image import mediatypes as mt
from dockyard.image.descriptor import Descriptor
from dockyard.image.imports import bootstrap
from dockyard.image.library import ImageLibrary
from tests.integration.containerd.daemon import Subscriber, unique
from tests.integration.supervisor.conftest import Supervisor, wait_until

pytestmark = pytest.mark.root

TIMEOUT = 20  # seconds, for every call
COUNTER = "i=0; while true; do echo $i; i=$((i+1)); sleep 0.05; done"
BIG = 64 << 20  # the incompressible layer of the pull test


# -- helpers -----------------------------------------------------------------------------------

def detached(c: Client, image_ref: str, cid: str, args: list[str], **task: object) -> int:
    mounts = c.new_container(cid, c.image(image_ref), args)
    c.create_task(cid, mounts, **task)  # type: ignore[arg-type]
    return c.start(cid)


def get(c: Client, cid: str, exec_id: str = "") -> task_pb2.Process:
    return c.call(c.tasks.Get, tpb.GetRequest(container_id=cid, exec_id=exec_id)).process


def kill(c: Client, cid: str, sig: int, exec_id: str = "") -> None:
    c.call(c.tasks.Kill, tpb.KillRequest(container_id=cid, exec_id=exec_id, signal=sig))


def reconnect(sup: Supervisor, old: Client) -> Client:
    """A fresh channel to the restarted supervisor (the old one may be backing off)."""
    old.close()
    return sup.client(old.namespace, timeout=TIMEOUT)


def bundle(sup: Supervisor, c: Client, cid: str) -> Path:
    return sup.state / "tasks" / c.namespace / cid


def alive(pid: int) -> bool:
    """`pid` runs (a zombie does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def mounts_under(path: Path) -> list[str]:
    prefix = str(path)
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4].encode().decode("unicode_escape") for line in f]
    return [p for p in points if p == prefix or p.startswith(prefix + "/")]


def cgroup_procs(ns: str, cid: str) -> list[int]:
    procs = Path(f"/sys/fs/cgroup/pids/{ns}/{cid}/cgroup.procs")
    try:
        return [int(x) for x in procs.read_text().split()]
    except FileNotFoundError:
        return []


def numbers(log: Path) -> list[int]:
    """The numbers a COUNTER container wrote, from its json-file log."""
    out = []
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        assert entry["stream"] == "stdout", entry
        out.append(int(entry["log"]))
    return out


def gone_cleanly(sup: Supervisor, c: Client, cid: str, pids: list[int]) -> None:
    """After Delete: no process of the task, no mount under its bundle, no bundle."""
    b = bundle(sup, c, cid)
    wait_until(lambda: not any(alive(p) for p in pids), timeout=5,
               what=f"the processes of {cid} to go")
    assert cgroup_procs(c.namespace, cid) == []
    assert mounts_under(b) == []
    assert not b.exists()


# -- 1. the supervisor dies while containers run ------------------------------------------------

def test_containers_outlive_a_kill9_of_the_supervisor_and_are_taken_back(
        supervisor: Supervisor, tmp_path: Path) -> None:
    c = supervisor.pulled()
    c.timeout = TIMEOUT
    ref = supervisor.image_ref
    # the init handles SIGTERM: as pid 1 it would ignore a signal it does not handle
    script = f"trap 'exit 143' TERM; {COUNTER}"
    cids = [unique("c") for _ in range(3)]
    logs = {cid: tmp_path / f"{cid}.log" for cid in cids}
    pids = {cid: detached(c, ref, cid, ["sh", "-c", script], log_path=str(logs[cid]))
            for cid in cids}
    shims = {cid: int((bundle(supervisor, c, cid) / "shim.pid").read_text()) for cid in cids}
    for cid in cids:
        wait_until(lambda cid=cid: logs[cid].exists() and len(numbers(logs[cid])) >= 5,
                   what=f"{cid} to log")

    supervisor.daemon.kill9()
    before = {cid: len(numbers(logs[cid])) for cid in cids}
    time.sleep(1.0)
    during = {cid: len(numbers(logs[cid])) for cid in cids}
    assert all(during[cid] >= before[cid] + 5 for cid in cids), (before, during)
    assert all(alive(pids[cid]) and alive(shims[cid]) for cid in cids)

    supervisor.restart()
    c = reconnect(supervisor, c)
    listed = c.call(c.tasks.List, tpb.ListTasksRequest()).tasks
    assert {(t.container_id, t.pid, t.status) for t in listed} == {
        (cid, pids[cid], task_pb2.RUNNING) for cid in cids}
    for cid in cids:
        assert (get(c, cid).pid, get(c, cid).status) == (pids[cid], task_pb2.RUNNING)

    # the reattached shims still take requests: an exec, signals, waits
    first, second, third = cids
    spec = {"args": ["sleep", "600"], "cwd": "/", "env": ["PATH=/bin"],
            "user": {"uid": 0, "gid": 0}}
    c.call(c.tasks.Exec, tpb.ExecProcessRequest(
        container_id=third, exec_id="s", spec=any_pb2.Any(value=json.dumps(spec).encode())))
    c.start(third, "s")
    kill(c, third, 15, exec_id="s")
    assert c.wait(third, "s") == 143  # a process without a handler: 128 + SIGTERM
    c.call(c.tasks.DeleteProcess, tpb.DeleteProcessRequest(container_id=third, exec_id="s"))
    kill(c, first, 9)
    kill(c, second, 15)
    kill(c, third, 9)
    assert [c.wait(cid) for cid in cids] == [137, 143, 137]
    for cid in cids:
        assert get(c, cid).status == task_pb2.STOPPED
        got = numbers(logs[cid])
        assert got == list(range(len(got))), f"{cid}: a gap or a duplicate in its log"
        assert len(got) > during[cid]  # it went on logging after the restart too
        assert c.delete_task(cid) in (137, 143)
        c.remove_container(cid)
        gone_cleanly(supervisor, c, cid, [pids[cid]])
        wait_until(lambda cid=cid: not alive(shims[cid]), timeout=5, what=f"{cid}'s shim to exit")
    assert c.call(c.tasks.List, tpb.ListTasksRequest()).tasks == []


# -- 2. containers that end while the supervisor is down ---------------------------------------

def test_a_task_that_ends_while_the_supervisor_is_down_is_stopped_after_the_restart(
        supervisor: Supervisor) -> None:
    c = supervisor.pulled()
    c.timeout = TIMEOUT
    ref = supervisor.image_ref
    # exits: its shim survives and says so; recorded: it exits, then its shim dies (the
    # exit it recorded counts); killed: its shim dies under it while it runs (137)
    exits, recorded, killed = unique("exits"), unique("recorded"), unique("killed")
    exit7 = ["sh", "-c", "sleep 0.5; exit 7"]
    pids = {exits: detached(c, ref, exits, exit7), recorded: detached(c, ref, recorded, exit7),
            killed: detached(c, ref, killed, ["sleep", "600"])}
    shims = {cid: int((bundle(supervisor, c, cid) / "shim.pid").read_text()) for cid in pids}

    supervisor.daemon.kill9()
    for cid in (exits, recorded):
        wait_until(lambda cid=cid: not alive(pids[cid]), timeout=5, what=f"{cid} to exit")
    wait_until((bundle(supervisor, c, recorded) / "exit.json").exists, timeout=5,
               what="the shim to record the exit")
    for cid in (recorded, killed):
        os.kill(shims[cid], 9)
        wait_until(lambda cid=cid: not alive(shims[cid]), timeout=5, what=f"{cid}'s shim to die")

    supervisor.restart()
    c = reconnect(supervisor, c)
    for cid, status in ((exits, 7), (recorded, 7), (killed, 137)):
        process = get(c, cid)
        assert (process.status, process.exit_status, process.pid) == (
            task_pb2.STOPPED, status, pids[cid]), cid
        started = time.monotonic()
        assert c.wait(cid) == status
        assert time.monotonic() - started < 1, "Wait of a stopped task must answer at once"
        assert not alive(pids[cid])
        if cid != exits:  # cleaned up at the restart; a live shim unmounts at Delete
            assert mounts_under(bundle(supervisor, c, cid) / "rootfs") == []
        assert c.delete_task(cid) == status
        c.remove_container(cid)
        gone_cleanly(supervisor, c, cid, [pids[cid], shims[cid]])
    assert c.call(c.tasks.List, tpb.ListTasksRequest()).tasks == []


# -- 3. a shim dies under a running container --------------------------------------------------

def test_a_kill9_of_a_shim_stops_its_task_cleans_up_and_answers_every_waiter(
        supervisor: Supervisor) -> None:
    c = supervisor.pulled()
    c.timeout = TIMEOUT
    cid = unique("c")
    pid = detached(c, supervisor.image_ref, cid, ["sh", "-c", COUNTER])
    b = bundle(supervisor, c, cid)
    shim = int((b / "shim.pid").read_text())
    assert cgroup_procs(c.namespace, cid)  # the container's processes are in its cgroup
    assert mounts_under(b / "rootfs")
    sub = Subscriber(supervisor.daemon, f'namespace=={c.namespace},topic=="/tasks/exit"')
    try:
        os.kill(shim, 9)
        assert c.wait(cid) == 137
        env = sub.get(timeout=TIMEOUT)
        exit_ = task_events.TaskExit()
        assert env.event.Unpack(exit_)
        assert (exit_.container_id, exit_.pid, exit_.exit_status) == (cid, pid, 137)
        assert sub.nothing_more()
    finally:
        sub.close()
    process = get(c, cid)
    assert (process.status, process.exit_status) == (task_pb2.STOPPED, 137)
    wait_until(lambda: not alive(pid), timeout=5, what="the container to die")
    assert cgroup_procs(c.namespace, cid) == []
    assert mounts_under(b) == []
    with pytest.raises(grpc.RpcError) as e:  # no shim to send it to
        kill(c, cid, 9)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert c.delete_task(cid) == 137
    c.remove_container(cid)
    gone_cleanly(supervisor, c, cid, [pid, shim])


# -- 4. the supervisor dies half way through a pull --------------------------------------------

@dataclass(frozen=True)
class BigImage:
    ref: str
    layers: list[str]  # digests, the big one last
    size: int  # of the big layer's one file
    blob_size: int  # of the big layer


@pytest.fixture(scope="session")
def big_image(registry: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigImage]:
    """busybox and one more layer, an uncompressed tar of BIG random bytes (incompressible,
    so the transfer takes a while even on loopback), pushed as a new repository."""
    work = tmp_path_factory.mktemp("big-image")
    with ImageLibrary(work / "lib") as lib:
        base = lib.resolve(bootstrap(lib, unpack=False))
        layer = work / "layer.tar"
        with tarfile.open(layer, "w", format=tarfile.PAX_FORMAT) as tar:
            info = tarfile.TarInfo("big.bin")
            info.size, info.mode, info.mtime = BIG, 0o644, 0
            tar.addfile(info, io.BytesIO(os.urandom(BIG)))
        with lib.lease() as lease, open(layer, "rb") as f:
            digest, size = lib.put_stream(f, lease)
            config = json.loads(lib.read_json(base.manifest.config))
            config["rootfs"]["diff_ids"].append(str(digest))
            config["history"].append({"created": config["created"],
                                      "created_by": "a big random file"})
            layers = [*base.manifest.layers, Descriptor(mt.OCI_LAYER, digest, size)]
            target = lib.put_image(json.dumps(config).encode(), layers, lease)
            lib.tag("docker.io/library/big:latest", target)
        layer.unlink()
        ref = f"{registry}/library/big-{os.urandom(3).hex()}:latest"

        async def upload() -> None:
            async with aiohttp.ClientSession() as session:
                await push(lib, "docker.io/library/big:latest", ref, session=session)
        asyncio.run(upload())
        yield BigImage(ref, [str(d.digest) for d in layers], BIG, size)


def statuses(c: Client) -> list[cpb.Status]:
    return list(c.call(c.content.ListStatuses, cpb.ListStatusesRequest()).statuses)


def code_of(call) -> grpc.StatusCode | None:  # type: ignore[no-untyped-def]
    try:
        call()
    except grpc.RpcError as e:
        return e.code()
    return None


def test_a_pull_cut_by_a_kill9_leaves_a_resumable_ingest_and_nothing_visible(
        supervisor: Supervisor, big_image: BigImage) -> None:
    c = supervisor.pulled()  # the namespace exists, with busybox in it
    c.timeout = TIMEOUT
    big = big_image.layers[-1]
    seen = 0
    pulling = c.pull(big_image.ref)
    try:
        for p in pulling:
            if p.event == "downloading" and p.digest == big and 0 < p.progress < p.total:
                seen = p.progress
                supervisor.daemon.kill9()
                break
            assert p.event != "complete", "the pull finished before it could be cut"
    finally:
        pulling.cancel()  # type: ignore[attr-defined]
    assert seen, "no progress of the big layer was seen"

    supervisor.restart()
    c = reconnect(supervisor, c)
    cut = [s for s in statuses(c) if s.expected == big]
    assert len(cut) == 1, statuses(c)
    assert 0 < cut[0].offset < cut[0].total == big_image.blob_size, cut[0]
    assert code_of(lambda: c.call(c.content.Info, cpb.InfoRequest(digest=big))) \
        == grpc.StatusCode.NOT_FOUND
    blobs = supervisor.daemon.root / "namespaces" / c.namespace / "content" / "blobs"
    assert not (blobs / "sha256" / big.removeprefix("sha256:")).exists()
    assert code_of(lambda: c.call(c.images.Get, ipb.GetImageRequest(name=big_image.ref))) \
        == grpc.StatusCode.NOT_FOUND

    resumed_from = None
    done = None
    for p in c.pull(big_image.ref):
        if p.event == "downloading" and p.digest == big and resumed_from is None:
            resumed_from = p.progress
        if p.event == "complete":
            done = p
    assert done is not None and done.name == big_image.ref
    # the ingest was taken up where it stopped, not fetched again from the start
    assert resumed_from is not None and resumed_from > cut[0].offset, (resumed_from, cut[0])
    assert statuses(c) == []
    for digest in big_image.layers:
        assert c.call(c.content.Info, cpb.InfoRequest(digest=digest)).info.digest == digest
    image = c.image(big_image.ref)
    size = f"[ $(wc -c < /big.bin) -eq {big_image.size} ]"
    assert c.run(unique("c"), image, ["sh", "-c", size]) == 0
