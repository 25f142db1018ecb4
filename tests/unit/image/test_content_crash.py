"""kill -9 at random moments, many times; after each, the reopened store must be consistent.

A forked child opens the store (so some kills land in its recovery) and loops: begin or resume
an ingest (or write one that is not resumable), write it in pieces, sometimes stop or abort,
commit with labels, delete, relabel, and now and then collect garbage. Every ref always
carries the same payload, so whatever is on disk can be checked against what it must be. The
parent kills the child at a random time, reopens the store and checks that:

  - SQLite's integrity check passes and reopening left nothing for a second recovery to fix;
  - blob files and rows agree, every blob hashes to its name and carries the labels its
    commit gave it (so labels were never lost between the rename and the row);
  - every ingest left behind is a prefix of its payload and resumes at its exact offset,
    unlocked: a dead writer never keeps its ref locked;
and at the end, a collection takes every unreferenced blob and every ingest.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import time
import traceback
from datetime import timedelta
from pathlib import Path

from dockyard.image.content import layout as files
from dockyard.image.content.gc import collect
from dockyard.image.content.leases import SQLiteLeases
from dockyard.image.content.local import LocalStore, Recovery
from dockyard.image.digest import ALGORITHMS, Digest, of_bytes
from dockyard.image.errors import AlreadyExists, NotFound

ROUNDS = int(os.environ.get("DOCKYARD_CRASH_ROUNDS", "40"))
REFS = 10
ROOT_LABEL = "containerd.io/gc.root"


def payload(ref: str) -> bytes:
    seed = hashlib.sha256(ref.encode()).digest()
    return seed * (600 + 97 * int(ref.rsplit("-", 1)[1]))


def algorithm_for(ref: str) -> str:
    return "sha512" if ref.endswith("-3") else "sha256"


def labels_for(ref: str) -> dict[str, str]:
    """Even refs are gc roots, so the final collection must keep exactly those."""
    keep = int(ref.rsplit("-", 1)[1]) % 2 == 0
    return {"ref": ref, **({ROOT_LABEL: ""} if keep else {})}


def step(rng: random.Random, store: LocalStore, leases: SQLiteLeases) -> None:
    ref = f"ref-{rng.randrange(REFS)}"
    body = payload(ref)
    digest = of_bytes(body, algorithm_for(ref))
    roll = rng.random()
    if roll < 0.03:
        collect(store, leases, grace=timedelta(0))
        return
    if roll < 0.08:
        try:
            store.delete(digest)
        except NotFound:
            pass
        return
    if roll < 0.12:
        try:
            store.update(digest, {"touched": str(rng.random())}, ["labels.touched"])
        except NotFound:
            pass
        return
    resumable = rng.random() < 0.7  # else as put_json and diff write: nothing but data
    try:
        writer = store.writer(ref, expected=digest, total=len(body), resumable=resumable)
    except AlreadyExists:
        return
    with writer:
        offset = writer.status().offset
        while offset < len(body):
            n = rng.randint(1, 16384)
            writer.write(body[offset:offset + n])
            offset += n
            if rng.random() < 0.04:
                return  # stop half way: the ingest stays for a resume (if it can be resumed)
        if rng.random() < 0.08:
            writer.close()
            if resumable:  # else the close removed it
                store.abort(ref)
            return
        try:
            writer.commit(len(body), digest, labels_for(ref))
        except AlreadyExists:
            pass


def child(root: Path, seed: int, errors: Path) -> None:
    try:
        rng = random.Random(seed)
        store = LocalStore(root)
        leases = SQLiteLeases(store.db)
        while True:
            step(rng, store, leases)
    except BaseException:
        errors.write_text(traceback.format_exc())
    finally:
        os._exit(1)


def check(root: Path) -> dict[str, int]:
    seen = {"blobs": 0, "ingests": 0}
    with LocalStore(root) as store:
        assert store.db.integrity_check() == "ok"
        assert store.recover() == Recovery(), "the open should have fixed everything"
        on_disk = {f"{a}:{p.name}" for a in ALGORITHMS
                   for p in store.layout.algorithm_dir(a).iterdir()}
        infos = {info.digest: info for info in store.walk()}
        assert set(infos) == on_disk
        for digest, info in infos.items():
            data = store.layout.blob(Digest(digest)).read_bytes()
            assert of_bytes(data, digest.algorithm) == digest, f"blob {digest} is corrupt"
            ref = info.labels.get("ref")
            assert ref is not None, f"blob {digest} lost its commit labels: {info.labels}"
            assert of_bytes(payload(ref), digest.algorithm) == digest
            assert {k: v for k, v in info.labels.items() if k != "touched"} == labels_for(ref)
            seen["blobs"] += 1
        for entry in store.layout.ingests.iterdir():
            assert files.REMOVING not in entry.name, f"{entry} was left half removed"
            assert not (entry / files.COMMIT).exists(), f"{entry} has an unsettled commit"
            ref = (entry / files.REF).read_text()
            data = (entry / files.DATA).read_bytes()
            assert payload(ref).startswith(data), f"ingest {ref} is not a prefix of its payload"
            with store.writer(ref) as w:  # never left locked by the dead child
                assert w.status().offset == len(data)
                assert w.digest() == of_bytes(data, w.digest().algorithm)
            seen["ingests"] += 1
    return seen


def test_kill_9_at_random_points_leaves_a_consistent_store(tmp_path: Path) -> None:
    root = tmp_path / "content"
    rng = random.Random(20240611)
    totals = {"blobs": 0, "ingests": 0}
    for round_ in range(ROUNDS):
        errors = tmp_path / f"child-{round_}.err"
        pid = os.fork()
        if pid == 0:
            child(root, round_, errors)
        time.sleep(rng.uniform(0.0, 0.3))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert not errors.exists(), f"round {round_}: the child failed:\n{errors.read_text()}"
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        for key, count in check(root).items():
            totals[key] += count
    assert totals["blobs"] > 0, "the children never committed anything: kills came too early"

    with LocalStore(root) as store:
        leases = SQLiteLeases(store.db)
        collect(store, leases, grace=timedelta(0))
        left = list(store.walk())
        assert all(ROOT_LABEL in info.labels for info in left)
        assert store.list_statuses() == []
        assert list(store.layout.ingests.iterdir()) == []
