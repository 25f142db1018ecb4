"""Docker's default seccomp profile as data, and the resolution dockerd applies to any profile
(the default or a `seccomp=<json>` one) before it goes into the OCI spec: the native
architecture picked from `archMap`, rules kept or dropped by their `includes`/`excludes`
(capabilities, architectures, minimum kernel), those two fields removed.

The facts (syscall names, argument filters, conditions) are those of the profile Debian's
dockerd 20.10 applies, as read from the config.json it hands to containerd; the layout is
ours: one `Rule` per entry, conditions as plain tuples.
"""

from __future__ import annotations

import functools
import os
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dockyard.engine.errors import InvalidParameter

ALLOW, ERRNO = "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO"

# Allowed for every container whatever its capabilities.
ALWAYS = (
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget", "capset",
    "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres",
    "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
    "clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat",
    "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old",
    "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2",
    "execve", "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64",
    "fadvise64_64", "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchown",
    "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr",
    "flock", "fork", "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs",
    "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex", "futex_time64", "futex_waitv",
    "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32",
    "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getitimer",
    "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom",
    "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list",
    "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid",
    "gettimeofday", "getuid", "getuid32", "getxattr", "inotify_add_watch", "inotify_init",
    "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents",
    "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup",
    "io_submit", "io_uring_enter", "io_uring_register", "io_uring_setup", "ipc", "kill",
    "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown",
    "lchown32", "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr", "_llseek",
    "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise", "membarrier",
    "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock",
    "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
    "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64",
    "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
    "munlockall", "munmap", "nanosleep", "newfstatat", "_newselect", "open", "openat",
    "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "poll", "ppoll",
    "ppoll_time64", "prctl", "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease",
    "pselect6", "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read", "readahead",
    "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64",
    "recvmsg", "remap_file_pages", "removexattr", "rename", "renameat", "renameat2",
    "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask",
    "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
    "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr",
    "sched_getparam", "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity",
    "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp",
    "select", "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send",
    "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32",
    "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer",
    "setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32",
    "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list",
    "setsid", "setsockopt", "set_thread_area", "set_tid_address", "setuid", "setuid32",
    "setxattr", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd",
    "signalfd4", "sigprocmask", "sigreturn", "socket", "socketcall", "socketpair", "splice",
    "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync",
    "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create",
    "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime",
    "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
    "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate", "truncate64",
    "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "utime", "utimensat",
    "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write",
    "writev",
)


@dataclass(frozen=True)
class Rule:
    names: tuple[str, ...]
    action: str = ALLOW
    args: tuple[tuple[int, int, str], ...] = ()  # (index, value, op)
    caps: tuple[str, ...] = ()                     # included only with one of these
    arches: tuple[str, ...] = ()                   # included only on one of these
    min_kernel: str = ""
    not_caps: tuple[str, ...] = ()                 # excluded with one of these
    not_arches: tuple[str, ...] = ()
    errno: int | None = None
    comment: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"names": list(self.names), "action": self.action}
        if self.args:
            out["args"] = [{"index": i, "value": v, "op": op} for i, v, op in self.args]
        if self.errno is not None:
            out["errnoRet"] = self.errno
        if self.comment:
            out["comment"] = self.comment
        includes = {k: v for k, v in (("caps", list(self.caps)), ("arches", list(self.arches)),
                                      ("minKernel", self.min_kernel)) if v}
        excludes = {k: v for k, v in (("caps", list(self.not_caps)),
                                      ("arches", list(self.not_arches))) if v}
        if includes:
            out["includes"] = includes
        if excludes:
            out["excludes"] = excludes
        return out


_S390 = ("s390", "s390x")
CLONE_NS_FLAGS = 0x7E020000  # CLONE_NEWNS|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWCGROUP

