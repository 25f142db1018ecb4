"""The runtime's side of the create/exec protocol and its child's side share this framing.

    dockyard-runc create                 stage-1 (fresh interpreter      init (pid 1 of the
    (parent, host namespaces)            from a sealed memfd)            container)
    ──────────────────────────────────   ─────────────────────────────   ─────────────────────
    make cgroup; posix_spawn ─────────▶  start; wait for BOOT
    write stage-1 pid to cgroup.procs
    send BOOT {config, options,  ──────▶ [new user ns? → USERNS]
      compiled seccomp filter}
    write uid_map/gid_map; send ACK ───▶ setns(paths); unshare(rest)
                                         fork ──────────────────────▶ setsid; mounts
    ◀─────────────────────────────────── PID {pid}; exit
    reap stage-1                                                       [prestart/createRuntime
    ◀────────────────────────────────────────────────────────────────  hooks? → HOOKS]
    run hooks; send ACK ──────────────────────────────────────────────▶ createContainer hooks;
                                                                       pivot_root; console;
                                                                       sysctls; masks; creds
    ◀──────────────────────────────────────────────────────────────── READY (or ERROR {msg})
    write state.json; exit 0                                           open exec.fifo (blocks
                                                                       until `start` reads it);
                                                                       seccomp; startContainer
                                                                       hooks; execve
`exec` is the same with the container's namespaces joined by path and no fifo: after READY
the parent reads until EOF (the socket is close-on-exec), or an ERROR if execve failed.

Frames on a SOCK_STREAM socketpair: a 4-byte big-endian length, a 1-byte type, a payload
(JSON for the structured messages).
"""

from __future__ import annotations

import os
import struct
import sys

BOOT = 1
USERNS = 2
ACK = 3
PID = 4
HOOKS = 5
READY = 6
ERROR = 7

_HDR = struct.Struct(">IB")


class ProtocolError(Exception):
    pass


def send(fd: int, kind: int, payload: bytes = b"", fds: list[int] | None = None) -> None:
    data = _HDR.pack(len(payload), kind) + payload
    view = memoryview(data)
    if fds:
        import _socket

        s = _socket.socket(fileno=fd)
        try:
            n = s.sendmsg([view], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS,
                                    b"".join(f.to_bytes(4, sys.byteorder,
                                                        signed=True) for f in fds))])
        finally:
            s.detach()
        view = view[n:]
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_exact(fd: int, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            if buf:
                raise ProtocolError("truncated message")
            return None
        buf += chunk
    return bytes(buf)


def recv_fds(fd: int, kind: int) -> tuple[bytes, list[int]]:
    """expect(), for the one frame that may carry descriptors (received close-on-exec)."""
    import _socket

    s = _socket.socket(fileno=fd)
    try:
        first, anc, _flags, _addr = s.recvmsg(_HDR.size, _socket.CMSG_SPACE(4 * 64),
                                              _socket.MSG_CMSG_CLOEXEC | _socket.MSG_WAITALL)
    finally:
        s.detach()
    fds: list[int] = []
    for level, typ, data in anc:
        if level == _socket.SOL_SOCKET and typ == _socket.SCM_RIGHTS:
            fds += [int.from_bytes(data[i:i + 4], sys.byteorder, signed=True)
                    for i in range(0, len(data) - len(data) % 4, 4)]
    if not first:
        raise ProtocolError("the runtime went away before it sent the configuration")
    rest = _read_exact(fd, _HDR.size - len(first)) if len(first) < _HDR.size else b""
    length, got = _HDR.unpack(first + (rest or b""))
    if got != kind:
        raise ProtocolError(f"unexpected message {got} (wanted {kind})")
    return (_read_exact(fd, length) or b"") if length else b"", fds


def recv(fd: int) -> tuple[int, bytes] | None:
    """The next frame, or None when the peer closed (exited or exec'd)."""
    hdr = _read_exact(fd, _HDR.size)
    if hdr is None:
        return None
    length, kind = _HDR.unpack(hdr)
    payload = _read_exact(fd, length) if length else b""
    return kind, payload or b""


def expect(fd: int, kind: int) -> bytes:
    """The payload of the next frame, which must be `kind`; an ERROR frame raises its text."""
    msg = recv(fd)
    if msg is None:
        raise ProtocolError("the container's init exited before it was ready")
    got, payload = msg
    if got == ERROR:
        raise ChildError(payload.decode(errors="replace"))
    if got != kind:
        raise ProtocolError(f"unexpected message {got} (wanted {kind})")
    return payload


class ChildError(Exception):
    """The child reported a failure; the text names the step."""
