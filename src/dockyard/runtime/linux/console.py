"""The container's terminal: a pty from the container's own devpts, its master handed to the
caller over the console socket (SCM_RIGHTS, as runc does), or proxied to our own stdio when
`run`/`exec` is in the foreground with no --console-socket.

Uses the C `_socket` module: `socket` imports enum and selectors, milliseconds we don't spend.
"""

from __future__ import annotations

import _socket
import fcntl
import os
import struct
import sys

TIOCSPTLCK = 0x40045431
TIOCGPTPEER = 0x5441
TIOCSCTTY = 0x540E
TIOCSWINSZ = 0x5414
TIOCGWINSZ = 0x5413


def open_pty() -> tuple[int, int]:
    """(master, slave) from /dev/ptmx of the current mount namespace."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY)
    return master, slave


def set_size(fd: int, height: int, width: int) -> None:
    fcntl.ioctl(fd, TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


def get_size(fd: int) -> tuple[int, int] | None:
    try:
        h, w, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, TIOCGWINSZ, b"\0" * 8))
    except OSError:
        return None
    return h, w


def make_controlling(slave: int) -> None:
    """The slave becomes stdio and the controlling terminal of this (session-leading) process."""
    for target in (0, 1, 2):
        os.dup2(slave, target)
    fcntl.ioctl(0, TIOCSCTTY, 0)


def connect(path: str) -> int:
    """A connected fd to the caller's --console-socket (done in the parent: after pivot_root
    the child could not reach the path)."""
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise OSError(e.errno, f"connect to console socket {path}: {e.strerror}") from None
    return s.detach()


def send_fd(sock_fd: int, fd: int, name: str = "/dev/ptmx") -> None:
    s = _socket.socket(fileno=sock_fd)
    try:
        s.sendmsg([name.encode()], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS,
                                     fd.to_bytes(4, sys.byteorder, signed=True))])
    finally:
        s.detach()


def recv_fd(sock_fd: int) -> int:
    s = _socket.socket(fileno=sock_fd)
    try:
        _msg, ancdata, _flags, _addr = s.recvmsg(4096, _socket.CMSG_SPACE(4))
    finally:
        s.detach()
    for level, kind, data in ancdata:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS and len(data) >= 4:
            return int.from_bytes(data[:4], sys.byteorder, signed=True)
    raise OSError(0, "no file descriptor received on the console socket")


def socketpair() -> tuple[int, int]:
    a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
    return a.detach(), b.detach()


class Proxy:
    """Copies our stdin to the pty master and the master to our stdout, in raw mode when our
    stdin is a terminal, and passes window size changes on (runc's foreground tty)."""

    def __init__(self, master: int) -> None:
        self.master = master
        self.saved = None

    def resize(self) -> None:
        size = get_size(0)
        if size:
            try:
                set_size(self.master, *size)
            except OSError:
                pass

    def __enter__(self) -> Proxy:
        import termios
        import tty

        if os.isatty(0):
            self.saved = termios.tcgetattr(0)
            tty.setraw(0)
            self.resize()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            import termios

            termios.tcsetattr(0, termios.TCSADRAIN, self.saved)

    def pump(self, done) -> None:
        """Copy until the master reports EOF/EIO (the container side closed) and `done()`."""
        import select

        stdin_open = True
        while True:
            rlist = [self.master] + ([0] if stdin_open else [])
            try:
                ready, _, _ = select.select(rlist, [], [], 0.2)
            except InterruptedError:
                continue
            if self.master in ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError:
                    data = b""
                if not data:
                    return
                os.write(1, data)
            if 0 in ready:
                data = os.read(0, 65536)
                if not data:
                    stdin_open = False
                else:
                    os.write(self.master, data)
            if not ready and done():
                return
