"""linux.seccomp: compiled to data by pure code, then built and loaded with libseccomp.

    validate(seccomp)        the CLI side: every field checked, runc's words for bad ones
    compile_filter(seccomp)  pure: config -> Filter (default action, archs, flags, rules)
    program(seccomp, cache)  the CLI side: the filter as classic BPF and the seccomp(2) flags
                             to load it with (libseccomp: seccomp_init, arch_add, attr_set,
                             rule_add_array for each rule, seccomp_export_bpf), from the
                             cache (seccompcache.py) when this profile was compiled before
    install(program)         the init: seccomp(SECCOMP_SET_MODE_FILTER, flags, program);
                             returns the notify fd if any rule uses SCMP_ACT_NOTIFY
    load(seccomp)            program + install, in this process
    send_listener(...)       hands the notify fd and the container's state to the agent at
                             listenerPath (one sendmsg with SCM_RIGHTS, as runc)
    features()               the "seccomp" object of `features`

As runc does: a config with no defaultAction and no syscalls means no filter; rules whose
action equals the default are dropped (libseccomp rejects them); syscall names libseccomp
cannot resolve are skipped (a profile names syscalls newer than this kernel or library);
a rule whose conditions test one argument twice becomes one rule per condition (libseccomp
refuses such a rule; separate rules make the conditions OR instead of AND, as runc);
SCMP_ACT_KILL is SCMP_ACT_KILL_THREAD; the filter never sets no_new_privs itself (the init
does that when process.noNewPrivileges asks); and when `flags` is absent,
SECCOMP_FILTER_FLAG_SPEC_ALLOW is set if the library and kernel support it.

Why the CLI compiles and the init only installs: libseccomp takes ~10 ms to build and
generate Docker's default profile (357 rules, three architectures), the same program for
every container with the same profile and capabilities. The CLI compiles it once, keeps it
in the cache under its --root, and hands the init the program; the init makes one system
call, the one libseccomp's seccomp_load makes, with the same flags.

Not done (runc does it by patching the BPF): returning ENOSYS rather than the default
action for syscalls newer than every syscall the profile names.
"""

from __future__ import annotations

import _socket
import ctypes
import errno
import os
import sys

from dockyard.runtime.errors import ConfigError

TYPE_CHECKING = False  # typing costs milliseconds to import; mypy reads this as True
if TYPE_CHECKING:
    from typing import Any

LIBRARY = "libseccomp.so.2"

ACTIONS: dict[str, int] = {
    "SCMP_ACT_KILL": 0x00000000,
    "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000,
    "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_NOTIFY": 0x7FC00000,
    "SCMP_ACT_ALLOW": 0x7FFF0000,
}
_WITH_ERRNO = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")  # the low 16 bits carry errnoRet
ACT_NOTIFY = ACTIONS["SCMP_ACT_NOTIFY"]

OPERATORS: dict[str, int] = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,  # (arg & value) == valueTwo
}

# The runtime-spec's names -> libseccomp's (seccomp_arch_resolve_name). Whether the library
# knows one (2.5.4 lacks loongarch64, m68k, sh, sheb) is found out when it is loaded.
ARCHS: dict[str, str] = {
    "SCMP_ARCH_X86": "x86",
    "SCMP_ARCH_X86_64": "x86_64",
    "SCMP_ARCH_X32": "x32",
    "SCMP_ARCH_ARM": "arm",
    "SCMP_ARCH_AARCH64": "aarch64",
    "SCMP_ARCH_LOONGARCH64": "loongarch64",
    "SCMP_ARCH_M68K": "m68k",
    "SCMP_ARCH_MIPS": "mips",
    "SCMP_ARCH_MIPS64": "mips64",
    "SCMP_ARCH_MIPS64N32": "mips64n32",
    "SCMP_ARCH_MIPSEL": "mipsel",
    "SCMP_ARCH_MIPSEL64": "mipsel64",
    "SCMP_ARCH_MIPSEL64N32": "mipsel64n32",
    "SCMP_ARCH_PPC": "ppc",
    "SCMP_ARCH_PPC64": "ppc64",
    "SCMP_ARCH_PPC64LE": "ppc64le",
    "SCMP_ARCH_S390": "s390",
    "SCMP_ARCH_S390X": "s390x",
    "SCMP_ARCH_SH": "sh",
    "SCMP_ARCH_SHEB": "sheb",
    "SCMP_ARCH_PARISC": "parisc",
    "SCMP_ARCH_PARISC64": "parisc64",
    "SCMP_ARCH_RISCV64": "riscv64",
}

