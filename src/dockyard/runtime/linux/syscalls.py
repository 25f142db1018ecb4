"""The Linux system calls that Python 3.11's `os` module lacks, through ctypes.

Everything that changes the host (mounts, namespaces, capabilities) goes through a
`Syscalls` object, so that pure planning code can be unit-tested against a recording double
(tests/unit/runtime/recording.py) without root. Production code never picks the double:
callers pass the object in, and `LINUX` is the real one.

Errors keep errno, the call and its path: `OSError(errno, "mount /proc: No such file ...")`.
"""

from __future__ import annotations

import ctypes
import os

TYPE_CHECKING = False  # not from typing: importing typing costs ~9 ms
if TYPE_CHECKING:
    from typing import Protocol
else:
    Protocol = object

# Clone / namespace flags (linux/sched.h).
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# mount(2) flags (linux/mount.h).
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_I_VERSION = 1 << 23
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25
MNT_DETACH = 2

# prctl(2) options.
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

_NR_PIVOT_ROOT = 155
_NR_CAPGET = 125
_NR_CAPSET = 126
_NR_CLOSE_RANGE = 436
CLOSE_RANGE_CLOEXEC = 1 << 2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.mount.argtypes = (
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
)


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def _b(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


class Syscalls(Protocol):
    """The calls that change the host, as the rootfs and namespace steps use them."""

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int,
              data: str | None = None) -> None: ...

    def umount(self, target: str, flags: int = 0) -> None: ...

    def pivot_root(self, new_root: str, put_old: str) -> None: ...

    def mknod(self, path: str, mode: int, device: int) -> None: ...

    def symlink(self, target: str, path: str) -> None: ...


class LibcSyscalls:
    """The real calls."""

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int,
              data: str | None = None) -> None:
        ret = _libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data))
        _check(ret, f"mount {source or ''} to {target}")

    def umount(self, target: str, flags: int = 0) -> None:
        _check(_libc.umount2(_b(target), flags), f"umount {target}")

    def pivot_root(self, new_root: str, put_old: str) -> None:
        ret = _libc.syscall(_NR_PIVOT_ROOT, _b(new_root), _b(put_old))
        _check(ret, f"pivot_root {new_root}")

    def mknod(self, path: str, mode: int, device: int) -> None:
        os.mknod(path, mode, device)

    def symlink(self, target: str, path: str) -> None:
        os.symlink(target, path)


LINUX = LibcSyscalls()


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), f"unshare {flags:#x}")


def setns(fd: int, nstype: int = 0, what: str = "") -> None:
    _check(_libc.setns(fd, nstype), f"setns {what}")


def sethostname(name: str) -> None:
    b = name.encode()
    _check(_libc.sethostname(b, len(b)), "sethostname")


def setdomainname(name: str) -> None:
    b = name.encode()
    _check(_libc.setdomainname(b, len(b)), "setdomainname")


def prctl(option: int, a2: int = 0, a3: int = 0, a4: int = 0, a5: int = 0) -> int:
    ret = _libc.prctl(option, ctypes.c_ulong(a2), ctypes.c_ulong(a3), ctypes.c_ulong(a4),
                      ctypes.c_ulong(a5))
    return _check(ret, f"prctl {option}")


def close_range(first: int, last: int = 0xFFFFFFFF, flags: int = 0) -> None:
    _check(_libc.syscall(_NR_CLOSE_RANGE, first, last, flags), "close_range")


_NR_RT_SIGACTION = 13
_NR_RT_SIGPROCMASK = 14


def reset_signals() -> None:
    """Every signal to its default action, none blocked, as a new process expects.

    An ignored signal stays ignored across execve: Python ignores SIGPIPE and SIGXFSZ, and
    glibc's posix_spawn leaves its two internal signals (32, 33) ignored in the child. The
    raw system calls reach those two, which sigaction() refuses to touch.
    """
    default = ctypes.create_string_buffer(32)  # struct kernel_sigaction, all zero: SIG_DFL
    for sig in range(1, 65):
        if sig not in (9, 19):  # SIGKILL, SIGSTOP
            _libc.syscall(_NR_RT_SIGACTION, sig, default, None, 8)
    empty = ctypes.create_string_buffer(8)
    _check(_libc.syscall(_NR_RT_SIGPROCMASK, 2, empty, None, 8), "rt_sigprocmask")  # SETMASK


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    )


_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set this thread's capability sets; each argument is a 64-bit mask."""
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(_libc.syscall(_NR_CAPSET, ctypes.byref(hdr), data), "capset")


def capget(pid: int = 0) -> tuple[int, int, int]:
    """Return (effective, permitted, inheritable) masks of a thread."""
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, pid)
    data = (_CapData * 2)()
    _check(_libc.syscall(_NR_CAPGET, ctypes.byref(hdr), data), "capget")
    eff = data[0].effective | (data[1].effective << 32)
    prm = data[0].permitted | (data[1].permitted << 32)
    inh = data[0].inheritable | (data[1].inheritable << 32)
    return eff, prm, inh


libc = _libc
