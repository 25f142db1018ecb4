"""containerd's update rule for map fields (labels, extensions), written once for every store
that has one: images, content, snapshots, namespaces, containers.

A field path names the whole map ("labels": replaced by the given one) or one key of it
("labels.<key>": set to the given value, or removed when the given map lacks the key).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping


def apply_map_path(current: MutableMapping[str, object], given: Mapping[str, object],
                   path: str, field: str = "labels") -> bool:
    """Apply `path` to `current` if it names `field` or one of its keys; whether it did."""
    if path == field:
        current.clear()
        current.update(given)
        return True
    prefix = field + "."
    if path.startswith(prefix) and len(path) > len(prefix):
        key = path[len(prefix):]
        if key in given:
            current[key] = given[key]
        else:
            current.pop(key, None)
        return True
    return False
