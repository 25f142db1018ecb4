"""Process credentials: who the container's process is, set by the init just before execve.

`apply(process)` follows runc's finalizeNamespace and setupUser. The order is the reason this
module exists; each step needs a privilege that a later step takes away:

 1. bounding set     drop every capability not in capabilities.bounding (PR_CAPBSET_DROP).
                     Needs CAP_SETPCAP in the effective set, which the uid switch (5) empties.
 2. PR_SET_KEEPCAPS  =1, so that leaving uid 0 keeps the permitted set; without it the kernel
                     clears permitted and effective and step 6 could raise nothing.
 3. stdio owner      fds 0-2 are chowned to the new uid (unless /dev/null or already its own)
                     so that the process can reopen them, a console above all. Needs
                     CAP_CHOWN: before the uid switch. EINVAL/EPERM/EROFS are ignored (runc).
 4. setgroups        additionalGids, or none at all: the groups root had must not leak in.
                     Needs CAP_SETGID: before the uid switch. Skipped when
                     /proc/self/setgroups says "deny" (a user namespace whose parent denied
                     it), where the kernel refuses it whatever we ask.
 5. setresgid, then setresuid   gid first: after setresuid we lack CAP_SETGID.
 6. PR_SET_KEEPCAPS  =0, then capset(effective, permitted, inheritable): permitted can only
                     shrink from what step 2 kept; effective must be within permitted, and
                     inheritable within the bounding set of step 1.
 7. ambient          cleared, then raised one by one; each must be in permitted and
                     inheritable (6). A refused one is a warning, as in runc.
 8. umask            user.umask, 0022 when absent.

No capabilities object means no capabilities at all (as runc), even for uid 0.

The init calls this after rlimits and oom_score_adj (they need CAP_SYS_RESOURCE, which the
process may not keep) and around seccomp: without noNewPrivileges the filter is loaded
before this step (loading it then needs CAP_SYS_ADMIN, which this step may drop); with
noNewPrivileges after it, so that a profile need not allow the calls made here.

Everything runs after pivot_root: only /proc and the container's own files are read.
"""

from __future__ import annotations

import errno
import os
import stat

from dockyard.runtime.errors import ConfigError
from dockyard.runtime.linux import capabilities
from dockyard.runtime.linux import syscalls as sc

TYPE_CHECKING = False  # typing costs milliseconds to import; mypy reads this as True
if TYPE_CHECKING:
    from typing import Any

_U32 = 0xFFFFFFFF
DEFAULT_UMASK = 0o022


