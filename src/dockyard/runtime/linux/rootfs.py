"""The container's root filesystem: validate, prepare (mounts, devices), enter, finalize.

Runs in the container's init, in its fresh mount namespace, in this order (runc's):

  prepare   1. "/" rslave (or linux.rootfsPropagation): nothing we mount reaches the host
            2. bind the rootfs onto itself: pivot_root needs a mount point
            3. each spec mount, in order, planned as data (`plan_mount`) and performed by
               `_run`: every destination is resolved inside the rootfs with symlinks scoped
               to it (securejoin), opened O_PATH|O_NOFOLLOW, checked to lie under the rootfs,
               and mounted on "/proc/self/fd/<fd>" (the CVE-2021-30465 class); nothing but
               the few lxcfs files may cover /proc (runc's checkProcMount)
            4. /dev: default and linux.devices nodes, /dev/ptmx, the fd symlinks
  (the caller runs createContainer hooks here)
  enter     pivot_root(".", ".") with the old root detached (or MS_MOVE + chroot)
  finalize  maskedPaths, readonlyPaths, read-only tmpfs and /dev, read-only "/",
            rootfsPropagation

Read-only tmpfs and /dev mounts are mounted read-write and made read-only in finalize, so
that nested destinations and device nodes can still be created under them.
Every module this needs is imported at the top: after pivot_root the host's files are gone.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import time

from dockyard.runtime.errors import ConfigError, StartError
from dockyard.runtime.linux import devices, mountopts, securejoin
from dockyard.runtime.linux.mountinfo import unescape_mountinfo
from dockyard.runtime.linux.syscalls import (
    LINUX,
    MNT_DETACH,
    MS_BIND,
    MS_MOVE,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    MS_SHARED,
    MS_SLAVE,
    Syscalls,
    libc,
)
from dockyard.runtime.linux.syscalls import MS_NOATIME as _NOATIME
from dockyard.runtime.linux.syscalls import MS_NODIRATIME as _NODIRATIME
from dockyard.runtime.linux.syscalls import MS_NOSYMFOLLOW as _NOSYMFOLLOW
from dockyard.runtime.linux.syscalls import MS_RELATIME as _RELATIME
from dockyard.runtime.linux.syscalls import MS_STRICTATIME as _STRICTATIME

DEFAULT_FLAGS = MS_NOEXEC | MS_NOSUID | MS_NODEV
ATIME_FLAGS = _NOATIME | _RELATIME | _STRICTATIME | _NODIRATIME
LOCKED_FLAGS = MS_RDONLY | MS_NODEV | MS_NOEXEC | MS_NOSUID | ATIME_FLAGS
PROC_SUPER_MAGIC = 0x9FA0
# Files under /proc that lxcfs emulates and runc lets a bind mount cover.
PROC_MOUNTS_ALLOWED = frozenset((
    "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
    "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid", "/proc/sys/crypto/fips_enabled"))
_AT_EMPTY_PATH = 0x1000
_AT_RECURSIVE = 0x8000
_NR_MOUNT_SETATTR = 442
# statvfs f_flag (ST_*) -> MS_* (runc's statfsToMountFlags).
_ST_TO_MS = ((1, MS_RDONLY), (2, MS_NOSUID), (4, MS_NODEV), (8, MS_NOEXEC), (16, 0x10),
             (64, 0x40), (1024, _NOATIME), (2048, _NODIRATIME), (4096, _RELATIME),
             (0x2000, _NOSYMFOLLOW))


# ---------------------------------------------------------------- validation (pure-ish)

def _fail(msg: str) -> None:
    raise ConfigError(msg)


def rootfs_path(spec: dict, bundle: str) -> str:
    """root.path, relative to the bundle, absolute with symlinks resolved."""
    p = (spec.get("root") or {}).get("path") or ""
    return os.path.realpath(os.path.join(os.path.abspath(bundle), p))


def validate(spec: dict, bundle: str) -> None:
    root = spec.get("root")
    if not isinstance(root, dict) or not isinstance(root.get("path"), str) or not root["path"]:
        _fail("root must be specified")
    path = rootfs_path(spec, bundle)
    if not os.path.isdir(path):
        _fail(f"invalid rootfs: stat {path}: no such directory")
    mounts = spec.get("mounts") or []
    if not isinstance(mounts, list):
        _fail("mounts must be an array")
    for i, m in enumerate(mounts):
        _validate_mount(i, m)
    linux = spec.get("linux") or {}
    prop = linux.get("rootfsPropagation")
    if prop and prop not in mountopts.PROPAGATION:
        _fail(f"rootfsPropagation={prop} is not supported")
    for key in ("maskedPaths", "readonlyPaths"):
        paths = linux.get(key) or []
        if not isinstance(paths, list):
            _fail(f"linux.{key} must be an array")
        for p in paths:
            if not isinstance(p, str) or not p.startswith("/"):
                _fail(f"linux.{key}: {p!r} is not an absolute path")
    devices.validate(linux.get("devices"))


def _validate_mount(i: int, m: object) -> None:
    if not isinstance(m, dict):
        _fail(f"mounts[{i}] must be an object")
        return
    dest = m.get("destination")
    if not isinstance(dest, str) or not dest:
        _fail(f"mounts[{i}]: destination is required")
    if not dest.startswith("/"):
        _fail(f"mount destination {dest} is not absolute")
    opts = m.get("options") or []
    if not isinstance(opts, list) or not all(isinstance(o, str) for o in opts):
        _fail(f"mount {dest}: options must be an array of strings")
    for key in ("source", "type"):
        if m.get(key) is not None and not isinstance(m[key], str):
            _fail(f"mount {dest}: {key} must be a string")
    if any("\0" in (m.get(k) or "") for k in ("source", "type", "destination")):
        _fail(f"mount {dest}: mount field contains null byte")
    if m.get("uidMappings") or m.get("gidMappings") or any(o in mountopts.IDMAP for o in opts):
        _fail(f"mount {dest}: idmapped mounts (idmap, ridmap, uidMappings, gidMappings) "
              "are not supported")
    bind = _is_bind(m)
    if bind and not m.get("source"):
        _fail(f"mount {dest}: a bind mount needs a source")
    if not bind and not m.get("type"):
        _fail(f"mount {dest}: type is required unless the options include bind or rbind")


# ---------------------------------------------------------------- plans (pure)

def _is_bind(m: dict) -> bool:
    return m.get("type") == "bind" or mountopts.is_bind(m.get("options"))


class Op:
    """One step of a plan: `kind` acting on `dest` (a path inside the container)."""

    __slots__ = ("args", "dest", "kind")

    def __init__(self, kind: str, dest: str, *args: object) -> None:
        self.kind = kind
        self.dest = dest
        self.args = args

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Op) and (self.kind, self.dest, self.args) == (
            other.kind, other.dest, other.args)

    def __hash__(self) -> int:
        return hash((self.kind, self.dest, self.args))

    def __repr__(self) -> str:
        return f"Op({', '.join(repr(a) for a in (self.kind, self.dest, *self.args))})"


# Kinds and their args:
#   mount      source, fstype, flags, data, create ("dir" | "file" | "plain": a real directory)
#   tmpfs      source, flags, data, copyup        (mode= of an existing directory kept)
#   remount    flags, cleared                     (MS_BIND|MS_REMOUNT; retried with locked flags)
#   propagate  flag
#   setattr    attr_set, attr_clr                 (mount_setattr, AT_RECURSIVE)
#   cgroup2    source, flags, data, fallback bind source
#   symlink    target                             (an existing link is left alone)
#   mknod      mode, rdev, uid, gid               (EPERM -> bind the host's node)
#   bind_dev   host path
#   ptmx       -                                  (dest becomes a symlink to pts/ptmx)


class Hierarchy:
    """A cgroup v1 hierarchy of the host: where it is mounted and its own cgroup in it."""

    __slots__ = ("mountpoint", "own", "root", "subsystems")

    def __init__(self, mountpoint: str, root: str, subsystems: str, own: str) -> None:
        self.mountpoint = mountpoint
        self.root = root
        self.subsystems = subsystems  # "cpu,cpuacct", "name=systemd"
        self.own = own  # this process's cgroup in it, from /proc/self/cgroup


class CgroupFacts:
    __slots__ = ("hierarchies", "own_v2", "v2")

    def __init__(self, v2: bool, hierarchies: list[Hierarchy] | None = None,
                 own_v2: str = "/") -> None:
        self.v2 = v2
        self.hierarchies = hierarchies or []
        self.own_v2 = own_v2


def plan_mount(m: dict, bundle: str = "/", *, source_is_dir: bool = True,
               cgroup: CgroupFacts | None = None, cgroup_ns: bool = False) -> list[Op]:
    """The steps of one spec mount. `source_is_dir` matters for binds (file or directory)."""
    dest = os.path.normpath(m["destination"])
    dest = "/" + dest.lstrip("/")
    typ = m.get("type") or ""
    src = m.get("source") or ""
    flags, cleared, props, data, extra = mountopts.parse(m.get("options"))
    if typ == "bind":  # crun's leniency: type "bind" without a bind option still binds
        flags |= MS_BIND
    if extra.idmap or m.get("uidMappings") or m.get("gidMappings"):
        raise ConfigError(f"mount {dest}: idmapped mounts are not supported")
    ops: list[Op] = []
    if flags & MS_BIND:
        # Any type is meaningless for a bind mount (runc sets it to "bind").
        src = os.path.join(bundle, src)
        ops.append(Op("mount", dest, src, "bind", flags & (MS_BIND | MS_REC), data or None,
                      "dir" if source_is_dir else "file"))
        ops += [Op("propagate", dest, p) for p in props]
        # MS_BIND ignores the other flags: they take a second, MS_REMOUNT call.
        if flags & ~(MS_BIND | MS_REC | MS_REMOUNT) or cleared:
            ops.append(Op("remount", dest, flags & ~MS_REMOUNT | MS_BIND, cleared))
    elif typ == "cgroup":
        if cgroup is None:
            raise StartError(f"mount {dest}: no cgroup facts")
        return _plan_cgroup(dest, src, flags, props, data, cgroup, cgroup_ns)
    elif typ == "tmpfs":
        ops.append(Op("tmpfs", dest, src or "tmpfs", flags & ~MS_RDONLY, data,
                      extra.tmpcopyup))
        ops += [Op("propagate", dest, p) for p in props]
    else:
        if dest == "/dev":
            flags &= ~MS_RDONLY  # devices go in first; finalize makes it read-only
        create = "plain" if typ in ("proc", "sysfs") else "dir"
        ops.append(Op("mount", dest, src or typ, typ, flags, data or None, create))
        ops += [Op("propagate", dest, p) for p in props]
    if extra.rec_set or extra.rec_clear:
        ops.append(Op("setattr", dest, extra.rec_set, extra.rec_clear))
    return ops


def _plan_cgroup(dest: str, src: str, flags: int, props: list[int], data: str,
                 cg: CgroupFacts, cgroup_ns: bool) -> list[Op]:
    if cg.v2:
        fallback = "/sys/fs/cgroup" + (cg.own_v2 if cgroup_ns else "")
        return [Op("cgroup2", dest, src or "cgroup2", flags, data or None,
                   os.path.normpath(fallback))]
    # v1, as runc: a tmpfs, one mount per hierarchy, symlinks for co-mounted controllers.
    ops = [Op("tmpfs", dest, "tmpfs", DEFAULT_FLAGS, "mode=755", False)]
    ops += [Op("propagate", dest, p) for p in props]
    merged = []
    for h in cg.hierarchies:
        name = os.path.basename(h.mountpoint)
        sub = dest + "/" + name
        if "," in name:
            merged.append(name)
        if cgroup_ns:
            source = "systemd" if h.subsystems == "name=systemd" else "cgroup"
            ops.append(Op("mount", sub, source, "cgroup",
                          DEFAULT_FLAGS | (flags & MS_RDONLY), h.subsystems, "dir"))
            continue
        rel = os.path.relpath(h.own, h.root)
        source = os.path.normpath(os.path.join(h.mountpoint, rel))
        ops.append(Op("mount", sub, source, "bind", MS_BIND | MS_REC, None, "dir"))
        ops += [Op("propagate", sub, p) for p in props]
        if flags & ~(MS_BIND | MS_REC | MS_REMOUNT):
            ops.append(Op("remount", sub, flags | MS_BIND | MS_REC, 0))
    for name in merged:
        ops += [Op("symlink", dest + "/" + ss, name) for ss in name.split(",")]
    if flags & MS_RDONLY:
        ops.append(Op("remount", dest, DEFAULT_FLAGS | MS_RDONLY | MS_BIND, 0))
    return ops


def plan_devices(spec: dict, *, in_userns: bool = False, kcore: bool = True) -> list[Op]:
    """Device nodes (bind-mounted from the host in a user namespace), ptmx, symlinks."""
    ops = []
    for d in devices.device_list(spec):
        if in_userns:
            ops.append(Op("bind_dev", d["path"], d["path"]))
        else:
            ops.append(Op("mknod", d["path"], devices.node_mode(d), devices.node_rdev(d),
                          d["uid"], d["gid"]))
    ops.append(Op("ptmx", "/dev/ptmx"))
    ops += [Op("symlink", link, target) for target, link in devices.symlinks(kcore)]
    return ops


def check_proc_mount(dest: str, fstype: str, source_is_procfs: bool = False) -> None:
    """runc's checkProcMount: only a procfs may cover /proc, only lxcfs files under it."""
    if dest != "/proc" and not dest.startswith("/proc/"):
        return
    if dest == "/proc":
        if fstype == "proc" or (fstype == "bind" and source_is_procfs):
            return
        raise StartError(f'"{dest}" cannot be mounted because it is not of type proc')
    if dest not in PROC_MOUNTS_ALLOWED:
        raise StartError(f'"{dest}" cannot be mounted because it is inside /proc')


