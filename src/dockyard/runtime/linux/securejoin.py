"""Paths inside a root, with symlinks scoped to the root (filepath-securejoin's semantics).

A container's rootfs is untrusted: `/etc -> /` or `/a -> ../../..` must never lead a mount
out of it (the CVE-2021-30465 class). Two tools:

- `resolve(root, path)`: the host path of `path` as seen from inside `root`. Symlinks are
  followed as if `root` were "/", ".." never climbs above `root`, missing components are kept
  as they are. Racy by nature: use it for messages and pure checks, not for acting.
- `open_in_root(root_fd, root, path, create=...)`: the same walk done with descriptors, one
  component at a time with O_NOFOLLOW (openat), creating missing directories (and the last
  component as a file, if asked). Returns an O_PATH descriptor; callers act on
  "/proc/self/fd/<fd>", and `check_inside` confirms that the kernel agrees the object lies
  under `root` (a directory renamed out of the root mid-walk is caught there).
"""

from __future__ import annotations

import errno
import os
import stat

MAX_SYMLINKS = 255

_PATH = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


class EscapeError(OSError):
    """The object a path names inside a root lies outside it."""


def _split(path: str) -> list[str]:
    return [c for c in path.split("/") if c and c != "."]


def resolve(root: str, path: str) -> str:
    """SecureJoin(root, path): absolute host path under `root` (root must have no symlinks)."""
    root = os.path.abspath(root)
    parts: list[str] = []  # resolved components below root
    todo = _split(path)
    todo.reverse()
    links = 0
    while todo:
        c = todo.pop()
        if c == "..":
            if parts:
                parts.pop()
            continue
        cand = os.path.join(root, *parts, c)
        try:
            st = os.lstat(cand)
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ENOTDIR):
                raise
            parts.append(c)  # does not exist: keep the rest as it is written
            continue
        if not stat.S_ISLNK(st.st_mode):
            parts.append(c)
            continue
        links += 1
        if links > MAX_SYMLINKS:
            raise OSError(errno.ELOOP, f"securejoin {path}: too many symlinks")
        target = os.readlink(cand)
        if target.startswith("/"):
            parts = []
        rest = _split(target)
        rest.reverse()
        todo.extend(rest)
    return os.path.join(root, *parts) if parts else root


def relative(root: str, host_path: str) -> str | None:
    """`host_path` as a path inside `root` ("/" for root itself), or None if outside."""
    root = root.rstrip("/") or "/"
    if host_path == root:
        return "/"
    if root == "/":
        return host_path
    if host_path.startswith(root + "/"):
        return host_path[len(root):]
    return None


def fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


def check_inside(fd: int, root: str, what: str) -> str:
    """The kernel's path of `fd`, which must lie under `root`; EscapeError otherwise."""
    real = fd_path(fd)
    if relative(root, real) is None:
        raise EscapeError(errno.EXDEV, f"{what}: resolves to {real}, outside the rootfs {root}")
    return real


def open_root(root: str) -> int:
    return os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def open_in_root(root_fd: int, root: str, path: str, *, create: str = "",
                 mode: int = 0o755) -> int:
    """O_PATH descriptor of `path` inside the root; symlinks scoped to the root.

    create: "" (must exist), "dir" (mkdir -p) or "file" (parents as directories, the last
    component an empty file if it is missing). The descriptor is checked to lie under `root`.
    """
    fd = _walk(root_fd, path, create, mode)
    try:
        check_inside(fd, root, f"path {path!r}")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _walk(root_fd: int, path: str, create: str, mode: int) -> int:
    stack = [os.dup(root_fd)]  # descriptors of the resolved directories, root first
    todo = _split(path)
    todo.reverse()
    links = 0
    try:
        while todo:
            c = todo.pop()
            if c == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            cur = stack[-1]
            fd = _open_component(cur, c, create, not todo, mode)
            st = os.fstat(fd)
            if stat.S_ISLNK(st.st_mode):
                links += 1
                try:
                    target = os.readlink("", dir_fd=fd)
                finally:
                    os.close(fd)
                if links > MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, f"open {path}: too many symlinks")
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                rest = _split(target)
                rest.reverse()
                todo.extend(rest)
                continue
            if todo and not stat.S_ISDIR(st.st_mode):
                os.close(fd)
                raise NotADirectoryError(errno.ENOTDIR, f"open {path}: {c} is not a directory")
            stack.append(fd)
        return stack.pop()
    finally:
        for fd in stack:
            os.close(fd)


def _open_component(cur: int, name: str, create: str, last: bool, mode: int) -> int:
    try:
        return os.open(name, _PATH, dir_fd=cur)
    except FileNotFoundError:
        if not create:
            raise
    if last and create == "file":
        try:
            os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW |
                             os.O_CLOEXEC, mode & 0o666, dir_fd=cur))
        except FileExistsError:
            pass
    else:
        try:
            os.mkdir(name, mode, dir_fd=cur)
        except FileExistsError:
            pass
    return os.open(name, _PATH, dir_fd=cur)
