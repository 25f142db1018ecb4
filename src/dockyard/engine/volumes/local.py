"""The local volume driver: a directory per volume, optionally a mount made on it.

    <data-root>/volumes/<name>/
      opts.json     {"Name", "Labels", "Options", "CreatedAt", "Anonymous"} (atomic writes)
      _data/        the volume's content: what containers mount

Options as Docker's local driver takes them: `type`, `device`, `o` (mount(8)'s, as in
`-o type=tmpfs -o device=tmpfs -o o=size=100m`) mount <device> on _data while a container
uses the volume, and unmount it after the last one; no options: a plain directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dockyard.engine.errors import InvalidParameter, NotFound
from dockyard.fsutil import write_atomic

OPTION_KEYS = ("type", "device", "o")


def mounted(path: Path) -> bool:
    """Something is mounted on `path` (by /proc/self/mountinfo: os.path.ismount does not see a
    bind mount within one file system)."""
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == real for line in f)


def check_options(opts: Mapping[str, str]) -> None:
    for key in opts:
        if key not in OPTION_KEYS:
            raise InvalidParameter(f"invalid option key: {key!r}")
    if ("type" in opts) != ("device" in opts) and not (opts.get("type") == "tmpfs"):
        raise InvalidParameter("missing required option: \"device\"" if "type" in opts
                               else "missing required option: \"type\"")


class LocalDriver:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True, mode=0o701)

    def dir(self, name: str) -> Path:
        return self.root / name

    def data(self, name: str) -> Path:
        return self.root / name / "_data"

    def names(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if (p / "opts.json").is_file())

    def read(self, name: str) -> dict[str, Any]:
        try:
            return json.loads((self.dir(name) / "opts.json").read_text())
        except FileNotFoundError:
            raise NotFound(f"get {name}: no such volume") from None
        except ValueError:
            raise NotFound(f"get {name}: volume metadata is unreadable") from None

    def create(self, name: str, options: Mapping[str, str], labels: Mapping[str, str],
               anonymous: bool) -> dict[str, Any]:
        check_options(options)
        d = self.dir(name)
        (d / "_data").mkdir(parents=True, exist_ok=True, mode=0o755)
        doc = {"Name": name, "Labels": dict(labels), "Options": dict(options),
               "CreatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "Anonymous": anonymous}
        write_atomic(d / "opts.json", json.dumps(doc))  # the volume exists from here on
        return doc

    def remove(self, name: str) -> None:
        d = self.dir(name)
        if not (d / "opts.json").is_file():
            raise NotFound(f"get {name}: no such volume")
        self.unmount(name)  # first, and surely: rmtree must never reach the device's files
        try:
            os.unlink(d / "opts.json")  # then: a half-removed volume is no volume
        except FileNotFoundError:
            raise NotFound(f"get {name}: no such volume") from None
        shutil.rmtree(d, ignore_errors=True)

    def mount(self, name: str) -> None:
        """The option mount on _data, if the volume has one and it is not there yet."""
        opts = self.read(name).get("Options") or {}
        if not opts.get("type"):
            return
        target = self.data(name)
        if mounted(target):
            return
        cmd = ["mount", "-t", opts["type"]]
        if opts.get("o"):
            cmd += ["-o", opts["o"]]
        done = subprocess.run([*cmd, opts.get("device") or opts["type"], str(target)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise InvalidParameter(f"error while mounting volume '{target}': "
                                   f"{done.stderr.strip() or 'mount failed'}")

    def unmount(self, name: str) -> None:
        target = self.data(name)
        while mounted(target):  # a bind within one file system too (ismount misses those)
            done = subprocess.run(["umount", "-l", str(target)], capture_output=True,
                                  text=True)
            if done.returncode != 0:
                raise InvalidParameter(f"unmounting volume '{target}': {done.stderr.strip()}")

    def usage(self, name: str) -> int:
        """The files' apparent sizes, each inode once (dockerd's directory.Size)."""
        total, seen = 0, set()
        for dirpath, _dirs, files in os.walk(self.data(name)):
            for f in files:
                try:
                    st = os.lstat(os.path.join(dirpath, f))
                except OSError:
                    continue
                if st.st_nlink > 1:
                    if (st.st_dev, st.st_ino) in seen:
                        continue
                    seen.add((st.st_dev, st.st_ino))
                total += st.st_size
        return total