def root_propagation(spec: dict) -> int:
    prop = (spec.get("linux") or {}).get("rootfsPropagation")
    return mountopts.propagation(prop) if prop else MS_SLAVE | MS_REC


def statvfs_to_ms(f_flag: int) -> int:
    """statvfs flags as MS_* flags; no atime flag at all means strictatime."""
    flags = 0
    for st, ms in _ST_TO_MS:
        if f_flag & st:
            flags |= ms
    if not flags & (_NOATIME | _RELATIME):
        flags |= _STRICTATIME
    return flags


# ---------------------------------------------------------------- acting

def prepare(spec: dict, bundle: str, sys: Syscalls = LINUX, *, in_userns: bool = False,
            cgroup_ns: bool = False) -> str:
    """Steps 1-4 above, in the container's new mount namespace; returns the rootfs path."""
    root = rootfs_path(spec, bundle)
    bundle = os.path.abspath(bundle)
    prop = root_propagation(spec)
    _do(f"make / {_prop_name(prop)}", sys.mount, None, "/", None, prop)
    if prop & MS_SHARED:
        _parent_private(root, sys)
    _do(f"bind the rootfs {root} onto itself", sys.mount, root, root, "bind", MS_BIND | MS_REC)
    ctx = _Ctx(root, sys)  # opened after the bind: lookups must start on the new mount
    try:
        mounts = spec.get("mounts") or []
        cg = None
        for m in mounts:
            if m.get("type") == "cgroup" and not _is_bind(m) and not cg:
                cg = cgroup_facts()
            src = m.get("source") or ""
            is_dir = True
            if _is_bind(m):
                try:
                    is_dir = os.path.isdir(os.path.join(bundle, src)) or not os.path.exists(
                        os.path.join(bundle, src))
                except OSError:
                    pass
            ops = plan_mount(m, bundle, source_is_dir=is_dir, cgroup=cg, cgroup_ns=cgroup_ns)
            where = f'error mounting "{m.get("source") or ""}" to rootfs at "{m["destination"]}"'
            for op in ops:
                ctx.run(op, where)
        if devices.needs_setup(mounts):
            for op in plan_devices(spec, in_userns=in_userns,
                                   kcore=os.path.exists("/proc/kcore")):
                ctx.run(op, "error creating device nodes")
    finally:
        ctx.close()
    return root


