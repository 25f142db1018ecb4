"""The cgroup manager against the host's real cgroupfs (root).

Every test makes cgroups named dockyard-test-<uuid> only through the `cg` fixture, which
kills what it started and removes every directory it made, also when the test fails.
On a v1/hybrid host the v1 tests use the v1 hierarchies and the v2 tests use the cgroup2
mount next to them (/sys/fs/cgroup/unified), whose controllers may all be absent: tests
that need a controller skip without it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from dockyard.runtime.errors import ConfigError
from dockyard.runtime.linux import cgroups
from dockyard.runtime.linux.cgroups import files, paths, v1, v2

pytestmark = pytest.mark.root

MOUNTS = paths.parse_mountinfo(paths.read_text(paths.MOUNTINFO)) \
    if os.path.exists(paths.MOUNTINFO) else []
HAS_V1 = any(m.fstype == "cgroup" and "devices" in m.subsystems for m in MOUNTS)
UNIFIED = paths.unified_mountpoint(MOUNTS)
needs_v1 = pytest.mark.skipif(not HAS_V1, reason="no cgroup v1 hierarchies")
needs_v2 = pytest.mark.skipif(UNIFIED is None, reason="no cgroup2 mount")


class Cg:
    """Makes managers and processes for one test and undoes all of it."""

    def __init__(self) -> None:
        self.managers: list = []
        self.procs: list[subprocess.Popen] = []
        self.dirs: list[str] = []

    def v1(self) -> v1.Manager:
        m = cgroups.manager_for(f"/dockyard-test-{uuid.uuid4().hex[:12]}", "unused")
        assert isinstance(m, v1.Manager)
        self.managers.append(m)
        self.dirs += list(m.paths.values())
        return m

    def v2(self, nested: bool = True) -> v2.Manager:
        """A v2 manager; nested=True puts it under a parent of our own, so that switching
        controllers on for it touches our parent, not only the host's root."""
        top = os.path.join(UNIFIED, f"dockyard-test-{uuid.uuid4().hex[:12]}")
        self.dirs.append(top)
        m = v2.Manager(os.path.join(top, "ctr") if nested else top)
        self.managers.append(m)
        return m

    def manager(self, version: str):
        return self.v1() if version == "v1" else self.v2()

    def spawn(self, m, *args: str, **kw) -> subprocess.Popen:
        """A process that joins the cgroup before it execs `args` (it waits on stdin)."""
        p = subprocess.Popen(["sh", "-c", 'read _ ; exec "$@"', "sh", *args],
                             stdin=subprocess.PIPE, **kw)
        self.procs.append(p)
        m.apply(p.pid)
        p.stdin.write(b"go\n")
        p.stdin.close()
        return p

    def sleeper(self, m) -> subprocess.Popen:
        p = subprocess.Popen(["sleep", "300"])
        self.procs.append(p)
        m.apply(p.pid)
        return p

    def cleanup(self) -> list[str]:
        for m in self.managers:
            if m.exists():
                try:
                    m.thaw()
                except Exception:
                    pass
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)
        for m in self.managers:
            m.destroy()
        for d in self.dirs:
            files.remove(d)
        return [d for d in self.dirs if os.path.exists(d)]


@pytest.fixture
def cg():
    c = Cg()
    try:
        yield c
    finally:
        left = c.cleanup()
        assert not left, f"cgroups left behind: {left}"


VERSIONS = [pytest.param("v1", marks=needs_v1), pytest.param("v2", marks=needs_v2)]


