"""The build cache: what a step made, found again by what went into it.

A step's key is a digest of its parent's key, the instruction as it ran (its words after
expansion, its flags, the environment it saw) and, for COPY and ADD, the digest of the
content it read. So the key of step n says everything that could change its result, and a
rebuild after touching one file misses from the first step that reads it on.

    <data-root>/build/cache.json
        {"version": 1, "entries": {<key>: {"image": <image ID>, "record": <record name>,
                                           "created": <unix time>, "final": <bool>}}}

The images themselves live in the image store, unnamed: an entry whose image is gone is a
miss. "record" is the name of the image's record in the store (its manifest's digest), so
that a hit is one look-up, not a search by ID. As with the classic builder, the images of
intermediate steps are not listed by `docker images` (only with -a) nor pruned as dangling;
a build's result ("final") is.

Rewritten whole (write_atomic) after every change, so a kill -9 leaves the old file or
the new one. Steps of parallel stages and concurrent builds write from worker threads: one
lock serializes them.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dockyard.fsutil import write_atomic

VERSION = 1


def step_key(parent: str, *parts: Any) -> str:
    """The key of a step: its parent's and its own inputs, canonical JSON, sha256."""
    text = json.dumps([parent, *parts], sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


class BuildCache:
    def __init__(self, root: Path) -> None:
        self.path = root / "cache.json"
        self.lock = threading.Lock()
        self.entries: dict[str, dict[str, Any]] = self._load()

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            doc = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(doc, dict) or doc.get("version") != VERSION:
            return {}
        entries = doc.get("entries")
        return {k: v for k, v in entries.items() if isinstance(v, dict)
                and isinstance(v.get("image"), str)} if isinstance(entries, dict) else {}

    def items(self) -> list[tuple[str, dict[str, Any]]]:
        with self.lock:
            return [(k, dict(v)) for k, v in self.entries.items()]

    def get(self, key: str) -> tuple[str, str] | None:
        """(image ID, record name or "") of the step `key`."""
        entry = self.entries.get(key)
        return (entry["image"], str(entry.get("record") or "")) if entry else None

    def put(self, key: str, image: str, record: str = "") -> None:
        with self.lock:
            self.entries[key] = {"image": image, "record": record, "created": time.time(),
                                 "final": bool(self.entries.get(key, {}).get("final"))}
            self._save()

    def mark_final(self, key: str) -> None:
        with self.lock:
            entry = self.entries.get(key)
            if entry is not None and not entry.get("final"):
                entry["final"] = True
                self._save()

    def images(self) -> set[str]:
        with self.lock:
            return {e["image"] for e in self.entries.values()}

    def intermediates(self) -> set[str]:
        """Images only ever made by a step that was not a build's last."""
        with self.lock:
            final = {e["image"] for e in self.entries.values() if e.get("final")}
        return self.images() - final

    def drop(self, keys: Iterable[str]) -> None:
        with self.lock:
            gone = [k for k in keys if k in self.entries]
            for k in gone:
                del self.entries[k]
            if gone:
                self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(self.path, json.dumps({"version": VERSION, "entries": self.entries}),
                     sync_dir=True)