# Filter flags -> libseccomp filter attributes (enum scmp_filter_attr).
FLAGS: dict[str, int] = {
    "SECCOMP_FILTER_FLAG_TSYNC": 4,  # SCMP_FLTATR_CTL_TSYNC
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 7,  # SCMP_FLTATR_CTL_SSB
    "SECCOMP_FILTER_FLAG_LOG": 6,  # SCMP_FLTATR_CTL_LOG
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 10,  # SCMP_FLTATR_CTL_WAITKILL (libseccomp 2.6)
}
_ATTR_NNP = 3
_ATTR_TSYNC = 4
_ATTR_LOG = 6
_ATTR_SSB = 7
_ATTR_OPTIMIZE = 8
_ATTR_SYSRAWRC = 9
_ATTR_WAITKILL = 10

# seccomp(2): the operation and its flags (linux/seccomp.h).
SECCOMP_SET_MODE_FILTER = 1
_FLAG_TSYNC = 1
_FLAG_LOG = 2
_FLAG_SPEC_ALLOW = 4
_FLAG_NEW_LISTENER = 8
_FLAG_TSYNC_ESRCH = 16
_FLAG_WAIT_KILLABLE_RECV = 32
_API_TSYNC_ESRCH = 6  # seccomp_api_get() from which libseccomp adds TSYNC_ESRCH
_NR_SCMP_ERROR = -1
_MAX_ARGS = 6
_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF

Cond = tuple[int, int, int, int]  # (index, op, value, value_two)


class Filter:
    """What load() asks of libseccomp, as plain data.

    default  the default action, errno included
    archs    libseccomp arch names added besides the native one
    flags    (flag name, filter attribute) set to 1; an error if unsupported
    default_flags  True when the config has no `flags`: SPEC_ALLOW if supported
    rules    (syscall name, action with errno, ((index, op, value, value_two), ...))
    notify   some rule uses SCMP_ACT_NOTIFY
    """

    __slots__ = ("archs", "default", "default_flags", "flags", "notify", "rules")

    def __init__(self, default: int, archs: list[str], flags: list[tuple[str, int]],
                 default_flags: bool, rules: list[tuple[str, int, tuple[Cond, ...]]]) -> None:
        self.default = default
        self.archs = archs
        self.flags = flags
        self.default_flags = default_flags
        self.rules = rules
        self.notify = any(r[1] == ACT_NOTIFY for r in rules)

    def __repr__(self) -> str:
        return (f"Filter(default={self.default:#x}, archs={self.archs}, flags={self.flags}, "
                f"default_flags={self.default_flags}, rules={len(self.rules)})")


# ---------------------------------------------------------------- validation (pure)

