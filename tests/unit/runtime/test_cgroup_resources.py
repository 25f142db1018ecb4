"""The cgroup manager's pure parts: resources -> writes (v1 and v2), device policies and
their eBPF code, paths, `runc update` flags and units.  No root, no cgroupfs."""

from __future__ import annotations

import errno
import struct

import pytest

from dockyard.runtime.errors import ConfigError
from dockyard.runtime.linux import cgroups
from dockyard.runtime.linux.cgroups import bpf, devrules, paths, resources
from dockyard.runtime.linux.cgroups.update import ram_in_bytes

WHITELIST = "\n".join(devrules.rule_string(k, a) for k, a in
                      devrules.fold(devrules.parse_rules(None)).exceptions.items())


def probe_of(files: dict[str, str]):
    """A probe answering from {"file": "content"} (controller ignored); missing -> None."""
    return lambda _ctl, name: files.get(name)


def plain(writes, controller=None):
    """The writes without device rules (they are tested on their own)."""
    return [w for w in writes if w[0] != "devices" and (controller is None or w[0] == controller)]


V1_FACTS = {"memory.memsw.limit_in_bytes": "9223372036854771712",
            "memory.limit_in_bytes": "9223372036854771712", "devices.list": WHITELIST}


# ---- v1 memory ----

def test_v1_memory_raising_writes_memsw_before_memory():
    w = resources.v1_writes({"memory": {"limit": 1 << 30, "swap": 2 << 30}},
                            probe_of({**V1_FACTS, "memory.limit_in_bytes": str(64 << 20)}))
    assert plain(w) == [("memory", "memory.memsw.limit_in_bytes", str(2 << 30)),
                        ("memory", "memory.limit_in_bytes", str(1 << 30))]


def test_v1_memory_lowering_writes_memory_before_memsw():
    w = resources.v1_writes({"memory": {"limit": 64 << 20, "swap": 128 << 20}},
                            probe_of({**V1_FACTS, "memory.limit_in_bytes": str(1 << 30)}))
    assert plain(w) == [("memory", "memory.limit_in_bytes", str(64 << 20)),
                        ("memory", "memory.memsw.limit_in_bytes", str(128 << 20))]


def test_v1_memory_unlimited_implies_unlimited_swap_when_swap_accounting_exists():
    w = resources.v1_writes({"memory": {"limit": -1}}, probe_of(V1_FACTS))
    assert plain(w) == [("memory", "memory.memsw.limit_in_bytes", "-1"),
                        ("memory", "memory.limit_in_bytes", "-1")]
    facts = {k: v for k, v in V1_FACTS.items() if "memsw" not in k}
    assert plain(resources.v1_writes({"memory": {"limit": -1}}, probe_of(facts))) == [
        ("memory", "memory.limit_in_bytes", "-1")]


def test_v1_memory_other_knobs():
    w = resources.v1_writes({"memory": {"reservation": 1000, "disableOOMKiller": True,
                                        "swappiness": 10, "kernel": 5, "kernelTCP": 6}},
                            probe_of(V1_FACTS))
    assert plain(w) == [("memory", "memory.soft_limit_in_bytes", "1000"),
                        ("memory", "memory.oom_control", "1"),
                        ("memory", "memory.swappiness", "10")]


def test_v1_memory_swappiness_out_of_range_is_refused_in_runc_words():
    with pytest.raises(ConfigError, match="valid memory swappiness range is 0-100"):
        resources.v1_writes({"memory": {"swappiness": 101}}, probe_of(V1_FACTS))


def test_check_before_update_rejects_limit_below_usage():
    facts = {**V1_FACTS, "memory.usage_in_bytes": "5000"}
    with pytest.raises(ConfigError, match="rejecting memory limit 4096 <= usage 5000"):
        resources.v1_writes({"memory": {"limit": 4096, "checkBeforeUpdate": True}},
                            probe_of(facts))
    assert plain(resources.v1_writes({"memory": {"limit": 4096}}, probe_of(facts)))


def test_memory_values_must_be_integers():
    with pytest.raises(ConfigError, match=r"memory\.limit must be an integer"):
        resources.v1_writes({"memory": {"limit": "1g"}}, probe_of(V1_FACTS))


# ---- v1 cpu, cpuset, pids, blkio, hugetlb, network ----

