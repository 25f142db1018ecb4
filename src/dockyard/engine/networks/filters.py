"""The filters of GET /networks and POST /networks/prune, as dockerd reads them.

Checked before anything is listed or removed, so an unknown key or a bad value is dockerd's
400 and not an empty answer (`invalid filter 'x'`). Name and id are regular expressions that
also match exactly, as in dockerd; a pattern that does not compile matches only exactly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dockyard.engine.errors import InvalidParameter
from dockyard.engine.networks.model import Network

LIST_FILTERS = {"dangling", "driver", "id", "label", "name", "scope", "type"}
PRUNE_FILTERS = {"label", "label!", "until"}


def check_list_filters(filters: Mapping[str, list[str]]) -> bool | None:
    """Refuse what dockerd refuses in the list filters; the dangling filter's value (None
    without one, the last one given otherwise)."""
    for key in filters:
        if key not in LIST_FILTERS:
            raise InvalidParameter(f"invalid filter '{key}'")
    for value in filters.get("type", []):
        if value not in ("custom", "builtin"):
            raise InvalidParameter(f"invalid filter: 'type'='{value}'")
    dangling: bool | None = None
    for value in filters.get("dangling", []):
        if value.lower() in ("true", "1"):
            dangling = True
        elif value.lower() in ("false", "0"):
            dangling = False
        else:
            raise InvalidParameter("invalid value for filter 'dangling', must be "
                                   "\"true\" (or \"1\"), or \"false\" (or \"0\")")
    return dangling


def check_prune_filters(filters: Mapping[str, list[str]]) -> None:
    """Refuse keys the prune filters do not have (`until` values are parsed by the caller)."""
    for key in filters:
        if key not in PRUNE_FILTERS:
            raise InvalidParameter(f"invalid filter '{key}'")


def labels_match(labels: Mapping[str, str], wants: list[str], positive: bool) -> bool:
    """Every `key` or `key=value` in wants is on labels (positive) or none is (label!)."""
    for want in wants:
        k, sep, v = want.partition("=")
        hit = k in labels and (not sep or labels[k] == v)
        if hit != positive:
            return False
    return True


def matches(net: Network, doc: Mapping[str, Any], filters: Mapping[str, list[str]],
            dangling: bool | None, used: bool) -> bool:
    """dockerd's network filters: name and id as regular expressions (or exact), driver and
    scope exactly, label as key or key=value, type builtin/custom, dangling = unused
    custom network."""
    def like(values: list[str], text: str) -> bool:
        return any(v == text or _search(v, text) for v in values)

    if "name" in filters and not like(filters["name"], doc["Name"]):
        return False
    if "id" in filters and not like(filters["id"], doc["Id"]):
        return False
    if "driver" in filters and doc["Driver"] not in filters["driver"]:
        return False
    if "scope" in filters and doc["Scope"] not in filters["scope"]:
        return False
    kind = "builtin" if net.predefined else "custom"
    if "type" in filters and kind not in filters["type"]:
        return False
    if dangling is not None:
        is_dangling = not net.predefined and not used
        if is_dangling != dangling:
            return False
    return labels_match(doc.get("Labels") or {}, filters.get("label", []), True)


def _search(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return False
