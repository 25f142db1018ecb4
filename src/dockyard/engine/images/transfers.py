"""Pull, push, load and save through the supervisor's transfer service, as async iterators
of Docker's JSON messages (progress.py) or of archive bytes.

Errors: an iterator raises an EngineError before its first message (the API answers it as
an HTTP error, as dockerd does while nothing is flushed); after that the error becomes the
stream's last message, {"errorDetail": {"message": …}, "error": …}.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from dockyard.api.services.transfer.v1 import transfer_pb2 as pb
from dockyard.api.types import platform_pb2
from dockyard.engine.errors import EngineError, InvalidParameter, NotFound, from_grpc
from dockyard.engine.images import progress as msgs
from dockyard.engine.images.registry import auth_configs, registry_config
from dockyard.engine.images.service import parse_name
from dockyard.image import reference
from dockyard.image.errors import ImageError

Message = dict[str, Any]


def pull_reference(from_image: str, tag: str) -> reference.Reference:
    """fromImage and tag as dockerd joins them (a digest in `tag` pins it)."""
    try:
        ref = reference.parse(from_image)
        if tag:
            if tag.startswith("sha256:"):
                ref = reference.parse(f"{ref.name}@{tag}")
            else:
                ref = reference.parse(f"{ref.name}:{tag}")
    except ImageError as e:
        raise InvalidParameter(str(e)) from None
    return ref.with_default_tag()


def parse_platform(text: str) -> Any:
    if not text:
        return None
    parts = text.split("/")
    if len(parts) > 3 or not all(parts):
        raise InvalidParameter(f'"{text}": unknown operating system or architecture: '
                               "invalid argument")
    os_, arch, variant = [*parts, "", ""][:3]
    return platform_pb2.Platform(os=os_, architecture=arch, variant=variant)


def platform_mismatch(wanted: Any, config: dict[str, Any]) -> str:
    """"wanted linux/arm64, actual: linux/amd64" when the image is not for `wanted`."""
    if wanted is None:
        return ""
    have = (str(config.get("os") or ""), str(config.get("architecture") or ""),
            str(config.get("variant") or ""))
    want = (wanted.os, wanted.architecture, wanted.variant)
    if all(not w or w == h for w, h in zip(want, have, strict=True)):
        return ""
    fmt = lambda p: "/".join(x for x in p if x)
    return f"wanted {fmt(want)}, actual: {fmt(have)}"


def pull_error(e: grpc.RpcError, ref: reference.Reference) -> EngineError:
    """A failed pull in Docker's words."""
    text = e.details() or ""
    low = text.lower()
    if "manifest unknown" in low or ("not found" in low and "manifest" in low):
        return NotFound(f"manifest for {ref.familiar()} not found: manifest unknown: "
                        "manifest unknown")
    if "name unknown" in low or "repository name not known" in low or \
            e.code() == grpc.StatusCode.NOT_FOUND:
        return NotFound(f"pull access denied for {ref.familiar_name()}, repository does not "
                        "exist or may require 'docker login': denied: requested access to "
                        "the resource is denied")
    return registry_error(e, ref)


def registry_error(e: grpc.RpcError, ref: reference.Reference) -> EngineError:
    """A registry that cannot be reached, as Go's HTTP client words it."""
    text = e.details() or ""
    if "Cannot connect to host" in text or "Connect call failed" in text:
        reason = "connection refused" if "refused" in text or "Connect call failed" in text \
            else "no route to host"
        return EngineError(f'Get "https://{ref.domain}/v2/": dial tcp {ref.domain}: '
                           f"connect: {reason}")
    return from_grpc(e)


async def pull(service: Any, ref: reference.Reference, *, auth: dict[str, Any],
               platform: Any = None) -> AsyncIterator[Message]:
    daemon = service.daemon
    sup = service.sup
    name = str(ref)
    before = await service.record(name)
    req = pb.PullRequest(ref=name, unpack=True, registry=registry_config(daemon.config))
    for host, a in auth_configs(auth, ref.domain, daemon.config).items():
        req.auth[host].CopyFrom(a)
    if platform is not None:
        req.platform.CopyFrom(platform)
    shown = msgs.PullProgress(ref.path, str(ref.digest) if ref.digest else (ref.tag or ""))
    started = False
    done: Any = None
    try:
        async for p in sup.stream(sup.transfer.Pull, req):
            if p.event == "resolving":
                continue
            if not started:
                started = True
                yield shown.start()
            if p.event == "complete":
                done = p
                continue
            for m in shown.feed(p.event, p.digest, p.progress, p.total):
                yield m
    except grpc.RpcError as e:
        err = pull_error(e, ref)
        if not started:
            raise err from None
        yield msgs.error(err.message)
        return
    if done is None:
        if not started:
            raise EngineError(f"pull of {ref.familiar()} ended without an image")
        yield msgs.error(f"pull of {ref.familiar()} ended without an image")
        return
    if not started:
        yield shown.start()
    image = await service.get(name)
    mismatch = platform_mismatch(platform, image.config)
    if mismatch:
        yield msgs.error(f"image with reference {ref.familiar()} was found but does not "
                         f"match the specified platform: {mismatch}")
        return
    layers = [(str(d.digest), int(d.size)) for d in image.resolved.manifest.layers]
    up_to_date = before is not None and before.target.digest == done.digest
    for m in shown.finish(layers, done.digest, ref.familiar(), up_to_date):
        yield m
    daemon.events.publish("image", "pull", name, {"name": ref.familiar()})


