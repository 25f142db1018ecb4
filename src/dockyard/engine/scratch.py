"""<data-root>/tmp: where the engine mounts views of containers and images (rootview.py) and
unpacks build contexts (api/build.py). A killed engine leaves them there; the next start
clears them, unmounting first and never removing a directory that still has a mount under
it (a bind of a host directory inside a view must not be emptied through the view)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path)
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                out.append(point)
    return out


def clean(root: Path) -> list[str]:
    """Empty `root`; what could not be removed (still mounted) is returned."""
    from dockyard.mounting import unmount_all
    from dockyard.runtime.linux.syscalls import MNT_DETACH

    left: list[str] = []
    if not root.is_dir():
        return left
    for entry in root.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            for point in sorted(_mounts_under(entry), key=len, reverse=True):
                try:  # a view's binds, then the view itself
                    unmount_all(point, MNT_DETACH)
                except OSError:
                    pass
            if _mounts_under(entry):
                left.append(str(entry))
                continue
            shutil.rmtree(entry, ignore_errors=True)
        else:
            try:
                os.unlink(entry)
            except OSError:
                left.append(str(entry))
    return left
