"""Docker's pull and push progress messages (the JSON lines `docker pull` renders), made
from the transfer service's Progress events (pure: no I/O).

    transfer event                    Docker message (id: the layer's short digest)
    resolving name=ref           ->   {"status": "Pulling from library/busybox", "id": "latest"}
    downloading digest p/t       ->   "Pulling fs layer" (first time), "Downloading" with
                                      progressDetail {current, total}; at p == t
                                      "Verifying Checksum", "Download complete"
    complete (the image named)   ->   per layer "Extracting", "Pull complete" (or "Already
                                      exists"), "Digest: sha256:…", "Status: Downloaded newer
                                      image for busybox:latest" | "Status: Image is up to date
                                      for busybox:latest"

The config blob downloads too, but Docker shows layers only: a blob that arrives whole in
its first event is held back until the manifest says whether it is a layer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dockyard.units import human_size

Message = dict[str, Any]


def short_id(digest: str) -> str:
    return digest.partition(":")[2][:12] or digest[:12]


def progress_bar(current: int, total: int) -> str:
    """jsonmessage's JSONProgress.String() as dockerd renders it (a wide terminal)."""
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return f"{human_size(current):>8}"
    bars = min(int(current / total * 100) // 2, 50)
    return (f"[{'=' * bars}>{' ' * (50 - bars)}] "
            f"{human_size(current):>8}/{human_size(total)}")


def status(text: str, ident: str | None = None, current: int | None = None,
           total: int | None = None) -> Message:
    msg: Message = {"status": text}
    if current is not None:
        msg["progressDetail"] = {"current": current, "total": total}
        msg["progress"] = progress_bar(current, total or 0)
    elif ident is not None:
        msg["progressDetail"] = {}
    if ident is not None:
        msg["id"] = ident
    return msg


def error(message: str) -> Message:
    return {"errorDetail": {"message": message}, "error": message}


class PullProgress:
    """Feed it the transfer's events; it answers the messages to send for each."""

    def __init__(self, path: str, tag: str) -> None:
        self.path = path  # "library/busybox"
        self.tag = tag  # "latest", or the digest pulled by
        self.started = False
        self.seen: dict[str, int] = {}  # digest -> bytes so far, blobs shown live
        self.held: list[str] = []  # blobs that arrived whole: shown once known to be layers

    def start(self) -> Message:
        return {"status": f"Pulling from {self.path}", "id": self.tag}

    def feed(self, event: str, digest: str, done: int, total: int) -> list[Message]:
        if event != "downloading" or not digest:
            return []
        ident = short_id(digest)
        if digest not in self.seen:
            if done >= total:
                if digest not in self.held:
                    self.held.append(digest)
                return []
            self.seen[digest] = 0
            out = [status("Pulling fs layer", ident)]
        else:
            out = []
        if done <= self.seen[digest] and done < total:
            return out
        self.seen[digest] = done
        out.append(status("Downloading", ident, done, total))
        if done >= total:
            out += [status("Verifying Checksum", ident), status("Download complete", ident)]
        return out

    def finish(self, layers: Iterable[tuple[str, int]], digest: str, familiar: str,
               up_to_date: bool) -> list[Message]:
        """After the image is named: `layers` (digest, size) from its manifest."""
        out: list[Message] = []
        for layer, size in layers:
            ident = short_id(layer)
            if layer in self.held:
                out += [status("Pulling fs layer", ident),
                        status("Downloading", ident, size, size),
                        status("Verifying Checksum", ident), status("Download complete", ident)]
            if layer in self.seen or layer in self.held:
                out += [status("Extracting", ident, size, size), status("Pull complete", ident)]
            elif not up_to_date:
                out.append(status("Already exists", ident))
        out.append(status(f"Digest: {digest}"))
        word = "Image is up to date for" if up_to_date else "Downloaded newer image for"
        out.append(status(f"Status: {word} {familiar}"))
        return out


class PushProgress:
    """`docker push`: "The push refers to repository [docker.io/library/x]", per layer
    "Preparing", "Pushing" with progressDetail, "Pushed" (or "Layer already exists"), then
    "<tag>: digest: sha256:… size: N". Only the manifest's layers are shown (not its
    config), top layer first as Docker lists them."""

    def __init__(self, layers: Iterable[tuple[str, int]]) -> None:
        self.layers = list(layers)
        self.wanted = {d for d, _ in self.layers}
        self.seen: set[str] = set()

    @staticmethod
    def start(repository: str) -> Message:
        return status(f"The push refers to repository [{repository}]")

    def prepare(self) -> list[Message]:
        return [status("Preparing", short_id(d)) for d, _ in reversed(self.layers)]

    def feed(self, event: str, digest: str, done: int, total: int) -> list[Message]:
        if event != "uploading" or digest not in self.wanted:
            return []
        self.seen.add(digest)
        return [status("Pushing", short_id(digest), done, total)]

    def finish(self, tag: str, digest: str, size: int) -> list[Message]:
        out: list[Message] = []
        for layer, _ in reversed(self.layers):
            ident = short_id(layer)
            out.append(status("Pushed" if layer in self.seen else "Layer already exists",
                              ident))
        out.append(status(f"{tag}: digest: {digest} size: {size}"))
        out.append({"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest, "Size": size}})
        return out
