"""RUN: the command in a container of the current image, as the classic builder runs it.

The container is an ordinary one of the engine's (created, started, waited for, removed by
the containers service), so a RUN gets what `docker run` gets: the spec dockerd would make,
the default bridge (or none, or the host's), the json-file log its output is read from. Its
config is the build's at that step, its command the RUN's; what the build mounts for the
step (cache directories, binds of the context or of another stage, tmpfs, secrets) comes as
HostConfig.Mounts, so none of it is in the container's snapshot, which becomes the layer.

Output goes to `emit` line by line as it comes. The container is always removed afterwards,
also when the command failed (the classic builder's --force-rm): a failed build leaves no
container and no snapshot behind. The removal is handed to `later` (the build awaits it
before it ends), so that the next step need not wait for it; "Removing intermediate
container" says so, in dockerd 20.10's words.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from dockyard.engine.containers.logs import LogQuery, entries
from dockyard.engine.errors import EngineError

Emit = Callable[[str], Awaitable[None]]


class StepFailed(EngineError):
    """A RUN whose command exited non-zero; `code` is its exit status."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def container_body(image_id: str, config: dict[str, Any], argv: list[str], *,
                   network: str, mounts: list[dict[str, Any]],
                   tmpfs: dict[str, str]) -> dict[str, Any]:
    return {"Image": image_id, "Entrypoint": argv, "Cmd": None,
            "Env": list(config.get("Env") or []),
            "WorkingDir": config.get("WorkingDir") or "", "User": config.get("User") or "",
            "AttachStdout": True, "AttachStderr": True, "Labels": {},
            "HostConfig": {"NetworkMode": network or "default", "Mounts": mounts,
                           "Tmpfs": tmpfs or None}}


async def run(daemon: Any, image: Any, config: dict[str, Any], argv: list[str], *,
              emit: Emit, network: str = "default", mounts: list[dict[str, Any]] | None = None,
              tmpfs: dict[str, str] | None = None,
              commit: Callable[[Any], Awaitable[Any]],
              later: Callable[[Coroutine[Any, Any, None]], None]) -> Any:
    """Run `argv` on `image` with the build's `config`; commit(container) the result when it
    succeeds and return what commit returned; StepFailed when it does not."""
    svc = daemon.containers
    body = container_body(image.id, config, argv, network=network, mounts=mounts or [],
                          tmpfs=tmpfs or {})
    c, _ = await svc.create(body)
    c.build_step = True  # its snapshot is committed, never started again: no sync at exit
    try:
        await emit(f" ---> Running in {c.id[:12]}\n")
        await svc.start_container(c)
        status = await _output_and_status(svc, c, emit)
        targets = [m["Target"] for m in mounts or []] + list(tmpfs or {})
        if targets:
            from dockyard.build.layers import drop_mountpoints

            await drop_mountpoints(daemon, c.id, targets)
        if status != 0:
            shown = " ".join(argv) if argv[:2] != ["/bin/sh", "-c"] else \
                "/bin/sh -c " + " ".join(argv[2:])
            raise StepFailed(f"The command '{shown}' returned a non-zero code: {status}",
                             status)
        return await commit(c)
    finally:
        await emit(f"Removing intermediate container {c.id[:12]}\n")
        later(_remove(svc, c))


async def _output_and_status(svc: Any, c: Any, emit: Emit) -> int:
    """The output goes to `emit` as it comes; the exit status once the output is all out.
    The follower is woken by the exit rather than finding it at its next look."""
    wake = threading.Event()

    async def follow() -> None:
        query = LogQuery(follow=True, stdout=True, stderr=True)
        async for entry in entries(c, query, running=lambda: c.state.running, poll=0.05,
                                   wake=wake):
            await emit(entry.data.decode(errors="replace"))

    follower = asyncio.create_task(follow())
    try:
        status = int((await svc.wait(c, "not-running"))["StatusCode"])
    except BaseException:
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
        raise
    wake.set()
    await follower
    return status


async def _remove(svc: Any, c: Any) -> None:
    with contextlib.suppress(EngineError):
        await svc.remove(c, force=True)