RULES: tuple[Rule, ...] = (
    Rule(tuple(ALWAYS)),
    Rule(("ptrace",), min_kernel="4.8"),
    *(Rule(("personality",), args=((0, persona, "SCMP_CMP_EQ"),))
      for persona in (0x0, 0x0008, 0x20000, 0x20008, 0xFFFFFFFF)),
    Rule(("sync_file_range2", "swapcontext"), arches=("ppc64le",)),
    Rule(("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
          "cacheflush", "set_tls"), arches=("arm", "arm64")),
    Rule(("arch_prctl",), arches=("amd64", "x32")),
    Rule(("modify_ldt",), arches=("amd64", "x32", "x86")),
    Rule(("s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"), arches=_S390),
    Rule(("riscv_flush_icache",), arches=("riscv64",)),
    Rule(("open_by_handle_at",), caps=("CAP_DAC_READ_SEARCH",)),
    Rule(("bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
          "lookup_dcookie", "mount", "mount_setattr", "move_mount", "name_to_handle_at",
          "open_tree", "perf_event_open", "quotactl", "quotactl_fd", "setdomainname",
          "sethostname", "setns", "syslog", "umount", "umount2", "unshare"),
         caps=("CAP_SYS_ADMIN",)),
    Rule(("clone",), args=((0, CLONE_NS_FLAGS, "SCMP_CMP_MASKED_EQ"),),
         not_caps=("CAP_SYS_ADMIN",), not_arches=_S390),
    Rule(("clone",), args=((1, CLONE_NS_FLAGS, "SCMP_CMP_MASKED_EQ"),),
         comment="s390 parameter ordering for clone is different", arches=_S390,
         not_caps=("CAP_SYS_ADMIN",)),
    # ENOSYS, so that a libc falls back to clone(2), which the rule above can inspect.
    Rule(("clone3",), action=ERRNO, errno=38, not_caps=("CAP_SYS_ADMIN",)),
    Rule(("reboot",), caps=("CAP_SYS_BOOT",)),
    Rule(("chroot",), caps=("CAP_SYS_CHROOT",)),
    Rule(("delete_module", "init_module", "finit_module"), caps=("CAP_SYS_MODULE",)),
    Rule(("acct",), caps=("CAP_SYS_PACCT",)),
    Rule(("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev",
          "ptrace"), caps=("CAP_SYS_PTRACE",)),
    Rule(("iopl", "ioperm"), caps=("CAP_SYS_RAWIO",)),
    Rule(("settimeofday", "stime", "clock_settime"), caps=("CAP_SYS_TIME",)),
    Rule(("vhangup",), caps=("CAP_SYS_TTY_CONFIG",)),
    Rule(("get_mempolicy", "mbind", "set_mempolicy"), caps=("CAP_SYS_NICE",)),
    Rule(("syslog",), caps=("CAP_SYSLOG",)),
    Rule(("bpf",), caps=("CAP_BPF",)),
    Rule(("perf_event_open",), caps=("CAP_PERFMON",)),
)

# Native (GOARCH-style) architecture -> the seccomp architectures a filter covers there.
ARCH_MAP: dict[str, tuple[str, ...]] = {
    "amd64": ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"),
    "arm64": ("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"),
    "mips64": ("SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"),
    "mips64n32": ("SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64"),
    "mipsel64": ("SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32"),
    "mipsel64n32": ("SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64"),
    "s390x": ("SCMP_ARCH_S390X", "SCMP_ARCH_S390"),
    "riscv64": ("SCMP_ARCH_RISCV64",),
}
_MACHINES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm",
             "i686": "386", "i386": "386", "ppc64le": "ppc64le", "s390x": "s390x",
             "riscv64": "riscv64", "mips64": "mips64"}


def native_arch() -> str:
    machine = platform.machine()
    return _MACHINES.get(machine, machine)


def kernel_version() -> tuple[int, ...]:
    return _version(os.uname().release)


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("-", 1)[0].split(".")[:3]:
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


@functools.cache
def default_profile() -> dict[str, Any]:
    """The default profile in Docker's JSON format (what `seccomp=<file>` also accepts).
    Made once (every container's spec starts from it): callers read it, never change it."""
    return {"defaultAction": ERRNO,
            "archMap": [{"architecture": arches[0], "subArchitectures": list(arches[1:])}
                        for arches in ARCH_MAP.values()],
            "syscalls": [r.to_json() for r in RULES]}


def resolve(profile: Mapping[str, Any], caps: Sequence[str], *, arch: str | None = None,
            kernel: tuple[int, ...] | None = None) -> dict[str, Any]:
    """The OCI `linux.seccomp` for a container with `caps`, from a Docker-format profile."""
    arch = arch or native_arch()
    kernel = kernel if kernel is not None else kernel_version()
    if not isinstance(profile, Mapping):
        raise InvalidParameter("Decoding seccomp profile failed: not a JSON object")
    if profile.get("architectures") and profile.get("archMap"):
        raise InvalidParameter("'architectures' and 'archMap' were specified in the seccomp "
                               "profile, use either 'architectures' or 'archMap'")
    out: dict[str, Any] = {"defaultAction": profile.get("defaultAction", "")}
    if profile.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    arches = list(profile.get("architectures") or [])
    native = ARCH_MAP.get(arch, ())
    for entry in profile.get("archMap") or ():
        if native and entry.get("architecture") == native[0]:
            arches = [entry["architecture"], *(entry.get("subArchitectures") or [])]
    if arches:
        out["architectures"] = arches
    for key in ("listenerPath", "listenerMetadata", "flags"):
        if profile.get(key):
            out[key] = profile[key]
    rules = [_resolved(r, caps, arch, kernel) for r in profile.get("syscalls") or ()]
    out["syscalls"] = [r for r in rules if r is not None]
    return out


def _resolved(rule: Mapping[str, Any], caps: Sequence[str], arch: str,
              kernel: tuple[int, ...]) -> dict[str, Any] | None:
    if rule.get("name") and rule.get("names"):
        raise InvalidParameter("use either 'name' or 'names'")
    inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
    if inc.get("arches") and arch not in inc["arches"]:
        return None
    if inc.get("caps") and not any(c in caps for c in inc["caps"]):
        return None
    if inc.get("minKernel") and kernel < _version(inc["minKernel"]):
        return None
    if exc.get("arches") and arch in exc["arches"]:
        return None
    if exc.get("caps") and any(c in caps for c in exc["caps"]):
        return None
    out = {k: v for k, v in rule.items() if k not in ("includes", "excludes", "comment")}
    if "name" in out:
        out["names"] = [out.pop("name")]
    return out
