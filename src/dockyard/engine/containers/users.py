"""`Config.User` and `HostConfig.GroupAdd` turned into the process's uid, gid and additional
gids, from the container's own /etc/passwd and /etc/group as dockerd (runc's libcontainer/user)
reads them: "name", "uid", "name:group", "uid:gid"; a numeric id needs no entry; the
additional gids are the user's supplementary groups (or its primary group when it has none)
followed by GroupAdd."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from dockyard.engine.errors import InvalidParameter


@dataclass(frozen=True)
class Entry:
    name: str
    id: int
    gid: int = 0                  # passwd: the primary group
    members: tuple[str, ...] = ()  # group: its members


def _read(rootfs: str | Sequence[str] | None, path: str) -> str | None:
    """The container's file at `path`: from `rootfs`, or from the first of several
    directories (an overlay's upper then lower ones) that has it."""
    roots = [rootfs] if isinstance(rootfs, str) else list(rootfs or ())
    for root in roots:
        # The file is the container's: never follow it out of its root.
        real_root = os.path.realpath(root)
        real = os.path.realpath(os.path.join(real_root, path.lstrip("/")))
        if real != real_root and not real.startswith(real_root + os.sep):
            continue
        try:
            with open(real, encoding="utf-8", errors="replace") as f:
                return f.read(1 << 20)
        except OSError:
            continue
    return None


def parse_passwd(text: str | None) -> list[Entry]:
    out = []
    for line in (text or "").splitlines():
        parts = line.strip().split(":")
        if len(parts) < 4 or not parts[0] or parts[0].startswith("#"):
            continue
        try:
            out.append(Entry(parts[0], int(parts[2]), int(parts[3])))
        except ValueError:
            continue
    return out


def parse_group(text: str | None) -> list[Entry]:
    out = []
    for line in (text or "").splitlines():
        parts = line.strip().split(":")
        if len(parts) < 3 or not parts[0] or parts[0].startswith("#"):
            continue
        try:
            gid = int(parts[2])
        except ValueError:
            continue
        members = tuple(m for m in (parts[3].split(",") if len(parts) > 3 else []) if m)
        out.append(Entry(parts[0], gid, members=members))
    return out


def _id(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def resolve(user: str, group_add: Sequence[str] = (),
            rootfs: str | Sequence[str] | None = None) -> tuple[int, int, list[int]]:
    """(uid, gid, additional gids) for `Config.User` in the container's rootfs."""
    passwd = parse_passwd(_read(rootfs, "/etc/passwd"))
    groups = parse_group(_read(rootfs, "/etc/group"))
    name_part, _, group_part = (user or "").partition(":")
    uid, gid, name = 0, 0, "root" if not name_part else ""
    if name_part:
        number = _id(name_part)
        match = next((e for e in passwd if e.name == name_part or
                      (number is not None and e.id == number)), None)
        if match is not None:
            uid, gid, name = match.id, match.gid, match.name
        elif number is not None:
            uid = number
        else:
            raise InvalidParameter(f"unable to find user {name_part}: no matching entries "
                                   "in passwd file")
    elif passwd:
        root = next((e for e in passwd if e.id == 0), None)
        if root is not None:
            gid, name = root.gid, root.name
    sgids: list[int] = []
    if group_part:
        number = _id(group_part)
        match = next((e for e in groups if e.name == group_part or
                      (number is not None and e.id == number)), None)
        if match is not None:
            gid = match.id
        elif number is not None:
            gid = number
        else:
            raise InvalidParameter(f"unable to find group {group_part}: no matching entries "
                                   "in group file")
    elif name:
        sgids = [e.id for e in groups if name in e.members]
    if not sgids:
        sgids = [gid]
    for extra in group_add or ():
        number = _id(str(extra))
        match = next((e for e in groups if e.name == extra), None)
        if match is not None:
            sgids.append(match.id)
        elif number is not None:
            sgids.append(number)
        else:
            raise InvalidParameter(f"Unable to find group {extra}: no matching entries in "
                                   "group file")
    return uid, gid, sgids
