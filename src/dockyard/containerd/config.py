"""dockyard-containerd's configuration: defaults, then the TOML file, then the flags.

The file takes containerd's keys where they mean the same, and ignores the rest (plugin
sections a containerd config carries mean nothing here):

    root = "/var/lib/dockyard/containerd"      # persistent data: metadata, content, snapshots
    state = "/run/dockyard/containerd"         # runtime state: task bundles, shim sockets

    [grpc]
    address = "/run/dockyard/containerd/containerd.sock"
    uid = 0                                    # owner of the socket
    gid = 0                                    # its group (0660: root and this group)
    max_recv_message_size = 16777216
    max_send_message_size = 16777216

    [debug]
    level = "info"                             # trace, debug, info, warn, error, fatal, panic

    [dockyard]                                 # ours
    snapshotter = "overlayfs"                  # or "native"; unset: overlayfs where it works
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

DEFAULT_ADDRESS = "/run/dockyard/containerd/containerd.sock"
DEFAULT_ROOT = "/var/lib/dockyard/containerd"
DEFAULT_STATE = "/run/dockyard/containerd"
DEFAULT_MESSAGE_SIZE = 16 << 20
LEVELS = ("trace", "debug", "info", "warn", "warning", "error", "fatal", "panic")
SNAPSHOTTERS = ("overlayfs", "native")


class ConfigError(Exception):
    """A configuration that cannot be used; the message says which key and why."""


@dataclass(frozen=True)
class Config:
    address: str = DEFAULT_ADDRESS
    root: Path = Path(DEFAULT_ROOT)
    state: Path = Path(DEFAULT_STATE)
    log_level: str = "info"
    uid: int = -1  # -1: leave the socket's owner as it is made
    gid: int = -1
    max_recv_message_size: int = DEFAULT_MESSAGE_SIZE
    max_send_message_size: int = DEFAULT_MESSAGE_SIZE
    snapshotter: str | None = None


def load(path: str | Path | None = None, **flags: Any) -> Config:
    """The file at `path` (if any) over the defaults, then every flag that is not None."""
    config = Config()
    if path is not None:
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except OSError as e:
            raise ConfigError(f"config file {path}: {e.strerror}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {path}: {e}") from None
        config = from_toml(data, str(path))
    given = {k: v for k, v in flags.items() if v is not None}
    for key in ("root", "state"):
        if key in given:
            given[key] = Path(given[key])
    return check(replace(config, **given))


def from_toml(data: Mapping[str, Any], where: str = "config") -> Config:
    grpc = _table(data, "grpc", where)
    debug = _table(data, "debug", where)
    ours = _table(data, "dockyard", where)
    fields: dict[str, Any] = {}
    for key, name, kind in (("root", "root", str), ("state", "state", str)):
        if key in data:
            fields[name] = Path(_typed(data[key], kind, f"{where}: {key}"))
    for key, name, kind in (("address", "address", str), ("uid", "uid", int),
                            ("gid", "gid", int),
                            ("max_recv_message_size", "max_recv_message_size", int),
                            ("max_send_message_size", "max_send_message_size", int)):
        if key in grpc:
            fields[name] = _typed(grpc[key], kind, f"{where}: grpc.{key}")
    if "level" in debug:
        fields["log_level"] = _typed(debug["level"], str, f"{where}: debug.level")
    if "snapshotter" in ours:
        fields["snapshotter"] = _typed(ours["snapshotter"], str, f"{where}: dockyard.snapshotter")
    return Config(**fields)


def check(config: Config) -> Config:
    if not config.address:
        raise ConfigError("grpc address must not be empty")
    if config.log_level not in LEVELS:
        raise ConfigError(f"log level {config.log_level!r}: want one of {', '.join(LEVELS)}")
    if config.snapshotter is not None and config.snapshotter not in SNAPSHOTTERS:
        raise ConfigError(f"snapshotter {config.snapshotter!r}: want one of "
                          f"{', '.join(SNAPSHOTTERS)}")
    if config.root.resolve() == config.state.resolve():
        raise ConfigError(f"root and state must differ (both are {config.root})")
    for name in ("max_recv_message_size", "max_send_message_size"):
        if getattr(config, name) <= 0:
            raise ConfigError(f"grpc {name} must be positive")
    return replace(config, root=config.root.absolute(), state=config.state.absolute())


def _table(data: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: [{key}] must be a table")
    return value


def _typed(value: Any, kind: type, where: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where} must be a {kind.__name__}, not {value!r}")
    return value