def enter(spec: dict, rootfs: str, sys: Syscalls = LINUX, *, no_pivot: bool = False) -> None:
    """Make the rootfs "/" (runc's pivotRoot / msMoveRoot), cwd "/"."""
    if no_pivot:
        _move_root(rootfs, sys)
        return
    old = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    new = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchdir(new)
        # pivot_root(".", "."): the old root ends up stacked under the new one, reachable
        # as our cwd; no directory for it is needed in the rootfs.
        _do("pivot_root", sys.pivot_root, ".", ".")
        os.fchdir(old)
        # rslave, not rprivate: our unmounts must not propagate to the host.
        _do("make the old root rslave", sys.mount, None, ".", None, MS_SLAVE | MS_REC)
        _do("unmount the old root", sys.umount, ".", MNT_DETACH)
    finally:
        os.close(old)
        os.close(new)
    os.chdir("/")
    _reopen_dev_null()


def _reopen_dev_null() -> None:
    """Stdio that was the host's /dev/null becomes the container's (runc's reOpenDevNull)."""
    try:
        null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return
    try:
        rdev = os.fstat(null).st_rdev
        for fd in (0, 1, 2):
            try:
                st = os.fstat(fd)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == rdev:
                os.dup2(null, fd)
    finally:
        os.close(null)


