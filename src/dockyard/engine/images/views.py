"""The Engine API's documents about images, as dockerd writes them (pure functions of an
EngineImage): GET /images/json's summaries, GET /images/{name}/json, /history.

    Id            the config's digest          RepoTags     ["busybox:latest"]
    RepoDigests   ["busybox@sha256:<target>"]  Created      RFC 3339 (inspect), seconds (list)
    Size          the layers' sizes, summed    RootFS       {"Type": "layers", "Layers": diff IDs}
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dockyard.engine.images.service import parse_name

ZERO_TIME = "0001-01-01T00:00:00Z"
# The container-only fields dockerd fills in for API versions before 1.50.
LEGACY_CONFIG = {"Hostname": "", "Domainname": "", "User": "", "AttachStdin": False,
                 "AttachStdout": False, "AttachStderr": False, "Tty": False,
                 "OpenStdin": False, "StdinOnce": False, "Env": None, "Cmd": None,
                 "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
                 "OnBuild": None, "Labels": None}


def parse_time(text: str | None) -> datetime | None:
    """An RFC 3339 time (nanoseconds allowed); None when absent or unreadable."""
    if not text:
        return None
    head, dot, rest = text.partition(".")
    if dot:
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits):]
        text = f"{head}.{(digits + '000000')[:6]}{zone}"
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def unix_seconds(text: str | None) -> int:
    value = parse_time(text)
    return int(value.timestamp()) if value else 0


def timestamp_text(ts: Any) -> str:
    """A protobuf Timestamp as dockerd writes times (RFC 3339, nanoseconds)."""
    if ts is None or not (ts.seconds or ts.nanos):
        return ZERO_TIME
    base = datetime.fromtimestamp(ts.seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{ts.nanos:09d}".rstrip("0").rstrip(".") + "Z"


def repo_tags(image: Any) -> list[str]:
    return sorted(set(image.repo_tags))


def repo_digests(image: Any) -> list[str]:
    out: set[str] = set()
    for name in image.names:
        ref = parse_name(name)
        if ref is None:
            continue
        out.add(f"{ref.familiar_name()}@{ref.digest or image.target.digest}")
    return sorted(out)


def size(image: Any, layer_sizes: list[int] | None = None) -> int:
    """The image's size: its layers' unpacked sizes when known, else their blobs' sizes."""
    if layer_sizes is not None:
        return sum(layer_sizes)
    return sum(int(d.size) for d in image.resolved.manifest.layers)


def labels(image: Any) -> dict[str, str]:
    return dict(image.run_config.get("Labels") or {})


def descriptor(image: Any) -> dict[str, Any]:
    return {"mediaType": image.target.media_type, "digest": str(image.target.digest),
            "size": int(image.target.size)}


def summary(image: Any, *, digests: bool = True,
            layer_sizes: list[int] | None = None) -> dict[str, Any]:
    """One entry of GET /images/json."""
    doc = {"Id": image.id, "ParentId": "", "RepoTags": repo_tags(image),
           "RepoDigests": repo_digests(image) if digests else [],
           "Created": unix_seconds(image.config.get("created")),
           "Size": size(image, layer_sizes),
           "SharedSize": -1, "Labels": labels(image) or None, "Containers": -1,
           "Descriptor": descriptor(image)}
    return doc


def inspect(image: Any, api: tuple[int, int] = (1, 51),
            layer_sizes: list[int] | None = None) -> dict[str, Any]:
    """GET /images/{name}/json."""
    raw = image.config
    config = dict(image.run_config)
    if api < (1, 50):
        config = {**LEGACY_CONFIG, **config}
    diff_ids = [str(d) for d in image.resolved.config.rootfs_diff_ids]
    doc: dict[str, Any] = {
        "Id": image.id, "RepoTags": repo_tags(image), "RepoDigests": repo_digests(image),
        "Parent": "", "Comment": str(raw.get("comment") or ""),
        "Created": str(raw.get("created") or ""),
        "DockerVersion": str(raw.get("docker_version") or ""),
        "Author": str(raw.get("author") or ""), "Config": config,
        "Architecture": str(raw.get("architecture") or ""),
        "Os": str(raw.get("os") or ""), "Size": size(image, layer_sizes),
        "GraphDriver": {"Data": None, "Name": "overlayfs"},
        "RootFS": {"Type": "layers", "Layers": diff_ids},
        "Metadata": {"LastTagTime": timestamp_text(image.created_at)},
    }
    if raw.get("variant"):
        doc["Variant"] = raw["variant"]
    if raw.get("os.version"):
        doc["OsVersion"] = raw["os.version"]
    if api < (1, 44):
        doc["VirtualSize"] = doc["Size"]
    if api < (1, 45):
        doc["Container"] = ""
        doc["ContainerConfig"] = dict(LEGACY_CONFIG)
    if api >= (1, 48):
        doc["Descriptor"] = descriptor(image)
    return doc


def history(image: Any, layer_sizes: list[int] | None = None) -> list[dict[str, Any]]:
    """GET /images/{name}/history: newest step first; only the top one carries the ID."""
    steps = list(image.resolved.config.history)
    layers = layer_sizes if layer_sizes is not None else [
        int(d.size) for d in image.resolved.manifest.layers]
    rows: list[dict[str, Any]] = []
    if not steps:  # an image without history: one row per layer
        steps_sizes = [("", "", "", s) for s in layers] or [("", "", "", 0)]
        for created, by, comment, s in steps_sizes:
            rows.append({"Created": unix_seconds(image.config.get("created") or created),
                         "CreatedBy": by, "Comment": comment, "Size": s})
    else:
        i = 0
        for step in steps:
            s = 0
            if not step.empty_layer and i < len(layers):
                s = layers[i]
                i += 1
            rows.append({"Created": unix_seconds(step.created), "CreatedBy": step.created_by
                         or "", "Comment": step.comment or "", "Size": s})
    rows.reverse()
    for n, row in enumerate(rows):
        row_id = image.id if n == 0 else "<missing>"
        tags = repo_tags(image) if n == 0 else None
        rows[n] = {"Id": row_id, **row, "Tags": tags or None}
    return rows
