"""OCI mount options -> mount(2) flags, propagation, mount_setattr(2) attributes and data.

Pure: the tables are runc's (libcontainer/specconv), so that a config behaves the same under
both runtimes. An option that is in no table is filesystem data ("size=64k", "mode=755",
"lowerdir=...", "acl"), passed through in order, comma-joined.

    parse(["ro", "nosuid", "rprivate", "rro", "size=1m"])
      -> (MS_RDONLY | MS_NOSUID, 0, [MS_PRIVATE | MS_REC], "size=1m", Extra(rec_set=RDONLY))

A later option wins over an earlier one ("ro,rw" is rw); a cleared flag is remembered in
`clear`, because a bind mount is remounted whenever any flag was asked for, set or cleared.
"""

from __future__ import annotations

from dockyard.runtime.linux.syscalls import (
    MS_BIND,
    MS_DIRSYNC,
    MS_I_VERSION,
    MS_LAZYTIME,
    MS_MANDLOCK,
    MS_NOATIME,
    MS_NODEV,
    MS_NODIRATIME,
    MS_NOEXEC,
    MS_NOSUID,
    MS_NOSYMFOLLOW,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_RELATIME,
    MS_REMOUNT,
    MS_SHARED,
    MS_SILENT,
    MS_SLAVE,
    MS_STRICTATIME,
    MS_SYNCHRONOUS,
    MS_UNBINDABLE,
)

# mount_setattr(2) attributes (linux/mount.h).
MOUNT_ATTR_RDONLY = 0x00000001
MOUNT_ATTR_NOSUID = 0x00000002
MOUNT_ATTR_NODEV = 0x00000004
MOUNT_ATTR_NOEXEC = 0x00000008
MOUNT_ATTR__ATIME = 0x00000070
MOUNT_ATTR_RELATIME = 0x00000000
MOUNT_ATTR_NOATIME = 0x00000010
MOUNT_ATTR_STRICTATIME = 0x00000020
MOUNT_ATTR_NODIRATIME = 0x00000080
MOUNT_ATTR_IDMAP = 0x00100000
MOUNT_ATTR_NOSYMFOLLOW = 0x00200000

# option -> (clears?, MS_* flag). "defaults" is known and does nothing.
FLAGS: dict[str, tuple[bool, int]] = {
    "async": (True, MS_SYNCHRONOUS),
    "atime": (True, MS_NOATIME),
    "bind": (False, MS_BIND),
    "defaults": (False, 0),
    "dev": (True, MS_NODEV),
    "diratime": (True, MS_NODIRATIME),
    "dirsync": (False, MS_DIRSYNC),
    "exec": (True, MS_NOEXEC),
    "iversion": (False, MS_I_VERSION),
    "lazytime": (False, MS_LAZYTIME),
    "loud": (True, MS_SILENT),
    "mand": (False, MS_MANDLOCK),
    "noatime": (False, MS_NOATIME),
    "nodev": (False, MS_NODEV),
    "nodiratime": (False, MS_NODIRATIME),
    "noexec": (False, MS_NOEXEC),
    "noiversion": (True, MS_I_VERSION),
    "nolazytime": (True, MS_LAZYTIME),
    "nomand": (True, MS_MANDLOCK),
    "norelatime": (True, MS_RELATIME),
    "nostrictatime": (True, MS_STRICTATIME),
    "nosuid": (False, MS_NOSUID),
    "nosymfollow": (False, MS_NOSYMFOLLOW),
    "rbind": (False, MS_BIND | MS_REC),
    "relatime": (False, MS_RELATIME),
    "remount": (False, MS_REMOUNT),
    "ro": (False, MS_RDONLY),
    "rw": (True, MS_RDONLY),
    "silent": (False, MS_SILENT),
    "strictatime": (False, MS_STRICTATIME),
    "suid": (True, MS_NOSUID),
    "symfollow": (True, MS_NOSYMFOLLOW),
    "sync": (False, MS_SYNCHRONOUS),
}

PROPAGATION: dict[str, int] = {
    "private": MS_PRIVATE,
    "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED,
    "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE,
    "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE,
    "runbindable": MS_UNBINDABLE | MS_REC,
}

