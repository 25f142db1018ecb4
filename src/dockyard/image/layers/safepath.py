"""Directories inside a root, found as if the root were "/", with descriptors.

A layer is hostile input. Its member names are cleaned as containerd cleans them
(`clean`): relative to "/", so "/etc/passwd" and "../../etc/passwd" both mean etc/passwd
inside the root. What a cleaned name cannot settle is a symlink met on the way: a layer (or
one below it) may hold `a -> /etc` or `a -> ../../..` and then write `a/passwd`.

`Root.dir(path)` walks `path` one component at a time from a descriptor of the root, each
step an openat(O_PATH | O_DIRECTORY | O_NOFOLLOW) in the directory before it. A symlink is
read (readlinkat) and its target walked in turn, from the root when absolute, from the
directory holding it when relative, with ".." going back one directory on the path found
so far and stopping at the root: filepath-securejoin's semantics, done with descriptors, so
no path the kernel resolves ever holds a symlink. The caller then acts with *at() calls in
the descriptor it got, on a last component that is never followed.

Descriptors are cached by path (the asked-for one and the one found), since a layer's
members come directory by directory. What the cache knows goes stale only when a directory
or symlink disappears; whoever removes one calls `forget()`. Descriptors handed out stay
open until `release()`, which the caller does between members.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable

from dockyard.image.errors import InvalidArgument

MAX_SYMLINKS = 255  # as filepath-securejoin and the kernel's MAXSYMLINKS (40) in spirit
MAX_PATH = 4096  # PATH_MAX: longer names no tar tool could have read from a file system
CACHE = 512  # cached directory descriptors, well under any open-files limit

_DIR = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

Path = tuple[str, ...]


def clean(name: str) -> Path:
    """`name` as components below the root: "", "." and ".." above the root dropped."""
    if len(name) > MAX_PATH:
        raise InvalidArgument(f"layer path of {len(name)} characters (at most {MAX_PATH})")
    out: list[str] = []
    for c in name.split("/"):
        if c == "..":
            if out:
                out.pop()
        elif c and c != ".":
            out.append(c)
    return tuple(out)


def make_dir(parent_fd: int, name: str, real: Path) -> None:
    """How a missing directory on the way is made: 0755, as containerd's mkdirAll."""
    os.mkdir(name, 0o755, dir_fd=parent_fd)
    os.chmod(name, 0o755, dir_fd=parent_fd)  # not the umask's; just made, not a symlink


class Root:
    """An open root directory (the caller's path is trusted and followed)."""

    def __init__(self, path: str | os.PathLike[str],
                 mkdir: Callable[[int, str, Path], None] = make_dir) -> None:
        self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._mkdir = mkdir
        self._reals: dict[Path, int] = {(): self.fd}  # symlink-free path -> descriptor
        self._paths: dict[Path, tuple[int, Path]] = {(): (self.fd, ())}  # asked -> found
        self._open: list[int] = []
        self._retired: list[int] = []

    def close(self) -> None:
        self.forget()
        self.release()
        os.close(self.fd)

    def forget(self) -> None:
        """Drop what is cached (a directory or symlink was removed)."""
        self._retired.extend(self._open)
        self._open = []
        self._reals = {(): self.fd}
        self._paths = {(): (self.fd, ())}

    def release(self) -> None:
        """Close the descriptors that `forget` dropped: none of them is in use any more."""
        for fd in self._retired:
            os.close(fd)
        self._retired = []

    def dir(self, path: Path, create: bool) -> tuple[int, Path] | None:
        """(O_PATH descriptor, path without symlinks) of the directory that `path` (clean,
        as from `clean`) names inside the root. Missing directories are made if `create`,
        else the answer is None. InvalidArgument for a component that is neither a
        directory nor a symlink, or too many symlinks.

        Components are taken one at a time, a symlink's target put in front of those
        left, and ".." steps back along the path *found* (filepath-securejoin's order,
        and the kernel's): with `a -> b/c`, "a/.." is b."""
        hit = self._paths.get(path)
        if hit is not None:
            return hit
        if len(self._open) >= CACHE:
            self.forget()
        k = len(path) - 1
        while k and path[:k] not in self._paths:
            k -= 1
        fd, real = self._paths[path[:k]]
        todo = list(reversed(path[k:]))
        links = 0
        while todo:
            name = todo.pop()
            if name == "..":
                real = real[:-1]
                fd = self._real(real)
                continue
            if not name or name == ".":
                continue
            step = (*real, name)
            known = self._reals.get(step)
            if known is None:
                try:
                    known = os.open(name, _DIR, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        return None
                    self._mkdir(fd, name, step)
                    known = os.open(name, _DIR, dir_fd=fd)
                except OSError as e:
                    if e.errno not in (errno.ENOTDIR, errno.ELOOP):
                        raise
                    links += 1
                    target = self._follow(fd, name, real, links)
                    if target.startswith("/"):
                        fd, real = self.fd, ()
                    todo.extend(reversed(target.split("/")))
                    continue
                self._open.append(known)
                self._reals[step] = known
            fd, real = known, step
        self._paths[path] = (fd, real)
        return fd, real

    def _real(self, real: Path) -> int:
        """The descriptor of a directory already walked through (every step is kept)."""
        known = self._reals.get(real)
        if known is None:  # cannot happen between forget()s; walk again to be sure
            known = self.fd
            for i, name in enumerate(real):
                known = os.open(name, _DIR, dir_fd=known)
                self._open.append(known)
                self._reals[real[:i + 1]] = known
        return known

    def _follow(self, parent: int, name: str, real: Path, links: int) -> str:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        where = "/".join((*real, name))
        if not stat.S_ISLNK(st.st_mode):
            raise InvalidArgument(f"layer path through {where}: not a directory")
        if links > MAX_SYMLINKS:
            raise InvalidArgument(f"layer path through {where}: more than {MAX_SYMLINKS} "
                                  "symlinks")
        return os.readlink(name, dir_fd=parent)
