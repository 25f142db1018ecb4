"""How a build step becomes an image, through the supervisor.

    files step (COPY, ADD)   an active snapshot on the current image's chain, mounted in
                             <data-root>/tmp, changed by a function of ours, unmounted, and
                             committed: its changes are the step's layer
    RUN                      a container's snapshot (running.py) committed the same way
    config step (ENV, CMD…)  no snapshot: Diff.Commit with no key puts the same layers
                             under the new config

Diff.Commit diffs the snapshot against its parent, stores the layer, the config and the
manifest, unpacks the new chain and tags the manifest's digest (an unnamed image, as Docker's
intermediate images are). A files step mounts its snapshot volatile (rootview.volatile): its
unmount does not wait for the disk. The snapshot carries the containers' owner label: should the
engine die meanwhile, its next start removes it with the other leftovers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import platform
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc

from dockyard.api.services.diff.v1 import diff_pb2 as diff_pb
from dockyard.engine.containers import rootview
from dockyard.engine.containers.runtime import SNAPSHOTTER, Runtime
from dockyard.engine.errors import from_grpc

ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def scratch_doc() -> dict[str, Any]:
    """The image config of `FROM scratch`."""
    return {"architecture": ARCH, "os": "linux", "config": {"Env": [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": []}, "history": []}


def next_doc(parent: dict[str, Any], config: dict[str, Any],
             history: list[dict[str, Any]]) -> dict[str, Any]:
    """The config document of a step's image: the parent's, with this config and the
    history entries of the steps since it."""
    doc = {k: v for k, v in parent.items()
           if k not in ("config", "container_config", "container", "history", "created")}
    doc["config"] = config
    doc["history"] = [*(parent.get("history") or []), *history]
    doc["created"] = history[-1]["created"] if history else parent.get("created")
    doc.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    return doc


async def commit(daemon: Any, parent: Any | None, doc: dict[str, Any], key: str = "") -> Any:
    """The image of `doc` over `parent`'s layers (and the snapshot `key`'s changes, if a key
    is given); the EngineImage."""
    sup = daemon.supervisor
    # the step's snapshot is the new layer's: the supervisor commits it as the new chain
    # (consume) instead of extracting the layer it just wrote
    request = diff_pb.CommitRequest(snapshotter=SNAPSHOTTER, key=key,
                                    config=json.dumps(doc).encode(), name="",
                                    consume=bool(key))
    if parent is not None:
        d = parent.resolved.descriptor
        request.parent.media_type, request.parent.digest, request.parent.size = (
            d.media_type, str(d.digest), d.size)
    try:
        r = await sup.call(sup.diff.Commit, request)
    except grpc.RpcError as e:
        raise from_grpc(e) from None
    return await daemon.images.of_target(r.target, r.target.digest)  # unnamed: its digest


@contextlib.asynccontextmanager
async def active(daemon: Any, parent: Any | None) -> AsyncIterator[tuple[str, list[Any]]]:
    """A fresh active snapshot on `parent`'s chain (empty for scratch): (key, mounts);
    removed when the block ends."""
    rt = Runtime(daemon.supervisor)
    key = "build-" + secrets.token_hex(16)
    mounts = await rt.prepare_snapshot(key, parent.chain_id if parent is not None else "")
    try:
        yield key, mounts
    finally:
        with contextlib.suppress(Exception):
            await rt.remove_snapshot(key)


async def files_layer(daemon: Any, parent: Any | None, doc: dict[str, Any],
                      change: Callable[[Path], None]) -> Any:
    """The image of `change` (run in a thread on the mounted root) over `parent`."""
    async with active(daemon, parent) as (key, mounts):
        async with rootview.mounted(daemon, rootview.volatile(mounts)) as root:
            await asyncio.to_thread(change, Path(root))
        return await commit(daemon, parent, doc, key)


async def drop_mountpoints(daemon: Any, key: str, targets: list[str]) -> None:
    """Remove from the snapshot `key` the mount points a step's mounts made (empty files and
    directories that none of its lower layers has), as BuildKit does: a RUN's cache, bind,
    tmpfs and secret mounts leave no trace in its layer, not even their names."""
    from dockyard.engine.containers.changes import upper_and_lowers

    mounts = await Runtime(daemon.supervisor).mounts(key)
    if len(mounts) == 1 and mounts[0].type == "bind":  # on scratch: the directory alone
        upper, lowers = mounts[0].source, []
    else:
        upper, lowers = upper_and_lowers(mounts)
    await asyncio.to_thread(_drop, Path(upper), [Path(x) for x in lowers], targets)


def _drop(upper: Path, lowers: list[Path], targets: list[str]) -> None:
    import os

    for target in sorted(set(targets), key=len, reverse=True):
        rel = Path(target.lstrip("/"))
        while rel.parts:
            path = upper / rel
            if any(os.path.lexists(lower / rel) for lower in lowers):
                break
            try:
                if path.is_symlink() or not (path.is_dir() or path.is_file()):
                    break
                if path.is_dir():
                    path.rmdir()  # only when empty
                elif path.stat().st_size == 0:
                    path.unlink()
                else:
                    break
            except OSError:
                break
            rel = rel.parent

