"""The steps of a build: each instruction of each stage turned into an image, or found in
the cache.

    state      (image, its config document, the cache key that made it); FROM scratch has
               no image, and its key is "scratch"
    a step     key = step_key(parent key, the instruction as it runs: words after expansion,
               the RUN's environment and mounts, for COPY/ADD the digest of what it reads);
               a hit in the cache is " ---> Using cache"; a miss runs the step and stores its
               image under the key. Every step makes an image, as the classic builder does:
               RUN and COPY/ADD a layer (layers.py, running.py), the others a new config
               over the same layers
    stages     run as tasks: a stage waits for the stages it reads (FROM, COPY --from,
               RUN --mount from=) and for nothing else, so independent stages run at once

Variables: a stage's ARGs (declared in it, or global ones redeclared) and its ENV expand the
instruction's words (scope.StageEnv.apply, in BuildKit's order); build args override ARG
defaults; ENV wins over ARG.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockyard.build import instructions as ins
from dockyard.build import layers
from dockyard.build.cache import step_key
from dockyard.build.scope import StageEnv
from dockyard.distribution.client import gather_limited
from dockyard.engine.errors import EngineError, InvalidParameter, NotFound
from dockyard.engine.images.progress import short_id as short
from dockyard.units import rfc3339nano

if TYPE_CHECKING:
    from dockyard.build.executor import Builder, BuildOptions, Emit
    from dockyard.build.filedigests import FileDigests

DEFAULT_SHELL = ["/bin/sh", "-c"]


@dataclass
class State:
    image: Any | None
    doc: dict[str, Any]
    key: str

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.doc.get("config") or {})


class StageRunner:
    def __init__(self, builder: Builder, opts: BuildOptions, ctx: Path, df: Any, emit: Emit,
                 total: int, digests: FileDigests | None = None) -> None:
        self.builder = builder
        self.daemon = builder.daemon
        self.cache = builder.cache
        self.opts = opts
        self.ctx = ctx
        self.digests = digests  # the context's files' sha256, taken as they were unpacked
        self.df = df
        self.total = total
        self.results: dict[int, asyncio.Future[State]] = {}
        self.used_args: set[str] = set()
        self.output = _Ordered(emit)
        self.emit = self.output.emit
        self.background: set[asyncio.Task[None]] = set()  # clean-ups the build ends with

    def later(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` alongside the next steps; the build does not end before it has."""
        task = asyncio.create_task(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    # -- stages ----------------------------------------------------------------------------

    async def run(self, stages: list[Any]) -> Any:
        try:
            return await self._run(stages)
        finally:
            while self.background:  # shielded: a cancelled build still cleans up
                await asyncio.shield(asyncio.gather(*self.background, return_exceptions=True))

    async def _run(self, stages: list[Any]) -> Any:
        loop = asyncio.get_running_loop()
        self.results = {s.index: loop.create_future() for s in stages}
        self.output.order = [s.index for s in stages]
        numbers, n = {}, 1
        for s in stages:
            numbers[s.index] = n
            n += 1 + len(s.instructions)
        # all at once (each waits for what it reads); the first failure cancels the rest
        await gather_limited([self._stage(s, numbers[s.index]) for s in stages], len(stages))
        final = self.results[stages[-1].index].result()
        final = await self._labels(final)
        unused = sorted(set(self.opts.build_args) - self.used_args)
        if unused:
            await self.emit(f"[Warning] One or more build-args [{' '.join(unused)}] were not "
                            "consumed\n")
        if final.image is None:
            raise InvalidParameter("No image was generated. Is your Dockerfile empty?")
        await asyncio.to_thread(self.cache.mark_final, final.key)
        return final.image

    async def _stage(self, stage: Any, number: int) -> None:
        fut = self.results[stage.index]
        _STAGE.set(stage.index)
        try:
            state, env = await self._from(stage, number)
            for i, instruction in enumerate(stage.instructions, start=number + 1):
                await self.emit(f"Step {i}/{self.total} : {_shown(instruction)}\n")
                state = await self._step(state, env, instruction)
            fut.set_result(state)
        except BaseException as e:
            if not fut.done():
                fut.set_exception(e)
                fut.exception()  # seen here: a stage no other stage reads is not "never
                # retrieved" (the build reports the error itself)
            raise
        finally:
            await self.output.finish(stage.index)

    async def stage_state(self, ref: str) -> State | None:
        """The result of an earlier stage named (or numbered) `ref`; None if no stage is."""
        stage = self.df.find_stage(ref)
        if stage is None:
            return None
        fut = self.results.get(stage.index)
        if fut is None:
            raise InvalidParameter(f"stage {ref} is not part of this build")
        return await asyncio.shield(fut)

    async def _from(self, stage: Any, number: int) -> tuple[State, StageEnv]:
        env = StageEnv(self.df, self.opts.build_args)
        base = env.expand_from(stage.base)
        self.used_args |= env.used
        await self.emit(f"Step {number}/{self.total} : FROM {stage.base}"
                        f"{' AS ' + stage.name if stage.name else ''}\n")
        named = self.df.find_stage(base)
        earlier = await self.stage_state(base) if named is not None and \
            named.index < stage.index else None
        if earlier is not None:
            state = earlier
        elif base == "scratch":
            state = State(None, layers.scratch_doc(), "scratch")
        else:
            image = await self.image(base, pull=self.opts.pull)
            state = State(image, image.config, image.id)
        env.start(state.config.get("Env") or [])
        await self.emit(f" ---> {short(state.image.id) if state.image else 'scratch'}\n")
        for trigger in state.config.get("OnBuild") or []:
            await self.emit(f"# Executing 1 build trigger\n --> {trigger}\n")
            state = await self._step(state, env, self.df.parse_trigger(trigger))
        if state.config.get("OnBuild"):
            config = state.config
            config["OnBuild"] = None
            state = await self._config_step(state, ["ONBUILD-CLEAR"], config, "")
        return state, env

    async def image(self, ref: str, *, pull: bool = False) -> Any:
        images = self.daemon.images
        if not pull:
            try:
                return await images.get(ref)
            except NotFound:
                pass
        from dockyard.engine.images import transfers

        parsed = transfers.pull_reference(ref, "")
        hosts = [parsed.domain] + (["https://index.docker.io/v1/", "index.docker.io"]
                                   if parsed.domain == "docker.io" else [])
        auth = next((self.opts.auth[h] for h in hosts if isinstance(self.opts.auth.get(h),
                                                                     dict)), {})
        async for m in transfers.pull(images, parsed, auth=auth):
            if m.get("error"):
                raise EngineError(m["error"])
            if m.get("status") and not m.get("progressDetail"):
                line = f"{m['id']}: {m['status']}" if m.get("id") else m["status"]
                await self.emit(line + "\n")
        return await images.get(ref)

    # -- one step ---------------------------------------------------------------------------

    async def cached(self, state: State, parts: list[Any], make: Any) -> State:
        key = step_key(state.key, *parts)
        if not self.opts.no_cache:
            hit = self.cache.get(key)
            if hit is not None:
                image = await self._cached_image(*hit)
                if image is not None:
                    await self.emit(" ---> Using cache\n")
                    await self.emit(f" ---> {short(image.id)}\n")
                    return State(image, image.config, key)
        image = await make()
        await asyncio.to_thread(self.cache.put, key, image.id, image.names[0])
        await self.emit(f" ---> {short(image.id)}\n")
        return State(image, image.config, key)

    async def _cached_image(self, image_id: str, record: str) -> Any | None:
        """The image a cache entry names, None if it is gone."""
        images = self.daemon.images
        try:
            image = await images.by_record(record) if record else None
            if image is not None and image.id == image_id:
                return image
            return await images.get(image_id)
        except EngineError:
            return None

    async def _config_step(self, state: State, parts: list[Any], config: dict[str, Any],
                           created_by: str) -> State:
        async def make() -> Any:
            entry = {"created": rfc3339nano(), "created_by": f"/bin/sh -c #(nop) {created_by}",
                     "empty_layer": True}
            doc = layers.next_doc(state.doc, config, [entry])
            return await layers.commit(self.daemon, state.image, doc)

        return await self.cached(state, ["config", *parts, config], make)

    async def _labels(self, state: State) -> State:
        labels = {k: v or "" for k, v in self.opts.labels.items()}
        if not labels:
            return state
        config = state.config
        config["Labels"] = {**(config.get("Labels") or {}), **labels}
        text = " ".join(f"{json.dumps(k)}={json.dumps(v)}" for k, v in sorted(labels.items()))
        return await self._config_step(state, ["LABEL", labels], config, f"LABEL {text}")

    async def _step(self, state: State, env: StageEnv, i: Any) -> State:
        from dockyard.build import filesteps, runstep

        i = env.apply(i)  # expanded; ARG and ENV taken into the stage's scope
        self.used_args |= env.used
        config = state.config
        if isinstance(i, ins.Arg):
            return await self._config_step(state, ["ARG", [(a.name, a.default)
                                                           for a in i.args]], config,
                                           i.original)
        if isinstance(i, ins.Env):
            envlist = list(config.get("Env") or [])
            for p in i.pairs:
                envlist = [e for e in envlist if e.partition("=")[0] != p.key] + \
                    [f"{p.key}={p.value}"]
            config["Env"] = envlist
            text = " ".join(f"{p.key}={p.value}" for p in i.pairs)
            return await self._config_step(state, ["ENV", text], config, f"ENV {text}")
        if isinstance(i, ins.Label):
            pairs = {p.key: p.value for p in i.pairs}
            config["Labels"] = {**(config.get("Labels") or {}), **pairs}
            return await self._config_step(state, ["LABEL", pairs], config, i.original)
        if isinstance(i, ins.Cmd | ins.Entrypoint):
            shell = list(config.get("Shell") or DEFAULT_SHELL)
            argv = list(i.command) if i.json else [*shell, i.command[0]]
            word = "CMD" if isinstance(i, ins.Cmd) else "ENTRYPOINT"
            if word == "CMD":
                config["Cmd"] = argv
            else:
                config["Entrypoint"] = argv or None
                config["Cmd"] = None
            return await self._config_step(state, [word, argv], config,
                                           f" {word} {json.dumps(argv)}")
        if isinstance(i, ins.Shell):
            config["Shell"] = list(i.shell)
            return await self._config_step(state, ["SHELL", list(i.shell)], config,
                                           i.original)
        if isinstance(i, ins.Expose):
            ports = dict(config.get("ExposedPorts") or {})
            for p in i.ports:
                ports[p if "/" in p else f"{p}/tcp"] = {}
            config["ExposedPorts"] = ports
            return await self._config_step(state, ["EXPOSE", sorted(ports)], config,
                                           "EXPOSE " + " ".join(sorted(ports)))
        if isinstance(i, ins.Volume):
            vols = dict(config.get("Volumes") or {})
            for path in i.paths:
                if not path:
                    raise InvalidParameter("VOLUME specified can not be an empty string")
                vols[path] = {}
            config["Volumes"] = vols
            return await self._config_step(state, ["VOLUME", sorted(vols)], config,
                                           i.original)
        if isinstance(i, ins.User):
            config["User"] = i.user
            return await self._config_step(state, ["USER", i.user], config, f"USER {i.user}")
        if isinstance(i, ins.Workdir):
            base = config.get("WorkingDir") or "/"
            config["WorkingDir"] = i.path if i.path.startswith("/") else \
                str(Path(base) / i.path)
            return await filesteps.workdir(self, state, config)
        if isinstance(i, ins.StopSignal):
            config["StopSignal"] = i.signal
            return await self._config_step(state, ["STOPSIGNAL", i.signal], config,
                                           i.original)
        if isinstance(i, ins.Maintainer):
            return await self._config_step(state, ["MAINTAINER", i.maintainer], config,
                                           i.original)
        if isinstance(i, ins.Healthcheck):
            if i.test == ("NONE",):
                config["Healthcheck"] = {"Test": ["NONE"]}
            else:
                hc: dict[str, Any] = {"Test": list(i.test)}
                for key, value in (("Interval", i.interval), ("Timeout", i.timeout),
                                   ("StartPeriod", i.start_period),
                                   ("StartInterval", i.start_interval),
                                   ("Retries", i.retries)):
                    if value:
                        hc[key] = value
                config["Healthcheck"] = hc
            return await self._config_step(state, ["HEALTHCHECK", config["Healthcheck"]],
                                           config, i.original)
        if isinstance(i, ins.Onbuild):
            config["OnBuild"] = [*(config.get("OnBuild") or []), i.expression]
            return await self._config_step(state, ["ONBUILD", i.expression], config,
                                           i.original)
        if isinstance(i, ins.Run):
            return await runstep.run(self, state, env, i)
        if isinstance(i, ins.Copy | ins.Add):
            return await filesteps.copy(self, state, env, i)
        raise InvalidParameter(f"dockerfile parse error on line {i.line}: unknown "
                               f"instruction: {i.keyword}")


_STAGE: contextvars.ContextVar[int | None] = contextvars.ContextVar("stage", default=None)


class _Ordered:
    """The stages' output in the order of the stages, as the classic builder (which runs them
    one after the other) prints it: the first unfinished stage's lines go out as they come,
    a later stage's wait until every stage before it is done."""

    def __init__(self, out: Emit) -> None:
        self.out = out
        self.order: list[int] = []
        self.pos = 0
        self.held: dict[int, list[str]] = {}
        self.done: set[int] = set()

    async def emit(self, text: str) -> None:
        stage = _STAGE.get()
        if stage is None or self.pos >= len(self.order) or stage == self.order[self.pos]:
            await self.out(text)
        else:
            self.held.setdefault(stage, []).append(text)

    async def finish(self, stage: int) -> None:
        self.done.add(stage)
        while self.pos < len(self.order) and self.order[self.pos] in self.done:
            self.pos += 1
            if self.pos < len(self.order):
                for text in self.held.pop(self.order[self.pos], []):
                    await self.out(text)


def _shown(i: Any) -> str:
    """The step line: the instruction as written, on one line."""
    return " ".join(i.original.split("\n")[0].split())