# Recursive attributes, applied with mount_setattr(2) and AT_RECURSIVE: (clears?, attr).
REC_ATTRS: dict[str, tuple[bool, int]] = {
    "rro": (False, MOUNT_ATTR_RDONLY),
    "rrw": (True, MOUNT_ATTR_RDONLY),
    "rnosuid": (False, MOUNT_ATTR_NOSUID),
    "rsuid": (True, MOUNT_ATTR_NOSUID),
    "rnodev": (False, MOUNT_ATTR_NODEV),
    "rdev": (True, MOUNT_ATTR_NODEV),
    "rnoexec": (False, MOUNT_ATTR_NOEXEC),
    "rexec": (True, MOUNT_ATTR_NOEXEC),
    "rnodiratime": (False, MOUNT_ATTR_NODIRATIME),
    "rdiratime": (True, MOUNT_ATTR_NODIRATIME),
    "rrelatime": (False, MOUNT_ATTR_RELATIME),
    "rnorelatime": (True, MOUNT_ATTR_RELATIME),
    "rnoatime": (False, MOUNT_ATTR_NOATIME),
    "ratime": (True, MOUNT_ATTR_NOATIME),
    "rstrictatime": (False, MOUNT_ATTR_STRICTATIME),
    "rnostrictatime": (True, MOUNT_ATTR_STRICTATIME),
    "rnosymfollow": (False, MOUNT_ATTR_NOSYMFOLLOW),
    "rsymfollow": (True, MOUNT_ATTR_NOSYMFOLLOW),
}

EXTENSIONS = ("tmpcopyup",)
IDMAP = ("idmap", "ridmap")
# Known to `features` but passed to the filesystem as data (runc issue 3738: "acl" is not
# MS_POSIXACL; ext4 and friends take it as a data option).
DATA_OPTIONS = ("acl", "noacl")

KNOWN_OPTIONS: list[str] = sorted(
    [*FLAGS, *PROPAGATION, *REC_ATTRS, *EXTENSIONS, *DATA_OPTIONS])


class Extra:
    """What is neither a mount(2) flag nor data: recursive attributes, copy-up, idmap."""

    __slots__ = ("idmap", "rec_clear", "rec_set", "tmpcopyup")

    def __init__(self, rec_set: int = 0, rec_clear: int = 0, tmpcopyup: bool = False,
                 idmap: str = "") -> None:
        self.rec_set = rec_set
        self.rec_clear = rec_clear
        self.tmpcopyup = tmpcopyup
        self.idmap = idmap  # "", "idmap" or "ridmap"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Extra) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[int, int, bool, str]:
        return (self.rec_set, self.rec_clear, self.tmpcopyup, self.idmap)

    def __repr__(self) -> str:
        return (f"Extra(rec_set={self.rec_set:#x}, rec_clear={self.rec_clear:#x}, "
                f"tmpcopyup={self.tmpcopyup}, idmap={self.idmap!r})")


def parse(options: list[str] | None) -> tuple[int, int, list[int], str, Extra]:
    """(flags, clear_flags, propagation_flags, data, extra) for one mount's options."""
    flags = clear = 0
    propagation: list[int] = []
    data: list[str] = []
    extra = Extra()
    for o in options or ():
        f = FLAGS.get(o)
        if f is not None:
            clears, bit = f
            if clears:
                flags &= ~bit
                clear |= bit
            else:
                flags |= bit
                clear &= ~bit
            continue
        p = PROPAGATION.get(o)
        if p is not None:
            propagation.append(p)
            continue
        r = REC_ATTRS.get(o)
        if r is not None:
            clears, attr = r
            if clears:
                extra.rec_clear |= attr
                extra.rec_set &= ~attr
            else:
                extra.rec_set |= attr
                extra.rec_clear &= ~attr
                if attr & MOUNT_ATTR__ATIME == attr:
                    # mount_setattr(2): an atime setting must also clear MOUNT_ATTR__ATIME.
                    extra.rec_clear |= MOUNT_ATTR__ATIME
            continue
        if o == "tmpcopyup":
            extra.tmpcopyup = True
        elif o in IDMAP:
            extra.idmap = o
        else:
            data.append(o)
    return flags, clear, propagation, ",".join(data), extra


def propagation(name: str) -> int:
    """linux.rootfsPropagation -> MS_* flags; KeyError if unknown."""
    return PROPAGATION[name]


def is_bind(options: list[str] | None) -> bool:
    return any(o in ("bind", "rbind") for o in options or ())