def _u32(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _U32:
        raise ConfigError(f"{what} must be an integer from 0 to {_U32}, not {value!r}")
    return value


def validate_user(user: dict[str, Any]) -> None:
    """process.user: numeric uid and gid, umask, additionalGids (username is Windows-only)."""
    if not isinstance(user, dict):
        raise ConfigError("process.user must be an object")
    _u32(user.get("uid", 0), "process.user.uid")
    _u32(user.get("gid", 0), "process.user.gid")
    if user.get("umask") is not None:
        _u32(user["umask"], "process.user.umask")
    gids = user.get("additionalGids")
    if gids is not None:
        if not isinstance(gids, list):
            raise ConfigError("process.user.additionalGids must be a list of integers")
        for g in gids:
            _u32(g, "process.user.additionalGids entry")


def apply(process: dict[str, Any]) -> list[str]:
    """Set user, groups, capabilities and umask of this process (steps in the docstring).

    Returns warnings (capabilities the kernel lacks, ambient ones it refused) for the caller
    to log; raises OSError naming the step that failed.
    """
    user = process.get("user") or {}
    uid, gid = user.get("uid", 0), user.get("gid", 0)
    warnings: list[str] = []
    ignored: list[str] = []
    caps = capabilities.masks(process.get("capabilities"), ignored)
    if ignored:
        warnings.append("ignoring unknown or unavailable capabilities: [" +
                        " ".join(sorted(ignored)) + "]")
    drop_bounding(caps["bounding"])
    _prctl(sc.PR_SET_KEEPCAPS, 1, "unable to set keep caps")
    fix_stdio_owner(uid)
    set_groups(user.get("additionalGids") or [])
    set_ids(uid, gid)
    _prctl(sc.PR_SET_KEEPCAPS, 0, "unable to clear keep caps")
    try:
        sc.capset(caps["effective"], caps["permitted"], caps["inheritable"])
    except OSError as e:
        raise _failed(e, "unable to apply caps: capset") from None
    warnings += raise_ambient(caps["ambient"])
    umask = user.get("umask")
    os.umask(DEFAULT_UMASK if umask is None else umask & 0o777)
    return warnings


def drop_bounding(keep: int) -> None:
    """Drop from the bounding set every capability whose bit is not in `keep`."""
    drop = [c for c in range(capabilities.last_cap() + 1)
            if not keep >> c & 1 and _in_bounding(c)]
    if not drop:
        return
    if not sc.capget()[0] >> capabilities.CAP_SETPCAP & 1:
        raise OSError(errno.EPERM, "unable to apply bounding set: CAP_SETPCAP is not in the "
                                   "effective set")
    for c in drop:
        try:
            sc.prctl(sc.PR_CAPBSET_DROP, c)
        except OSError as e:
            if e.errno != errno.EINVAL:  # EINVAL: the kernel lacks it, nothing to drop
                raise _failed(e, f"unable to apply bounding set: drop "
                                 f"{capabilities.names(1 << c)[0]}") from None


def _in_bounding(cap: int) -> bool:
    try:
        return sc.prctl(sc.PR_CAPBSET_READ, cap) == 1
    except OSError:
        return False


def fix_stdio_owner(uid: int) -> None:
    """chown fds 0-2 to uid (keeping their group), as runc's fixStdioPermissions."""
    try:
        null = os.stat("/dev/null")
        null_rdev = null.st_rdev if stat.S_ISCHR(null.st_mode) else None
    except OSError:
        null_rdev = None
    for fd in (0, 1, 2):
        try:
            st = os.fstat(fd)
        except OSError:
            continue  # closed: nothing to give away
        if st.st_uid == uid or (null_rdev is not None and stat.S_ISCHR(st.st_mode)
                                and st.st_rdev == null_rdev):
            continue
        try:
            os.fchown(fd, uid, st.st_gid)
        except OSError as e:
            # EINVAL: its gid is unmapped in our user namespace; EPERM: its owner is;
            # EROFS: a read-only /dev. Better to leave stdio alone than to fail.
            if e.errno not in (errno.EINVAL, errno.EPERM, errno.EROFS):
                raise _failed(e, f"unable to setup user: fchown stdio fd {fd}") from None


def setgroups_allowed() -> bool:
    """False in a user namespace whose /proc/self/setgroups is "deny"."""
    try:
        with open("/proc/self/setgroups", "rb") as f:
            return f.read().strip() != b"deny"
    except FileNotFoundError:
        return True


def set_groups(gids: list[int]) -> None:
    if not setgroups_allowed():
        return
    try:
        os.setgroups(list(dict.fromkeys(gids)))
    except OSError as e:
        raise _failed(e, f"unable to setup user: setgroups {gids}") from None


def set_ids(uid: int, gid: int) -> None:
    try:
        os.setresgid(gid, gid, gid)
    except OSError as e:
        if e.errno == errno.EINVAL:
            raise OSError(e.errno, f"unable to setup user: cannot setgid to unmapped gid "
                                   f"{gid} in user namespace") from None
        raise _failed(e, f"unable to setup user: setresgid {gid}") from None
    try:
        os.setresuid(uid, uid, uid)
    except OSError as e:
        if e.errno == errno.EINVAL:
            raise OSError(e.errno, f"unable to setup user: cannot setuid to unmapped uid "
                                   f"{uid} in user namespace") from None
        raise _failed(e, f"unable to setup user: setresuid {uid}") from None


def raise_ambient(bits: int) -> list[str]:
    """Clear the ambient set, then raise each capability in `bits`; refusals are warnings."""
    try:
        sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_CLEAR_ALL)
    except OSError as e:
        if e.errno != errno.EINVAL:  # EINVAL: a kernel without ambient capabilities
            raise _failed(e, "unable to apply caps: clear ambient") from None
    warnings = []
    for name in capabilities.names(bits):
        try:
            sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_RAISE, capabilities.CAPABILITIES[name])
        except OSError as e:
            warnings.append(f"can't raise ambient capability {name}: "
                            f"{os.strerror(e.errno or 0)}")
    return warnings


def set_no_new_privs() -> None:
    """PR_SET_NO_NEW_PRIVS: execve never grants privileges again (setuid bits, file caps)."""
    _prctl(sc.PR_SET_NO_NEW_PRIVS, 1, "unable to set no_new_privs")


def set_oom_score_adj(pid: int, value: int) -> None:
    """Write /proc/<pid>/oom_score_adj. Lowering it below the current value needs
    CAP_SYS_RESOURCE; the error says so."""
    path = f"/proc/{pid}/oom_score_adj"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, str(int(value)).encode())
        finally:
            os.close(fd)
    except OSError as e:
        hint = ""
        if e.errno in (errno.EACCES, errno.EPERM):
            hint = " (lowering oom_score_adj needs CAP_SYS_RESOURCE)"
        raise _failed(e, f"write {path} ({value})", hint) from None


def lookup_home(uid: int, passwd: str = "/etc/passwd") -> str:
    """The home directory of uid in the container's passwd file, "/" when it has none
    (runc sets HOME to it when process.env lacks HOME). Call after pivot_root."""
    try:
        with open(passwd, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return "/"
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 6 and fields[2].strip() == str(uid):
            return fields[5] or "/"
    return "/"


def _prctl(option: int, arg: int, what: str) -> None:
    try:
        sc.prctl(option, arg)
    except OSError as e:
        raise _failed(e, what) from None


def _failed(e: OSError, what: str, hint: str = "") -> OSError:
    """The same errno, worded with the step: "what: strerror hint"."""
    code = e.errno or 0
    return OSError(code, f"{what}: {os.strerror(code)}{hint}")