def finalize(spec: dict, sys: Syscalls = LINUX) -> None:
    """After pivot_root: masked and read-only paths, read-only mounts and "/", propagation."""
    linux = spec.get("linux") or {}
    for p in linux.get("maskedPaths") or []:
        _mask(p, sys)
    for p in linux.get("readonlyPaths") or []:
        _readonly(p, sys)
    for m in spec.get("mounts") or []:
        flags = mountopts.parse(m.get("options"))[0]
        dest = os.path.normpath(m["destination"])
        if flags & MS_RDONLY and not flags & MS_BIND and (
                m.get("type") == "tmpfs" or dest == "/dev"):
            _remount_ro(dest, flags, sys)
    if (spec.get("root") or {}).get("readonly"):
        flags = MS_BIND | MS_REMOUNT | MS_RDONLY
        flags |= statvfs_to_ms(os.statvfs("/").f_flag) & LOCKED_FLAGS
        _do("remount / read-only", sys.mount, None, "/", None, flags)
    prop = linux.get("rootfsPropagation")
    if prop:
        _do(f"make / {prop}", sys.mount, None, "/", None, mountopts.propagation(prop))


def _do(what: str, fn, *args: object) -> None:
    try:
        fn(*args)
    except OSError as e:
        raise StartError(f"{what}: {e.strerror or e}") from None


