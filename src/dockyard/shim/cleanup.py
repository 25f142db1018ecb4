"""After a shim died (kill -9, OOM killer, crash): what it would have done at delete.

    RUNTIME --root R delete --force ID   the container's processes killed, its state removed
    unmount <bundle>/rootfs              everything stacked on it
    <bundle>/exit.json                   the exit the shim recorded; if it recorded none, 137
                                         (killed) at this moment, recorded durably first
    the shim's socket file               removed if nothing answers on it any more

Run by the supervisor (not the shim), so it may import what it likes.
"""

from __future__ import annotations

import errno
import os
import subprocess
import tempfile
import time
from pathlib import Path

from dockyard.shim import records
from dockyard.shim.protocol import ShimError, unix_path
from dockyard.shim.spawn import answers, default_runtime

KILLED = 137


def cleanup_dead(bundle: Path, id: str, *, runtime: list[str] | None,
                 runtime_root: Path) -> dict:
    """Clean up after the dead shim of the container `id` in `bundle`; its exit as
    {"exit_status", "exited_at"}."""
    bundle = Path(bundle)
    _runtime_delete(list(runtime) if runtime else default_runtime(), Path(runtime_root), id)
    _unmount(bundle / "rootfs")
    _remove_socket(bundle)
    record = records.read_exit(str(bundle))
    if record is None:
        record = {"exit_status": KILLED, "exited_at": records.rfc3339nano()}
        if bundle.is_dir():
            records.write_exit(str(bundle), record["exit_status"], record["exited_at"])
    return record


def _runtime_delete(runtime: list[str], root: Path, id: str) -> None:
    # Output through a file: the container may hold a pipe open long after we are done.
    with tempfile.TemporaryFile() as err:
        p = subprocess.run([*runtime, "--root", str(root), "delete", "--force", id],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                           timeout=60)
        err.seek(0)
        message = err.read().decode(errors="replace").strip()
    if p.returncode != 0 and "does not exist" not in message and "not exist" not in message:
        raise ShimError("internal", f"OCI runtime delete failed: {message or p.returncode}")


def _unmount(target: Path) -> None:
    """Unmount everything on `target`; a mount still busy (its last processes dying) is
    retried for a second, then detached."""
    from dockyard.mounting import unmount_all
    from dockyard.runtime.linux.syscalls import MNT_DETACH

    deadline = time.monotonic() + 1.0
    while True:
        try:
            unmount_all(target)
            return
        except OSError as e:
            if e.errno != errno.EBUSY:
                raise
            if time.monotonic() > deadline:
                unmount_all(target, MNT_DETACH)
                return
            time.sleep(0.02)


def _remove_socket(bundle: Path) -> None:
    try:
        address = (bundle / "address").read_text().strip()
    except OSError:
        return
    path = unix_path(address)
    if path and os.path.exists(path) and not answers(path):
        try:
            os.unlink(path)
        except OSError:
            pass
