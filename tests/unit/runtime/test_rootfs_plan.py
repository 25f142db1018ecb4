"""rootfs: plans as data, and the steps performed against a recording double (no root)."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from dockyard.runtime.errors import ConfigError, StartError
from dockyard.runtime.linux import rootfs as rf
from dockyard.runtime.linux import syscalls as sc
from dockyard.runtime.linux.mountopts import MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY
from dockyard.runtime.linux.rootfs import Op
from dockyard.runtime.specgen import default_spec

from .recording import RecordingSyscalls

NSD = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC

V1 = rf.CgroupFacts(False, [
    rf.Hierarchy("/sys/fs/cgroup/cpu,cpuacct", "/", "cpu,cpuacct", "/ctr"),
    rf.Hierarchy("/sys/fs/cgroup/memory", "/", "memory", "/ctr"),
    rf.Hierarchy("/sys/fs/cgroup/systemd", "/", "name=systemd", "/ctr"),
])


# ---------------------------------------------------------------- validate

@pytest.fixture
def bundle(tmp_path):
    (tmp_path / "rootfs").mkdir()
    return tmp_path


def _check(bundle, **changes):
    spec = default_spec(["true"])
    for k, v in changes.items():
        if k == "mounts_extra":
            spec["mounts"].append(v)
        elif k.startswith("linux_"):
            spec["linux"][k[6:]] = v
        else:
            spec[k] = v
    rf.validate(spec, str(bundle))


def test_default_spec_is_valid(bundle):
    _check(bundle)


@pytest.mark.parametrize("change,message", [
    ({"root": {"path": "nothere"}}, "invalid rootfs"),
    ({"root": {}}, "root must be specified"),
    ({"mounts_extra": {"destination": "relative/dir", "type": "tmpfs"}}, "is not absolute"),
    ({"mounts_extra": {"destination": "/x", "type": "tmpfs", "options": "ro"}}, "options"),
    ({"mounts_extra": {"destination": "/x", "source": "/a", "options": ["bind", "idmap"]}},
     "not supported"),
    ({"mounts_extra": {"destination": "/x", "source": "/a", "options": ["rbind"],
                       "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]}},
     "not supported"),
    ({"mounts_extra": {"destination": "/x", "options": ["bind"]}}, "needs a source"),
    ({"mounts_extra": {"destination": "/x", "source": "x"}}, "type is required"),
    ({"mounts_extra": {"destination": "/x", "type": "tmp\0fs"}}, "null byte"),
    ({"linux_rootfsPropagation": "sideways"}, "rootfsPropagation=sideways"),
    ({"linux_maskedPaths": ["proc/kcore"]}, "not an absolute path"),
    ({"linux_readonlyPaths": ["sys"]}, "not an absolute path"),
    ({"linux_devices": [{"path": "/dev/x", "type": "q", "major": 1, "minor": 1}]},
     "invalid device type"),
    ({"linux_devices": [{"path": "/dev/x", "type": "c", "minor": 1}]}, "major is required"),
    ({"linux_devices": [{"path": "dev/x", "type": "c", "major": 1, "minor": 1}]},
     "absolute path"),
    ({"linux_devices": [{"path": "/dev/x", "type": "b", "major": -1, "minor": 1}]},
     "non-negative"),
])
def test_invalid_configs_name_the_problem(bundle, change, message):
    with pytest.raises(ConfigError, match=message):
        _check(bundle, **change)


def test_fifo_device_needs_no_numbers(bundle):
    _check(bundle, linux_devices=[{"path": "/dev/fifo", "type": "p"}])


def test_rootfs_path_is_absolute_and_resolved(tmp_path):
    (tmp_path / "real").mkdir()
    os.symlink("real", tmp_path / "rootfs")
    assert rf.rootfs_path({"root": {"path": "rootfs"}}, str(tmp_path)) == str(tmp_path / "real")
    assert rf.rootfs_path({"root": {"path": str(tmp_path / "real")}}, "/x") == str(
        tmp_path / "real")


# ---------------------------------------------------------------- plan_mount

def test_proc_is_planned_on_a_plain_directory():
    assert rf.plan_mount({"destination": "/proc", "type": "proc", "source": "proc"}) == [
        Op("mount", "/proc", "proc", "proc", 0, None, "plain")]


def test_default_dev_tmpfs_is_mounted_writable_first():
    m = {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k", "ro"]}
    assert rf.plan_mount(m) == [
        Op("tmpfs", "/dev", "tmpfs", sc.MS_NOSUID | sc.MS_STRICTATIME,
           "mode=755,size=65536k", False)]


def test_sysfs_ro_keeps_its_flags():
    m = {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]}
    assert rf.plan_mount(m) == [Op("mount", "/sys", "sysfs", "sysfs", NSD | sc.MS_RDONLY,
                                   None, "plain")]


def test_bind_ro_is_a_bind_then_a_remount():
    m = {"destination": "/data", "type": "none", "source": "/host/data",
         "options": ["rbind", "ro", "nosuid", "rprivate"]}
    assert rf.plan_mount(m, "/bundle") == [
        Op("mount", "/data", "/host/data", "bind", sc.MS_BIND | sc.MS_REC, None, "dir"),
        Op("propagate", "/data", sc.MS_PRIVATE | sc.MS_REC),
        Op("remount", "/data", sc.MS_BIND | sc.MS_REC | sc.MS_RDONLY | sc.MS_NOSUID, 0)]


def test_plain_bind_needs_no_remount_and_a_relative_source_is_in_the_bundle():
    m = {"destination": "/etc/hosts", "source": "hosts", "options": ["bind"]}
    assert rf.plan_mount(m, "/bundle", source_is_dir=False) == [
        Op("mount", "/etc/hosts", "/bundle/hosts", "bind", sc.MS_BIND, None, "file")]


def test_type_bind_without_a_bind_option_still_binds():
    m = {"destination": "/d", "type": "bind", "source": "/s", "options": ["ro"]}
    assert rf.plan_mount(m)[0] == Op("mount", "/d", "/s", "bind", sc.MS_BIND, None, "dir")


def test_bind_with_only_a_cleared_flag_is_remounted():
    m = {"destination": "/d", "source": "/s", "options": ["bind", "rw"]}
    assert rf.plan_mount(m)[-1] == Op("remount", "/d", sc.MS_BIND, sc.MS_RDONLY)


def test_recursive_attributes_become_mount_setattr():
    m = {"destination": "/d", "source": "/s", "options": ["rbind", "rro", "rnosuid"]}
    assert rf.plan_mount(m)[-1] == Op("setattr", "/d", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0)


def test_tmpfs_with_copyup_and_propagation():
    m = {"destination": "/run", "type": "tmpfs", "source": "tmpfs",
         "options": ["tmpcopyup", "size=1m", "mode=700", "shared"]}
    assert rf.plan_mount(m) == [Op("tmpfs", "/run", "tmpfs", 0, "size=1m,mode=700", True),
                                Op("propagate", "/run", sc.MS_SHARED)]


def test_overlay_and_other_types_pass_data_through():
    m = {"destination": "/merged", "type": "overlay", "source": "overlay",
         "options": ["lowerdir=/l", "upperdir=/u", "workdir=/w", "nosuid"]}
    assert rf.plan_mount(m) == [Op("mount", "/merged", "overlay", "overlay", sc.MS_NOSUID,
                                   "lowerdir=/l,upperdir=/u,workdir=/w", "dir")]


def test_destination_is_normalised():
    m = {"destination": "/a/./b//c/", "type": "tmpfs"}
    assert rf.plan_mount(m)[0].dest == "/a/b/c"


def test_cgroup_v1_without_cgroupns_binds_our_own_cgroup_of_each_hierarchy():
    m = {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
    flags = NSD | sc.MS_RELATIME | sc.MS_RDONLY
    ops = rf.plan_mount(m, cgroup=V1)
    assert ops[0] == Op("tmpfs", "/sys/fs/cgroup", "tmpfs", NSD, "mode=755", False)
    assert Op("mount", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/memory/ctr", "bind",
              sc.MS_BIND | sc.MS_REC, None, "dir") in ops
    assert Op("remount", "/sys/fs/cgroup/memory", flags | sc.MS_BIND | sc.MS_REC, 0) in ops
    assert Op("symlink", "/sys/fs/cgroup/cpu", "cpu,cpuacct") in ops
    assert Op("symlink", "/sys/fs/cgroup/cpuacct", "cpu,cpuacct") in ops
    assert ops[-1] == Op("remount", "/sys/fs/cgroup", NSD | sc.MS_RDONLY | sc.MS_BIND, 0)


def test_cgroup_v1_with_cgroupns_mounts_each_hierarchy():
    m = {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["ro"]}
    ops = rf.plan_mount(m, cgroup=V1, cgroup_ns=True)
    assert Op("mount", "/sys/fs/cgroup/cpu,cpuacct", "cgroup", "cgroup",
              NSD | sc.MS_RDONLY, "cpu,cpuacct", "dir") in ops
    assert Op("mount", "/sys/fs/cgroup/systemd", "systemd", "cgroup",
              NSD | sc.MS_RDONLY, "name=systemd", "dir") in ops


def test_cgroup_v2_mounts_cgroup2_with_a_bind_fallback():
    m = {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "ro"]}
    facts = rf.CgroupFacts(True, own_v2="/user.slice/ctr")
    assert rf.plan_mount(m, cgroup=facts, cgroup_ns=True) == [
        Op("cgroup2", "/sys/fs/cgroup", "cgroup", sc.MS_NOSUID | sc.MS_RDONLY, None,
           "/sys/fs/cgroup/user.slice/ctr")]
    assert rf.plan_mount(m, cgroup=facts)[0].args[-1] == "/sys/fs/cgroup"


def test_cgroup_facts_from_mountinfo_and_proc_cgroup():
    mi = [
        ("31", "23", "0:28", "/", "/sys/fs/cgroup", "rw", "", "-", "tmpfs", "tmpfs", "rw"),
        ("32", "31", "0:29", "/", "/sys/fs/cgroup/cpu,cpuacct", "rw", "", "-", "cgroup",
         "cgroup", "rw,cpu,cpuacct"),
        ("40", "31", "0:37", "/", "/sys/fs/cgroup/systemd", "rw", "", "-", "cgroup",
         "cgroup", "rw,xattr,name=systemd"),
        ("41", "31", "0:38", "/", "/sys/fs/cgroup/unified", "rw", "", "-", "cgroup2",
         "cgroup2", "rw"),
    ]
    pc = "9:name=systemd:/a\n2:cpu,cpuacct:/b\n0::/c\n"
    facts = rf.cgroup_facts(mi, pc)
    assert not facts.v2
    assert [(h.mountpoint, h.subsystems, h.own) for h in facts.hierarchies] == [
        ("/sys/fs/cgroup/cpu,cpuacct", "cpu,cpuacct", "/b"),
        ("/sys/fs/cgroup/systemd", "name=systemd", "/a")]
    v2 = [("1", "0", "0:1", "/", "/sys/fs/cgroup", "rw", "", "-", "cgroup2", "cgroup2", "rw")]
    facts = rf.cgroup_facts(v2, "0::/c\n")
    assert facts.v2 and facts.own_v2 == "/c"


def test_mountinfo_unescapes_paths(tmp_path):
    p = tmp_path / "mi"
    p.write_text("50 1 0:5 / /mnt/with\\040space rw,relatime shared:3 - tmpfs tmpfs rw\n")
    (entry,) = rf.mountinfo(str(p))
    assert entry[4] == "/mnt/with space" and entry[6] == "shared:3" and entry[8] == "tmpfs"


# ---------------------------------------------------------------- /proc safety (pure)

@pytest.mark.parametrize("dest,fstype,procfs,ok", [
    ("/proc", "proc", False, True),
    ("/proc", "tmpfs", False, False),
    ("/proc", "bind", False, False),
    ("/proc", "bind", True, True),
    ("/proc/cpuinfo", "bind", False, True),
    ("/proc/sys/kernel/ns_last_pid", "bind", False, True),
    ("/proc/sys", "bind", False, False),
    ("/proc/self/fd", "tmpfs", False, False),
    ("/procfoo", "tmpfs", False, True),
    ("/sys", "sysfs", False, True),
])
def test_check_proc_mount(dest, fstype, procfs, ok):
    if ok:
        rf.check_proc_mount(dest, fstype, procfs)
    else:
        with pytest.raises(StartError, match="cannot be mounted"):
            rf.check_proc_mount(dest, fstype, procfs)


# ---------------------------------------------------------------- devices (pure)

def test_default_devices_are_mknod_with_runc_modes():
    ops = rf.plan_devices({}, kcore=False)
    mk = {o.dest: o.args for o in ops if o.kind == "mknod"}
    assert set(mk) == {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
                       "/dev/tty"}
    assert mk["/dev/null"] == (stat.S_IFCHR | 0o666, os.makedev(1, 3), 0, 0)
    assert mk["/dev/tty"] == (stat.S_IFCHR | 0o666, os.makedev(5, 0), 0, 0)
    assert Op("ptmx", "/dev/ptmx") in ops
    links = {o.dest: o.args[0] for o in ops if o.kind == "symlink"}
    assert links == {"/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0",
                     "/dev/stdout": "/proc/self/fd/1", "/dev/stderr": "/proc/self/fd/2"}
    assert Op("symlink", "/dev/core", "/proc/kcore") in rf.plan_devices({}, kcore=True)


def test_spec_devices_override_defaults_and_get_their_mode_and_owner():
    spec = {"linux": {"devices": [
        {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600},
        {"path": "/dev/sda", "type": "b", "major": 8, "minor": 0, "fileMode": 0o660,
         "uid": 5, "gid": 6},
        {"path": "/dev/fifo", "type": "p"},
        {"path": "/dev/ptmx", "type": "c", "major": 5, "minor": 2},
    ]}}
    mk = {o.dest: o.args for o in rf.plan_devices(spec) if o.kind == "mknod"}
    assert mk["/dev/null"] == (stat.S_IFCHR | 0o600, os.makedev(1, 3), 0, 0)
    assert mk["/dev/sda"] == (stat.S_IFBLK | 0o660, os.makedev(8, 0), 5, 6)
    assert mk["/dev/fifo"] == (stat.S_IFIFO | 0o666, 0, 0, 0)
    assert "/dev/ptmx" not in mk


def test_in_a_user_namespace_devices_are_bind_mounted_from_the_host():
    ops = rf.plan_devices({}, in_userns=True)
    assert Op("bind_dev", "/dev/null", "/dev/null") in ops
    assert not [o for o in ops if o.kind == "mknod"]


def test_a_bind_mounted_dev_is_left_alone():
    from dockyard.runtime.linux import devices
    assert devices.needs_setup([{"destination": "/dev", "type": "tmpfs"}])
    assert not devices.needs_setup([{"destination": "/dev", "source": "/dev",
                                     "options": ["rbind"]}])
    assert not devices.needs_setup([{"destination": "/dev/", "type": "devtmpfs"}])
    assert devices.needs_setup([])


def test_statvfs_flags_to_mount_flags():
    assert rf.statvfs_to_ms(1 | 2 | 4 | 8 | 4096) == (
        sc.MS_RDONLY | NSD | sc.MS_RELATIME)
    assert rf.statvfs_to_ms(0) == sc.MS_STRICTATIME


# ---------------------------------------------------------------- performed, recorded

@pytest.fixture
def rec_bundle(tmp_path):
    root = tmp_path / "rootfs"
    for d in ("proc", "sys", "dev", "etc", "tmp"):
        (root / d).mkdir(parents=True)
    (tmp_path / "hostfile").write_text("x")
    (tmp_path / "hostdir").mkdir()
    return tmp_path


def _prepare(bundle, spec, **kw):
    rec = RecordingSyscalls()
    real_chown = os.chown
    calls = []

    def chown(path, uid, gid, **k):  # unprivileged tests cannot chown to root
        calls.append((os.readlink(path) if path.startswith("/proc/self/fd/") else path,
                      uid, gid))
        if os.geteuid() == 0:
            real_chown(path, uid, gid, **k)

    mp = pytest.MonkeyPatch()
    mp.setattr(rf.os, "chown", chown)
    try:
        root = rf.prepare(spec, str(bundle), rec, **kw)
    finally:
        mp.undo()
    return root, rec


def _spec(mounts, **linux):
    spec = default_spec(["true"])
    spec["mounts"] = mounts
    spec["linux"].update(linux)
    return spec


def test_prepare_order_root_slave_self_bind_then_mounts(rec_bundle):
    spec = _spec([{"destination": "/proc", "type": "proc", "source": "proc"},
                  {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "mode=755"]}])
    root, rec = _prepare(rec_bundle, spec)
    assert root == str(rec_bundle / "rootfs")
    m = rec.mounts()
    assert m[0] == ("mount", None, "/", None, sc.MS_SLAVE | sc.MS_REC, None)
    assert m[1] == ("mount", root, root, "bind", sc.MS_BIND | sc.MS_REC, None)
    assert m[2] == ("mount", "proc", f"{root}/proc", "proc", 0, None)
    # /dev existed: its mode is kept, then the spec's data
    mode = stat.S_IMODE(os.stat(f"{root}/dev").st_mode)
    assert m[3] == ("mount", "tmpfs", f"{root}/dev", "tmpfs", sc.MS_NOSUID,
                    f"mode={mode:04o},mode=755")
    nodes = {c[1]: c[2:] for c in rec.calls if c[0] == "mknod"}
    assert nodes[f"{root}/dev/null"] == (stat.S_IFCHR | 0o666, os.makedev(1, 3))
    assert os.readlink(f"{root}/dev/ptmx") == "pts/ptmx"
    assert os.readlink(f"{root}/dev/fd") == "/proc/self/fd"
    assert stat.S_IMODE(os.stat(f"{root}/dev/null").st_mode) == 0o666


def test_rootfs_propagation_replaces_rslave(rec_bundle):
    _, rec = _prepare(rec_bundle, _spec([], rootfsPropagation="private"))
    assert rec.mounts()[0] == ("mount", None, "/", None, sc.MS_PRIVATE, None)


def test_bind_of_a_file_creates_an_empty_file_and_remounts(rec_bundle):
    spec = _spec([{"destination": "/etc/new/hostname", "source": "hostfile",
                   "options": ["bind", "ro"]}])
    root, rec = _prepare(rec_bundle, spec)
    assert os.path.isfile(f"{root}/etc/new/hostname")
    assert ("mount", str(rec_bundle / "hostfile"), f"{root}/etc/new/hostname", "bind",
            sc.MS_BIND, None) in rec.mounts()
    assert ("mount", None, f"{root}/etc/new/hostname", None,
            sc.MS_BIND | sc.MS_RDONLY | sc.MS_REMOUNT, None) in rec.mounts()


def test_symlinked_destination_lands_inside_the_rootfs(rec_bundle, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = rec_bundle / "rootfs"
    os.symlink(str(outside), root / "escape")
    os.symlink("../../../../../../../..", root / "etc" / "up")
    spec = _spec([{"destination": "/escape", "type": "tmpfs", "source": "tmpfs"},
                  {"destination": "/etc/up/etc/x", "type": "tmpfs", "source": "tmpfs"}])
    _, rec = _prepare(rec_bundle, spec)
    targets = [c[2] for c in rec.mounts()[2:4]]
    assert targets == [f"{root}{outside}", f"{root}/etc/x"]
    assert list(outside.iterdir()) == []


def test_symlink_over_proc_is_refused(rec_bundle):
    root = rec_bundle / "rootfs"
    os.rmdir(root / "proc")
    os.symlink("/tmp", root / "proc")
    spec = _spec([{"destination": "/proc", "type": "proc", "source": "proc"}])
    with pytest.raises(StartError, match="ordinary directory"):
        _prepare(rec_bundle, spec)


def test_a_destination_reaching_proc_through_a_symlink_is_refused(rec_bundle):
    root = rec_bundle / "rootfs"
    os.symlink("/proc/sys", root / "innocent")
    spec = _spec([{"destination": "/innocent", "type": "tmpfs", "source": "tmpfs"}])
    with pytest.raises(StartError, match="inside /proc"):
        _prepare(rec_bundle, spec)


def test_bind_over_proc_with_a_non_proc_source_is_refused(rec_bundle):
    spec = _spec([{"destination": "/proc", "source": "hostdir", "options": ["rbind"]}])
    with pytest.raises(StartError, match="not of type proc"):
        _prepare(rec_bundle, spec)


def test_recursive_attributes_are_applied_after_the_bind(rec_bundle):
    spec = _spec([{"destination": "/data", "source": "hostdir", "options": ["rbind", "rro"]}])
    root, rec = _prepare(rec_bundle, spec)
    assert ("mount_setattr", f"{root}/data", MOUNT_ATTR_RDONLY, 0) in rec.calls


def test_cgroup_v1_mount_is_performed_with_symlinks(rec_bundle, monkeypatch):
    monkeypatch.setattr(rf, "cgroup_facts", lambda: V1)
    spec = _spec([{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                   "options": ["ro", "nosuid"]}])
    root, rec = _prepare(rec_bundle, spec)
    assert os.readlink(f"{root}/sys/fs/cgroup/cpu") == "cpu,cpuacct"
    assert ("mount", "/sys/fs/cgroup/memory/ctr", f"{root}/sys/fs/cgroup/memory", "bind",
            sc.MS_BIND | sc.MS_REC, None) in rec.mounts()


def test_userns_devices_are_bound_from_the_host(rec_bundle):
    spec = _spec([{"destination": "/dev", "type": "tmpfs", "source": "tmpfs"}])
    root, rec = _prepare(rec_bundle, spec, in_userns=True)
    assert ("mount", "/dev/null", f"{root}/dev/null", "bind", sc.MS_BIND, None) in rec.mounts()
    assert os.path.isfile(f"{root}/dev/null")
    assert not [c for c in rec.calls if c[0] == "mknod"]


def test_mknod_eperm_falls_back_to_a_bind(rec_bundle):
    root = rec_bundle / "rootfs"
    rec = RecordingSyscalls(fail={("mknod", f"{root}/dev/zero"): errno.EPERM})
    spec = _spec([])
    mp = pytest.MonkeyPatch()
    mp.setattr(rf.os, "chown", lambda *a, **k: None)
    try:
        os.rmdir(root / "dev")
        rf.prepare(spec, str(rec_bundle), rec)
    finally:
        mp.undo()
    assert ("mount", "/dev/zero", f"{root}/dev/zero", "bind", sc.MS_BIND, None) in rec.mounts()


def test_mount_failure_names_the_mount(rec_bundle):
    root = rec_bundle / "rootfs"
    rec = RecordingSyscalls(fail={("mount", f"{root}/x"): errno.ENODEV})
    spec = _spec([{"destination": "/x", "type": "nosuchfs", "source": "x"}])
    with pytest.raises(StartError, match='error mounting "x" to rootfs at "/x": No such device'):
        rf.prepare(spec, str(rec_bundle), rec)


def test_tmpcopyup_copies_the_covered_directory(rec_bundle):
    root = rec_bundle / "rootfs"
    (root / "etc" / "sub").mkdir()
    (root / "etc" / "sub" / "f").write_text("hello")
    os.symlink("sub/f", root / "etc" / "ln")
    spec = _spec([{"destination": "/etc", "type": "tmpfs", "source": "tmpfs",
                   "options": ["tmpcopyup"]}])
    # The double mounts nothing: the copy lands on the same directory and must not clobber.
    with pytest.raises(StartError, match="exists"):
        _prepare(rec_bundle, spec)


def test_enter_pivots_the_runc_way(tmp_path):
    rec = RecordingSyscalls()
    cwd = os.getcwd()
    try:
        rf.enter({}, str(tmp_path), rec)
        assert os.getcwd() == "/"
    finally:
        os.chdir(cwd)
    assert rec.calls == [("pivot_root", ".", "."),
                         ("mount", None, ".", None, sc.MS_SLAVE | sc.MS_REC, None),
                         ("umount", ".", sc.MNT_DETACH)]


def test_finalize_masks_readonly_paths_and_root(monkeypatch):
    rec = RecordingSyscalls(fail={("mount", "/proc/acpi"): errno.ENOTDIR,
                                  ("mount", "/proc/nothere"): errno.ENOENT,
                                  ("mount", "/proc/gone"): errno.ENOENT})

    class V:
        f_flag = 2 | 4  # nosuid, nodev
    monkeypatch.setattr(rf.os, "statvfs", lambda p: V)
    spec = {"root": {"path": "rootfs", "readonly": True},
            "mounts": [{"destination": "/dev", "type": "tmpfs", "options": ["nosuid", "ro"]},
                       {"destination": "/run", "type": "tmpfs", "options": ["ro"]},
                       {"destination": "/b", "source": "/x", "options": ["bind", "ro"]}],
            "linux": {"maskedPaths": ["/proc/kcore", "/proc/acpi", "/proc/nothere"],
                      "readonlyPaths": ["/proc/sys", "/proc/gone"],
                      "rootfsPropagation": "rshared"}}
    rf.finalize(spec, rec)
    ro = sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY
    assert rec.mounts() == [
        ("mount", "/dev/null", "/proc/kcore", None, sc.MS_BIND, None),
        ("mount", "/dev/null", "/proc/acpi", None, sc.MS_BIND, None),
        ("mount", "tmpfs", "/proc/acpi", "tmpfs", sc.MS_RDONLY, None),
        ("mount", "/dev/null", "/proc/nothere", None, sc.MS_BIND, None),
        ("mount", "/proc/sys", "/proc/sys", None, sc.MS_BIND | sc.MS_REC, None),
        ("mount", "/proc/sys", "/proc/sys", None, ro | NSD | sc.MS_STRICTATIME, None),
        ("mount", "/proc/gone", "/proc/gone", None, sc.MS_BIND | sc.MS_REC, None),
        ("mount", None, "/dev", None, ro | sc.MS_NOSUID, None),
        ("mount", None, "/run", None, ro, None),
        ("mount", None, "/", None, ro | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_STRICTATIME, None),
        ("mount", None, "/", None, sc.MS_SHARED | sc.MS_REC, None),
    ]