def _uint(value: object, limit: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise ConfigError(f"seccomp: {what} must be an integer from 0 to {limit}, "
                          f"not {value!r}")
    return value


def _action(name: object) -> int:
    if not isinstance(name, str) or name not in ACTIONS:
        raise ConfigError(f"string {name} is not a valid action for seccomp")
    return ACTIONS[name]


def _list(value: object, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"seccomp: {what} must be a list")
    return value


def _enabled(seccomp: dict[str, Any]) -> bool:
    """runc: no default action and no syscalls means seccomp is not wanted."""
    return bool(seccomp.get("defaultAction")) or bool(seccomp.get("syscalls"))


def validate(seccomp: dict[str, Any] | None) -> None:
    """Check linux.seccomp; ConfigError with runc's wording where runc has one."""
    if seccomp is None:
        return
    if not isinstance(seccomp, dict):
        raise ConfigError("linux.seccomp must be an object")
    if not _enabled(seccomp):
        return
    default = seccomp.get("defaultAction")
    _action(default)
    if default == "SCMP_ACT_NOTIFY":
        raise ConfigError("SCMP_ACT_NOTIFY cannot be used as default action")
    if seccomp.get("defaultErrnoRet") is not None:
        _uint(seccomp["defaultErrnoRet"], _U32, "defaultErrnoRet")
    for arch in _list(seccomp.get("architectures"), "architectures"):
        if arch not in ARCHS:
            raise ConfigError(f"string {arch} is not a valid arch for seccomp")
    for flag in _list(seccomp.get("flags"), "flags"):
        if flag not in FLAGS:
            raise ConfigError(f"seccomp flag {flag} is not known to runc")
    for key in ("listenerPath", "listenerMetadata"):
        if not isinstance(seccomp.get(key, ""), str):
            raise ConfigError(f"seccomp: {key} must be a string")
    notify = False
    for i, call in enumerate(_list(seccomp.get("syscalls"), "syscalls")):
        notify |= _validate_syscall(i, call)
    if notify and not seccomp.get("listenerPath"):
        raise ConfigError("seccomp listenerPath is not set")


def _validate_syscall(i: int, call: object) -> bool:
    if not isinstance(call, dict):
        raise ConfigError(f"seccomp: syscalls[{i}] must be an object")
    names = call.get("names")
    if not isinstance(names, list) or not names:
        raise ConfigError(f"seccomp: syscalls[{i}].names must be a non-empty list")
    for name in names:
        if not isinstance(name, str) or not name:
            raise ConfigError("empty string is not a valid syscall")
    action = call.get("action")
    _action(action)
    if action == "SCMP_ACT_NOTIFY" and "write" in names:
        raise ConfigError("SCMP_ACT_NOTIFY cannot be used for the write syscall")
    if call.get("errnoRet") is not None:
        _uint(call["errnoRet"], _U32, f"syscalls[{i}].errnoRet")
    for j, arg in enumerate(_list(call.get("args"), f"syscalls[{i}].args")):
        where = f"syscalls[{i}].args[{j}]"
        if not isinstance(arg, dict):
            raise ConfigError(f"seccomp: {where} must be an object")
        _uint(arg.get("index"), _MAX_ARGS - 1, f"{where}.index")
        _uint(arg.get("value"), _U64, f"{where}.value")
        _uint(arg.get("valueTwo", 0), _U64, f"{where}.valueTwo")
        op = arg.get("op")
        if not isinstance(op, str) or op not in OPERATORS:
            raise ConfigError(f"string {op} is not a valid operator for seccomp")
    return action == "SCMP_ACT_NOTIFY"


# ---------------------------------------------------------------- compile (pure)

def action_code(name: str, errno_ret: int | None) -> int:
    """libseccomp's action value: ERRNO and TRACE carry errnoRet (default EPERM)."""
    code = ACTIONS[name]
    if name in _WITH_ERRNO:
        code |= (errno.EPERM if errno_ret is None else errno_ret) & 0xFFFF
    return code


def compile_filter(seccomp: dict[str, Any] | None) -> Filter | None:
    """The filter a config asks for, or None when it asks for none. Validates first."""
    validate(seccomp)
    if seccomp is None or not _enabled(seccomp):
        return None
    default = action_code(seccomp["defaultAction"], seccomp.get("defaultErrnoRet"))
    archs = list(dict.fromkeys(ARCHS[a] for a in seccomp.get("architectures") or ()))
    given = seccomp.get("flags")
    flags = [(f, FLAGS[f]) for f in dict.fromkeys(given or ())]
    rules: list[tuple[str, int, tuple[Cond, ...]]] = []
    for call in seccomp.get("syscalls") or ():
        action = action_code(call["action"], call.get("errnoRet"))
        if action == default:
            continue  # redundant, and libseccomp would refuse it
        conds = tuple((a["index"], OPERATORS[a["op"]], a["value"], a.get("valueTwo", 0))
                      for a in call.get("args") or ())
        indexes = [c[0] for c in conds]
        groups = [(c,) for c in conds] if len(set(indexes)) < len(indexes) else [conds]
        for name in call["names"]:
            for group in groups:
                rules.append((name, action, group))
    return Filter(default, archs, flags, given is None, rules)


# ---------------------------------------------------------------- libseccomp (ctypes)

class _ArgCmp(ctypes.Structure):
    """struct scmp_arg_cmp."""

    _fields_ = (("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64))


class _Version(ctypes.Structure):
    _fields_ = (("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint))


_lib: ctypes.CDLL | None = None
_lib_error: OSError | None = None


def preload() -> None:
    """dlopen libseccomp now: after pivot_root the host's libraries are gone. Idempotent."""
    _library()


def _library() -> ctypes.CDLL:
    global _lib, _lib_error
    if _lib is not None:
        return _lib
    if _lib_error is None:
        try:
            _lib = _bind(ctypes.CDLL(LIBRARY, use_errno=True))
            return _lib
        except OSError as e:
            _lib_error = OSError(errno.ENOENT, f"seccomp: cannot load {LIBRARY}: {e}")
    raise _lib_error


def _bind(lib: ctypes.CDLL) -> ctypes.CDLL:
    p, u32, i, u = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint
    for name, res, args in (
        ("seccomp_init", p, (u32,)),
        ("seccomp_release", None, (p,)),
        ("seccomp_arch_resolve_name", u32, (ctypes.c_char_p,)),
        ("seccomp_arch_add", i, (p, u32)),
        ("seccomp_attr_set", i, (p, i, u32)),
        ("seccomp_attr_get", i, (p, i, ctypes.POINTER(u32))),
        ("seccomp_export_bpf", i, (p, i)),
        ("seccomp_syscall_resolve_name", i, (ctypes.c_char_p,)),
        ("seccomp_rule_add_array", i, (p, u32, i, u, ctypes.POINTER(_ArgCmp))),
        ("seccomp_load", i, (p,)),
        ("seccomp_notify_fd", i, (p,)),
        ("seccomp_api_get", u, ()),
        ("seccomp_version", ctypes.POINTER(_Version), ()),
    ):
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    return lib


def version() -> str:
    v = _library().seccomp_version().contents
    return f"{v.major}.{v.minor}.{v.micro}"


def _check(ret: int, what: str) -> int:
    if ret < 0:
        raise OSError(-ret, f"{what}: {os.strerror(-ret)}")
    return ret


class Program:
    """A filter as the kernel takes it: classic BPF (8-byte sock_filter instructions), the
    seccomp(2) flags libseccomp's seccomp_load would pass, and the syscall's number here."""

    __slots__ = ("bpf", "flags", "nr")

    def __init__(self, bpf: bytes, flags: int, nr: int) -> None:
        self.bpf, self.flags, self.nr = bpf, flags, nr

    @property
    def notify(self) -> bool:
        return bool(self.flags & _FLAG_NEW_LISTENER)

    def to_json(self) -> dict[str, Any]:
        return {"bpf": self.bpf.hex(), "flags": self.flags, "nr": self.nr}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Program:
        return cls(bytes.fromhex(doc["bpf"]), int(doc["flags"]), int(doc["nr"]))


def program(seccomp: dict[str, Any] | None, cache_dir: str | None = None) -> Program | None:
    """The compiled filter a config asks for (None: no filter), from `cache_dir` when it
    holds this one; else built with libseccomp and kept there. Validates first."""
    filt = compile_filter(seccomp)
    if filt is None:
        return None
    lib = _library()
    api = lib.seccomp_api_get()
    if filt.notify and api < 6:
        raise OSError(errno.ENOSYS, f"seccomp notify unsupported: API level: got "
                                    f"{api}, want at least 6. Please try "
                                    f"with libseccomp >= 2.5.0 and Linux >= 5.7")
    nr = lib.seccomp_syscall_resolve_name(b"seccomp")
    if nr < 0:
        raise OSError(errno.ENOSYS, "seccomp: this libseccomp knows no seccomp(2) here")
    if not cache_dir:
        flags, bpf = _generate(lib, filt, api)
        return Program(bpf, flags, nr)
    from dockyard.runtime.linux import seccompcache  # not in the init: hashlib costs ~2 ms

    key = seccompcache.key(repr((version(), api, os.uname().release, os.uname().machine,
                                 filt.default, filt.archs, filt.flags, filt.default_flags,
                                 filt.rules)))
    found = seccompcache.read(cache_dir, key)
    if found is not None:
        return Program(found[1], found[0], nr)
    flags, bpf = _generate(lib, filt, api)
    seccompcache.write(cache_dir, key, flags, bpf)
    return Program(bpf, flags, nr)


def _generate(lib: ctypes.CDLL, filt: Filter, api: int) -> tuple[int, bytes]:
    """(seccomp(2) flags, BPF) of the filter, as libseccomp's seccomp_load would make them."""
    ctx = lib.seccomp_init(filt.default)
    if not ctx:
        raise OSError(errno.EINVAL, f"error creating filter: seccomp_init({filt.default:#x}) "
                                    f"failed")
    try:
        _build(lib, ctx, filt)
        flags = _load_flags(lib, ctx, filt.notify, api)
        out = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
        try:
            _check(lib.seccomp_export_bpf(ctx, out), "error generating the seccomp filter")
            size = os.lseek(out, 0, os.SEEK_END)
            os.lseek(out, 0, os.SEEK_SET)
            bpf = b""
            while len(bpf) < size:
                chunk = os.read(out, size - len(bpf))
                if not chunk:
                    break
                bpf += chunk
        finally:
            os.close(out)
        return flags, bpf
    finally:
        lib.seccomp_release(ctx)


def _load_flags(lib: ctypes.CDLL, ctx: int, notify: bool, api: int) -> int:
    """The flags libseccomp's sys_filter_load derives from the filter's attributes (those
    _build could set: unsupported ones stay 0) for seccomp(SECCOMP_SET_MODE_FILTER)."""
    def attr(which: int) -> bool:
        value = ctypes.c_uint32(0)
        return lib.seccomp_attr_get(ctx, which, ctypes.byref(value)) == 0 and bool(value.value)

    flags = 0
    if attr(_ATTR_TSYNC):
        if notify and api < _API_TSYNC_ESRCH:
            raise ConfigError("seccomp: SECCOMP_FILTER_FLAG_TSYNC with SCMP_ACT_NOTIFY needs "
                              "libseccomp >= 2.5.0 and Linux >= 5.7")
        flags |= _FLAG_TSYNC | (_FLAG_TSYNC_ESRCH if api >= _API_TSYNC_ESRCH else 0)
    if notify:
        flags |= _FLAG_NEW_LISTENER
    if attr(_ATTR_LOG):
        flags |= _FLAG_LOG
    if attr(_ATTR_SSB):
        flags |= _FLAG_SPEC_ALLOW
    if attr(_ATTR_WAITKILL):
        flags |= _FLAG_WAIT_KILLABLE_RECV
    return flags


class _Fprog(ctypes.Structure):
    """struct sock_fprog."""

    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


def install(prog: Program) -> int | None:
    """Load the program into this thread (all threads with TSYNC), as seccomp_load does:
    returns the notify fd when it has SCMP_ACT_NOTIFY rules, else None. Without
    no_new_privs, loading needs CAP_SYS_ADMIN. Needs no libseccomp: callable after
    pivot_root."""
    from dockyard.runtime.linux.syscalls import libc

    code = ctypes.create_string_buffer(prog.bpf, len(prog.bpf))
    fprog = _Fprog(len(prog.bpf) // 8, ctypes.cast(code, ctypes.c_void_p))
    ret = libc.syscall(ctypes.c_long(prog.nr), ctypes.c_long(SECCOMP_SET_MODE_FILTER),
                       ctypes.c_ulong(prog.flags), ctypes.byref(fprog))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"error loading seccomp filter into kernel: {os.strerror(err)}")
    if prog.notify:
        return ret
    if ret > 0:  # TSYNC: the thread that could not be synchronised
        raise OSError(errno.ESRCH, "error loading seccomp filter into kernel: "
                                   f"{os.strerror(errno.ESRCH)}")
    return None


def load(seccomp: dict[str, Any], cache_dir: str | None = None) -> int | None:
    """Compile (or find in `cache_dir`) and install the filter in this process: the notify
    fd when some rule uses SCMP_ACT_NOTIFY, else None."""
    prog = program(seccomp, cache_dir)
    return install(prog) if prog is not None else None


def _build(lib: ctypes.CDLL, ctx: int, filt: Filter) -> None:
    for arch in filt.archs:
        token = lib.seccomp_arch_resolve_name(arch.encode())
        if not token:
            raise ConfigError(f"error validating Seccomp architecture: {arch} is not "
                              f"supported by libseccomp {version()}")
        ret = lib.seccomp_arch_add(ctx, token)
        if ret != -errno.EEXIST:  # the native arch is always there
            _check(ret, f"error adding architecture {arch} to seccomp filter")
    for flag, attr in filt.flags:
        ret = lib.seccomp_attr_set(ctx, attr, 1)
        if ret < 0:
            raise ConfigError(f"seccomp flag {flag} is not supported by libseccomp "
                              f"{version()} or this kernel: {os.strerror(-ret)}")
    if filt.default_flags:
        lib.seccomp_attr_set(ctx, FLAGS["SECCOMP_FILTER_FLAG_SPEC_ALLOW"], 1)  # if supported
    if len(filt.rules) > 32:
        lib.seccomp_attr_set(ctx, _ATTR_OPTIMIZE, 2)  # binary tree; optional
    lib.seccomp_attr_set(ctx, _ATTR_SYSRAWRC, 1)  # the kernel's errno from seccomp_load
    _check(lib.seccomp_attr_set(ctx, _ATTR_NNP, 0), "error setting no new privileges")
    for name, action, conds in filt.rules:
        nr = lib.seccomp_syscall_resolve_name(name.encode())
        if nr == _NR_SCMP_ERROR:
            continue  # unknown to libseccomp: a newer syscall, ignored as runc does
        arr = (_ArgCmp * len(conds))(*(_ArgCmp(*c) for c in conds)) if conds else None
        _check(lib.seccomp_rule_add_array(ctx, action, nr, len(conds), arr),
               f"error adding seccomp filter rule for syscall {name}")


# ---------------------------------------------------------------- the listener

def connect_listener(listener_path: str) -> int:
    """A connected unix stream socket to the agent (callable before pivot_root)."""
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        s.connect(listener_path)
    except OSError as e:
        s.close()
        raise OSError(e.errno, f"failed to connect with seccomp agent specified in the "
                               f"seccomp profile: dial unix {listener_path}: "
                               f"{os.strerror(e.errno or 0)}") from None
    return s.detach()


def send_state(sock: int, notify_fd: int, state_json: bytes) -> None:
    """Send state_json with notify_fd attached (SCM_RIGHTS) on a connected socket; closes it."""
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, sock)
    try:
        rights = notify_fd.to_bytes(4, sys.byteorder, signed=True)
        sent = s.sendmsg([state_json], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])
        while sent < len(state_json):
            sent += s.send(state_json[sent:])
    except OSError as e:
        raise OSError(e.errno, f"cannot send seccomp fd to the agent: "
                               f"{os.strerror(e.errno or 0)}") from None
    finally:
        s.close()


def send_listener(listener_path: str, notify_fd: int, state_json: bytes) -> None:
    """Connect to listenerPath and send the container process state with the notify fd."""
    send_state(connect_listener(listener_path), notify_fd, state_json)


# ---------------------------------------------------------------- features

def features() -> dict[str, Any]:
    """The "seccomp" object of `features` (runtime-spec features-linux.json)."""
    out: dict[str, Any] = {
        "enabled": False,
        "actions": sorted(ACTIONS),
        "operators": sorted(OPERATORS),
        "archs": sorted(ARCHS),
        "knownFlags": list(FLAGS),
        "supportedFlags": [],
    }
    try:
        lib = _library()
    except OSError:
        return out
    out["enabled"] = True
    out["archs"] = sorted(a for a, n in ARCHS.items() if lib.seccomp_arch_resolve_name(n.encode()))
    ctx = lib.seccomp_init(ACTIONS["SCMP_ACT_ALLOW"])
    if ctx:
        try:
            out["supportedFlags"] = [f for f, attr in FLAGS.items()
                                     if lib.seccomp_attr_set(ctx, attr, 1) == 0]
        finally:
            lib.seccomp_release(ctx)
    return out