async def push_names(service: Any, name: str, tag: str) -> list[str]:
    """The local names POST /images/{name}/push?tag= sends: name:tag, or every tag of the
    repository when neither gives one."""
    try:
        ref = reference.parse(name)
        if tag:
            ref = reference.parse(f"{ref.name}:{tag}")
    except ImageError as e:
        raise InvalidParameter(str(e)) from None
    if ref.tag or ref.digest:
        if await service.record(str(ref)) is None:
            raise NotFound(f"An image does not exist locally with the tag: "
                           f"{ref.familiar_name()}")
        return [str(ref)]
    found = sorted({n for image in await service.list() for n in image.names
                    if (r := parse_name(n)) is not None and r.name == ref.name and r.tag
                    and not r.digest})
    if not found:
        raise NotFound(f"An image does not exist locally with the tag: {ref.familiar_name()}")
    return found


async def push(service: Any, names: list[str], *, auth: dict[str, Any]) -> AsyncIterator[Message]:
    daemon = service.daemon
    sup = service.sup
    first = reference.parse(names[0])
    yield msgs.PushProgress.start(first.name)
    for name in names:
        ref = reference.parse(name)
        image = await service.get(name)
        req = pb.PushRequest(name=name, registry=registry_config(daemon.config))
        for host, a in auth_configs(auth, ref.domain, daemon.config).items():
            req.auth[host].CopyFrom(a)
        layers = [(str(d.digest), int(d.size)) for d in image.resolved.manifest.layers]
        shown = msgs.PushProgress(layers)
        for m in shown.prepare():
            yield m
        done: Any = None
        try:
            async for p in sup.stream(sup.transfer.Push, req):
                if p.event == "complete":
                    done = p
                    continue
                for m in shown.feed(p.event, p.digest, p.progress, p.total):
                    yield m
        except grpc.RpcError as e:
            yield msgs.error(registry_error(e, ref).message)
            return
        digest = done.digest if done is not None else str(image.target.digest)
        for m in shown.finish(ref.tag or "latest", digest, int(image.target.size)):
            yield m
        daemon.events.publish("image", "push", name, {"name": ref.familiar()})


async def load(service: Any, body: AsyncIterator[bytes]) -> AsyncIterator[Message]:
    """POST /images/load: the archive streamed to Import; one "Loaded image" per name."""
    daemon = service.daemon
    sup = service.sup

    async def requests() -> AsyncIterator[pb.ImportRequest]:
        yield pb.ImportRequest()
        async for chunk in body:
            yield pb.ImportRequest(data=chunk)

    names: list[str] = []
    try:
        async for p in sup.stream(sup.transfer.Import, requests()):
            if p.event == "complete" and p.name:
                names.append(p.name)
    except grpc.RpcError as e:
        raise InvalidParameter(archive_error(from_grpc(e).message)) from None
    for name in names:
        image = await service.get(name)
        ref = parse_name(name)
        text = f"Loaded image: {ref.familiar()}\n" if ref and ref.tag and not ref.digest \
            else f"Loaded image ID: {image.id}\n"
        daemon.events.publish("image", "load", image.id, {"name": image.id})
        yield {"stream": text}


def archive_error(message: str) -> str:
    """The loader's message without the spool file's path it starts with."""
    head, sep, rest = message.partition(".tar: ")
    return rest if sep and head.startswith("/") else message


async def save_names(service: Any, asked: list[str]) -> list[str]:
    """The supervisor names to export for `docker save a b…` (an ID: all its names)."""
    out: list[str] = []
    for a in asked:
        image = await service.get(a)
        try:
            ref = reference.parse(a)
            full = str(ref if (ref.tag or ref.digest) else ref.with_default_tag())
        except ImageError:
            full = ""
        picked = [full] if full in image.names else list(
            (await service.with_all_names(image)).names)
        out += [n for n in picked if n not in out]
    return out


async def save(service: Any, names: list[str]) -> AsyncIterator[bytes]:
    sup = service.sup
    for name in names:
        image = await service.get(name)
        service.daemon.events.publish("image", "save", image.id, {"name": image.id})
    try:
        async for r in sup.stream(sup.transfer.Export, pb.ExportRequest(names=names)):
            yield r.data
    except grpc.RpcError as e:
        raise from_grpc(e) from None