def _prop_name(flag: int) -> str:
    return next((k for k, v in mountopts.PROPAGATION.items() if v == flag), hex(flag))


def _mask(path: str, sys: Syscalls) -> None:
    try:
        sys.mount("/dev/null", path, None, MS_BIND)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return
        if e.errno != errno.ENOTDIR:
            raise StartError(f"mask {path}: {e.strerror}") from None
        _do(f"mask {path}", sys.mount, "tmpfs", path, "tmpfs", MS_RDONLY)


def _readonly(path: str, sys: Syscalls) -> None:
    try:
        sys.mount(path, path, None, MS_BIND | MS_REC)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return
        raise StartError(f"make {path} read-only: {e.strerror}") from None
    flags = statvfs_to_ms(os.statvfs(path).f_flag) & LOCKED_FLAGS
    _do(f"make {path} read-only", sys.mount, path, path, None,
        flags | DEFAULT_FLAGS | MS_BIND | MS_REMOUNT | MS_RDONLY)


def _remount_ro(dest: str, flags: int, sys: Syscalls) -> None:
    flags |= MS_REMOUNT | MS_BIND | MS_RDONLY
    for _ in range(5):
        try:
            sys.mount(None, dest, None, flags)
            return
        except OSError as e:
            if e.errno != errno.EBUSY:
                raise StartError(f"remount {dest} read-only: {e.strerror}") from None
            time.sleep(0.1)
    raise StartError(f"unable to mount {dest} as readonly max retries reached")


