"""Capability names, their numbers, and the masks the credential step applies.

`process.capabilities` holds five lists of names (bounding, effective, permitted,
inheritable, ambient). A name this module does not know is a config error, worded as runc
words it: `unknown capability "CAP_FOO"`. A name we know but the running kernel does not
(a number above /proc/sys/kernel/cap_last_cap) is left out of the masks with a warning, as
runc does ("ignoring unknown or unavailable capabilities").

Nothing here changes the process; credentials.py applies the masks.
"""

from __future__ import annotations

import errno

from dockyard.runtime import log
from dockyard.runtime.errors import ConfigError
from dockyard.runtime.linux import syscalls as sc

TYPE_CHECKING = False  # typing costs milliseconds to import; mypy reads this as True
if TYPE_CHECKING:
    from typing import Any

CAPABILITIES: dict[str, int] = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_DAC_READ_SEARCH": 2,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14,
    "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16,
    "CAP_SYS_RAWIO": 17,
    "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20,
    "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22,
    "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24,
    "CAP_SYS_TIME": 25,
    "CAP_SYS_TTY_CONFIG": 26,
    "CAP_MKNOD": 27,
    "CAP_LEASE": 28,
    "CAP_AUDIT_WRITE": 29,
    "CAP_AUDIT_CONTROL": 30,
    "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32,
    "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34,
    "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36,
    "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}

CAP_SETPCAP = 8
CAP_SYS_RESOURCE = 24
SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")

_last_cap: int | None = None


def last_cap() -> int:
    """The highest capability number the running kernel knows (cached).

    Read from /proc/sys/kernel/cap_last_cap; where /proc is not mounted (a container without
    it), found by asking PR_CAPBSET_READ, which fails with EINVAL past the last one.
    """
    global _last_cap
    if _last_cap is None:
        try:
            with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
                _last_cap = int(f.read())
        except (OSError, ValueError):
            _last_cap = _probe_last_cap()
    return _last_cap


def _probe_last_cap() -> int:
    lo, hi = 0, 63  # lo is known to exist (CAP_CHOWN), hi + 1 is known not to
    while lo < hi:
        mid = (lo + hi + 1) // 2
        try:
            sc.prctl(sc.PR_CAPBSET_READ, mid)
            lo = mid
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
            hi = mid - 1
    return lo


def known() -> list[str]:
    """Names the running kernel supports, in number order (`features` lists these)."""
    last = last_cap()
    return [name for name, n in CAPABILITIES.items() if n <= last]


def mask(names: list[str] | None, ignored: list[str] | None = None) -> int:
    """The bit mask of `names`; names the kernel lacks are left out (and added to `ignored`)."""
    bits = 0
    last = last_cap()
    for name in names or ():
        n = CAPABILITIES.get(name) if isinstance(name, str) else None
        if n is None:
            raise ConfigError(f"unknown capability {_quote(name)}")
        if n <= last:
            bits |= 1 << n
        elif ignored is not None and name not in ignored:
            ignored.append(name)
    return bits


def masks(caps: dict[str, Any] | None, ignored: list[str] | None = None) -> dict[str, int]:
    """One mask per set; no capabilities object means every set is empty (as runc)."""
    caps = caps or {}
    return {s: mask(caps.get(s), ignored) for s in SETS}


def validate(caps: dict[str, Any] | None) -> None:
    """Check process.capabilities; warn (not fail) about names the kernel lacks."""
    if caps is None:
        return
    if not isinstance(caps, dict):
        raise ConfigError("process.capabilities must be an object")
    for s in SETS:
        given = caps.get(s)
        if given is not None and not isinstance(given, list):
            raise ConfigError(f"process.capabilities.{s} must be a list of strings")
    ignored: list[str] = []
    masks(caps, ignored)
    if ignored:
        log.warning("ignoring unknown or unavailable capabilities: [" +
                    " ".join(sorted(ignored)) + "]")


def names(bits: int) -> list[str]:
    """The names in a mask, in number order (for messages and tests)."""
    return [name for name, n in CAPABILITIES.items() if bits >> n & 1]


def _quote(value: object) -> str:
    s = value if isinstance(value, str) else repr(value)
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

