"""linux.seccomp compiled to data, without loading anything: validation and the rules that
libseccomp will be asked for."""

from __future__ import annotations

import errno
import json

import pytest

from dockyard.runtime.errors import ConfigError
from dockyard.runtime.linux import seccomp
from tests.schemas import SPECS
from tests.schemas import validate as schema_validate

ALLOW = 0x7FFF0000
ERRNO = 0x00050000
KILL_PROCESS = 0x80000000
NOTIFY = 0x7FC00000


def profile(*syscalls: dict, **top) -> dict:
    return {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": list(syscalls), **top}


def test_no_default_action_and_no_syscalls_means_no_filter():
    assert seccomp.compile_filter(None) is None
    assert seccomp.compile_filter({}) is None
    assert seccomp.compile_filter({"defaultAction": "", "syscalls": []}) is None


def test_errno_rule_defaults_to_eperm():
    f = seccomp.compile_filter(profile({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}))
    assert f.default == ALLOW
    assert f.rules == [("mkdir", ERRNO | errno.EPERM, ())]
    assert not f.notify


def test_errno_ret_is_carried_in_the_action():
    f = seccomp.compile_filter(profile(
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EACCES},
        {"names": ["ptrace"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
        {"names": ["kill"], "action": "SCMP_ACT_KILL_PROCESS", "errnoRet": 9}))
    assert f.rules == [("mkdir", ERRNO | 13, ()), ("ptrace", 0x7FF00007, ()),
                       ("kill", KILL_PROCESS, ())]


def test_default_errno_ret_applies_to_the_default_action():
    f = seccomp.compile_filter({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38})
    assert f.default == ERRNO | errno.ENOSYS
    assert seccomp.compile_filter({"defaultAction": "SCMP_ACT_ERRNO"}).default == ERRNO | 1


def test_every_name_becomes_a_rule():
    f = seccomp.compile_filter(profile({"names": ["mkdir", "mkdirat", "rmdir"],
                                        "action": "SCMP_ACT_LOG"}))
    assert [r[0] for r in f.rules] == ["mkdir", "mkdirat", "rmdir"]
    assert {r[1] for r in f.rules} == {0x7FFC0000}


def test_rules_with_the_default_action_are_dropped():
    f = seccomp.compile_filter({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},  # same as the default
        {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},  # EPERM: same
        {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},  # differs
    ]})
    assert [r[0] for r in f.rules] == ["read", "chmod"]


