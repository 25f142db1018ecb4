"""POST /build (the classic builder's API, which `docker build` with DOCKER_BUILDKIT=0 and
the docker SDK speak) and POST /build/prune.

The request body is the build context, a tar stream (gzip, bzip2, xz or zstd compressed or
not); the query says what to build (dockerfile, t, buildargs, labels, target, nocache,
pull, rm, forcerm, networkmode, platform, q). The answer is a stream of JSON messages as
dockerd's classic builder writes them:

    {"stream": "Step 1/4 : FROM busybox\\n"}        the steps and the output of RUN
    {"aux": {"ID": "sha256:…"}}                      the image built
    {"stream": "Successfully built 0123456789ab\\n"}
    {"stream": "Successfully tagged name:latest\\n"}
    {"errorDetail": {"code": N, "message": m}, "error": m}   a failure, after which nothing

Secrets: the classic API has no channel for them, so `dockyard build --secret` sends them
in the context under .dockyard-secrets/<id>; they leave the context before the build starts.

Bad query parameters are refused before the stream starts (400, as dockerd); everything
after is reported in the stream. The context is unpacked under the data root by
dockyard.build.context in a worker thread as it arrives (bodypipe), its files hashed on the
way for the COPY cache keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from aiohttp import web

from dockyard.engine.api import bodypipe
from dockyard.engine.api.server import Route, query_bool, query_filters
from dockyard.engine.errors import EngineError, InvalidParameter
from dockyard.engine.images.registry import decode_auth_header

log = logging.getLogger("dockyard.engine")


def _json_map(request: web.Request, key: str) -> dict[str, str]:
    text = request.query.get(key)
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        raise InvalidParameter(f"failed to parse {key}: invalid JSON") from None
    if not isinstance(value, dict):
        raise InvalidParameter(f"failed to parse {key}: not a JSON object")
    return {str(k): v if isinstance(v, str) or v is None else str(v) for k, v in value.items()}


def options(request: web.Request) -> Any:
    """The build's options from the query, checked as dockerd checks them."""
    from dockyard.build.executor import BuildOptions
    from dockyard.build.layers import ARCH

    q = request.query
    if q.get("version", "1") not in ("1", ""):
        raise InvalidParameter("BuildKit (version 2) builds are not supported: use the "
                               "classic builder (DOCKER_BUILDKIT=0)")
    if q.get("remote"):
        raise InvalidParameter("remote build contexts are not supported")
    platform = q.get("platform", "")
    if platform and platform.split("/")[:2] not in (["linux", ARCH], ["linux"]):
        raise InvalidParameter(f"\"{platform}\": unsupported platform: this host builds "
                               f"linux/{ARCH}")
    tags = q.getall("t", [])
    for tag in tags:
        _check_tag(tag)
    return BuildOptions(
        tags=tags, dockerfile=q.get("dockerfile") or "Dockerfile",
        build_args=_json_map(request, "buildargs"), labels=_json_map(request, "labels"),
        target=q.get("target", ""), no_cache=query_bool(request, "nocache"),
        pull=query_bool(request, "pull"), quiet=query_bool(request, "q"),
        network=q.get("networkmode") or "default",
        auth=decode_auth_header(request.headers.get("X-Registry-Config")))


def take_secrets(ctx: Path, dest: Path) -> dict[str, Path]:
    """The secrets `dockyard build --secret` sent in the context's .dockyard-secrets/, moved
    out of the context before any step runs (no COPY can read them) and mounted read-only
    by RUN --mount=type=secret only: never in a layer."""
    from dockyard.build.context import SECRETS

    src = ctx / SECRETS
    if src.is_symlink() or not src.is_dir():
        if src.is_symlink() or src.exists():
            src.unlink()
        return {}
    shutil.move(src, dest)
    return {p.name: p for p in dest.iterdir() if p.is_file() and not p.is_symlink()}


def _check_tag(tag: str) -> None:
    from dockyard.image import reference
    from dockyard.image.errors import ImageError

    try:
        ref = reference.parse(tag)
    except ImageError:
        ref = None
    if ref is None or ref.digest:
        raise InvalidParameter(f"Error parsing reference: {json.dumps(tag)} is not a valid "
                               "repository/tag: invalid reference format")


def _familiar(tag: str) -> str:
    """A tag as dockerd reports it: familiar, with its default tag ("name:latest")."""
    from dockyard.image import reference
    from dockyard.image.errors import ImageError

    try:
        return reference.parse(tag).with_default_tag().familiar()
    except ImageError:
        return tag


def _known_errors() -> tuple[type[Exception], ...]:
    from dockyard.build.context import ContextError
    from dockyard.build.copying import CopyError
    from dockyard.build.instructions import DockerfileError

    return (ContextError, CopyError, DockerfileError)


def routes(daemon: Any) -> list[Route]:
    async def build(request: web.Request) -> web.StreamResponse:
        from dockyard.build.context import extract_context
        from dockyard.build.executor import Builder
        from dockyard.build.filedigests import FileDigests

        opts = options(request)
        scratch = Path(daemon.data_root) / "tmp"
        scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
        work = Path(tempfile.mkdtemp(prefix="build-", dir=scratch))
        digests = FileDigests()

        def unpack(stream: BinaryIO) -> Path:
            return extract_context(stream, work / "context", dockerfile=opts.dockerfile,
                                   digests=digests)

        response = web.StreamResponse(headers={"Content-Type": "application/json"})

        async def send(message: dict[str, Any]) -> None:
            if not response.prepared:  # the client left before the stream began
                return
            with contextlib.suppress(ConnectionError):
                await response.write(json.dumps(message).encode() + b"\r\n")

        async def emit(text: str) -> None:
            if not opts.quiet:
                await send({"stream": text})

        last: list[dict[str, Any]] = []  # sent once the context is gone from the disk
        try:
            unpacked: Path | Exception
            try:
                unpacked = await bodypipe.consume(request.content, unpack)
            except Exception as e:  # the stream reports it, as any failure after the query's
                unpacked = e
            try:
                await response.prepare(request)
            except ConnectionError:  # the client is gone: nobody to build for, or to tell
                log.info("build: the client went away (%s)", unpacked if
                         isinstance(unpacked, Exception) else "after the upload")
                return response
            if isinstance(unpacked, Exception):
                raise unpacked
            opts.secrets = await asyncio.to_thread(take_secrets, unpacked, work / "secrets")
            image_id = await Builder(daemon).build(opts, unpacked, emit, digests)
            last.append({"aux": {"ID": image_id}})
            if opts.quiet:
                last.append({"stream": image_id + "\n"})
            else:
                last.append({"stream": f"Successfully built "
                                       f"{image_id.removeprefix('sha256:')[:12]}\n"})
                last += [{"stream": f"Successfully tagged {_familiar(tag)}\n"}
                         for tag in opts.tags]
        except EngineError as e:
            code = getattr(e, "code", 1) or 1
            last.append({"errorDetail": {"code": code, "message": e.message},
                         "error": e.message})
        except Exception as e:  # the context's, the Dockerfile's, a step's: in the stream
            if not isinstance(e, _known_errors()):
                log.exception("build failed")
            last.append({"errorDetail": {"code": 1, "message": str(e)}, "error": str(e)})
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)
        for message in last:
            await send(message)
        return response

    async def prune(request: web.Request) -> web.Response:
        from dockyard.build.executor import prune_cache

        return web.json_response(await prune_cache(daemon, query_filters(request),
                                                   all_=query_bool(request, "all")))

    return [Route("POST", "/build", build), Route("POST", "/build/prune", prune)]
