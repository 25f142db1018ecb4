"""config.json: read, check, and give the core a typed view of it.

The rootfs, credentials, seccomp, rlimit and cgroup modules validate their own sections of
the raw document (they also act on them); this module checks what the core uses itself —
version, process, namespaces, id mappings, hooks — and calls theirs, so that a bad config is
refused in the parent before anything is created.
"""

from __future__ import annotations

import os

from dockyard.runtime import jsonio
from dockyard.runtime.errors import ConfigError
from dockyard.runtime.linux import syscalls as sc

TYPE_CHECKING = False  # not from typing: importing typing costs ~9 ms
if TYPE_CHECKING:
    from typing import Any

NAMESPACE_FLAGS = {
    "pid": sc.CLONE_NEWPID,
    "network": sc.CLONE_NEWNET,
    "mount": sc.CLONE_NEWNS,
    "ipc": sc.CLONE_NEWIPC,
    "uts": sc.CLONE_NEWUTS,
    "user": sc.CLONE_NEWUSER,
    "cgroup": sc.CLONE_NEWCGROUP,
    "time": sc.CLONE_NEWTIME,
}
# /proc/<pid>/ns/<name> for each type.
NAMESPACE_PROC = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
                  "user": "user", "cgroup": "cgroup", "time": "time"}
# Join order: the user namespace first (it grants the rights over the others), the mount
# namespace last (joining it changes the root under which later paths would resolve).
JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")
HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
              "poststop")


class Namespace:
    __slots__ = ("path", "type")

    def __init__(self, type: str, path: str | None) -> None:
        self.type = type
        self.path = path


class Spec:
    """A validated config.json. `raw` is the document as read, for the section modules."""

    __slots__ = ("bundle", "namespaces", "raw")

    def __init__(self, raw: dict[str, Any], bundle: str) -> None:
        self.raw = raw
        self.bundle = bundle
        self.namespaces = [Namespace(n["type"], n.get("path") or None)
                           for n in raw.get("linux", {}).get("namespaces", [])]

    @property
    def process(self) -> dict[str, Any]:
        return self.raw["process"]

    @property
    def linux(self) -> dict[str, Any]:
        return self.raw.get("linux") or {}

    @property
    def hooks(self) -> dict[str, list[dict[str, Any]]]:
        return self.raw.get("hooks") or {}

    @property
    def annotations(self) -> dict[str, str]:
        return self.raw.get("annotations") or {}

    def has_ns(self, type: str) -> bool:
        return any(n.type == type for n in self.namespaces)

    def root_uid(self) -> int:
        """The host uid that is root inside the container (0 without a user namespace)."""
        return _host_id(self.linux.get("uidMappings"))

    def root_gid(self) -> int:
        return _host_id(self.linux.get("gidMappings"))

    def new_ns_flags(self) -> int:
        """Namespaces to create (those listed without a path)."""
        flags = 0
        for n in self.namespaces:
            if n.path is None:
                flags |= NAMESPACE_FLAGS[n.type]
        return flags

    def ns_paths(self) -> list[tuple[str, str]]:
        """(type, path) of namespaces to join, in join order."""
        paths = {n.type: n.path for n in self.namespaces if n.path}
        return [(t, paths[t]) for t in JOIN_ORDER if t in paths]


def _host_id(mappings: list[dict[str, int]] | None) -> int:
    for m in mappings or []:
        if m["containerID"] <= 0 < m["containerID"] + m["size"]:
            return m["hostID"] - m["containerID"]
    return 0


def load(bundle: str) -> Spec:
    return from_json(read_json(bundle), bundle)


def read_json(bundle: str) -> dict[str, Any]:
    """config.json as a JSON object, not yet validated."""
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ConfigError("JSON specification file config.json not found") from None
    except OSError as e:
        raise ConfigError(f"open {path}: {e.strerror}") from None
    return _decode(data)


