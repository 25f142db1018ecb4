"""RUN: its command line, its mounts, its key, and the container that runs it (running.py).

    argv      exec form as written; shell form as SHELL (default /bin/sh -c) + the line,
              heredocs folded in as BuildKit does (a lone `<<EOF` runs its body; a body
              starting with #! is bound as an executable at /dev/pipes/<name>; otherwise
              they are given back to the shell as the heredocs they are)
    env       the image's Env, then the stage's ARGs in scope (not stored in the image)
    mounts    --mount=type=cache   a directory of the builder's, kept between builds
                                   (<data-root>/build/cache-mounts/<id>), shared
              --mount=type=bind    from the context (read-only unless rw), or from a stage
                                   or an image (a read-only view of its root)
              --mount=type=tmpfs   a tmpfs
              --mount=type=secret  a file the build was given, read-only, never in a layer
    key       parent key, argv, env, network, the mounts' specifications (not the content of
              cache mounts: that is what a cache is for)
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockyard.build import layers, running
from dockyard.engine.errors import InvalidParameter
from dockyard.image.layers.safepath import clean
from dockyard.units import rfc3339nano

if TYPE_CHECKING:
    from dockyard.build.scope import StageEnv
    from dockyard.build.steps import StageRunner, State

DEFAULT_SHELL = ["/bin/sh", "-c"]


def argv_of(i: Any, shell: list[str]) -> tuple[list[str], Any]:
    """The RUN's argv, and the heredoc to provide as an executable script (a lone `<<EOF`
    whose body starts with #!), as BuildKit runs them."""
    if i.json:
        return list(i.command), None
    line, script = i.shell_line()
    return [*shell, line], script


def cache_dir(runner: StageRunner, mount_id: str) -> Path:
    name = hashlib.sha256(mount_id.encode()).hexdigest()
    path = Path(runner.daemon.data_root) / "build" / "cache-mounts" / name
    path.mkdir(parents=True, exist_ok=True, mode=0o755)
    return path


async def run(runner: StageRunner, state: State, env: StageEnv, i: Any) -> State:

    if state.image is None:
        raise InvalidParameter("no image to run the command in: RUN needs a base image "
                               "(FROM scratch has no shell)")
    config = state.config
    argv, script = argv_of(i, list(config.get("Shell") or DEFAULT_SHELL))
    run_env = [f"{k}={v}" for k, v in env.run_env().items()]
    network = i.network if i.network != "default" else runner.opts.network
    if network not in ("default", "none", "host", "bridge"):
        raise InvalidParameter(f"network mode {network!r} not supported for RUN")
    parts = ["RUN", argv, run_env, network, [repr(m) for m in i.mounts],
             script.content if script else ""]

    async def make() -> Any:
        async with contextlib.AsyncExitStack() as stack:
            mounts, tmpfs = await _mounts(runner, stack, i)
            if script is not None:
                path = Path(await stack.enter_async_context(_empty_dir(runner))) / "script"
                path.write_text(script.content)
                path.chmod(0o755)
                mounts.append({"Type": "bind", "Source": str(path),
                               "Target": f"/dev/pipes/{script.name}", "ReadOnly": True})
            step_config = {**config, "Env": run_env}
            entry = {"created": "", "created_by": " ".join(argv)}

            async def commit(c: Any) -> Any:
                entry["created"] = rfc3339nano()
                doc = layers.next_doc(state.doc, config, [entry])
                return await layers.commit(runner.daemon, state.image, doc, c.id)

            return await running.run(runner.daemon, state.image, step_config, argv,
                                     emit=runner.emit, network=network, mounts=mounts,
                                     tmpfs=tmpfs, commit=commit, later=runner.later)

    return await runner.cached(state, parts, make)


async def _mounts(runner: StageRunner, stack: contextlib.AsyncExitStack,
                  i: Any) -> tuple[list[dict[str, Any]], dict[str, str]]:
    mounts: list[dict[str, Any]] = []
    tmpfs: dict[str, str] = {}
    for m in i.mounts:
        target = m.target
        if m.type == "cache":
            source = cache_dir(runner, m.cache_id())
            mounts.append({"Type": "bind", "Source": str(source), "Target": target,
                           "ReadOnly": bool(m.readonly)})
        elif m.type == "tmpfs":
            tmpfs[target] = f"size={m.size}" if getattr(m, "size", 0) else ""
        elif m.type == "bind":
            root = await bind_root(runner, stack, m.from_ or "")
            source = root.joinpath(*clean(m.source or "/"))
            mounts.append({"Type": "bind", "Source": str(source), "Target": target,
                           "ReadOnly": m.readonly})
        elif m.type == "secret":
            secret = runner.opts.secrets.get(m.secret_id())
            if secret is None:
                if m.required:
                    raise InvalidParameter(f"secret {m.secret_id()}: not found")
                continue
            mounts.append({"Type": "bind", "Source": str(secret),
                           "Target": m.secret_target(), "ReadOnly": True})
        else:
            raise InvalidParameter(f"unsupported mount type {m.type!r} on line {i.line}")
    return mounts, tmpfs


async def bind_root(runner: StageRunner, stack: contextlib.AsyncExitStack, ref: str) -> Path:
    """The directory a bind mount reads from: the context, or a view of a stage's image or
    another image, mounted for the time of the step."""
    if not ref:
        return runner.ctx
    from dockyard.engine.containers import rootview

    state = await runner.stage_state(ref)
    image = state.image if state is not None else await runner.image(ref)
    if image is None:
        return Path(await stack.enter_async_context(_empty_dir(runner)))
    key, mounts = await stack.enter_async_context(layers.active(runner.daemon, image))
    del key
    return Path(await stack.enter_async_context(
        rootview.mounted(runner.daemon, rootview.volatile(mounts))))


@contextlib.asynccontextmanager
async def _empty_dir(runner: StageRunner) -> Any:
    import tempfile

    base = Path(runner.daemon.data_root) / "tmp"
    base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=base) as d:
        yield d