def test_v1_cpu_period_and_quota_are_retried_around_each_other():
    w = resources.v1_writes({"cpu": {"shares": 512, "quota": 50000, "period": 100000}},
                            probe_of(V1_FACTS))
    assert plain(w) == [("cpu", "cpu.shares", "512"),
                        ("cpu", "cpu.cfs_period_us", "100000"),
                        ("cpu", "cpu.cfs_quota_us", "50000"),
                        ("cpu", "cpu.cfs_period_us", "100000")]


def test_v1_cpu_quota_alone_burst_idle_and_realtime():
    w = resources.v1_writes({"cpu": {"quota": -1, "burst": 0, "idle": 1,
                                     "realtimePeriod": 1000000, "realtimeRuntime": 950000}},
                            probe_of(V1_FACTS))
    assert plain(w) == [("cpu", "cpu.cfs_burst_us", "0"), ("cpu", "cpu.cfs_quota_us", "-1"),
                        ("cpu", "cpu.cfs_burst_us", "0"),
                        ("cpu", "cpu.rt_period_us", "1000000"),
                        ("cpu", "cpu.rt_runtime_us", "950000"),
                        ("cpu", "cpu.rt_period_us", "1000000"),
                        ("cpu", "cpu.idle", "1")]


def test_v1_cpuset_comes_first_and_pids():
    w = resources.v1_writes({"pids": {"limit": 10}, "cpu": {"cpus": "0-1", "mems": "0"}},
                            probe_of(V1_FACTS))
    assert plain(w) == [("cpuset", "cpuset.cpus", "0-1"), ("cpuset", "cpuset.mems", "0"),
                        ("pids", "pids.max", "10")]
    assert plain(resources.v1_writes({"pids": {"limit": -1}}, probe_of(V1_FACTS))) == [
        ("pids", "pids.max", "max")]
    assert plain(resources.v1_writes({"pids": {"limit": 0}}, probe_of(V1_FACTS))) == []


def test_v1_blkio_uses_bfq_files_when_cfq_ones_are_missing():
    res = {"blockIO": {"weight": 300, "leafWeight": 200,
                       "weightDevice": [{"major": 8, "minor": 0, "weight": 500}],
                       "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                       "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}]}}
    w = plain(resources.v1_writes(res, probe_of({**V1_FACTS, "blkio.bfq.weight": "100"})))
    assert w == [("blkio", "blkio.bfq.weight", "300"), ("blkio", "blkio.leaf_weight", "200"),
                 ("blkio", "blkio.bfq.weight_device", "8:0 500"),
                 ("blkio", "blkio.throttle.read_bps_device", "8:0 1048576"),
                 ("blkio", "blkio.throttle.write_iops_device", "8:16 100")]
    w = plain(resources.v1_writes({"blockIO": {"weight": 300}},
                                  probe_of({**V1_FACTS, "blkio.weight": "500"})))
    assert w == [("blkio", "blkio.weight", "300")]