def _decode(data: bytes | str) -> dict[str, Any]:
    try:
        raw = jsonio.loads(data)
    except jsonio.DecodeError as e:
        raise ConfigError(f"config.json: invalid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError("config.json: the document must be a JSON object")
    return raw


def parse(data: bytes | str, bundle: str) -> Spec:
    return from_json(_decode(data), bundle)


def from_json(raw: dict[str, Any], bundle: str) -> Spec:
    validate(raw, bundle)
    return Spec(raw, bundle)


def _require(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


def validate(raw: dict[str, Any], bundle: str) -> None:
    version = raw.get("ociVersion")
    _require(isinstance(version, str), "config.json: ociVersion is required")
    _require(version.split(".")[0] == "1",
             f"unsupported spec version {version!r}: this runtime implements 1.x")
    process = raw.get("process")
    _require(isinstance(process, dict), "process property must not be empty")
    validate_process(process)
    root = raw.get("root")
    _require(isinstance(root, dict) and isinstance(root.get("path"), str) and root["path"] != "",
             "root must be specified")
    linux = raw.get("linux")
    _require(linux is None or isinstance(linux, dict), "linux must be an object")
    linux = linux or {}
    _validate_namespaces(linux)
    _validate_hooks(raw.get("hooks"))
    for key in ("hostname", "domainname"):
        if key in raw:
            _require(isinstance(raw[key], str), f"{key} must be a string")
            if raw[key]:
                _require(_ns_listed(linux, "uts"),
                         f"unable to set {key} without a private UTS namespace")
    sysctl = linux.get("sysctl") or {}
    _require(isinstance(sysctl, dict) and all(isinstance(v, str) for v in sysctl.values()),
             "linux.sysctl must map names to string values")
    for name in sysctl:
        _require("/" not in name and ".." not in name, f"sysctl {name!r} is not allowed")
    adj = process.get("oomScoreAdj")
    _require(adj is None or (isinstance(adj, int) and -1000 <= adj <= 1000),
             "process.oomScoreAdj must be an integer from -1000 to 1000")
    from dockyard.runtime.linux import rootfs

    rootfs.validate(raw, bundle)
    from dockyard.runtime.linux import seccomp

    seccomp.validate(linux.get("seccomp"))


def validate_process(process: dict[str, Any]) -> None:
    args = process.get("args")
    _require(isinstance(args, list) and len(args) > 0 and all(isinstance(a, str) for a in args),
             "args must not be empty")
    cwd = process.get("cwd", "/")
    _require(isinstance(cwd, str) and cwd.startswith("/"),
             "cwd property must be an absolute path")
    env = process.get("env") or []
    _require(isinstance(env, list) and all(isinstance(e, str) for e in env),
             "env must be a list of strings")
    for e in env:
        _require("=" in e and not e.startswith("="), f"invalid environment variable {e!r}")
    user = process.get("user")
    _require(isinstance(user, dict), "process.user is required")
    from dockyard.runtime.linux import capabilities, credentials, rlimits

    credentials.validate_user(user)
    capabilities.validate(process.get("capabilities"))
    rlimits.validate(process.get("rlimits"))
    if process.get("terminal"):
        size = process.get("consoleSize")
        _require(size is None or (isinstance(size, dict) and isinstance(size.get("height"), int)
                                  and isinstance(size.get("width"), int)),
                 "consoleSize must have integer height and width")


def _ns_listed(linux: dict[str, Any], type: str) -> bool:
    return any(n.get("type") == type for n in linux.get("namespaces") or [])


def _validate_namespaces(linux: dict[str, Any]) -> None:
    seen = set()
    nss = linux.get("namespaces") or []
    _require(isinstance(nss, list), "linux.namespaces must be a list")
    for n in nss:
        _require(isinstance(n, dict), "a namespace must be an object")
        t = n.get("type")
        _require(t in NAMESPACE_FLAGS, f"namespace type {t!r} is not supported")
        _require(t not in seen, f"malformed spec file: duplicated ns {t!r}")
        seen.add(t)
        path = n.get("path")
        if path:
            _require(isinstance(path, str) and path.startswith("/"),
                     f"namespace path {path!r} must be absolute")
            _require(os.path.exists(path), f"stat {path}: no such file or directory")
    if "time" in seen and not os.path.exists("/proc/self/ns/time"):
        raise ConfigError("time namespaces are not supported by this kernel")
    userns = "user" in seen
    for key in ("uidMappings", "gidMappings"):
        maps = linux.get(key) or []
        _require(isinstance(maps, list), f"linux.{key} must be a list")
        for m in maps:
            _require(isinstance(m, dict) and all(isinstance(m.get(k), int) and m[k] >= 0
                                                 for k in ("containerID", "hostID", "size")),
                     f"linux.{key}: containerID, hostID and size must be non-negative integers")
        if maps and not userns:
            raise ConfigError("user namespaces need to be enabled to use uid/gid mappings")
    new_userns = any(n.get("type") == "user" and not n.get("path") for n in nss)
    if new_userns:
        _require(bool(linux.get("uidMappings")) and bool(linux.get("gidMappings")),
                 "user namespaces enabled, but no user mappings found")
    if (linux.get("timeOffsets")) and "time" not in seen:
        raise ConfigError("time offsets need a time namespace")


def _validate_hooks(hooks: Any) -> None:
    if hooks is None:
        return
    _require(isinstance(hooks, dict), "hooks must be an object")
    for kind, entries in hooks.items():
        _require(kind in HOOK_KINDS, f"unknown hook kind {kind!r}")
        _require(isinstance(entries, list), f"hooks.{kind} must be a list")
        for h in entries:
            _require(isinstance(h, dict) and isinstance(h.get("path"), str)
                     and h["path"].startswith("/"),
                     f"hooks.{kind}: path must be an absolute path")
            t = h.get("timeout")
            _require(t is None or (isinstance(t, int) and t > 0),
                     f"hooks.{kind}: timeout must be a positive integer")
