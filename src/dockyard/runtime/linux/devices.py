"""The container's /dev: runc's default nodes, linux.devices, /dev/ptmx and the fd symlinks.

Pure part: `device_list(spec)` merges runc's defaults (null zero full random urandom tty,
0666 root:root) with linux.devices (a device of the same path replaces the default),
`validate(devices)` checks linux.devices, `needs_setup(spec)` says whether /dev is ours to
fill, and `symlinks(kcore)` lists the links. rootfs.py performs them.
"""

from __future__ import annotations

import os
import stat

from dockyard.runtime.errors import ConfigError

DEFAULT_DEVICES: tuple[dict, ...] = tuple(
    {"path": p, "type": "c", "major": ma, "minor": mi, "fileMode": 0o666, "uid": 0, "gid": 0}
    for p, ma, mi in (("/dev/null", 1, 3), ("/dev/random", 1, 8), ("/dev/full", 1, 7),
                      ("/dev/tty", 5, 0), ("/dev/zero", 1, 5), ("/dev/urandom", 1, 9)))

# (target, link) pairs: runc's setupDevSymlinks.
SYMLINKS = (("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
            ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"))
KCORE = ("/proc/kcore", "/dev/core")

_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def validate(devices: object) -> None:
    """linux.devices: a list of {path, type c/b/u/p, major, minor (not for p), ...}."""
    if devices is None:
        return
    if not isinstance(devices, list):
        raise ConfigError("linux.devices must be an array")
    for i, d in enumerate(devices):
        if not isinstance(d, dict):
            raise ConfigError(f"linux.devices[{i}] must be an object")
        path = d.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ConfigError(f"linux.devices[{i}]: path {path!r} must be an absolute path")
        t = d.get("type")
        if t not in _TYPES:
            raise ConfigError(f"linux.devices[{i}] {path}: invalid device type {t!r} "
                              "(want c, b, u or p)")
        for key in ("major", "minor"):
            v = d.get(key)
            if t != "p" and v is None:
                raise ConfigError(f"linux.devices[{i}] {path}: {key} is required for a "
                                  f"{'block' if t == 'b' else 'char'} device")
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise ConfigError(f"linux.devices[{i}] {path}: {key} must be a "
                                  "non-negative integer")
        for key in ("fileMode", "uid", "gid"):
            v = d.get(key)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise ConfigError(f"linux.devices[{i}] {path}: {key} must be a "
                                  "non-negative integer")


def device_list(spec: dict) -> list[dict]:
    """Defaults not overridden by path, then linux.devices with defaults filled in;
    /dev/ptmx is left out (it becomes a symlink to pts/ptmx)."""
    own = (spec.get("linux") or {}).get("devices") or []
    paths = {os.path.normpath(d["path"]) for d in own}
    out = [dict(d) for d in DEFAULT_DEVICES if d["path"] not in paths]
    for d in own:
        out.append({"path": os.path.normpath(d["path"]), "type": d["type"],
                    "major": d.get("major") or 0, "minor": d.get("minor") or 0,
                    "fileMode": (d["fileMode"] if d.get("fileMode") is not None else 0o666)
                    & 0o7777,
                    "uid": d.get("uid") or 0, "gid": d.get("gid") or 0})
    return [d for d in out if d["path"] != "/dev/ptmx"]


def node_mode(d: dict) -> int:
    """st_mode for mknod: type bits | permission bits."""
    return _TYPES[d["type"]] | (d["fileMode"] & 0o7777)


def node_rdev(d: dict) -> int:
    return 0 if d["type"] == "p" else os.makedev(d["major"], d["minor"])


def needs_setup(mounts: list[dict]) -> bool:
    """Default devices are ours to create unless /dev comes from something not a tmpfs
    (a bind of the host's /dev, a devtmpfs)."""
    for m in mounts or ():
        if os.path.normpath(m.get("destination", "")) == "/dev":
            opts = m.get("options") or ()
            if "bind" in opts or "rbind" in opts or m.get("type") not in ("tmpfs", None):
                return False
    return True


def symlinks(kcore: bool) -> list[tuple[str, str]]:
    """/dev links; /dev/core only if the kernel has /proc/kcore (CONFIG_PROC_KCORE)."""
    return [*SYMLINKS, KCORE] if kcore else list(SYMLINKS)
