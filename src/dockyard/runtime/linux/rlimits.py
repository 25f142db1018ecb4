"""process.rlimits: validated on the CLI side, applied by the init with prlimit(2).

The init applies them before dropping capabilities: raising a hard limit above the one it
inherited needs CAP_SYS_RESOURCE, and the error says so. prlimit goes through ctypes (already
loaded for the other calls) rather than the `resource` module, which would cost a dlopen.
"""

from __future__ import annotations

import ctypes
import errno
import os

from dockyard.runtime.errors import ConfigError
from dockyard.runtime.linux import syscalls as sc

TYPE_CHECKING = False  # typing costs milliseconds to import; mypy reads this as True
if TYPE_CHECKING:
    from typing import Any

RLIMITS: dict[str, int] = {
    "RLIMIT_CPU": 0,
    "RLIMIT_FSIZE": 1,
    "RLIMIT_DATA": 2,
    "RLIMIT_STACK": 3,
    "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5,
    "RLIMIT_NPROC": 6,
    "RLIMIT_NOFILE": 7,
    "RLIMIT_MEMLOCK": 8,
    "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10,
    "RLIMIT_SIGPENDING": 11,
    "RLIMIT_MSGQUEUE": 12,
    "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14,
    "RLIMIT_RTTIME": 15,
}

RLIM_INFINITY = 0xFFFFFFFFFFFFFFFF


class _Rlimit(ctypes.Structure):
    _fields_ = (("cur", ctypes.c_uint64), ("max", ctypes.c_uint64))


_prlimit = sc.libc.prlimit
_prlimit.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Rlimit),
                     ctypes.POINTER(_Rlimit))
_prlimit.restype = ctypes.c_int


def validate(rlimits: list[dict[str, Any]] | None) -> None:
    """Each entry: a known type (once), soft and hard as uint64, soft <= hard."""
    if rlimits is None:
        return
    if not isinstance(rlimits, list):
        raise ConfigError("process.rlimits must be a list")
    seen = set()
    for rl in rlimits:
        if not isinstance(rl, dict):
            raise ConfigError("process.rlimits entries must be objects")
        kind = rl.get("type")
        if kind not in RLIMITS:
            raise ConfigError(f"wrong rlimit value: {kind}")
        if kind in seen:
            raise ConfigError(f"duplicate rlimit type {kind}")
        seen.add(kind)
        for key in ("soft", "hard"):
            v = rl.get(key)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= RLIM_INFINITY:
                raise ConfigError(f"rlimit {kind}: {key} must be an integer from 0 to "
                                  f"{RLIM_INFINITY}, not {v!r}")
        if rl["soft"] > rl["hard"]:
            raise ConfigError(f"rlimit {kind}: soft limit {rl['soft']} is greater than hard "
                              f"limit {rl['hard']}")


def get(resource: int, pid: int = 0) -> tuple[int, int]:
    """(soft, hard) of a resource of a process (0: this one)."""
    old = _Rlimit()
    if _prlimit(pid, resource, None, ctypes.byref(old)) < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prlimit {resource}: {os.strerror(err)}")
    return old.cur, old.max


def apply(rlimits: list[dict[str, Any]] | None, pid: int = 0) -> None:
    """Set each limit on `pid` (0: this process), in the order given."""
    for rl in rlimits or ():
        kind = rl["type"]
        res = RLIMITS[kind]
        new = _Rlimit(rl["soft"], rl["hard"])
        if _prlimit(pid, res, ctypes.byref(new), None) == 0:
            continue
        err = ctypes.get_errno()
        hint = ""
        if err == errno.EPERM:
            hard = get(res, pid)[1]
            hint = (f" (raising the hard limit above {hard} needs CAP_SYS_RESOURCE)"
                    if rl["hard"] > hard else "")
        raise OSError(err, f"error setting rlimit type {kind}: {os.strerror(err)}{hint}")