def test_kill_is_kill_thread():
    f = seccomp.compile_filter({"defaultAction": "SCMP_ACT_KILL_THREAD", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_KILL"}]})
    assert f.default == 0 and f.rules == []


def test_conditions_on_different_arguments_are_one_rule():
    f = seccomp.compile_filter(profile({"names": ["clone"], "action": "SCMP_ACT_ERRNO", "args": [
        {"index": 0, "value": 0x10000000, "op": "SCMP_CMP_MASKED_EQ", "valueTwo": 0x10000000},
        {"index": 2, "value": 5, "op": "SCMP_CMP_GT"}]}))
    assert f.rules == [("clone", ERRNO | 1, ((0, 7, 0x10000000, 0x10000000), (2, 6, 5, 0)))]


def test_conditions_on_one_argument_become_separate_rules():
    f = seccomp.compile_filter(profile({"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                                        "args": [
        {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
        {"index": 0, "value": 0x20000, "op": "SCMP_CMP_EQ"}]}))
    assert f.rules == [("personality", ERRNO | 1, ((0, 4, 8, 0),)),
                       ("personality", ERRNO | 1, ((0, 4, 0x20000, 0),))]


def test_every_operator_maps_to_libseccomps_number():
    ops = ["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
           "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"]
    for number, op in enumerate(ops, 1):
        f = seccomp.compile_filter(profile({"names": ["ioctl"], "action": "SCMP_ACT_ERRNO",
                                            "args": [{"index": 1, "value": 2, "op": op}]}))
        assert f.rules[0][2] == ((1, number, 2, 0),)


def test_architectures_map_to_libseccomp_names_once():
    f = seccomp.compile_filter(profile(architectures=[
        "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_X86"]))
    assert f.archs == ["x86_64", "x86", "x32"]


def test_absent_flags_ask_for_spec_allow_when_supported_and_empty_flags_for_none():
    assert seccomp.compile_filter(profile()).default_flags is True
    f = seccomp.compile_filter(profile(flags=[]))
    assert f.default_flags is False and f.flags == []
    f = seccomp.compile_filter(profile(flags=["SECCOMP_FILTER_FLAG_LOG",
                                              "SECCOMP_FILTER_FLAG_TSYNC"]))
    assert f.flags == [("SECCOMP_FILTER_FLAG_LOG", 6), ("SECCOMP_FILTER_FLAG_TSYNC", 4)]


def test_notify_rules_mark_the_filter():
    f = seccomp.compile_filter(profile({"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"},
                                       listenerPath="/run/agent.sock"))
    assert f.notify and f.rules == [("mkdir", NOTIFY, ())]


def test_unknown_syscall_names_are_kept_for_load_to_skip():
    f = seccomp.compile_filter(profile({"names": ["no_such_syscall", "mkdir"],
                                        "action": "SCMP_ACT_ERRNO"}))
    assert [r[0] for r in f.rules] == ["no_such_syscall", "mkdir"]


@pytest.mark.parametrize("config, message", [
    ("SCMP_ACT_ALLOW", "linux.seccomp must be an object"),
    ({"defaultAction": "SCMP_ACT_MAYBE"},
     "^string SCMP_ACT_MAYBE is not a valid action for seccomp$"),
    (profile({"names": ["mkdir"], "action": "SCMP_ACT_DENY"}),
     "^string SCMP_ACT_DENY is not a valid action for seccomp$"),
    (profile({"names": ["mkdir"]}), "string None is not a valid action"),
    ({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"},
     "SCMP_ACT_NOTIFY cannot be used as default action"),
    (profile({"names": ["write"], "action": "SCMP_ACT_NOTIFY"}, listenerPath="/x"),
     "SCMP_ACT_NOTIFY cannot be used for the write syscall"),
    (profile({"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}),
     "seccomp listenerPath is not set"),
    (profile(architectures=["SCMP_ARCH_Z80"]), "string SCMP_ARCH_Z80 is not a valid arch"),
    (profile(flags=["SECCOMP_FILTER_FLAG_FAST"]),
     "seccomp flag SECCOMP_FILTER_FLAG_FAST is not known to runc"),
    (profile(flags="SECCOMP_FILTER_FLAG_LOG"), "flags must be a list"),
    (profile(defaultErrnoRet=-1), "defaultErrnoRet must be an integer"),
    (profile(listenerPath=5), "listenerPath must be a string"),
    (profile({"names": [], "action": "SCMP_ACT_ERRNO"}), r"names must be a non-empty list"),
    (profile({"names": "mkdir", "action": "SCMP_ACT_ERRNO"}), "names must be a non-empty"),
    (profile({"names": [""], "action": "SCMP_ACT_ERRNO"}), "empty string is not a valid syscall"),
    (profile({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": "EPERM"}),
     r"syscalls\[0\].errnoRet must be an integer"),
    (profile({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
              "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}),
     r"args\[0\].index must be an integer from 0 to 5"),
    (profile({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
              "args": [{"index": 0, "value": 2 ** 64, "op": "SCMP_CMP_EQ"}]}),
     r"args\[0\].value must be an integer"),
    (profile({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
              "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_LIKE"}]}),
     "string SCMP_CMP_LIKE is not a valid operator for seccomp"),
    (profile("mkdir"), r"syscalls\[0\] must be an object"),
])
def test_bad_profiles_are_config_errors(config, message):
    with pytest.raises(ConfigError, match=message):
        seccomp.validate(config)
    with pytest.raises(ConfigError, match=message):
        seccomp.compile_filter(config)


def test_tables_cover_the_runtime_spec_enums():
    defs = json.loads((SPECS / "oci-runtime-schema" / "defs-linux.json").read_text())

    def enum(name: str) -> set[str]:
        return set(defs["definitions"][name]["enum"])

    assert set(seccomp.ACTIONS) == enum("SeccompAction")
    assert set(seccomp.OPERATORS) == enum("SeccompOperators")
    assert set(seccomp.ARCHS) == enum("SeccompArch")
    assert set(seccomp.FLAGS) == enum("SeccompFlag")


def test_features_match_the_runtime_spec_schema():
    feats = seccomp.features()
    schema_validate({"ociVersionMin": "1.0.0", "ociVersionMax": "1.2.0",
                     "linux": {"seccomp": feats}}, "features-schema.json")
    assert feats["enabled"] is True  # libseccomp.so.2 is installed where we test
    assert "SCMP_ARCH_X86_64" in feats["archs"]
    assert set(feats["supportedFlags"]) <= set(feats["knownFlags"])
    assert "SECCOMP_FILTER_FLAG_LOG" in feats["supportedFlags"]
