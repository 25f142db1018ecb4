"""GET /images/json's and POST /images/prune's filters, as dockerd applies them: values of
one key are or'ed, keys are and'ed (pure: the caller resolves `before`/`since` images to
their creation times first).

    dangling=true|false      no tag at all / at least one
    label=key | key=value    the config's labels (every label filter must match)
    before=<image>           created strictly before that image
    since=<image>            created strictly after it
    reference=<pattern>      a glob on the familiar name, or name:tag ("busy*", "busybox:1.*")
    until=<timestamp>        (prune) created before: seconds, RFC 3339 or a Go duration
"""

from __future__ import annotations

import fnmatch
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from dockyard.engine.errors import InvalidParameter
from dockyard.engine.images import views
from dockyard.engine.images.service import parse_name

LIST_FILTERS = {"dangling", "label", "before", "since", "reference", "until"}
PRUNE_FILTERS = {"dangling", "label", "label!", "until"}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def dangling_value(values: Sequence[str]) -> bool | None:
    if not values:
        return None
    if any(v.lower() not in ("true", "false", "1", "0") for v in values):
        raise InvalidParameter(f"invalid filter 'dangling=[{values[0]}]'")
    return values[-1].lower() in ("true", "1")


def until_seconds(value: str, now: float | None = None) -> float:
    """Docker's timestamp forms: unix seconds (with a fraction), RFC 3339, or a duration
    before now ("10m", "1h30m")."""
    now = time.time() if now is None else now
    try:
        return float(value)
    except ValueError:
        pass
    if _DURATION.fullmatch(value.replace(" ", "")) or (
            value and "".join(m.group(0) for m in _DURATION.finditer(value)) == value):
        return now - sum(float(n) * _UNIT[u] for n, u in _DURATION.findall(value))
    parsed = views.parse_time(value)
    if parsed is None:
        raise InvalidParameter(f"failed to parse value {value!r} as a timestamp")
    return parsed.timestamp()


def is_dangling_image(image: Any) -> bool:
    """Docker's dangling image: neither a tag nor a digest names it."""
    return not image.repo_tags and not views.repo_digests(image)


def label_matches(labels: Mapping[str, str], wanted: Sequence[str]) -> bool:
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def reference_matches(image: Any, patterns: Sequence[str]) -> bool:
    return bool(matching_names(image, patterns))


def matching_names(image: Any, patterns: Sequence[str]) -> list[str]:
    """The image's names (familiar) that one of the reference patterns matches: dockerd
    lists only those in RepoTags/RepoDigests."""
    out = []
    for name in image.names:
        ref = parse_name(name)
        if ref is None:
            continue
        candidates = [ref.familiar_name(), str(ref.name)]
        if ref.tag:
            candidates += [f"{ref.familiar_name()}:{ref.tag}", f"{ref.name}:{ref.tag}"]
        if ref.digest:
            candidates.append(f"{ref.familiar_name()}@{ref.digest}")
        if any(fnmatch.fnmatchcase(c, p) for c in candidates for p in patterns):
            out.append(ref.familiar())
    return out


def matches(image: Any, filters: Mapping[str, Sequence[str]], *,
            before: float | None = None, since: float | None = None) -> bool:
    """Does `image` pass? `before`/`since` are the reference images' creation times."""
    dangling = dangling_value(filters.get("dangling", []))
    is_dangling = is_dangling_image(image)
    if dangling is not None and dangling != is_dangling:
        return False
    labels = views.labels(image)
    if filters.get("label") and not label_matches(labels, filters["label"]):
        return False
    if filters.get("label!") and any(label_matches(labels, [x]) for x in filters["label!"]):
        return False
    created = views.unix_seconds(image.config.get("created"))
    if before is not None and not created < before:
        return False
    if since is not None and not created > since:
        return False
    if filters.get("until"):
        limit = min(until_seconds(v) for v in filters["until"])
        if not created < limit:
            return False
    return not (filters.get("reference") and not reference_matches(image,
                                                                   filters["reference"]))
