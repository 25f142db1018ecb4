"""cgroup v2 device policy: an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE.

v2 has no devices.allow: the kernel asks a program attached to the cgroup (and to every
ancestor's) whether an open/mknod of (type, major, minor, access) may proceed.  We compile
the folded policy (devrules.fold) into straight-line code, one block per exception::

    r2 = ctx->access_type & 0xffff      type: 1 block, 2 char
    r3 = ctx->access_type >> 16         access: 1 mknod, 2 read, 4 write
    r4 = ctx->major ; r5 = ctx->minor
    block i:  if r2 != T goto next          (blocks never have type "a": folded away)
              r1 = r3 & A ; if r1 != r3 goto next     (deny-by-default: A covers request)
                          ; if r1 == 0  goto next     (allow-by-default: A overlaps request)
              if r4 != MAJ goto next ; if r5 != MIN goto next   (skipped for "*")
              r0 = verdict ; exit
    r0 = default ; exit

Replacing a policy (runc update, or set() again): the new program is attached with
BPF_F_ALLOW_MULTI *before* the old ones are detached, so for a moment both apply (stricter,
never looser), then the old ones go.  The syscalls go through libc's syscall(2) with ctypes,
imported only here.
"""

from __future__ import annotations

import os
import struct

from dockyard.runtime.linux.cgroups import devrules
from dockyard.runtime.linux.cgroups.files import CgroupError

BPF_PROG_LOAD, BPF_PROG_ATTACH, BPF_PROG_DETACH = 5, 8, 9
BPF_PROG_GET_FD_BY_ID, BPF_PROG_QUERY = 13, 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2
_SYS_BPF = {"x86_64": 321, "aarch64": 280, "ppc64le": 361, "s390x": 351, "riscv64": 280}

_TYPE = {"b": 1, "c": 2}
_ACC = {"m": 1, "r": 2, "w": 4}

# opcodes
_LDXW, _AND32, _RSH32, _MOV32X, _MOV64K = 0x61, 0x54, 0x74, 0xBC, 0xB7
_JNEK, _JNEX, _JEQK, _EXIT = 0x55, 0x5D, 0x15, 0x95


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, dst | (src << 4), off, imm)


def _block(key: tuple[str, int, int], access: str, default_allow: bool) -> list[tuple]:
    """One exception as (code, dst, src, off, imm) with off=None for "to the block's end"."""
    t, major, minor = key
    acc = sum(_ACC[ch] for ch in access)
    body: list[tuple] = [(_JNEK, 2, 0, None, _TYPE[t]), (_MOV32X, 1, 3, 0, 0),
                         (_AND32, 1, 0, 0, acc)]
    body.append((_JEQK, 1, 0, None, 0) if default_allow else (_JNEX, 1, 3, None, 0))
    if major >= 0:
        body.append((_JNEK, 4, 0, None, major))
    if minor >= 0:
        body.append((_JNEK, 5, 0, None, minor))
    body += [(_MOV64K, 0, 0, 0, 0 if default_allow else 1), (_EXIT, 0, 0, 0, 0)]
    return body


def compile_policy(policy: devrules.Policy) -> bytes:
    """The program's bytes (8 per instruction). Pure: unit-tested without root."""
    code = [_insn(_LDXW, 2, 1, 0), _insn(_AND32, 2, 0, 0, 0xFFFF),
            _insn(_LDXW, 3, 1, 0), _insn(_RSH32, 3, 0, 0, 16),
            _insn(_LDXW, 4, 1, 4), _insn(_LDXW, 5, 1, 8)]
    for key, access in policy.exceptions.items():
        block = _block(key, access, policy.default_allow)
        for i, (op, dst, src, off, imm) in enumerate(block):
            if off is None:
                off = len(block) - i - 1  # to the first instruction after the block
            code.append(_insn(op, dst, src, off, imm))
    code += [_insn(_MOV64K, 0, 0, 0, 1 if policy.default_allow else 0), _insn(_EXIT)]
    return b"".join(code)


# ---- syscalls ----

_libc = None


def _bpf(cmd: int, attr: bytearray) -> int:
    global _libc
    import ctypes

    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    nr = _SYS_BPF.get(os.uname().machine)
    if nr is None:
        raise CgroupError(f"bpf(2): unknown syscall number on {os.uname().machine}")
    buf = (ctypes.c_char * len(attr)).from_buffer(attr)
    ret = _libc.syscall(ctypes.c_long(nr), ctypes.c_int(cmd), buf, ctypes.c_uint(len(attr)))
    if ret < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return ret


def _addr(b: object) -> int:
    import ctypes

    return ctypes.addressof(b)  # type: ignore[arg-type]


def load(program: bytes) -> int:
    """BPF_PROG_LOAD; returns the program fd. The verifier's log is in the error."""
    import ctypes

    insns = ctypes.create_string_buffer(program, len(program))
    lic = ctypes.create_string_buffer(b"Apache")
    log = ctypes.create_string_buffer(65536)
    attr = bytearray(128)
    struct.pack_into("<IIQQIIQ", attr, 0, BPF_PROG_TYPE_CGROUP_DEVICE, len(program) // 8,
                     _addr(insns), _addr(lic), 1, len(log), _addr(log))
    attr[48:48 + 16] = b"dockyard_dev\0\0\0\0"
    try:
        return _bpf(BPF_PROG_LOAD, attr)
    except OSError as e:
        text = log.value.decode(errors="replace").strip()
        raise CgroupError(f"loading the device eBPF program: {e.strerror}"
                          + (f": {text}" if text else "")) from None


def query(cgroup_fd: int) -> list[int]:
    """Ids of the device programs attached to the cgroup itself."""
    import ctypes

    ids = (ctypes.c_uint32 * 64)()
    attr = bytearray(40)
    struct.pack_into("<IIIIQI", attr, 0, cgroup_fd, BPF_CGROUP_DEVICE, 0, 0, _addr(ids), 64)
    _bpf(BPF_PROG_QUERY, attr)
    count = struct.unpack_from("<I", attr, 24)[0]
    return list(ids[:count])


def _fd_by_id(prog_id: int) -> int:
    attr = bytearray(12)
    struct.pack_into("<I", attr, 0, prog_id)
    return _bpf(BPF_PROG_GET_FD_BY_ID, attr)


def _attach(cmd: int, cgroup_fd: int, prog_fd: int, flags: int) -> None:
    attr = bytearray(20)
    struct.pack_into("<IIII", attr, 0, cgroup_fd, prog_fd, BPF_CGROUP_DEVICE, flags)
    _bpf(cmd, attr)


def attach(path: str, program: bytes) -> None:
    """Attach `program` to the cgroup at `path`, then detach what was there before."""
    cg = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            old = query(cg)
        except OSError:
            old = []
        prog = load(program)
        try:
            _attach(BPF_PROG_ATTACH, cg, prog, BPF_F_ALLOW_MULTI)
        except OSError as e:
            raise CgroupError(f"attaching the device eBPF program to {path}: "
                              f"{e.strerror}") from None
        finally:
            os.close(prog)
        for prog_id in old:
            try:
                fd = _fd_by_id(prog_id)
            except OSError:
                continue
            try:
                _attach(BPF_PROG_DETACH, cg, fd, 0)
            except OSError:
                pass
            finally:
                os.close(fd)
    finally:
        os.close(cg)


def apply_rules(path: str, devices: object) -> None:
    """linux.resources.devices (plus runc's defaults) as the cgroup's device program."""
    attach(path, compile_policy(devrules.fold(devrules.parse_rules(devices))))
