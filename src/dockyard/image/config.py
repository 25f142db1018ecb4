"""The image configuration: the platform an image is for, its layers' uncompressed digests
(`rootfs.diff_ids`), its history, and the defaults a container starts with.

The runtime defaults (`config`: Env, Cmd, Entrypoint, WorkingDir...) stay a dict: Docker puts
more keys there than the OCI spec names (Healthcheck, OnBuild, Shell, StopTimeout...), and an
image rebuilt or re-tagged by us must keep them. Their types are checked where the specs fix
them. `raw` keeps the whole object for the same reason: `to_json` starts from it and writes the
typed fields over it, so keys we do not model (`container_config`, `docker_version`...)
survive a round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dockyard.image import jsonfields as jf
from dockyard.image.digest import Digest, verify
from dockyard.image.errors import InvalidArgument
from dockyard.image.platforms import Platform

# Configs carry the history and labels of every layer, so they outgrow manifests; still
# bounded, so that a hostile registry cannot make us parse gigabytes.
MAX_CONFIG_SIZE = 8 * 1024 * 1024

WHERE = "image config"


@dataclass(frozen=True)
class History:
    """One build step; `empty_layer` steps (ENV, CMD...) added no layer."""

    created: str | None = None
    created_by: str | None = None
    author: str | None = None
    comment: str | None = None
    empty_layer: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("created", "created_by", "author", "comment"):
            if (value := getattr(self, key)) is not None:
                out[key] = value
        if self.empty_layer:
            out["empty_layer"] = True
        return out

    @classmethod
    def from_json(cls, obj: object, where: str = "history") -> History:
        o = jf.expect_object(obj, where)
        return cls(
            created=jf.get_date_time(o, "created", where),
            created_by=jf.get_str(o, "created_by", where),
            author=jf.get_str(o, "author", where),
            comment=jf.get_str(o, "comment", where),
            empty_layer=bool(jf.get_bool(o, "empty_layer", where)),
        )


@dataclass(frozen=True)
class ImageConfig:
    """An image's configuration. Equality ignores `raw`: it is what was read, not the value."""

    architecture: str
    os: str
    rootfs_diff_ids: tuple[Digest, ...]
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = ()
    created: str | None = None
    author: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    history: tuple[History, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rootfs_diff_ids", tuple(Digest(d) for d in self.rootfs_diff_ids))
        object.__setattr__(self, "history", tuple(self.history))

    def __hash__(self) -> int:  # the config dict would make the default unhashable
        return hash((self.architecture, self.os, self.rootfs_diff_ids))

    @property
    def platform(self) -> Platform:
        return Platform(self.os, self.architecture, self.variant, self.os_version,
                        self.os_features)

    def to_json(self) -> dict[str, Any]:
        out = dict(self.raw)
        typed: dict[str, Any] = {
            "architecture": self.architecture,
            "os": self.os,
            "variant": self.variant,
            "os.version": self.os_version,
            "os.features": list(self.os_features) or None,
            "created": self.created,
            "author": self.author,
            "config": dict(self.config) or None,
            "rootfs": {"type": "layers", "diff_ids": [str(d) for d in self.rootfs_diff_ids]},
            "history": [h.to_json() for h in self.history] or None,
        }
        for key, value in typed.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = value
        return out

    def to_bytes(self) -> bytes:
        return jf.dump(self.to_json())

    @classmethod
    def from_json(cls, obj: object, where: str = WHERE) -> ImageConfig:
        o = jf.expect_object(obj, where)
        history = jf.get_list(o, "history", where)
        return cls(
            architecture=jf.require_str(o, "architecture", where, nonempty=True),
            os=jf.require_str(o, "os", where, nonempty=True),
            rootfs_diff_ids=_diff_ids(o, where),
            variant=jf.get_str(o, "variant", where) or None,
            os_version=jf.get_str(o, "os.version", where) or None,
            os_features=jf.get_str_list(o, "os.features", where),
            created=jf.get_date_time(o, "created", where),
            author=jf.get_str(o, "author", where),
            config=_runtime_config(o, where),
            history=tuple(History.from_json(h, f"{jf.field_name(where, 'history')}[{i}]")
                          for i, h in enumerate(history)),
            raw=o,
        )


def _diff_ids(o: Mapping[str, Any], where: str) -> tuple[Digest, ...]:
    rootfs = jf.get_object(o, "rootfs", where, required=True)
    assert rootfs is not None
    name = jf.field_name(where, "rootfs")
    kind = jf.require_str(rootfs, "type", name)
    if kind != "layers":
        raise InvalidArgument(f"{name}.type: want \"layers\", got {kind!r}")
    if "diff_ids" not in rootfs:
        raise InvalidArgument(f"{name}.diff_ids: required field missing")
    ids = jf.get_str_list(rootfs, "diff_ids", name)
    out = []
    for i, text in enumerate(ids):
        try:
            out.append(Digest(text))
        except InvalidArgument as e:
            raise InvalidArgument(f"{name}.diff_ids[{i}]: {e}") from None
    return tuple(out)


# Each check lets null through: Go, which wrote most configs in the wild, reads null as unset.

def _check_str(value: Any, name: str) -> Any:
    if value is not None and not isinstance(value, str):
        raise InvalidArgument(f"{name}: want a string, got {jf.kind(value)}")
    return value


def _check_bool(value: Any, name: str) -> Any:
    if value is not None and not isinstance(value, bool):
        raise InvalidArgument(f"{name}: want a boolean, got {jf.kind(value)}")
    return value


def _check_int(value: Any, name: str) -> Any:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidArgument(f"{name}: want an integer, got {jf.kind(value)}")
    return value


def _check_str_list(value: Any, name: str) -> Any:
    if value is None:
        return None
    if not isinstance(value, list):
        raise InvalidArgument(f"{name}: want an array of strings, got {jf.kind(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, str):  # an argv or env entry of null is no entry at all
            raise InvalidArgument(f"{name}[{i}]: want a string, got {jf.kind(item)}")
    return value


def _check_command(value: Any, name: str) -> Any:
    """Cmd, Entrypoint, Shell: Docker also reads a lone string as a one-word list."""
    return [value] if isinstance(value, str) else _check_str_list(value, name)


def _check_str_map(value: Any, name: str) -> Any:
    if value is None:
        return None
    for k, v in jf.expect_object(value, name).items():
        _check_str(v, f"{name}[{k!r}]")
    return value


def _check_set(value: Any, name: str) -> Any:
    """ExposedPorts and Volumes: keys matter, each value an empty object."""
    if value is None:
        return None
    for k, v in jf.expect_object(value, name).items():
        jf.expect_object(v, f"{name}[{k!r}]")
    return value


def _check_healthcheck(value: Any, name: str) -> Any:
    if value is None:
        return None
    o = jf.expect_object(value, name)
    _check_str_list(o.get("Test"), f"{name}.Test")
    for key in ("Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"):
        _check_int(o.get(key), f"{name}.{key}")
    return value


_RUNTIME_KEYS: dict[str, Callable[[Any, str], Any]] = {
    "User": _check_str,
    "ExposedPorts": _check_set,
    "Env": _check_str_list,
    "Entrypoint": _check_command,
    "Cmd": _check_command,
    "Volumes": _check_set,
    "WorkingDir": _check_str,
    "Labels": _check_str_map,
    "StopSignal": _check_str,
    "ArgsEscaped": _check_bool,
    "Healthcheck": _check_healthcheck,
    "OnBuild": _check_str_list,
    "Shell": _check_command,
    "StopTimeout": _check_int,
}


def _runtime_config(o: Mapping[str, Any], where: str) -> dict[str, Any]:
    config = jf.get_object(o, "config", where)
    if config is None:
        return {}
    name = jf.field_name(where, "config")
    out = dict(config)
    for key, check in _RUNTIME_KEYS.items():
        if key in out:
            out[key] = check(out[key], f"{name}.{key}")
    return out


def parse_config(data: bytes, digest: str | None = None) -> ImageConfig:
    """An image config from its bytes, checked against `digest` first when one is given."""
    data = jf.bounded(data, WHERE, MAX_CONFIG_SIZE)
    if digest is not None:
        verify(data, digest)
    return ImageConfig.from_json(jf.load(data, WHERE, MAX_CONFIG_SIZE))
