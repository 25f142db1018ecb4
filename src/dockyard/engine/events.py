"""The engine's events, as `GET /events` streams them (Docker's message shape):

    {"Type": "container", "Action": "start", "Actor": {"ID": …, "Attributes": {…}},
     "scope": "local", "time": 1700000000, "timeNano": 1700000000123456789,
     "status": "start", "id": …, "from": "busybox"}     # the last three: containers and
                                                         # images only, as Docker adds them

The last MAX_KEPT events are kept in memory for `since`; subscribers get their own queue.
Filters (`type`, `event`, `container`, `image`, `volume`, `network`, `label`, `daemon`)
follow Docker's rules: values of one key are or'ed, keys are and'ed.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

MAX_KEPT = 1024
QUEUE_SIZE = 4096


class EventBus:
    def __init__(self) -> None:
        self.kept: deque[dict[str, Any]] = deque(maxlen=MAX_KEPT)
        self.queues: set[asyncio.Queue[dict[str, Any]]] = set()

    def publish(self, type_: str, action: str, actor_id: str,
                attributes: Mapping[str, str] | None = None) -> dict[str, Any]:
        now = time.time_ns()
        event: dict[str, Any] = {}
        if type_ in ("container", "image"):
            event["status"] = action
            event["id"] = actor_id
            if "image" in (attributes or {}) and type_ == "container":
                event["from"] = (attributes or {})["image"]
        event.update({"Type": type_, "Action": action,
                      "Actor": {"ID": actor_id, "Attributes": dict(attributes or {})},
                      "scope": "local", "time": now // 1_000_000_000, "timeNano": now})
        self.kept.append(event)
        for q in list(self.queues):
            try:
                q.put_nowait(event)
            except asyncio.QueueFull:  # a reader that does not read loses, not the engine
                pass
        return event

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self.queues.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        self.queues.discard(q)

    def since(self, since_ns: int, until_ns: int | None = None) -> list[dict[str, Any]]:
        return [e for e in self.kept if e["timeNano"] >= since_ns
                and (until_ns is None or e["timeNano"] <= until_ns)]


def matches(event: Mapping[str, Any], filters: Mapping[str, Sequence[str]]) -> bool:
    actor = event["Actor"]
    attrs = actor.get("Attributes") or {}
    for key, values in filters.items():
        if not values:
            continue
        if key == "type":
            ok = event["Type"] in values
        elif key == "event":
            ok = any(event["Action"] == v or event["Action"].partition(":")[0] == v
                     for v in values)
        elif key in ("container", "volume", "network", "daemon", "plugin", "node",
                     "service", "secret", "config"):
            ok = event["Type"] == key and (actor["ID"] in values or attrs.get("name") in values
                                           or any(actor["ID"].startswith(v) for v in values))
        elif key == "image":
            ok = attrs.get("image") in values or (event["Type"] == "image"
                                                  and (actor["ID"] in values
                                                       or attrs.get("name") in values))
        elif key == "label":
            ok = any(attrs.get(k) == v if sep else k in attrs
                     for k, sep, v in (x.partition("=") for x in values))
        elif key == "scope":
            ok = event.get("scope") in values
        else:
            ok = True
        if not ok:
            return False
    return True
