"""Builds: a Dockerfile and a context in, an image out, every step cached by its inputs.

    parse             dockerfile.parse: stages, instructions, directives
    plan              the stages the target needs (dockerfile.needed_stages), nothing else;
                      each stage starts as soon as the stages it reads from are done, so
                      independent stages run side by side
    stage             FROM (an image, pulled if missing or --pull; scratch; an earlier stage),
                      its image's ONBUILD triggers, then each instruction (steps.py): every
                      step yields an image, looked up first in the cache by the step's key
    finish            the target stage's image, tagged with every -t

The step lines, " ---> Using cache", the RUN output and " ---> <image id>" go to `emit` as
dockerd's classic builder writes them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.build.cache import BuildCache
from dockyard.build.filedigests import FileDigests
from dockyard.engine.errors import EngineError, InvalidParameter

Emit = Callable[[str], Awaitable[None]]


@dataclass
class BuildOptions:
    tags: list[str] = field(default_factory=list)
    dockerfile: str = "Dockerfile"
    build_args: dict[str, str | None] = field(default_factory=dict)
    labels: dict[str, str | None] = field(default_factory=dict)
    target: str = ""
    no_cache: bool = False
    pull: bool = False
    quiet: bool = False
    network: str = "default"
    auth: dict[str, Any] = field(default_factory=dict)  # X-Registry-Config: host -> auth
    secrets: dict[str, Path] = field(default_factory=dict)  # id -> file (RUN --mount secret)


def cache_of(daemon: Any) -> BuildCache:
    """The daemon's one build cache (made on first use)."""
    cache = getattr(daemon, "build_cache", None)
    if cache is None:
        cache = BuildCache(Path(daemon.data_root) / "build")
        daemon.build_cache = cache
    return cache


class Builder:
    def __init__(self, daemon: Any) -> None:
        self.daemon = daemon
        self.cache = cache_of(daemon)

    async def build(self, opts: BuildOptions, ctx: Path, emit: Emit,
                    digests: FileDigests | None = None) -> str:
        """The ID of the image built. `digests`: the sha256 of the context's files, if they
        were taken as it was unpacked."""
        from dockyard.build.context import ContextError, read_dockerfile, remove_build_files
        from dockyard.build.dockerfile import needed_stages, parse
        from dockyard.build.steps import StageRunner

        try:
            text = await asyncio.to_thread(read_dockerfile, ctx, opts.dockerfile)
            await asyncio.to_thread(remove_build_files, ctx, opts.dockerfile)
        except ContextError as e:
            raise InvalidParameter(str(e)) from None
        df = _parsed(parse, text)
        stages = _parsed(needed_stages, df, opts.target or None, opts.build_args)
        total = sum(1 + len(s.instructions) for s in stages)
        runner = StageRunner(self, opts, ctx, df, emit, total, digests)
        image = await runner.run(stages)
        for tag in opts.tags:
            await self.daemon.images.tag_image(image, tag)
        return image.id


def _parsed(fn: Callable[..., Any], *args: Any) -> Any:
    """A front-end error as the engine's (the message says the line)."""
    from dockyard.build.dockerfile import DockerfileError

    try:
        return fn(*args)
    except DockerfileError as e:
        raise InvalidParameter(str(e)) from None


async def prune_cache(daemon: Any, filters: Mapping[str, list[str]], *,
                      all_: bool = False) -> dict[str, Any]:
    """POST /build/prune: every cache entry dropped, and its image deleted unless a name or
    a container holds it (a tagged build result stays); dockerd's report. All entries are
    unused between builds, so `all` changes nothing here."""
    from dockyard.engine.images import removal
    from dockyard.engine.images.service import parse_name

    for key in filters:
        if key not in ("description", "id", "inuse", "parent", "private", "shared", "type",
                       "until", "unused-for"):
            raise InvalidParameter(f"invalid filter '{key}'")
    del all_
    cache = cache_of(daemon)
    service = daemon.images
    deleted: list[str] = []
    reclaimed = 0
    for key, entry in cache.items():
        cache.drop([key])
        deleted.append(key.removeprefix("sha256:")[:25])
        try:
            image = await service.with_all_names(await service.get(entry["image"]))
        except EngineError:
            continue
        if any(parse_name(n) is not None for n in image.names) or \
                await removal.users(daemon, image.id):
            continue
        try:
            await removal.delete_image(service, image, [])
        except EngineError:
            continue
        reclaimed += sum(x.descriptor.size for x in image.resolved.layers)
    return {"CachesDeleted": deleted or None, "SpaceReclaimed": reclaimed}
