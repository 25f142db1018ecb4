"""``RUN --mount=...`` specs as BuildKit's ``instructions/commands_runmount.go`` reads them:
a CSV line of ``key=value`` fields (and a few bare flags) turned into a ``Mount``, with the
same option names, aliases, defaults and error messages.

Values may hold variables (``target=$DIR``); ``parse_mount`` takes the expander so the
executor can re-parse a spec with the stage's environment. Defaults that depend on other
fields (a secret's id from its target, a cache's id from its target) are methods here so
the executor does not re-derive them.
"""

from __future__ import annotations

import csv
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass

MOUNT_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
SHARING_MODES = ("shared", "private", "locked")
_ALL_KEYS = ("type", "from", "source", "target", "readonly", "id", "sharing", "required",
             "mode", "uid", "gid", "src", "dst", "ro", "rw", "readwrite", "size", "env")


class MountError(ValueError):
    """A ``--mount`` spec that BuildKit would reject; the message is BuildKit's."""


@dataclass(frozen=True, kw_only=True)
class Mount:
    """One ``--mount``. ``from_`` is a stage name or image (empty: the build context for
    bind, scratch otherwise); ``id`` is BuildKit's CacheID (cache and secret/ssh id);
    ``sharing`` is empty unless given (cache mounts then default to ``shared``);
    ``size`` is a tmpfs size limit in bytes (0: none); ``env`` names the environment
    variable a secret is exposed as."""

    type: str = "bind"
    from_: str = ""
    source: str = ""
    target: str = ""
    readonly: bool = True
    id: str = ""
    sharing: str = ""
    required: bool = False
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    size: int = 0
    env: str | None = None

    def cache_id(self) -> str:
        """A cache mount's id: ``id=`` or else its target (BuildKit's default)."""
        return self.id or self.target

    def cache_sharing(self) -> str:
        return self.sharing or "shared"

    def secret_id(self) -> str:
        """A secret's id: ``id=`` (or ``source=``) or else the basename of its target."""
        return self.id or self.source or posixpath.basename(self.target)

    def secret_target(self) -> str:
        """Where a secret is mounted: ``target=`` or ``/run/secrets/<id>``; empty if it is
        only exposed through ``env=``."""
        if self.target or self.env is not None:
            return self.target
        return "/run/secrets/" + posixpath.basename(self.secret_id())

    def ssh_id(self) -> str:
        return self.id or "default"


def _parse_bool(key: str, value: str) -> bool:
    """Go's strconv.ParseBool."""
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise MountError(f"invalid value for {key}: {value}")


def _parse_uint(key: str, value: str, base: int) -> int:
    try:
        number = int(value, base)
    except ValueError:
        number = -1
    if number < 0 or number > 0xFFFFFFFF or value.startswith(("+", "-")) or "_" in value:
        raise MountError(f"invalid value {value} for {key}")
    return number


_RAM = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")


def ram_in_bytes(text: str) -> int:
    """go-units RAMInBytes: ``64m``, ``1.5GiB``, ``512`` — binary multipliers."""
    m = _RAM.match(text)
    if not m:
        raise ValueError(f"invalid size: '{text}'")
    mult = 1024 ** (" kmgtp".index(m.group(2).lower()) if m.group(2) else 0)
    return int(float(m.group(1)) * mult)


def mount_fields(spec: str) -> list[str]:
    """The spec's CSV fields, as Go's encoding/csv reads one record."""
    try:
        return next(csv.reader([spec], strict=True))
    except (csv.Error, StopIteration) as e:
        raise MountError(f"failed to parse csv mounts: {e}") from None


def mount_from(spec: str) -> str:
    """Only the ``from=`` value, for dependency analysis before any expansion."""
    for fld in mount_fields(spec):
        key, sep, value = fld.partition("=")
        if sep and key.lower() == "from":
            return value
    return ""


def parse_mount(spec: str, expand: Callable[[str], str] | None = None) -> Mount:
    """Parse one ``--mount`` value. ``expand`` (a single-word expander) is applied to every
    value first; ``from=`` must never contain a variable."""
    fields: dict[str, object] = {}
    ro_auto = True
    mtype = "bind"
    for fld in mount_fields(spec):
        key, sep, value = fld.partition("=")
        key = key.lower()
        if not sep:
            if key in ("readonly", "ro"):
                fields["readonly"], ro_auto = True, False
            elif key in ("readwrite", "rw"):
                fields["readonly"], ro_auto = False, False
            elif key == "required":
                if mtype not in ("secret", "ssh"):
                    raise MountError(f"unexpected key '{key}' for mount type '{mtype}'")
                fields["required"] = True
            else:
                raise MountError(f"invalid field '{fld}' must be a key=value pair")
            continue
        if key == "from" and re.search(r"\$.", value):
            raise MountError(
                f"'{key}' doesn't support variable expansion, define alias stage instead")
        if expand is not None and key != "from":
            value = expand(value)
        if key == "type":
            if value.lower() not in MOUNT_TYPES:
                raise MountError(f'unsupported mount type "{value}"')
            mtype = value.lower()
        elif key == "from":
            fields["from_"] = value
        elif key in ("source", "src"):
            fields["source"] = value
        elif key in ("target", "dst", "destination"):
            fields["target"] = value
        elif key in ("readonly", "ro"):
            fields["readonly"], ro_auto = _parse_bool(key, value), False
        elif key in ("readwrite", "rw"):
            fields["readonly"], ro_auto = not _parse_bool(key, value), False
        elif key == "required":
            if mtype not in ("secret", "ssh"):
                raise MountError(f"unexpected key '{key}' for mount type '{mtype}'")
            fields["required"] = _parse_bool(key, value)
        elif key == "size":
            if mtype != "tmpfs":
                raise MountError(f"unexpected key '{key}' for mount type '{mtype}'")
            try:
                fields["size"] = ram_in_bytes(value)
            except ValueError:
                raise MountError(f"invalid value for {key}: {value}") from None
        elif key == "id":
            fields["id"] = value
        elif key == "sharing":
            if value.lower() not in SHARING_MODES:
                raise MountError(f'unsupported sharing value "{value}"')
            fields["sharing"] = value.lower()
        elif key == "mode":
            fields["mode"] = _parse_uint(key, value, 8)
        elif key in ("uid", "gid"):
            fields[key] = _parse_uint(key, value, 10)
        elif key == "env":
            fields["env"] = value
        else:
            raise MountError(f"unexpected key '{key}' in '{fld}'")
    if ro_auto:
        fields["readonly"] = mtype not in ("cache", "tmpfs")
    mount = Mount(type=mtype, **fields)  # type: ignore[arg-type]
    _validate(mount)
    return mount


def _validate(m: Mount) -> None:
    if m.type not in ("secret", "ssh", "cache"):
        for name in ("mode", "uid", "gid"):
            if getattr(m, name) is not None:
                raise MountError(f'{name} not allowed for "{m.type}" type mounts')
    if m.type == "secret":
        if m.from_:
            raise MountError("secret mount should not have a from")
        if m.sharing:
            raise MountError("secret mount should not define sharing")
        if not m.source and not m.target and not m.id and m.env is None:
            raise MountError("invalid secret mount. one of source, target required")
        if m.source and m.id:
            raise MountError("both source and id can't be set")
    if m.sharing and m.type != "cache":
        raise MountError(f"invalid cache sharing set for {m.type} mount")
