"""What the shim keeps in the bundle, and how it writes it so that a crash leaves either the
old file or the new one, never half of one.

    <bundle>/
      config.json       the OCI config (the supervisor's)
      rootfs/           the container's root, mounted by the shim when create gives mounts
      shim.pid          the shim's pid                        } written when the shim listens
      address           unix:///…/s/<sha256(ns/id)[:32]>      }
      shim.log          the shim's own stderr
      log.json          the runtime's --log (JSON lines); errors are read from it
      init.pid          the container's init, as the runtime's --pid-file
      exit.json         {"exit_status", "exited_at"}: written and renamed into place before
                        anyone hears of the exit. No fsync: what it must survive is a kill
                        of the shim or the supervisor, and the page cache outlives those; a
                        power cut ends the container too, and a bundle without the record
                        reads as killed (137)
      exec-<id>.json    an exec's OCI process, while the runtime starts it
      exec-<id>.pid     an exec's pid, as the runtime's --pid-file
"""

from __future__ import annotations

import os

from dockyard.runtime import jsonio
from dockyard.units import rfc3339nano  # noqa: F401  (the shim's name for it)

EXIT = "exit.json"


def write_quickly(path: str, text: str) -> None:
    """Temporary file and rename: readers see all of it or nothing (no fsync)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def write_exit(bundle: str, exit_status: int, exited_at: str) -> None:
    record = {"exit_status": exit_status, "exited_at": exited_at}
    write_quickly(os.path.join(bundle, EXIT), jsonio.dumps(record))


def read_exit(bundle: str) -> dict | None:
    """The recorded exit, or None if there is none (or it cannot be read)."""
    try:
        with open(os.path.join(bundle, EXIT), "rb") as f:
            record = jsonio.loads(f.read())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("exit_status"), int):
        return None
    return {"exit_status": record["exit_status"], "exited_at": record.get("exited_at")}


def read_pid(path: str) -> int:
    with open(path) as f:
        return int(f.read().strip())
