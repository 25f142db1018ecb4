"""COPY, ADD and WORKDIR: steps that write files into a new layer (layers.files_layer).

    sources    the context, or with --from a stage's image or another image, read through
               a view mounted for the step; resolved, matched and scoped as copying.py does
    key        parent key, the instruction's words after expansion and its flags, and the
               digest of what it reads (copying.content_digest; for an ADD of a URL, the
               URL: it is fetched again only when the step misses, as the classic builder)
    WORKDIR    makes the directory, as the builder does, so that it exists in the image
               even when nothing is copied into it
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockyard.build import copying, layers
from dockyard.build import instructions as ins
from dockyard.engine.errors import EngineError, InvalidParameter
from dockyard.units import rfc3339nano

if TYPE_CHECKING:
    from dockyard.build.scope import StageEnv
    from dockyard.build.steps import StageRunner, State


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


async def copy(runner: StageRunner, state: State, env: StageEnv, i: Any) -> State:
    add = isinstance(i, ins.Add)
    word = "ADD" if add else "COPY"
    sources, dest = list(i.sources), i.dest  # expanded by the stage's scope
    from_ = "" if add else i.from_
    chown, chmod = i.chown, i.chmod
    excludes = list(i.excludes)
    parents = bool(getattr(i, "parents", False))
    mode = int(chmod, 8) if chmod else None
    if chmod and not all(c in "01234567" for c in chmod):
        raise InvalidParameter(f"invalid chmod parameter: {chmod!r}")
    config = state.config
    workdir = config.get("WorkingDir") or "/"
    urls = [s for s in sources if _is_url(s)] if add else []
    local = [s for s in sources if s not in urls]

    async with contextlib.AsyncExitStack() as stack:
        root = await _source_root(runner, stack, from_)
        try:
            paths = copying.resolve_sources(root, local, excludes=excludes) if local else []
            known = runner.digests if root == runner.ctx else None
            digest = copying.content_digest(root, paths, excludes=excludes,
                                            known=known) if paths else ""
        except copying.CopyError as e:
            raise EngineError(f"{word} failed: {e}") from None
        inline = [(d.name, d.content) for d in i.inline]
        parts = [word, sources, dest, from_, chown, chmod, excludes, parents, digest, urls,
                 inline, workdir]

        def change(target: Path) -> None:
            try:
                owner = copying.resolve_chown(chown, target) if chown else None
                if paths:
                    copying.copy(paths, root, target, dest, workdir=workdir, chown=owner,
                                 chmod=mode, parents=parents, excludes=excludes,
                                 add_archives=add, instruction=word)
                for url in urls:
                    copying.fetch_url(url, target, dest, workdir=workdir, chown=owner,
                                      chmod=mode)
                for name, content in inline:
                    _write_inline(target, dest, workdir, name, content, owner, mode)
            except copying.CopyError as e:
                raise EngineError(f"{word} failed: {e}") from None

        async def make() -> Any:
            shown = f"file:{digest.removeprefix('sha256:')}" if digest else ",".join(sources)
            entry = {"created": rfc3339nano(), "created_by": f"/bin/sh -c #(nop) {word} {shown} in "
                     f"{dest} "}
            doc = layers.next_doc(state.doc, config, [entry])
            return await layers.files_layer(runner.daemon, state.image, doc, change)

        return await runner.cached(state, parts, make)


async def workdir(runner: StageRunner, state: State, config: dict[str, Any]) -> State:
    path = config["WorkingDir"]

    def change(root: Path) -> None:
        copying.make_dirs(root, path)

    async def make() -> Any:
        entry = {"created": rfc3339nano(), "created_by": f"/bin/sh -c #(nop) WORKDIR {path}"}
        doc = layers.next_doc(state.doc, config, [entry])
        return await layers.files_layer(runner.daemon, state.image, doc, change)

    return await runner.cached(state, ["WORKDIR", path], make)


async def _source_root(runner: StageRunner, stack: contextlib.AsyncExitStack,
                       ref: str) -> Path:
    if not ref:
        return runner.ctx
    from dockyard.build.runstep import bind_root

    return await bind_root(runner, stack, ref)


def _write_inline(root: Path, dest: str, workdir: str, name: str, content: str,
                  owner: tuple[int, int] | None, mode: int | None) -> None:
    """A heredoc source (COPY <<EOF /dest): a file named after the delimiter when the
    destination is a directory."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / name
        src.write_text(content)
        src.chmod(mode if mode is not None else 0o644)
        copying.copy([src], Path(tmp), root, dest, workdir=workdir, chown=owner, chmod=mode)
