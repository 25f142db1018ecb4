"""OverlaySnapshotter: each snapshot's own changes in a directory, stacked by overlayfs.
containerd's plugins/snapshots/overlay, without its options for user namespaces and quotas.

    <root>/
      metadata.db
      snapshots/<id>/fs      the upper dir while active; a lower dir once committed
      snapshots/<id>/work    overlay's workdir (active snapshots only)

The mounts returned, for a snapshot whose parents are P1 (nearest) … Pn:

    active, no parent     bind   <id>/fs                                       rbind,rw
    active, parents       overlay lowerdir=P1/fs:…:Pn/fs,upperdir=<id>/fs,workdir=<id>/work
    view, no parent       bind   <id>/fs (empty)                               rbind,ro
    view, one parent      bind   P1/fs                                         rbind,ro
    view, more parents    overlay lowerdir=P1/fs:…:Pn/fs                       ro

Overlay options, always given, so that the kernel's defaults (module parameters, build
options) cannot change what lands in a layer:
    index=off         containerd's choice: with the index on, an upper dir records the
                      lowers it was mounted over, and a committed layer mounted under other
                      uppers later fails the check
    redirect_dir=off  renaming a lower directory copies it up (mv falls back on EXDEV)
                      instead of leaving a redirect xattr that no layer tar can express
    metacopy=off      a chown or chmod copies the data up too, so that a committed upper dir
                      holds every file it changed, whole
`userxattr` is for mounts inside a user namespace (rootless), which this snapshotter does not
do; `volatile` would trade crash safety for speed.

Paths go into mount options verbatim, so a root containing ",", ":" or "\\" is refused.
A chain longer than a page of options is mount.py's job (it fits about 200 layers).
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from dockyard.image.errors import InvalidArgument, Unavailable
from dockyard.image.snapshots import Kind, Mount
from dockyard.image.snapshots.directories import DirectorySnapshotter, remove_tree
from dockyard.image.snapshots.metastore import Snapshot
from dockyard.mounting import mount_all, unmount_all
from dockyard.runtime.linux.syscalls import MNT_DETACH

OPTIONS = ("index=off", "redirect_dir=off", "metacopy=off")


class OverlaySnapshotter(DirectorySnapshotter):
    def __init__(self, root: str | Path, options: tuple[str, ...] = OPTIONS) -> None:
        bad = [c for c in ",:\\" if c in str(Path(root).absolute())]
        if bad:
            raise InvalidArgument(f"overlay snapshotter root {root}: {' '.join(bad)} cannot "
                                  "appear in overlay mount options")
        self.options = options
        super().__init__(root)

    rebase = True  # an upper dir does not depend on its lower dirs' content

    def _rebased(self, snapshot: Snapshot) -> None:
        """The upper root was made for no parent (0755, root's); the merged root shows it.
        If it is still so, it takes the new parent's owner and mode, as `_populate` would
        have given it (a layer that set 0755 root:root itself is told apart by nothing)."""
        fs = self.fs(snapshot.id)
        st, parent = os.lstat(fs), os.stat(self.fs(snapshot.parent_ids[0]))
        if (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o755, 0, 0):
            os.chown(fs, parent.st_uid, parent.st_gid)
            os.chmod(fs, stat.S_IMODE(parent.st_mode))

    def _populate(self, new: Path, snapshot: Snapshot) -> None:
        """An empty upper dir and, for an active snapshot, a workdir. With a parent, the
        upper's root takes the owner and mode of the parent's root: overlay shows the
        upper's root as the merged root."""
        fs = new / "fs"
        fs.mkdir()
        mode, uid, gid = 0o755, -1, -1
        if snapshot.parent_ids:
            st = os.stat(self.fs(snapshot.parent_ids[0]))
            mode, uid, gid = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid
        os.chown(fs, uid, gid)
        os.chmod(fs, mode)  # after chown, which clears set-id bits; and not the umask's
        if snapshot.kind is Kind.ACTIVE:
            (new / "work").mkdir(mode=0o711)

    def _mounts(self, snapshot: Snapshot) -> list[Mount]:
        parents = snapshot.parent_ids
        if not parents:
            rw = "rw" if snapshot.kind is Kind.ACTIVE else "ro"
            return [Mount("bind", str(self.fs(snapshot.id)), ("rbind", rw))]
        lower = "lowerdir=" + ":".join(str(self.fs(p)) for p in parents)
        if snapshot.kind is Kind.ACTIVE:
            return [Mount("overlay", "overlay", (
                f"workdir={self.work(snapshot.id)}", f"upperdir={self.fs(snapshot.id)}",
                lower, *self.options))]
        if len(parents) == 1:
            return [Mount("bind", str(self.fs(parents[0])), ("rbind", "ro"))]
        return [Mount("overlay", "overlay", (lower, *self.options, "ro"))]


def check_overlay(root: str | Path, options: tuple[str, ...] = OPTIONS) -> None:
    """Mount a tiny overlay under `root` with `options`, copy a file up through it, and
    clean up; Unavailable says why not (no overlay module, an upper on overlayfs or another
    file system overlay refuses, options the kernel does not know). The trial lives in
    snapshots/new-overlay-check-*, which a snapshotter's cleanup removes if a crash leaves it."""
    snapshots = Path(root) / "snapshots"
    snapshots.mkdir(mode=0o700, parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="new-overlay-check-", dir=snapshots))
    try:
        for name in ("lower", "upper", "work", "merged"):
            (base / name).mkdir()
        (base / "lower" / "file").write_bytes(b"lower")
        trial = Mount("overlay", "overlay", (
            f"lowerdir={base / 'lower'}", f"upperdir={base / 'upper'}",
            f"workdir={base / 'work'}", *options))
        try:
            mount_all([trial], base / "merged")
        except OSError as e:
            raise Unavailable(f"overlay does not mount under {root}: {e}") from e
        try:
            (base / "merged" / "file").write_bytes(b"upper")
            if (base / "upper" / "file").read_bytes() != b"upper":
                raise Unavailable(f"overlay under {root} did not copy a file up")
        except OSError as e:
            raise Unavailable(f"overlay under {root} cannot copy a file up: {e}") from e
        finally:
            unmount_all(base / "merged", MNT_DETACH)
    finally:
        remove_tree(base)


def overlay_supported(root: str | Path, options: tuple[str, ...] = OPTIONS) -> bool:
    """Whether OverlaySnapshotter(root) will work; if not, use native.CopySnapshotter."""
    try:
        check_overlay(root, options)
    except Unavailable:
        return False
    return True
