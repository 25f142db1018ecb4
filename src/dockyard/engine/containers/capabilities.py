"""Capabilities as Docker gives them to a container: its default set, every capability the
kernel knows (for `--privileged` and `--cap-add ALL`), and CapAdd/CapDrop applied the way
dockerd applies them (names with or without `CAP_`, any case, "ALL" on either side)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from dockyard.engine.errors import InvalidParameter
from dockyard.runtime.specgen import CONTAINER_CAPS

DEFAULT_CAPS = CONTAINER_CAPS  # Docker's default set, in the order dockerd writes it

# Every capability by number (linux/capability.h), which is also the order of "all".
ALL_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)

ALL = "ALL"


def last_cap(path: str = "/proc/sys/kernel/cap_last_cap") -> int:
    """The highest capability number this kernel knows (all of ours when unreadable)."""
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return len(ALL_CAPS) - 1


def host_caps(last: int | None = None) -> list[str]:
    """All capabilities the running kernel supports, as dockerd lists them for "all"."""
    n = last_cap() if last is None else last
    return list(ALL_CAPS[: n + 1])


def normalize(names: Iterable[str], what: str) -> list[str]:
    """`net_admin`, `NET_ADMIN` and `CAP_NET_ADMIN` all become `CAP_NET_ADMIN`; "ALL" stays."""
    out: list[str] = []
    for raw in names:
        name = str(raw).upper()
        if name != ALL and not name.startswith("CAP_"):
            name = "CAP_" + name
        if name != ALL and name not in ALL_CAPS:
            raise InvalidParameter(f'invalid {what}: unknown capability: "{name}"')
        if name not in out:
            out.append(name)
    return out


def tweak(add: Sequence[str] | None, drop: Sequence[str] | None, *,
          privileged: bool = False, basics: Sequence[str] = DEFAULT_CAPS,
          available: Sequence[str] | None = None) -> list[str]:
    """The capability set of a container: dockerd's TweakCapabilities."""
    every = list(available) if available is not None else host_caps()
    if privileged:
        return every
    if not add and not drop:
        return list(basics)
    drops = normalize(drop or (), "CapDrop")
    adds = normalize(add or (), "CapAdd")
    if ALL in adds:
        return [c for c in every if c not in drops]
    if ALL in drops:
        return [c for c in adds if c != ALL]
    caps = [c for c in basics if c not in drops]
    return caps + [c for c in adds if c not in caps]
