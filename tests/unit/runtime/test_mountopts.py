"""mountopts: OCI mount options -> flags, propagation, recursive attributes and data."""

from __future__ import annotations

import pytest

from dockyard.runtime.linux import mountopts as mo
from dockyard.runtime.linux import syscalls as sc

RUNC_FEATURES = """
acl async atime bind defaults dev diratime dirsync exec iversion lazytime loud mand noacl
noatime nodev nodiratime noexec noiversion nolazytime nomand norelatime nostrictatime
nosuid nosymfollow private ratime rbind rdev rdiratime relatime remount rexec rnoatime
rnodev rnodiratime rnoexec rnorelatime rnostrictatime rnosuid rnosymfollow ro rprivate
rrelatime rro rrw rshared rslave rstrictatime rsuid rsymfollow runbindable rw shared
silent slave strictatime suid symfollow sync tmpcopyup unbindable
"""


def test_known_options_are_exactly_runc_features_list():
    assert sorted(RUNC_FEATURES.split()) == mo.KNOWN_OPTIONS


def test_set_flags_and_data_in_order():
    flags, clear, prop, data, extra = mo.parse(
        ["nosuid", "noexec", "nodev", "mode=755", "size=65536k", "ro"])
    assert flags == sc.MS_NOSUID | sc.MS_NOEXEC | sc.MS_NODEV | sc.MS_RDONLY
    assert clear == 0 and prop == []
    assert data == "mode=755,size=65536k"
    assert extra == mo.Extra()


def test_later_option_wins_and_clears_are_remembered():
    flags, clear, *_ = mo.parse(["ro", "rw", "nosuid", "suid", "nodev"])
    assert flags == sc.MS_NODEV
    assert clear == sc.MS_RDONLY | sc.MS_NOSUID
    flags, clear, *_ = mo.parse(["rw", "ro"])
    assert flags == sc.MS_RDONLY and clear == 0


def test_bind_rbind_and_remount():
    assert mo.parse(["bind"])[0] == sc.MS_BIND
    assert mo.parse(["rbind"])[0] == sc.MS_BIND | sc.MS_REC
    assert mo.parse(["remount"])[0] == sc.MS_REMOUNT
    assert mo.is_bind(["ro", "rbind"]) and not mo.is_bind(["ro"]) and not mo.is_bind(None)


@pytest.mark.parametrize("name,flag", [
    ("private", sc.MS_PRIVATE), ("rprivate", sc.MS_PRIVATE | sc.MS_REC),
    ("shared", sc.MS_SHARED), ("rshared", sc.MS_SHARED | sc.MS_REC),
    ("slave", sc.MS_SLAVE), ("rslave", sc.MS_SLAVE | sc.MS_REC),
    ("unbindable", sc.MS_UNBINDABLE), ("runbindable", sc.MS_UNBINDABLE | sc.MS_REC),
])
def test_propagation_options(name, flag):
    assert mo.parse([name])[2] == [flag]
    assert mo.propagation(name) == flag


def test_propagation_keeps_every_option_in_order():
    assert mo.parse(["rprivate", "shared"])[2] == [sc.MS_PRIVATE | sc.MS_REC, sc.MS_SHARED]


@pytest.mark.parametrize("name,flag,clears", [
    ("async", sc.MS_SYNCHRONOUS, True), ("sync", sc.MS_SYNCHRONOUS, False),
    ("atime", sc.MS_NOATIME, True), ("noatime", sc.MS_NOATIME, False),
    ("dev", sc.MS_NODEV, True), ("diratime", sc.MS_NODIRATIME, True),
    ("nodiratime", sc.MS_NODIRATIME, False), ("dirsync", sc.MS_DIRSYNC, False),
    ("exec", sc.MS_NOEXEC, True), ("iversion", sc.MS_I_VERSION, False),
    ("noiversion", sc.MS_I_VERSION, True), ("lazytime", sc.MS_LAZYTIME, False),
    ("nolazytime", sc.MS_LAZYTIME, True), ("loud", sc.MS_SILENT, True),
    ("silent", sc.MS_SILENT, False), ("mand", sc.MS_MANDLOCK, False),
    ("nomand", sc.MS_MANDLOCK, True), ("relatime", sc.MS_RELATIME, False),
    ("norelatime", sc.MS_RELATIME, True), ("strictatime", sc.MS_STRICTATIME, False),
    ("nostrictatime", sc.MS_STRICTATIME, True), ("nosymfollow", sc.MS_NOSYMFOLLOW, False),
    ("symfollow", sc.MS_NOSYMFOLLOW, True),
])
def test_each_flag_option(name, flag, clears):
    flags, clear, *_ = mo.parse([name])
    assert (flags, clear) == ((0, flag) if clears else (flag, 0))


def test_defaults_does_nothing_and_acl_is_data():
    assert mo.parse(["defaults"]) == (0, 0, [], "", mo.Extra())
    assert mo.parse(["acl", "noacl"])[3] == "acl,noacl"


def test_overlay_data_passes_through():
    opts = ["lowerdir=/a:/b", "upperdir=/u", "workdir=/w", "index=off"]
    assert mo.parse(opts)[3] == ",".join(opts)


def test_recursive_attributes():
    *_, extra = mo.parse(["rro", "rnosuid", "rnodev", "rnoexec"])
    assert extra.rec_set == (mo.MOUNT_ATTR_RDONLY | mo.MOUNT_ATTR_NOSUID |
                             mo.MOUNT_ATTR_NODEV | mo.MOUNT_ATTR_NOEXEC)
    assert extra.rec_clear == 0
    *_, extra = mo.parse(["rro", "rrw", "rsuid"])
    assert extra.rec_set == 0
    assert extra.rec_clear == mo.MOUNT_ATTR_RDONLY | mo.MOUNT_ATTR_NOSUID


def test_recursive_atime_also_clears_the_atime_field():
    *_, extra = mo.parse(["rnoatime"])
    assert extra.rec_set == mo.MOUNT_ATTR_NOATIME
    assert extra.rec_clear == mo.MOUNT_ATTR__ATIME
    *_, extra = mo.parse(["rrelatime"])
    assert (extra.rec_set, extra.rec_clear) == (0, mo.MOUNT_ATTR__ATIME)


def test_tmpcopyup_and_idmap_are_extras_not_data():
    *_, data, extra = mo.parse(["tmpcopyup", "ridmap"])
    assert data == "" and extra.tmpcopyup and extra.idmap == "ridmap"


def test_unknown_propagation_name_raises_keyerror():
    with pytest.raises(KeyError):
        mo.propagation("sideways")
