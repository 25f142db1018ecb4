"""POST /commit: a new image from a container's changes, as `docker commit` makes it.

    config     the request's Config (the container's when the request has none) with
               `changes` (Dockerfile instructions) applied, its empty fields then filled from
               the container's Config (dockerd's merge)
    image      the parent image's config with that `config`, a history entry, author and
               comment; the supervisor's Diff.Commit adds the layer of the container's
               snapshot, stores, unpacks and names it
    pause      a running container is paused meanwhile (unless pause=false)
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from typing import Any

import grpc

from dockyard.api.services.diff.v1 import diff_pb2 as diff_pb
from dockyard.engine.containers.model import Container
from dockyard.engine.containers.runtime import SNAPSHOTTER
from dockyard.engine.errors import Conflict, InvalidParameter, from_grpc
from dockyard.engine.images.importer import CHANGE_KEYS, apply_changes
from dockyard.image import reference
from dockyard.image.errors import ImageError


def merge(user: dict[str, Any], image: dict[str, Any]) -> dict[str, Any]:
    """dockerd's merge(userConf, imageConf): what the user left empty comes from the image."""
    out = dict(user)
    for key in ("User", "WorkingDir", "StopSignal", "Healthcheck", "Domainname",
                "OnBuild", "Shell"):
        if not out.get(key) and image.get(key):
            out[key] = image[key]
    for key in ("ExposedPorts", "Volumes", "Labels"):
        if image.get(key):
            out[key] = {**image[key], **(out.get(key) or {})}
    if image.get("Env"):
        given = {e.partition("=")[0] for e in out.get("Env") or []}
        out["Env"] = [*(e for e in image["Env"] if e.partition("=")[0] not in given),
                      *(out.get("Env") or [])]
    if not out.get("Entrypoint"):
        if not out.get("Cmd") and image.get("Cmd"):
            out["Cmd"] = image["Cmd"]
        if out.get("Entrypoint") is None and image.get("Entrypoint"):
            out["Entrypoint"] = image["Entrypoint"]
    return out


def apply(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """`changes` (Dockerfile instructions) applied to `config`, as a build step would:
    ENV replaces a variable, LABEL, EXPOSE and VOLUME add, ENTRYPOINT without CMD clears
    the command."""
    for change in changes:
        word = change.strip().partition(" ")[0]
        if word.upper() not in CHANGE_KEYS:  # dockerd's words: the instruction lowercased
            raise InvalidParameter(f"{word.lower()} is not a valid change command")
    out = dict(config)
    given = apply_changes(changes)
    for key, value in given.items():
        if key == "Env":
            env = list(out.get("Env") or [])
            for e in value:
                name = e.partition("=")[0]
                env = [x for x in env if x.partition("=")[0] != name] + [e]
            out["Env"] = env
        elif key in ("Labels", "ExposedPorts", "Volumes"):
            out[key] = {**(out.get(key) or {}), **value}
        elif key == "OnBuild":
            out["OnBuild"] = [*(out.get("OnBuild") or []), *value]
        else:
            out[key] = value
    if "Entrypoint" in given and "Cmd" not in given:
        out["Cmd"] = None
    return out


def commit_config(body: dict[str, Any] | None, container: dict[str, Any],
                  changes: list[str]) -> dict[str, Any]:
    """The committed image's `config`: the request's (the container's when it gives none)
    with `changes` applied, then completed from the container's (dockerd's merge)."""
    return merge(apply(dict(body) if body else dict(container), changes), container)


def image_name(repo: str, tag: str) -> str:
    """The full name a commit gets ("" for none: a dangling image)."""
    if not repo:
        return ""
    try:
        ref = reference.parse(f"{repo}:{tag}" if tag else repo).with_default_tag()
    except ImageError as e:
        raise InvalidParameter(str(e)) from None
    if ref.digest:
        raise InvalidParameter("refusing to create a tag with a digest reference")
    return str(ref)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def image_config(parent: dict[str, Any], c: Container, config: dict[str, Any], *,
                 author: str, comment: str) -> dict[str, Any]:
    now = _now()
    cmd = c.config.get("Cmd") or []
    entry: dict[str, Any] = {"created": now, "created_by": " ".join(cmd)}
    if author:
        entry["author"] = author
    if comment:
        entry["comment"] = comment
    doc = {k: v for k, v in parent.items() if k not in ("config", "container_config",
                                                        "container", "history")}
    doc.update(created=now, config=config, container=c.id,
               history=[*(parent.get("history") or []), entry])
    if author:
        doc["author"] = author
    elif "author" in doc:
        del doc["author"]
    if comment:
        doc["comment"] = comment
    doc.setdefault("architecture", parent.get("architecture") or "amd64")
    doc.setdefault("os", "linux")
    doc.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    return doc


async def commit(daemon: Any, c: Container, *, repo: str, tag: str, author: str, comment: str,
                 pause: bool, changes: list[str], body: dict[str, Any] | None) -> str:
    """The committed image's ID."""
    name = image_name(repo, tag)
    if c.state.status in ("removing", "dead"):
        raise Conflict(f"You cannot commit container {c.id} which is being removed or dead")
    config = commit_config(body, c.config, changes)
    parent = await daemon.images.get(c.image)
    doc = image_config(parent.config, c, config, author=author, comment=comment)
    sup = daemon.supervisor
    request = diff_pb.CommitRequest(
        snapshotter=SNAPSHOTTER, key=c.id, config=json.dumps(doc).encode(), name=name)
    d = parent.resolved.descriptor
    request.parent.media_type, request.parent.digest, request.parent.size = (
        d.media_type, str(d.digest), d.size)
    svc = daemon.containers
    async with contextlib.AsyncExitStack() as stack:
        if pause and c.state.running and not c.state.paused:
            await svc.pause(c)
            stack.push_async_callback(svc.unpause, c)
        try:
            r = await sup.call(sup.diff.Commit, request)
        except grpc.RpcError as e:
            raise from_grpc(e) from None
    image_id = r.config_digest
    ref = reference.parse(name) if name else None
    attrs = {"comment": comment, "imageID": image_id,
             "imageRef": ref.familiar() if ref else image_id}
    svc.publish(c, "commit", attrs)
    if ref is not None:
        daemon.events.publish("image", "tag", image_id, {"name": ref.familiar()})
    return image_id