def _move_root(rootfs: str, sys: Syscalls) -> None:
    """--no-pivot: hide the host's full procfs and sysfs mounts (the kernel lets a container
    mount procfs only where a full one is visible), MS_MOVE the rootfs to "/", chroot."""
    for mi in mountinfo():
        point, fstype = mi[4], mi[8]
        if mi[3] != "/" or fstype not in ("proc", "sysfs"):
            continue
        if securejoin.relative(rootfs, point) is not None:
            continue
        try:
            sys.mount(None, point, None, MS_SLAVE | MS_REC)
        except OSError as e:
            if e.errno == errno.ENOENT:
                continue
            raise StartError(f"make {point} rslave: {e.strerror}") from None
        try:
            sys.umount(point, MNT_DETACH)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.EPERM):
                raise StartError(f"unmount {point}: {e.strerror}") from None
            _do(f"cover {point}", sys.mount, "tmpfs", point, "tmpfs", 0)
    os.chdir(rootfs)
    _do("move the rootfs to /", sys.mount, rootfs, "/", None, MS_MOVE)
    _do("chroot", getattr(sys, "chroot", os.chroot), ".")
    os.chdir("/")
    _reopen_dev_null()


def _parent_private(root: str, sys: Syscalls) -> None:
    """A shared parent would make pivot_root fail and carry our bind mount to the host."""
    best = None
    for mi in mountinfo():
        if securejoin.relative(mi[4], root) is not None and (
                best is None or len(mi[4]) > len(best[4])):
            best = mi
    if best is not None and "shared:" in best[6]:
        _do(f"make {best[4]} private", sys.mount, None, best[4], None, MS_PRIVATE)


# ---------------------------------------------------------------- host facts

def mountinfo(path: str = "/proc/self/mountinfo") -> list[tuple[str, ...]]:
    """(id, parent, dev, root, mountpoint, options, optional fields, '-', fstype, source,
    superopts) per line, paths unescaped."""
    out = []
    with open(path) as f:
        for line in f:
            left, _, right = line.rstrip("\n").partition(" - ")
            a = left.split(" ")
            b = right.split(" ")
            out.append((a[0], a[1], a[2], unescape_mountinfo(a[3]), unescape_mountinfo(a[4]), a[5],
                        " ".join(a[6:]), "-", b[0], unescape_mountinfo(b[1]) if len(b) > 1 else "",
                        b[2] if len(b) > 2 else ""))
    return out


def cgroup_facts(mounts: list[tuple[str, ...]] | None = None,
                 proc_cgroup: str | None = None) -> CgroupFacts:
    """The host's cgroup layout as this process sees it (v2 if /sys/fs/cgroup is cgroup2)."""
    mounts = mountinfo() if mounts is None else mounts
    if proc_cgroup is None:
        with open("/proc/self/cgroup") as f:
            proc_cgroup = f.read()
    own: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        _, ctrls, path = line.split(":", 2)
        for c in ctrls.split(",") if ctrls else [""]:
            own[c] = path
    if any(mi[4] == "/sys/fs/cgroup" and mi[8] == "cgroup2" for mi in mounts):
        return CgroupFacts(True, own_v2=own.get("", "/"))
    hierarchies = []
    for mi in mounts:
        if mi[8] != "cgroup":
            continue
        subs = [o for o in mi[10].split(",") if o in own]
        if not subs:
            continue
        hierarchies.append(Hierarchy(mi[4], mi[3], ",".join(subs), own[subs[0]]))
    return CgroupFacts(False, hierarchies)


def _statfs_type(path: str) -> int:
    buf = ctypes.create_string_buffer(256)  # struct statfs; f_type is the first long
    if libc.statfs(os.fsencode(path), buf) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"statfs {path}: {os.strerror(err)}")
    return ctypes.c_long.from_buffer(buf).value


