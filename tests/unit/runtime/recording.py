"""A recording double of `Syscalls`: tests pass it in where production code gets `LINUX`.

Mounts, pivots and unmounts are only recorded. A target given as "/proc/self/fd/<n>[/name]"
is recorded as the path the descriptor names, so that tests can say where a mount would
land. `mknod` creates an empty regular file and `symlink` a real link (neither needs root),
so that the steps after them find what they expect. `fail` maps (call, path) to an errno
to raise once, e.g. {("mount", "/proc/kcore"): errno.ENOTDIR}.
"""

from __future__ import annotations

import os


def real_path(path: str | None) -> str | None:
    if path and path.startswith("/proc/self/fd/"):
        rest = path[len("/proc/self/fd/"):]
        fd, _, tail = rest.partition("/")
        base = os.readlink(f"/proc/self/fd/{fd}")
        return os.path.join(base, tail) if tail else base
    return path


class RecordingSyscalls:
    def __init__(self, fail: dict[tuple[str, str], int] | None = None) -> None:
        self.calls: list[tuple] = []
        self.fail = dict(fail or {})

    def _check(self, call: str, path: str | None, given: str | None = None) -> None:
        err = self.fail.pop((call, path or ""), None)
        if err is not None:  # worded as LINUX words it, with the path it was given
            raise OSError(err, f"{call} {given or path}: {os.strerror(err)}")

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int,
              data: str | None = None) -> None:
        real = real_path(target) or ""
        self.calls.append(("mount", source, real, fstype, flags, data))
        self._check("mount", real, target)

    def umount(self, target: str, flags: int = 0) -> None:
        self.calls.append(("umount", real_path(target), flags))
        self._check("umount", target)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        self.calls.append(("pivot_root", new_root, put_old))

    def chroot(self, path: str) -> None:
        self.calls.append(("chroot", path))

    def mknod(self, path: str, mode: int, device: int) -> None:
        p = real_path(path) or ""
        self.calls.append(("mknod", p, mode, device))
        self._check("mknod", p, path)
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))

    def symlink(self, target: str, path: str) -> None:
        p = real_path(path) or ""
        self.calls.append(("symlink", target, p))
        os.symlink(target, path)

    def mount_setattr(self, path: str, attr_set: int, attr_clr: int,
                      propagation: int = 0) -> None:
        self.calls.append(("mount_setattr", real_path(path), attr_set, attr_clr))

    def mounts(self) -> list[tuple]:
        return [c for c in self.calls if c[0] == "mount"]
