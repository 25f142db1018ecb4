"""The default seccomp profile and its resolution, against what Debian's dockerd 20.10 put
into config.json on amd64 for each capability that brings syscalls (read from the reference
with `--cap-add X` one at a time), and the conditions for other architectures."""

from __future__ import annotations

import pytest

from dockyard.engine.containers import capabilities, seccomp_default
from dockyard.engine.containers.seccomp_default import default_profile, resolve

BASE_CAPS = list(capabilities.DEFAULT_CAPS)

# What each capability added to the default profile's rules on amd64 in the reference.
ADDED_BY = {
    "CAP_DAC_READ_SEARCH": [["open_by_handle_at"]],
    "CAP_SYS_BOOT": [["reboot"]],
    "CAP_SYS_MODULE": [["delete_module", "init_module", "finit_module"]],
    "CAP_SYS_PACCT": [["acct"]],
    "CAP_SYS_PTRACE": [["kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv",
                        "process_vm_writev", "ptrace"]],
    "CAP_SYS_RAWIO": [["iopl", "ioperm"]],
    "CAP_SYS_TIME": [["settimeofday", "stime", "clock_settime"]],
    "CAP_SYS_TTY_CONFIG": [["vhangup"]],
    "CAP_SYS_NICE": [["get_mempolicy", "mbind", "set_mempolicy"]],
    "CAP_SYSLOG": [["syslog"]],
    "CAP_SYS_ADMIN": [["bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount",
                       "fsopen", "fspick", "lookup_dcookie", "mount", "mount_setattr",
                       "move_mount", "name_to_handle_at", "open_tree", "perf_event_open",
                       "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns",
                       "syslog", "umount", "umount2", "unshare"]],
}


def rules(caps, arch="amd64", kernel=(6, 1, 0)):
    return resolve(default_profile(), caps, arch=arch, kernel=kernel)


def names(profile):
    return [r["names"] for r in profile["syscalls"]]


def test_default_for_dockers_default_capabilities_on_amd64():
    p = rules(BASE_CAPS)
    assert p["defaultAction"] == "SCMP_ACT_ERRNO"
    assert p["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert len(p["syscalls"][0]["names"]) == 346
    assert p["syscalls"][1:] == [
        {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW"},
        *({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
           "args": [{"index": 0, "value": v, "op": "SCMP_CMP_EQ"}]}
          for v in (0, 8, 131072, 131080, 4294967295)),
        {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["modify_ldt"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
        {"names": ["chroot"], "action": "SCMP_ACT_ALLOW"},
    ]


@pytest.mark.parametrize("cap", list(ADDED_BY))
def test_each_capability_adds_what_it_added_under_docker(cap):
    base = names(rules(BASE_CAPS))
    with_cap = names(rules([*BASE_CAPS, cap]))
    added = [n for n in with_cap if n not in base]
    assert added == ADDED_BY[cap]
    removed = [n for n in base if n not in with_cap]
    assert removed == ([["clone"], ["clone3"]] if cap == "CAP_SYS_ADMIN" else [])


def test_dropping_sys_chroot_drops_chroot():
    caps = [c for c in BASE_CAPS if c != "CAP_SYS_CHROOT"]
    assert ["chroot"] not in names(rules(caps))


def test_ptrace_needs_kernel_4_8_without_sys_ptrace():
    assert ["ptrace"] not in names(rules(BASE_CAPS, kernel=(4, 4, 0)))
    assert ["ptrace"] in names(rules(BASE_CAPS, kernel=(4, 8, 0)))


def test_other_architectures_get_their_own_rules():
    arm = rules(BASE_CAPS, arch="arm64")
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert ["arch_prctl"] not in names(arm)
    assert ["arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
            "cacheflush", "set_tls"] in names(arm)
    s390 = rules(BASE_CAPS, arch="s390x")
    clones = [r for r in s390["syscalls"] if r["names"] == ["clone"]]
    assert [c["args"][0]["index"] for c in clones] == [1]


def test_a_custom_profile_with_an_arch_map_and_conditions():
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
               "archMap": [{"architecture": "SCMP_ARCH_X86_64",
                            "subArchitectures": ["SCMP_ARCH_X86"]}],
               "syscalls": [{"name": "read", "action": "SCMP_ACT_ALLOW"},
                            {"names": ["mount"], "action": "SCMP_ACT_ALLOW",
                             "excludes": {"caps": ["CAP_KILL"]}}]}
    assert resolve(profile, BASE_CAPS, arch="amd64") == {
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"action": "SCMP_ACT_ALLOW", "names": ["read"]}]}


def test_kernel_versions_parse_like_uname_gives_them():
    assert seccomp_default._version("6.1.0-18-amd64") == (6, 1, 0)
    assert seccomp_default._version("4.8") == (4, 8)