class _MountAttr(ctypes.Structure):
    _fields_ = (("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64))


def mount_setattr(path: str, attr_set: int, attr_clr: int, propagation: int = 0) -> None:
    """mount_setattr(2) with AT_RECURSIVE on the mount at `path` (kernel 5.12+)."""
    attr = _MountAttr(attr_set, attr_clr, propagation, 0)
    ret = libc.syscall(_NR_MOUNT_SETATTR, -100, os.fsencode(path), _AT_RECURSIVE,
                       ctypes.byref(attr), ctypes.sizeof(attr))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount_setattr {path}: {os.strerror(err)}")


# ---------------------------------------------------------------- the executor

class _Ctx:
    """Performs plan steps inside one rootfs, every destination opened through securejoin."""

    __slots__ = ("root", "root_fd", "sys")

    def __init__(self, root: str, sys: Syscalls) -> None:
        self.root = root
        self.sys = sys
        self.root_fd = securejoin.open_root(root)

    def close(self) -> None:
        os.close(self.root_fd)

    def open(self, dest: str, create: str = "") -> int:
        try:
            return securejoin.open_in_root(self.root_fd, self.root, dest, create=create)
        except securejoin.EscapeError as e:
            raise StartError(f"refusing to mount {dest}: {e.strerror}") from None

    def inside(self, fd: int) -> str:
        return securejoin.relative(self.root, securejoin.fd_path(fd)) or "?"

    def run(self, op: Op, where: str) -> None:
        try:
            getattr(self, "_" + op.kind)(op.dest, *op.args)
        except StartError as e:
            raise StartError(f"{where}: {e}") from None
        except OSError as e:
            msg = e.strerror or str(e)
            if e.errno and "/proc/self/fd/" in msg:  # the fd path means nothing to a user
                msg = os.strerror(e.errno)
            raise StartError(f"{where}: {msg}") from None

    def _mount(self, dest: str, source: str, fstype: str, flags: int, data: str | None,
               create: str) -> None:
        fd = self.open(dest, "file" if create == "file" else "dir")
        try:
            real = self.inside(fd)
            if create == "plain" and (real != dest or not stat.S_ISDIR(os.fstat(fd).st_mode)):
                raise StartError(f"filesystem {fstype!r} must be mounted on ordinary directory")
            procfs = fstype == "bind" and real == "/proc" and (
                _statfs_type(source) == PROC_SUPER_MAGIC)
            check_proc_mount(real, fstype, procfs)
            self.sys.mount(source, f"/proc/self/fd/{fd}", fstype, flags, data)
        finally:
            os.close(fd)

    def _tmpfs(self, dest: str, source: str, flags: int, data: str, copyup: bool) -> None:
        existed = True
        try:
            os.close(self.open(dest))
        except FileNotFoundError:
            existed = False
        fd = self.open(dest, "dir")
        try:
            check_proc_mount(self.inside(fd), "tmpfs")
            if existed:  # keep the directory's mode (runc)
                mode = stat.S_IMODE(os.stat(f"/proc/self/fd/{fd}").st_mode)
                data = f"mode={mode:04o}" + ("," + data if data else "")
            old = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                self.sys.mount(source, f"/proc/self/fd/{fd}", "tmpfs", flags, data or None)
                if copyup:
                    # `old` still names the covered directory: copy it onto the new tmpfs.
                    new = self.open(dest)
                    try:
                        _copy_tree(old, f"/proc/self/fd/{new}")
                    finally:
                        os.close(new)
            finally:
                os.close(old)
        finally:
            os.close(fd)

    def _remount(self, dest: str, flags: int, cleared: int) -> None:
        fd = self.open(dest)
        target = f"/proc/self/fd/{fd}"
        try:
            try:
                self.sys.mount(None, target, None, flags | MS_BIND | MS_REMOUNT)
            except OSError as e:
                if e.errno != errno.EPERM:
                    raise
                # Locked flags (a mount inherited into a user namespace): keep them, unless
                # the config asked to clear one or for another atime.
                have = statvfs_to_ms(os.statvfs(target).f_flag)
                if have & cleared & LOCKED_FLAGS or (
                        flags & ATIME_FLAGS and flags & ATIME_FLAGS != have & ATIME_FLAGS):
                    raise
                self.sys.mount(None, target, None,
                               flags | MS_BIND | MS_REMOUNT | (have & LOCKED_FLAGS))
        finally:
            os.close(fd)

    def _propagate(self, dest: str, flag: int) -> None:
        fd = self.open(dest)
        try:
            self.sys.mount(None, f"/proc/self/fd/{fd}", None, flag)
        finally:
            os.close(fd)

    def _setattr(self, dest: str, attr_set: int, attr_clr: int) -> None:
        fd = self.open(dest)
        try:
            # Syscalls has no mount_setattr yet: use the double's if it has one.
            getattr(self.sys, "mount_setattr", mount_setattr)(
                f"/proc/self/fd/{fd}", attr_set, attr_clr)
        finally:
            os.close(fd)

    def _cgroup2(self, dest: str, source: str, flags: int, data: str | None,
                 fallback: str) -> None:
        try:
            self._mount(dest, source, "cgroup2", flags, data, "dir")
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.EBUSY):
                raise
            # In a user namespace without a cgroup namespace cgroup2 cannot be mounted.
            self._mount(dest, fallback, "bind", MS_BIND, None, "dir")
            if flags:
                self._remount(dest, flags | MS_BIND, 0)

    def _symlink(self, dest: str, target: str) -> None:
        parent = self.open(os.path.dirname(dest), "dir")
        try:
            self.sys.symlink(target, f"/proc/self/fd/{parent}/{os.path.basename(dest)}")
        except FileExistsError:
            pass
        finally:
            os.close(parent)

    def _ptmx(self, dest: str) -> None:
        parent = self.open(os.path.dirname(dest), "dir")
        name = os.path.basename(dest)
        try:
            try:
                os.unlink(name, dir_fd=parent)
            except FileNotFoundError:
                pass
            except IsADirectoryError:
                os.rmdir(name, dir_fd=parent)
            self.sys.symlink("pts/ptmx", f"/proc/self/fd/{parent}/{name}")
        finally:
            os.close(parent)

    def _mknod(self, dest: str, mode: int, rdev: int, uid: int, gid: int) -> None:
        name = os.path.basename(dest)
        parent = self.open(os.path.dirname(dest), "dir")
        try:
            old = os.umask(0)
            try:
                self.sys.mknod(f"/proc/self/fd/{parent}/{name}", mode, rdev)
            except FileExistsError:
                return
            except PermissionError:
                self._bind_dev(dest, dest)
                return
            finally:
                os.umask(old)
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
            try:
                st = os.fstat(fd)
                os.chmod(f"/proc/self/fd/{fd}", mode & 0o7777)
                if (st.st_uid, st.st_gid) != (uid, gid):
                    os.chown(f"/proc/self/fd/{fd}", uid, gid)
            finally:
                os.close(fd)
        finally:
            os.close(parent)

    def _bind_dev(self, dest: str, host: str) -> None:
        self._mount(dest, host, "bind", MS_BIND, None, "file")


def _copy_tree(src_fd: int, dst: str) -> None:
    """Copy a directory's entries (no following of symlinks) for tmpcopyup."""
    dst_fd = os.open(dst, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for name in os.listdir(src_fd):
            st = os.stat(name, dir_fd=src_fd, follow_symlinks=False)
            m = st.st_mode
            if stat.S_ISDIR(m):
                os.mkdir(name, 0o700, dir_fd=dst_fd)
                sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW |
                              os.O_CLOEXEC, dir_fd=src_fd)
                try:
                    _copy_tree(sub, f"/proc/self/fd/{dst_fd}/{name}")
                finally:
                    os.close(sub)
            elif stat.S_ISLNK(m):
                os.symlink(os.readlink(name, dir_fd=src_fd), name, dir_fd=dst_fd)
            elif stat.S_ISREG(m):
                _copy_file(src_fd, dst_fd, name)
            else:
                os.mknod(name, m, st.st_rdev, dir_fd=dst_fd)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_fd, follow_symlinks=False)
            if not stat.S_ISLNK(m):
                os.chmod(name, stat.S_IMODE(m), dir_fd=dst_fd)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_fd,
                     follow_symlinks=False)
    finally:
        os.close(dst_fd)


def _copy_file(src_dir: int, dst_dir: int, name: str) -> None:
    i = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src_dir)
    try:
        o = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                    0o600, dir_fd=dst_dir)
        try:
            while os.sendfile(o, i, None, 1 << 20):
                pass
        finally:
            os.close(o)
    finally:
        os.close(i)