def test_v1_hugetlb_network_rdma():
    res = {"hugepageLimits": [{"pagesize": "2MB", "limit": 4194304}],
           "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]},
           "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}}}
    assert plain(resources.v1_writes(res, probe_of(V1_FACTS))) == [
        ("hugetlb", "hugetlb.2MB.limit_in_bytes", "4194304"),
        ("net_cls", "net_cls.classid", "1048577"),
        ("net_prio", "net_prio.ifpriomap", "eth0 5"),
        ("rdma", "rdma.max", "mlx5_1 hca_handle=3 hca_object=10000")]
    with pytest.raises(ConfigError, match="invalid hugepage size"):
        resources.v1_writes({"hugepageLimits": [{"pagesize": "2M", "limit": 1}]},
                            probe_of(V1_FACTS))


def test_unified_is_an_error_on_v1():
    with pytest.raises(ConfigError, match="cannot use unified on cgroup v1"):
        resources.v1_writes({"unified": {"memory.high": "1"}}, probe_of(V1_FACTS))


# ---- v2 ----

def test_v2_memory_swap_is_converted_from_memsw():
    w = resources.v2_writes({"memory": {"limit": 100, "swap": 300, "reservation": 50}},
                            probe_of({}))
    assert w == [("memory", "memory.swap.max", "200"), ("memory", "memory.max", "100"),
                 ("memory", "memory.low", "50")]
    w = resources.v2_writes({"memory": {"limit": 100, "swap": 100}}, probe_of({}))
    assert w[0] == ("memory", "memory.swap.max", "0")
    w = resources.v2_writes({"memory": {"limit": -1, "swap": -1}},
                            probe_of({"memory.swap.max": "max"}))
    assert w == [("memory", "memory.swap.max", "max"), ("memory", "memory.max", "max")]


def test_v2_swap_rules_in_runc_words():
    with pytest.raises(ConfigError, match="unable to set swap limit without memory limit"):
        resources.v2_writes({"memory": {"swap": 300}}, probe_of({}))
    with pytest.raises(ConfigError, match="memory\\+swap limit should be >= memory limit"):
        resources.v2_writes({"memory": {"limit": 300, "swap": 100}}, probe_of({}))


def test_v2_cpu_weight_max_and_burst():
    w = resources.v2_writes({"cpu": {"shares": 1024, "quota": 50000, "burst": 1000}},
                            probe_of({}))
    assert w == [("cpu", "cpu.weight", "39"), ("cpu", "cpu.max.burst", "1000"),
                 ("cpu", "cpu.max", "50000 100000"), ("cpu", "cpu.max.burst", "1000")]
    assert resources.v2_writes({"cpu": {"period": 20000}}, probe_of({})) == [
        ("cpu", "cpu.max", "max 20000")]
    with pytest.raises(ConfigError, match="realtime"):
        resources.v2_writes({"cpu": {"realtimeRuntime": 1}}, probe_of({}))


def test_conversions_match_runc():
    assert resources.shares_to_weight(2) == 1
    assert resources.shares_to_weight(262144) == 10000
    assert resources.blkio_to_io_weight(10) == 1
    assert resources.blkio_to_io_weight(1000) == 10000
    assert resources.blkio_to_io_weight(500) == 4950


def test_v2_io_pids_hugetlb_cpuset_and_unified_last():
    res = {"blockIO": {"weight": 500,
                       "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 10}]},
           "pids": {"limit": 5}, "hugepageLimits": [{"pagesize": "1GB", "limit": 0}],
           "cpu": {"cpus": "0"}, "unified": {"memory.high": "max", "cgroup.max.depth": "3"}}
    assert resources.v2_writes(res, probe_of({})) == [
        ("pids", "pids.max", "5"), ("io", "io.weight", "4950"),
        ("io", "io.max", "8:0 wbps=10"), ("cpuset", "cpuset.cpus", "0"),
        ("hugetlb", "hugetlb.1GB.max", "0"),
        ("unified", "memory.high", "max"), ("unified", "cgroup.max.depth", "3")]
    assert resources.v2_writes({"blockIO": {"weight": 500}},
                               probe_of({"io.bfq.weight": "default 100"})) == [
        ("io", "io.bfq.weight", "500")]


def test_v2_controllers_needed_by_writes():
    w = resources.v2_writes({"pids": {"limit": 5}, "memory": {"limit": 10},
                             "unified": {"io.weight": "10", "cgroup.freeze": "0"}},
                            probe_of({}))
    assert resources.v2_controllers(w) == ["pids", "memory", "io"]


def test_v2_rejects_unified_paths_and_net_cls():
    with pytest.raises(ConfigError, match="must be a file name"):
        resources.v2_writes({"unified": {"../memory.max": "1"}}, probe_of({}))
    with pytest.raises(ConfigError, match=r"CONTROLLER\.PARAMETER"):
        resources.v2_writes({"unified": {"memory": "1"}}, probe_of({}))
    with pytest.raises(ConfigError, match="not supported on cgroup v2"):
        resources.v2_writes({"network": {"classID": 1}}, probe_of({}))


# ---- devices ----

def test_default_rules_make_a_whitelist_even_without_any_rule():
    p = devrules.fold(devrules.parse_rules(None))
    assert p.default_allow is False
    assert p.exceptions[("c", 1, 3)] == "rwm"
    assert p.exceptions[("c", -1, -1)] == "m"
    assert p.exceptions[("c", 136, -1)] == "rwm"


def test_deny_all_then_allow_folds_to_whitelist():
    rules = devrules.parse_rules([{"allow": False, "access": "rwm"},
                                  {"allow": True, "type": "c", "major": 10, "minor": 229,
                                   "access": "rw"}])
    p = devrules.fold(rules)
    assert p.default_allow is False
    assert p.exceptions[("c", 10, 229)] == "rw"


def test_allow_all_then_deny_is_a_blacklist_and_type_a_expands():
    p = devrules.fold([("a", -1, -1, "rwm", True), ("a", 7, -1, "rw", False)])
    assert p == devrules.Policy(True, {("c", 7, -1): "rw", ("b", 7, -1): "rw"})


def test_deny_removes_access_from_an_allowed_entry():
    p = devrules.fold([("c", 1, 3, "rwm", True), ("c", 1, 3, "w", False)])
    assert p.exceptions == {("c", 1, 3): "rm"}


def test_v1_device_writes_from_allow_all_reset_with_the_wildcard():
    w = resources.device_writes_v1({"devices": [{"allow": False, "access": "rwm"}]},
                                   probe_of({"devices.list": "a *:* rwm\n"}))
    assert w[0] == ("devices", "devices.deny", "a")
    assert ("devices", "devices.allow", "c 1:3 rwm") in w
    assert ("devices", "devices.allow", "c *:* m") in w
    assert ("devices", "devices.allow", "c 136:* rwm") in w


def test_v1_device_writes_between_whitelists_are_a_difference():
    current = WHITELIST + "\nc 10:229 rwm\n"
    w = resources.device_writes_v1({"devices": [{"allow": True, "type": "c", "major": 4,
                                                 "minor": 1, "access": "r"}]},
                                   probe_of({"devices.list": current}))
    assert w == [("devices", "devices.deny", "c 10:229 rwm"),
                 ("devices", "devices.allow", "c 4:1 r")]
    assert resources.device_writes_v1({}, probe_of({"devices.list": WHITELIST})) == []


def test_device_rules_are_validated():
    with pytest.raises(ConfigError, match="device access at 0 field cannot be empty"):
        devrules.parse_rules([{"allow": True}])
    with pytest.raises(ConfigError, match="invalid cgroup device type"):
        devrules.parse_rules([{"allow": True, "type": "p", "access": "r"}])


def _insns(code: bytes):
    return [struct.unpack_from("<BBhi", code, i) for i in range(0, len(code), 8)]


def _run(code: bytes, dev_type: int, access: int, major: int, minor: int) -> int:
    """A tiny interpreter of the instructions bpf.compile_policy emits."""
    regs = [0] * 11
    ctx = {0: (access << 16) | dev_type, 4: major, 8: minor}
    prog, pc = _insns(code), 0
    while True:
        op, r, off, imm = prog[pc]
        dst, src = r & 0xF, r >> 4
        pc += 1
        if op == 0x61:
            regs[dst] = ctx[regs[src] + off] if src == 1 else 0
        elif op == 0x54:
            regs[dst] &= imm
        elif op == 0x74:
            regs[dst] >>= imm
        elif op == 0xBC:
            regs[dst] = regs[src]
        elif op == 0xB7:
            regs[dst] = imm
        elif op == 0x55:
            pc += off if regs[dst] != imm else 0
        elif op == 0x5D:
            pc += off if regs[dst] != regs[src] else 0
        elif op == 0x15:
            pc += off if regs[dst] == imm else 0
        elif op == 0x95:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {op:#x}")


def test_bpf_program_enforces_the_default_whitelist():
    code = bpf.compile_policy(devrules.fold(devrules.parse_rules(
        [{"allow": False, "access": "rwm"}])))
    char, block, read, write, mknod = 2, 1, 2, 4, 1
    assert _run(code, char, read | write, 1, 3) == 1     # /dev/null
    assert _run(code, char, read, 1, 11) == 0            # /dev/kmsg
    assert _run(code, char, mknod, 1, 11) == 1           # mknod of anything
    assert _run(code, block, read, 8, 0) == 0            # /dev/sda
    assert _run(code, char, read, 136, 7) == 1           # a pty
    assert _run(code, block, mknod, 8, 0) == 1


def test_bpf_program_blacklist_denies_on_any_overlap():
    code = bpf.compile_policy(devrules.Policy(True, {("c", 1, 11): "w"}))
    assert _run(code, 2, 2, 1, 11) == 1
    assert _run(code, 2, 2 | 4, 1, 11) == 0
    assert _run(code, 2, 4, 1, 3) == 1


# ---- paths ----

MOUNTINFO = """\
23 1 0:21 / /sys rw - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 /sub /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
PROC_CGROUP = "4:memory:/sub/a\n3:cpu,cpuacct:/b\n2:devices:/\n1:name=systemd:/s\n0::/u/me\n"


def test_mountinfo_and_proc_cgroup_parsing():
    mounts = paths.parse_mountinfo(MOUNTINFO)
    assert [(m.mountpoint, m.subsystems) for m in mounts][:2] == [
        ("/sys/fs/cgroup/cpu,cpuacct", ("cpu", "cpuacct")), ("/sys/fs/cgroup/memory", ("memory",))]
    assert paths.mode(mounts) == "hybrid"
    assert paths.unified_mountpoint(mounts) == "/sys/fs/cgroup/unified"
    own = paths.parse_proc_cgroup(PROC_CGROUP)
    assert own == {"memory": "/sub/a", "cpu": "/b", "cpuacct": "/b", "devices": "/",
                   "name=systemd": "/s", "": "/u/me"}


def test_absolute_cgroups_path_is_under_each_hierarchy_root():
    mounts = paths.parse_mountinfo(MOUNTINFO)
    own = paths.parse_proc_cgroup(PROC_CGROUP)
    p = paths.v1_paths(mounts, own, paths.inner_path("/x/y", "id"))
    assert p == {"devices": "/sys/fs/cgroup/devices/x/y", "memory": "/sys/fs/cgroup/memory/x/y",
                 "cpu": "/sys/fs/cgroup/cpu,cpuacct/x/y",
                 "cpuacct": "/sys/fs/cgroup/cpu,cpuacct/x/y",
                 "name=systemd": "/sys/fs/cgroup/systemd/x/y"}


def test_relative_and_empty_cgroups_path_are_under_our_own_cgroup():
    mounts = paths.parse_mountinfo(MOUNTINFO)
    own = paths.parse_proc_cgroup(PROC_CGROUP)
    p = paths.v1_paths(mounts, own, paths.inner_path(None, "ctr1"))
    assert p["memory"] == "/sys/fs/cgroup/memory/a/ctr1"  # the mount shows /sub as its root
    assert p["cpu"] == "/sys/fs/cgroup/cpu,cpuacct/b/ctr1"
    assert p["devices"] == "/sys/fs/cgroup/devices/ctr1"
    assert paths.v2_path("/sys/fs/cgroup", "/u/me", "rel/x") == "/sys/fs/cgroup/u/rel/x"
    assert paths.v2_path("/sys/fs/cgroup", "/", "ctr") == "/sys/fs/cgroup/ctr"
    assert paths.v2_path("/sys/fs/cgroup", "/u/me", "/abs") == "/sys/fs/cgroup/abs"


def test_clean_path_cannot_climb_out():
    assert paths.clean_path("../../etc") == "etc"
    assert paths.clean_path("/a/../../b") == "/b"
    assert paths.clean_path("") == ""


def test_systemd_driver_is_refused():
    with pytest.raises(ConfigError, match="systemd cgroup driver is not supported"):
        cgroups.manager_for("system.slice:x:y", "id", systemd=True)


def test_load_picks_the_version_from_the_saved_paths():
    assert cgroups.load({"": "/sys/fs/cgroup/x"}).version == "v2"
    m = cgroups.load({"memory": "/sys/fs/cgroup/memory/x"})
    assert m.version == "v1"
    assert m.paths == {"memory": "/sys/fs/cgroup/memory/x"}
    assert cgroups.load({"": "/sys/fs/cgroup/x"}).paths == {"": "/sys/fs/cgroup/x"}


# ---- runc update ----

@pytest.mark.parametrize(("text", "value"), [
    ("64m", 64 << 20), ("1g", 1 << 30), ("1G", 1 << 30), ("10", 10), ("1.5k", 1536),
    ("512KiB", 512 << 10), ("2 MB", 2 << 20), ("3b", 3), ("1t", 1 << 40), ("1p", 1 << 50)])
def test_ram_in_bytes(text, value):
    assert ram_in_bytes(text) == value


@pytest.mark.parametrize("text", ["", "m", "12x", "1.2.3", "-5", "1mm", "1 m b", "1e3"])
def test_ram_in_bytes_refuses(text):
    with pytest.raises(ValueError, match="invalid size"):
        ram_in_bytes(text)


def test_update_flags_to_resources():
    r = cgroups.resources_from_update_flags({
        "memory": "64m", "memory-swap": "-1", "memory-reservation": "32m",
        "cpu-quota": "-1", "cpu-period": "100000", "cpu-share": "512", "cpu-burst": "0",
        "cpu-rt-period": "1000000", "cpu-rt-runtime": "950000", "cpuset-cpus": "0",
        "cpuset-mems": "0", "pids-limit": "20", "blkio-weight": "300"})
    assert r == {"memory": {"limit": 64 << 20, "swap": -1, "reservation": 32 << 20},
                 "cpu": {"quota": -1, "period": 100000, "shares": 512, "burst": 0,
                         "realtimePeriod": 1000000, "realtimeRuntime": 950000,
                         "cpus": "0", "mems": "0"},
                 "pids": {"limit": 20}, "blockIO": {"weight": 300}}
    assert cgroups.resources_from_update_flags({}) == {}


def test_update_flags_errors_in_runc_words():
    with pytest.raises(ConfigError, match="invalid value for memory: invalid size: '12x'"):
        cgroups.resources_from_update_flags({"memory": "12x"})
    with pytest.raises(ConfigError, match=r'invalid value for cpu-period: strconv\.ParseUint: '
                                          r'parsing "-5": invalid syntax'):
        cgroups.resources_from_update_flags({"cpu-period": "-5"})
    with pytest.raises(ConfigError, match="l3 cache schema is not enabled"):
        cgroups.resources_from_update_flags({"l3-cache-schema": "L3:0=f"})


def test_merge_overlays_sections_and_keeps_devices():
    current = {"memory": {"limit": 100, "swap": 200}, "cpu": {"shares": 2},
               "devices": [{"allow": False, "access": "rwm"}]}
    merged = cgroups.merge_resources(current, {"memory": {"limit": 150}, "pids": {"limit": 3},
                                               "devices": []})
    assert merged == {"memory": {"limit": 150, "swap": 200}, "cpu": {"shares": 2},
                      "pids": {"limit": 3}, "devices": [{"allow": False, "access": "rwm"}]}
    assert current["memory"] == {"limit": 100, "swap": 200}  # not modified in place


def test_merge_unlimited_memory_makes_swap_unlimited():
    merged = cgroups.merge_resources({"memory": {"limit": 100, "swap": 200}},
                                     {"memory": {"limit": -1}})
    assert merged["memory"] == {"limit": -1, "swap": -1}


# ---- performing a plan ----

def test_perform_tolerates_einval_when_the_file_is_written_again_later(tmp_path, monkeypatch):
    from dockyard.runtime.linux.cgroups import files

    done, refused = [], {"cpu.cfs_period_us"}

    def fake_write(d, name, value):
        if name in refused:
            refused.discard(name)  # refused once: the quota has to change first
            raise OSError(errno.EINVAL, "Invalid argument")
        done.append((name, value))

    monkeypatch.setattr(files, "write", fake_write)
    plan = resources.v1_writes({"cpu": {"quota": 5000, "period": 10000}}, probe_of(V1_FACTS))
    files.perform(plan, lambda _c: str(tmp_path))
    assert [n for n, _ in done if n.startswith("cpu.")] == ["cpu.cfs_quota_us",
                                                           "cpu.cfs_period_us"]
    refused.add("cpu.shares")
    with pytest.raises(ConfigError, match=r'failed to write "2": write .*cpu.shares: invalid'):
        files.perform([("cpu", "cpu.shares", "2")], lambda _c: str(tmp_path))


def test_perform_without_the_hierarchy_says_so():
    from dockyard.runtime.linux.cgroups import files

    with pytest.raises(ConfigError, match="cannot set hugetlb limit: container could not "
                                          "join or create cgroup"):
        files.perform([("hugetlb", "hugetlb.2MB.limit_in_bytes", "1")], {}.get)


def test_memory_limit_below_usage_is_explained_like_runc(tmp_path):
    from dockyard.runtime.linux.cgroups import v1

    (tmp_path / "memory.usage_in_bytes").write_text("5000\n")
    (tmp_path / "memory.max_usage_in_bytes").write_text("9000\n")
    e = v1._explain(str(tmp_path), "memory", "memory.limit_in_bytes", "1",
                    OSError(errno.EBUSY, "Device or resource busy"))
    assert str(e) == "unable to set memory limit to 1 (current usage: 5000, peak usage: 9000)"
