"""GET /containers/{id}/changes: what a container changed in its root filesystem, read from
its overlay upper directory, as `docker diff` lists it.

    upper entry that is a whiteout (char device 0:0)     Kind 2 deleted
    upper entry that some lower layer has                 Kind 0 modified
    any other upper entry                                 Kind 1 added
    a directory copied up with nothing changed in it or   left out (the runtime's mount
      on it (only mount points made inside it)              points: dockerd keeps them in
                                                            an "init" layer below)

Sorted by path. The empty mount points the runtime makes for /etc/hosts, /etc/hostname and
/etc/resolv.conf are left out, as dockerd leaves them out. An entry of a lower layer is
looked up component by component with lstat, so a symlink in a layer is never followed on
the host.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from dockyard.engine.errors import NotImplemented_

MODIFIED, ADDED, DELETED = 0, 1, 2
WHITEOUT_PREFIX = ".wh."
# Bind-mounted over by the engine's own files: their empty mount points are not changes.
RUNTIME_FILES = {"/etc/hosts", "/etc/hostname", "/etc/resolv.conf"}


def upper_and_lowers(rootfs: list[Any]) -> tuple[str, list[str]]:
    """The upper directory and the lower ones (top first) of an overlay snapshot."""
    upper, lowers = "", []
    for m in rootfs:
        if m.type != "overlay":
            continue
        for opt in m.options:
            key, _, value = opt.partition("=")
            if key == "upperdir":
                upper = value
            elif key == "lowerdir":
                lowers = value.split(":")
    if not upper:
        raise NotImplemented_("changes are only listed for overlay snapshots")
    return upper, lowers


def _in_layer(layer: str, parts: list[str]) -> bool:
    """Whether `layer` holds the path (not as a whiteout), symlinks on the way not followed."""
    path = layer
    for i, name in enumerate(parts):
        path = os.path.join(path, name)
        try:
            st = os.lstat(path)
        except OSError:
            return False
        last = i == len(parts) - 1
        if _is_whiteout(st):
            return False
        if not last and not stat.S_ISDIR(st.st_mode):
            return False
    return True


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _lower_stat(lowers: list[str], parts: list[str]) -> os.stat_result | None:
    for layer in lowers:
        if _in_layer(layer, parts):
            return os.lstat(os.path.join(layer, *parts))
    return None


def changes(upper: str, lowers: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def walk(directory: str, parts: list[str]) -> int:
        """Append the changes below `directory`; return how many."""
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
        count = 0
        for e in entries:
            st = e.stat(follow_symlinks=False)
            here = [*parts, e.name]
            path = "/" + "/".join(here)
            if _is_whiteout(st):
                out.append({"Path": path, "Kind": DELETED})
                count += 1
                continue
            if e.name.startswith(WHITEOUT_PREFIX):  # an aufs-style whiteout (copying mode)
                out.append({"Path": "/" + "/".join([*parts, e.name[len(WHITEOUT_PREFIX):]]),
                            "Kind": DELETED})
                count += 1
                continue
            before = _lower_stat(lowers, here)
            if before is None and path in RUNTIME_FILES and st.st_size == 0:
                continue  # a mount point the runtime made for the engine's file
            entry = {"Path": path, "Kind": MODIFIED if before is not None else ADDED}
            at = len(out)
            out.append(entry)
            below = walk(e.path, here) if stat.S_ISDIR(st.st_mode) else 0
            if (before is not None and stat.S_ISDIR(st.st_mode) and not below
                    and _same_dir(before, st)):
                del out[at]  # copied up only for a mount point inside: no change
                continue
            count += 1 + below
        return count

    walk(upper, [])
    out.sort(key=lambda c: c["Path"])
    return out


def _same_dir(a: os.stat_result, b: os.stat_result) -> bool:
    return stat.S_ISDIR(a.st_mode) and (a.st_mode, a.st_uid, a.st_gid) == (
        b.st_mode, b.st_uid, b.st_gid)