def wait_for(cond, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


# ---- both versions ----

@pytest.mark.parametrize("version", VERSIONS)
def test_apply_puts_the_process_in_and_pids_lists_sub_cgroups(cg, version):
    m = cg.manager(version)
    m.create()
    assert m.exists()
    a = cg.sleeper(m)
    assert m.pids() == [a.pid]
    sub = (m.paths.get("pids") or m.paths.get("freezer") or m.paths[""]) + "/sub"
    os.mkdir(sub)
    b = subprocess.Popen(["sleep", "300"])
    cg.procs.append(b)
    files.join(sub, b.pid)
    assert sorted(m.pids()) == sorted([a.pid, b.pid])


@pytest.mark.parametrize("version", VERSIONS)
def test_freeze_and_thaw(cg, version):
    m = cg.manager(version)
    m.create()
    p = cg.sleeper(m)
    assert not m.frozen()
    m.freeze()
    assert m.frozen()
    m.thaw()
    assert not m.frozen()
    assert p.poll() is None


@pytest.mark.parametrize("version", VERSIONS)
def test_kill_all_reaches_every_process_also_in_sub_cgroups(cg, version):
    m = cg.manager(version)
    m.create()
    a = cg.sleeper(m)
    sub = (m.paths.get("pids") or m.paths.get("freezer") or m.paths[""]) + "/sub"
    os.mkdir(sub)
    b = subprocess.Popen(["sleep", "300"])
    cg.procs.append(b)
    files.join(sub, b.pid)
    m.kill_all(signal.SIGTERM)
    assert a.wait(timeout=5) == -signal.SIGTERM
    assert b.wait(timeout=5) == -signal.SIGTERM
    assert not m.frozen()  # thawed again after signalling


@pytest.mark.parametrize("version", VERSIONS)
def test_kill_all_sigkill_of_a_paused_container(cg, version):
    m = cg.manager(version)
    m.create()
    p = cg.sleeper(m)
    m.freeze()
    m.kill_all(signal.SIGKILL)
    assert p.wait(timeout=5) == -signal.SIGKILL


@pytest.mark.parametrize("version", VERSIONS)
def test_kill_all_keeps_a_paused_container_paused_for_other_signals(cg, version):
    m = cg.manager(version)
    m.create()
    cg.sleeper(m)
    m.freeze()
    m.kill_all(signal.SIGTERM)
    assert m.frozen()


@pytest.mark.parametrize("version", VERSIONS)
def test_stats_has_runcs_shape(cg, version):
    m = cg.manager(version)
    m.create()
    cg.spawn(m, sys.executable, "-c", "sum(range(3_000_000)); import time; time.sleep(300)")
    time.sleep(0.3)
    s = m.stats()
    assert set(s) >= {"cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt"}
    assert {"kernel", "user"} <= set(s["cpu"]["usage"])
    assert "throttling" in s["cpu"]
    for key in ("usage", "swap", "kernel", "kernelTCP"):
        assert {"limit", "failcnt"} <= set(s["memory"][key])
    assert m.oom_kill_count() == 0
    if version == "v1":
        assert s["cpu"]["usage"]["total"] > 0
        assert s["memory"]["usage"]["usage"] > 0
        assert s["pids"]["current"] == 1
        assert s["cpuset"]["cpus"]


@pytest.mark.parametrize("version", VERSIONS)
def test_destroy_removes_everything_and_is_idempotent(cg, version):
    m = cg.manager(version)
    m.create()
    p = cg.sleeper(m)
    base = m.paths.get("memory") or m.paths[""]
    os.makedirs(base + "/a/b")
    p.kill()
    p.wait()
    m.destroy()
    assert not m.exists()
    assert not any(os.path.exists(d) for d in m.paths.values())
    m.destroy()


@pytest.mark.parametrize("version", VERSIONS)
def test_load_recreates_the_manager_from_its_paths(cg, version):
    m = cg.manager(version)
    m.create()
    p = cg.sleeper(m)
    again = cgroups.load(dict(m.paths))
    assert again.pids() == [p.pid]
    assert again.paths == m.paths


# ---- v1 ----

def read(m, ctl: str, name: str) -> str:
    return files.read(m.paths[ctl], name).strip()


@needs_v1
def test_v1_limits_are_written(cg):
    m = cg.v1()
    m.create()
    m.set({"memory": {"limit": 64 << 20, "swap": 128 << 20, "reservation": 32 << 20},
           "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "0", "mems": "0"},
           "pids": {"limit": 10}})
    cg.sleeper(m)
    assert read(m, "memory", "memory.limit_in_bytes") == str(64 << 20)
    assert read(m, "memory", "memory.soft_limit_in_bytes") == str(32 << 20)
    if os.path.exists(os.path.join(m.paths["memory"], "memory.memsw.limit_in_bytes")):
        assert read(m, "memory", "memory.memsw.limit_in_bytes") == str(128 << 20)
    assert read(m, "cpu", "cpu.shares") == "512"
    assert read(m, "cpu", "cpu.cfs_quota_us") == "20000"
    assert read(m, "cpu", "cpu.cfs_period_us") == "100000"
    assert read(m, "cpuset", "cpuset.cpus") == "0"
    assert read(m, "pids", "pids.max") == "10"
    assert m.stats()["pids"] == {"current": 1, "limit": 10}


@needs_v1
def test_v1_new_cpuset_inherits_cpus_and_mems(cg):
    m = cg.v1()
    m.create()
    root = os.path.dirname(m.paths["cpuset"])
    assert read(m, "cpuset", "cpuset.cpus") == files.read(root, "cpuset.cpus").strip()
    assert read(m, "cpuset", "cpuset.mems") == files.read(root, "cpuset.mems").strip()
    cg.sleeper(m)  # a cpuset with empty cpus would refuse the task


@needs_v1
def test_v1_memory_and_swap_can_be_raised_and_lowered(cg):
    m = cg.v1()
    m.create()
    if not os.path.exists(os.path.join(m.paths["memory"], "memory.memsw.limit_in_bytes")):
        pytest.skip("no swap accounting")
    for limit, swap in ((64 << 20, 128 << 20), (256 << 20, 512 << 20), (32 << 20, 64 << 20),
                        (-1, -1)):
        m.set({"memory": {"limit": limit, "swap": swap}})
    m.set({"memory": {"limit": 16 << 20}})
    assert read(m, "memory", "memory.limit_in_bytes") == str(16 << 20)
    m.set(cgroups.merge_resources({"memory": {"limit": 16 << 20, "swap": 32 << 20}},
                                  cgroups.resources_from_update_flags({"memory": "-1"})))
    assert int(read(m, "memory", "memory.memsw.limit_in_bytes")) > 1 << 60


@needs_v1
def test_v1_check_before_update_rejects_a_limit_below_usage(cg):
    m = cg.v1()
    m.create()
    cg.spawn(m, sys.executable, "-c", "x = bytearray(16 << 20); import time; time.sleep(300)")
    assert wait_for(lambda: int(read(m, "memory", "memory.usage_in_bytes")) > 16 << 20)
    with pytest.raises(ConfigError, match="rejecting memory limit 4096 <= usage"):
        m.set({"memory": {"limit": 4096, "checkBeforeUpdate": True}})


@needs_v1
def test_v1_cpu_shares_out_of_range_is_reported(cg):
    m = cg.v1()
    m.create()
    with pytest.raises(ConfigError, match="the maximum allowed cpu-shares is 262144"):
        m.set({"cpu": {"shares": 10_000_000}})


@needs_v1
def test_v1_write_errors_name_the_file_and_value(cg):
    m = cg.v1()
    m.create()
    with pytest.raises(ConfigError, match=r'failed to write "9999": write /.*/cpuset.cpus: '):
        m.set({"cpu": {"cpus": "9999"}})


@needs_v1
def test_v1_devices_whitelist_is_enforced_and_updated_by_difference(cg):
    m = cg.v1()
    m.create()
    m.set({"devices": [{"allow": False, "access": "rwm"}]})
    listing = read(m, "devices", "devices.list").splitlines()
    assert "c 1:3 rwm" in listing
    assert "a *:* rwm" not in listing
    p = cg.spawn(m, "sh", "-c", "head -c1 /dev/zero >/dev/null && ! head -c1 /dev/kmsg",
                 stderr=subprocess.DEVNULL)
    assert p.wait(timeout=10) == 0
    m.set({"devices": [{"allow": False, "access": "rwm"},
                       {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "r"}]})
    assert "c 1:11 r" in read(m, "devices", "devices.list").splitlines()


@needs_v1
def test_v1_unified_resources_are_refused(cg):
    m = cg.v1()
    m.create()
    with pytest.raises(ConfigError, match="cannot use unified on cgroup v1"):
        m.set({"unified": {"memory.high": "max"}})


# ---- v2 ----

@needs_v2
def test_v2_device_program_denies_what_the_rules_do_not_allow(cg):
    m = cg.v2()
    m.create()
    m.set({"devices": [{"allow": False, "access": "rwm"}]})
    p = cg.spawn(m, "sh", "-c", "head -c1 /dev/zero >/dev/null && ! head -c1 /dev/kmsg",
                 stderr=subprocess.DEVNULL)
    assert p.wait(timeout=10) == 0
    # Replacing the program (runc update) keeps exactly one of ours attached.
    m.set({"devices": [{"allow": False, "access": "rwm"},
                       {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "r"}]})
    from dockyard.runtime.linux.cgroups import bpf

    fd = os.open(m.path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert len(bpf.query(fd)) == 1
    finally:
        os.close(fd)
    p = cg.spawn(m, "sh", "-c", "head -c1 /dev/zero >/dev/null", stderr=subprocess.DEVNULL)
    assert p.wait(timeout=10) == 0


@needs_v2
def test_v2_controllers_are_switched_on_in_the_parents(cg):
    root = UNIFIED
    offered = files.read(root, "cgroup.controllers").split()
    if "pids" in offered:
        ctl, res, name, want = "pids", {"pids": {"limit": 7}}, "pids.max", "7"
    elif "hugetlb" in offered:
        ctl, name, want = "hugetlb", "hugetlb.2MB.max", "2097152"
        res = {"hugepageLimits": [{"pagesize": "2MB", "limit": 2097152}]}
    else:
        pytest.skip("the cgroup2 mount offers neither pids nor hugetlb")
    had = ctl in files.read(root, "cgroup.subtree_control").split()
    m = cg.v2()
    m.create()
    try:
        m.set(res)
        assert files.read(m.path, name).strip() == want
        assert ctl in files.read(os.path.dirname(m.path), "cgroup.subtree_control").split()
    finally:
        cg.cleanup()
        if not had:
            files.write(root, "cgroup.subtree_control", "-" + ctl)


@needs_v2
def test_v2_missing_controller_is_a_clear_error(cg):
    offered = files.read(UNIFIED, "cgroup.controllers").split()
    if "memory" in offered:
        pytest.skip("memory is available here")
    m = cg.v2()
    m.create()
    with pytest.raises(ConfigError, match='controller "memory" not available'):
        m.set({"memory": {"limit": 1 << 30}})
    with pytest.raises(ConfigError, match=r'unified resource "memory\.high" can.t be set'):
        m.set({"unified": {"memory.high": "max"}})


@needs_v2
def test_v2_freeze_waits_for_frozen_in_cgroup_events(cg):
    m = cg.v2()
    m.create()
    cg.sleeper(m)
    cg.sleeper(m)
    m.freeze()
    assert "frozen 1" in files.read(m.path, "cgroup.events")
    m.thaw()
    assert wait_for(lambda: "frozen 0" in files.read(m.path, "cgroup.events"))
