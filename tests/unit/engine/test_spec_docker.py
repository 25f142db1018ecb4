"""make_spec against golden expectations read from the config.json Debian's dockerd 20.10
gave containerd for busybox with the same flags (see tests/integration/engine/
test_spec_reference.py, which compares the two live)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from dockyard.engine.containers import capabilities, resources, users
from dockyard.engine.containers.spec import SpecInput, check, make_spec
from dockyard.engine.errors import InvalidParameter

CID = "467068a4bfb7c48cdf8de0dec4754217ad4916767bab8369e39b46539158cc31"
PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The capabilities of dockerd 20.10's kernel list (no PERFMON, BPF, CHECKPOINT_RESTORE).
CAPS_38 = capabilities.ALL_CAPS[:38]
ETC = [{"destination": f"/etc/{name}", "type": "bind", "source": f"/c/{CID}/{name}",
        "options": ["rbind", "rprivate"]} for name in ("resolv.conf", "hostname", "hosts")]
DEFAULT_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]
DEFAULT_MOUNTS = [
    {"destination": "/proc", "type": "proc", "source": "proc",
     "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs",
     "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
     "options": ["ro", "nosuid", "noexec", "nodev"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
     "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]},
]
DEVICE_RULES = [
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
    {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
]
# sha256 of the canonical JSON of linux.seccomp in the reference's default spec (amd64).
DEFAULT_SECCOMP_SHA256 = "5906f471ae0730371503ea659a6618e8bd9b2a1454f6bf648f64b93aa567fbec"


def spec(host_config: dict | None = None, rootfs: str | None = None, mounts=ETC,
         **config) -> dict:
    cfg = {"Cmd": ["sleep", "1000"], "Env": [PATH], **config}
    return make_spec(SpecInput(CID, cfg, host_config or {}, mounts=mounts,
                               cgroup_parent="/docker", hostname=CID[:12], rootfs=rootfs,
                               arch="amd64", kernel=(6, 1, 0), all_caps=CAPS_38,
                               cgroups=resources.CgroupSupport()))


def sha(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def test_default_spec_is_dockers_field_for_field():
    s = spec()
    seccomp = s["linux"].pop("seccomp")
    assert sha(seccomp) == DEFAULT_SECCOMP_SHA256
    assert s == {
        "ociVersion": "1.0.2-dev",
        "process": {"user": {"uid": 0, "gid": 0, "additionalGids": [0]},
                    "args": ["sleep", "1000"],
                    "env": [PATH, f"HOSTNAME={CID[:12]}"], "cwd": "/",
                    "capabilities": {k: DEFAULT_CAPS
                                     for k in ("bounding", "effective", "permitted")},
                    "oomScoreAdj": 0},
        "root": {"path": "rootfs"},
        "hostname": CID[:12],
        "mounts": DEFAULT_MOUNTS + ETC,
        "hooks": {},
        "linux": {
            "sysctl": {"net.ipv4.ip_unprivileged_port_start": "0",
                       "net.ipv4.ping_group_range": "0 2147483647"},
            "resources": {"devices": DEVICE_RULES,
                          "memory": {"disableOOMKiller": False}, "cpu": {"shares": 0},
                          "blockIO": {"weight": 0}},
            "cgroupsPath": f"/docker/{CID}",
            "namespaces": [{"type": t} for t in ("mount", "network", "uts", "pid", "ipc")],
            "maskedPaths": ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                            "/proc/sched_debug", "/proc/scsi", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"],
        },
    }


def test_cap_add_and_drop_accept_any_spelling_and_append_in_order():
    caps = spec({"CapAdd": ["SYS_ADMIN", "CAP_NET_ADMIN"], "CapDrop": ["chown"]})[
        "process"]["capabilities"]
    assert caps["bounding"] == [*DEFAULT_CAPS[1:], "CAP_SYS_ADMIN", "CAP_NET_ADMIN"]
    assert caps["effective"] == caps["permitted"] == caps["bounding"]


def test_cap_drop_all_keeps_only_the_added_ones():
    caps = spec({"CapDrop": ["ALL"], "CapAdd": ["KILL"]})["process"]["capabilities"]
    assert caps == {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"],
                    "permitted": ["CAP_KILL"]}


def test_cap_add_all_gives_every_capability_of_the_kernel_in_number_order():
    s = spec({"CapAdd": ["all"], "CapDrop": ["MKNOD"]})
    assert s["process"]["capabilities"]["bounding"] == [c for c in CAPS_38
                                                        if c != "CAP_MKNOD"]
    names = {n for r in s["linux"]["seccomp"]["syscalls"] for n in r["names"]}
    assert {"mount", "reboot", "open_by_handle_at", "ptrace", "kcmp"} <= names
    assert all(r["names"] != ["clone3"] for r in s["linux"]["seccomp"]["syscalls"])


def test_an_unknown_capability_is_refused_as_docker_words_it():
    with pytest.raises(InvalidParameter, match='invalid CapAdd: unknown capability: "CAP_NOPE"'):
        spec({"CapAdd": ["nope"]})
    with pytest.raises(InvalidParameter, match="invalid CapDrop"):
        spec({"CapDrop": ["CAP_NOPE"]})


def test_resources_from_memory_cpus_pids_and_friends():
    s = spec({"Memory": 64 << 20, "MemoryReservation": 32 << 20, "MemorySwap": 128 << 20,
              "NanoCpus": 1_500_000_000, "PidsLimit": 100, "CpuShares": 512,
              "CpusetCpus": "0", "CpusetMems": "0", "BlkioWeight": 300,
              "MemorySwappiness": 10, "OomKillDisable": True, "OomScoreAdj": 100,
              "KernelMemory": 10 << 20})
    r = s["linux"]["resources"]
    assert r["memory"] == {"limit": 67108864, "reservation": 33554432, "swap": 134217728,
                           "swappiness": 10, "disableOOMKiller": True}
    assert r["cpu"] == {"shares": 512, "quota": 150000, "period": 100000, "cpus": "0",
                        "mems": "0"}
    assert r["pids"] == {"limit": 100}
    assert r["blockIO"] == {"weight": 300}
    assert s["process"]["oomScoreAdj"] == 100


def test_unlimited_swap_and_pids_are_left_out():
    r = spec({"Memory": 64 << 20, "MemorySwap": -1, "PidsLimit": -1})["linux"]["resources"]
    assert r["memory"] == {"limit": 67108864, "disableOOMKiller": False}
    assert "pids" not in r


def test_cpu_period_and_quota_pass_through():
    cpu = spec({"CpuPeriod": 50000, "CpuQuota": 25000})["linux"]["resources"]["cpu"]
    assert cpu == {"shares": 0, "period": 50000, "quota": 25000}


@pytest.mark.parametrize("hc, message", [
    ({"Memory": 1 << 20}, "Minimum memory limit allowed is 6MB"),
    ({"MemorySwap": 1 << 30}, "You should always set the Memory limit when using Memoryswap"),
    ({"Memory": 64 << 20, "MemorySwap": 32 << 20}, "Minimum memoryswap limit should be"),
    ({"MemorySwappiness": 101}, "valid memory swappiness range is 0-100"),
    ({"NanoCpus": 10**9, "CpuPeriod": 50000}, "Nano CPUs and CPU Period cannot both be set"),
    ({"NanoCpus": 10**9, "CpuQuota": 50000}, "Nano CPUs and CPU Quota cannot both be set"),
    ({"CpuPeriod": 10}, "CPU cfs period can not be less than 1ms"),
    ({"BlkioWeight": 5}, "Range of blkio weight is from 10 to 1000"),
    ({"OomScoreAdj": 2000}, "range for oom score adj is"),
    ({"IpcMode": "bogus"}, "invalid IPC mode: bogus"),
    ({"PidMode": "bogus"}, "invalid PID mode: bogus"),
    ({"Ulimits": [{"Name": "bogus", "Soft": 1, "Hard": 1}]}, "invalid ulimit type: bogus"),
    ({"SecurityOpt": ["bogus"]}, 'invalid --security-opt 1: "bogus"'),
    ({"SecurityOpt": ["foo=bar"]}, 'invalid --security-opt 2: "foo=bar"'),
    ({"Tmpfs": {"/run": "bogus"}}, "Invalid tmpfs option"),
    ({"DeviceCgroupRules": ["x 1:2 rwm"]}, "invalid device cgroup format 'x 1:2 rwm'"),
])
def test_what_docker_refuses_at_create(hc, message):
    with pytest.raises(InvalidParameter, match=message.replace("(", r"\(")):
        spec(hc)


def test_no_command_and_relative_workdir_are_refused():
    with pytest.raises(InvalidParameter, match="No command specified"):
        spec(Cmd=None)
    with pytest.raises(InvalidParameter, match="needs to be an absolute path"):
        spec(WorkingDir="tmp")


def test_read_only_rootfs_tmpfs_and_shm_size():
    s = spec({"ReadonlyRootfs": True, "Tmpfs": {"/run": "", "/data": "rw,size=10m,mode=1777"},
              "ShmSize": 128 << 20})
    assert s["root"] == {"path": "rootfs", "readonly": True}
    assert [m["destination"] for m in s["mounts"]] == [
        "/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm",
        "/run", "/data", "/etc/resolv.conf", "/etc/hostname", "/etc/hosts"]
    shm, run, data = s["mounts"][6:9]
    assert shm["options"][-1] == "size=134217728"
    assert run == {"destination": "/run", "type": "tmpfs", "source": "tmpfs",
                   "options": ["noexec", "nosuid", "nodev", "rprivate"]}
    assert data["options"] == ["noexec", "nosuid", "nodev", "rprivate", "rw", "size=10m",
                               "mode=1777"]


def test_tmpfs_exec_replaces_noexec():
    s = spec({"Tmpfs": {"/x": "exec"}})
    assert s["mounts"][7]["options"] == ["nosuid", "nodev", "rprivate", "exec"]


def test_a_callers_mount_replaces_the_default_at_the_same_place():
    shm = {"destination": "/dev/shm", "type": "bind", "source": "/c/shm",
           "options": ["rbind", "rprivate"]}
    s = spec({"IpcMode": "shareable"}, mounts=[*ETC, shm])
    assert [m["destination"] for m in s["mounts"]][6:] == [
        "/etc/resolv.conf", "/etc/hostname", "/etc/hosts", "/dev/shm"]
    assert s["mounts"][-1] == shm


def test_numeric_user_with_group_add():
    s = spec({"GroupAdd": ["10"]}, User="1000:1000", WorkingDir="/tmp", Hostname="h1",
             Domainname="example.com", Env=[PATH, "FOO=bar"])
    p = s["process"]
    assert p["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [1000, 10]}
    assert p["capabilities"] == {"bounding": DEFAULT_CAPS}  # nothing effective for non-root
    assert p["cwd"] == "/tmp"
    assert p["env"] == [PATH, f"HOSTNAME={CID[:12]}", "FOO=bar"]
    assert s["linux"]["sysctl"]["kernel.domainname"] == "example.com"


def test_user_names_come_from_the_rootfs(tmp_path: Path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                         "nobody:x:65534:65534:nobody:/:/bin/false\n"
                                         "app:x:1000:1000::/home/app:/bin/sh\n")
    (tmp_path / "etc/group").write_text("root:x:0:\nwheel:x:10:app\naudio:x:29:\n"
                                        "nogroup:x:65534:\napp:x:1000:\n")
    assert spec(rootfs=str(tmp_path), User="nobody")["process"]["user"] == {
        "uid": 65534, "gid": 65534, "additionalGids": [65534]}
    assert spec({"GroupAdd": ["audio"]}, rootfs=str(tmp_path), User="app")["process"][
        "user"] == {"uid": 1000, "gid": 1000, "additionalGids": [10, 29]}
    assert users.resolve("app:audio", (), str(tmp_path)) == (1000, 29, [29])
    with pytest.raises(InvalidParameter, match="unable to find user ghost: no matching "
                                               "entries in passwd file"):
        spec(rootfs=str(tmp_path), User="ghost")
    with pytest.raises(InvalidParameter, match="Unable to find group video: no matching "
                                               "entries in group file"):
        spec({"GroupAdd": ["video"]}, rootfs=str(tmp_path))


def test_passwd_outside_the_rootfs_is_not_read(tmp_path: Path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (tmp_path / "passwd").write_text("evil:x:7:7::/:/bin/sh\n")
    (root / "etc/passwd").symlink_to(tmp_path / "passwd")
    with pytest.raises(InvalidParameter, match="unable to find user evil"):
        users.resolve("evil", (), str(root))


def test_ulimits_sysctls_no_new_privileges_and_tty():
    s = spec({"Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048},
                          {"Name": "nproc", "Soft": 50, "Hard": 50}],
              "Sysctls": {"net.ipv4.ip_forward": "1", "kernel.msgmax": "65536"},
              "SecurityOpt": ["no-new-privileges"]}, Tty=True)
    p = s["process"]
    assert p["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 2048, "soft": 1024},
                            {"type": "RLIMIT_NPROC", "hard": 50, "soft": 50}]
    assert p["noNewPrivileges"] is True
    assert p["terminal"] is True
    assert p["env"] == [PATH, f"HOSTNAME={CID[:12]}", "TERM=xterm"]
    assert s["linux"]["sysctl"] == {"kernel.msgmax": "65536", "net.ipv4.ip_forward": "1",
                                    "net.ipv4.ip_unprivileged_port_start": "0",
                                    "net.ipv4.ping_group_range": "0 2147483647"}


@pytest.mark.parametrize("hc, message", [
    ({"Sysctls": {"kernel.shmmax": "1"}, "IpcMode": "host"}, "hosts ipc namespace"),
    ({"Sysctls": {"net.core.somaxconn": "1"}, "NetworkMode": "host"}, "host network"),
    ({"Sysctls": {"kernel.domainname": "x"}, "UTSMode": "host"}, "hosts uts namespace"),
    ({"Sysctls": {"vm.swappiness": "1"}}, "is not in a separate kernel namespace"),
])
def test_sysctls_outside_the_containers_namespaces_are_refused(hc, message):
    with pytest.raises(InvalidParameter, match=message):
        spec(hc)


def test_host_namespaces_and_joined_ones():
    s = make_spec(SpecInput(CID, {"Cmd": ["true"]},
                            {"NetworkMode": "host", "PidMode": "host", "IpcMode": "host",
                             "UTSMode": "host"}, netns_path="/run/netns/default",
                            hostname="vm", arch="amd64", kernel=(6, 1, 0)))
    assert s["linux"]["namespaces"] == [{"type": "mount"},
                                        {"type": "network", "path": "/run/netns/default"}]
    assert "hostname" not in s and "sysctl" not in s["linux"]
    assert s["mounts"][-1] == {"destination": "/dev/shm", "type": "bind",
                               "source": "/dev/shm", "options": ["rbind", "rprivate"]}
    j = make_spec(SpecInput(CID, {"Cmd": ["true"]},
                            {"NetworkMode": "container:abc", "PidMode": "container:abc",
                             "IpcMode": "container:abc", "CgroupnsMode": "private"},
                            netns_path="/proc/7/ns/net", pidns_path="/proc/7/ns/pid",
                            ipcns_path="/proc/7/ns/ipc"))
    assert j["linux"]["namespaces"] == [
        {"type": "mount"}, {"type": "network", "path": "/proc/7/ns/net"}, {"type": "uts"},
        {"type": "pid", "path": "/proc/7/ns/pid"}, {"type": "ipc", "path": "/proc/7/ns/ipc"},
        {"type": "cgroup"}]
    assert "sysctl" not in j["linux"]


def test_unconfined_security_opts_drop_seccomp_and_system_paths():
    s = spec({"SecurityOpt": ["seccomp=unconfined", "systempaths=unconfined",
                              "apparmor=unconfined"]})
    assert not {"seccomp", "maskedPaths", "readonlyPaths"} & set(s["linux"])


def test_a_seccomp_profile_given_as_json_is_resolved():
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["chmod"], "action": "SCMP_ACT_ERRNO"},
                            {"names": ["mount"], "action": "SCMP_ACT_ALLOW",
                             "includes": {"caps": ["CAP_SYS_ADMIN"]}}]}
    s = spec({"SecurityOpt": ["seccomp=" + json.dumps(profile)]})
    assert s["linux"]["seccomp"] == {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["chmod"], "action": "SCMP_ACT_ERRNO"}]}
    with pytest.raises(InvalidParameter, match="Decoding seccomp profile failed"):
        spec({"SecurityOpt": ["seccomp={"]})


def test_devices_and_device_cgroup_rules():
    s = spec({"Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull",
                           "CgroupPermissions": "rw"}],
              "DeviceCgroupRules": ["c 42:* rmw"]})
    assert s["linux"]["devices"] == [{"path": "/dev/mynull", "type": "c", "major": 1,
                                      "minor": 3, "fileMode": 0o666, "uid": 0, "gid": 0}]
    assert s["linux"]["resources"]["devices"] == [
        *DEVICE_RULES,
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"},
        {"allow": True, "type": "c", "major": 42, "minor": -1, "access": "rmw"}]
    with pytest.raises(InvalidParameter, match="error gathering device information"):
        spec({"Devices": [{"PathOnHost": "/nonexistent", "PathInContainer": "/dev/x"}]})


def test_privileged_gets_everything_and_no_confinement():
    s = spec({"Privileged": True})
    assert s["process"]["capabilities"]["bounding"] == list(CAPS_38)
    assert s["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert not {"seccomp", "maskedPaths", "readonlyPaths"} & set(s["linux"])
    by_dest = {m["destination"]: m for m in s["mounts"]}
    assert by_dest["/sys"]["options"] == ["nosuid", "noexec", "nodev"]
    assert by_dest["/sys/fs/cgroup"]["options"] == ["nosuid", "noexec", "nodev"]
    assert {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666,
            "uid": 0, "gid": 0} in s["linux"]["devices"]
    assert all(d["path"] != "/dev/console" for d in s["linux"]["devices"])


def test_init_runs_docker_init_bound_read_only(tmp_path: Path):
    init = tmp_path / "docker-init"
    init.write_text("")
    s = make_spec(SpecInput(CID, {"Cmd": ["sleep", "1"]}, {"Init": True},
                            init_path=str(init), arch="amd64"))
    assert s["process"]["args"] == ["/sbin/docker-init", "--", "sleep", "1"]
    assert s["mounts"][7] == {"destination": "/sbin/docker-init", "type": "bind",
                              "source": str(init), "options": ["bind", "ro"]}


def test_init_without_a_binary_says_so(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda *a, **k: None)
    with pytest.raises(InvalidParameter, match="no init binary on this host"):
        make_spec(SpecInput(CID, {"Cmd": ["true"]}, {"Init": True}))


def test_entrypoint_env_removal_cgroup_parent_and_annotations():
    s = make_spec(SpecInput(CID, {"Entrypoint": ["/bin/sh"], "Cmd": ["-c", "x"],
                                  "Env": [PATH, "A=1", "A"]},
                            {"CgroupParent": "/mine", "Annotations": {"k": "v"}},
                            hostname="h"))
    assert s["process"]["args"] == ["/bin/sh", "-c", "x"]
    assert s["process"]["env"] == [PATH, "HOSTNAME=h"]
    assert s["linux"]["cgroupsPath"] == f"/mine/{CID}"
    assert s["annotations"] == {"k": "v"}


def test_host_devices_skip_private_directories_and_links():
    paths = [d["path"] for d in resources.host_devices()]
    assert "/dev/null" in paths
    assert not any(p.startswith(("/dev/pts/", "/dev/shm/")) for p in paths)


# HostConfig as dockerd 20.10 stored it for `docker run busybox` (docker inspect): its
# defaults filled in. The sparse body a client sends must give the same spec.
STORED_HOST_CONFIG = {
    "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}},
    "NetworkMode": "default", "PortBindings": {}, "RestartPolicy": {"Name": "no"},
    "AutoRemove": False, "VolumeDriver": "", "VolumesFrom": None, "CapAdd": None,
    "CapDrop": None, "CgroupnsMode": "host", "Dns": [], "DnsOptions": [], "DnsSearch": [],
    "ExtraHosts": None, "GroupAdd": None, "IpcMode": "private", "Cgroup": "", "Links": None,
    "OomScoreAdj": 0, "PidMode": "", "Privileged": False, "PublishAllPorts": False,
    "ReadonlyRootfs": False, "SecurityOpt": None, "UTSMode": "", "UsernsMode": "",
    "ShmSize": 67108864, "Runtime": "runc", "ConsoleSize": [0, 0], "Isolation": "",
    "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0,
    "BlkioWeightDevice": [], "BlkioDeviceReadBps": None, "BlkioDeviceWriteBps": None,
    "BlkioDeviceReadIOps": None, "BlkioDeviceWriteIOps": None, "CpuPeriod": 0, "CpuQuota": 0,
    "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "",
    "Devices": [], "DeviceCgroupRules": None, "DeviceRequests": None, "KernelMemory": 0,
    "KernelMemoryTCP": 0, "MemoryReservation": 0, "MemorySwap": 0, "MemorySwappiness": None,
    "OomKillDisable": False, "PidsLimit": None, "Ulimits": None, "CpuCount": 0,
    "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
    "MaskedPaths": ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys",
                    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                    "/proc/sched_debug", "/proc/scsi", "/sys/firmware"],
    "ReadonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                      "/proc/sysrq-trigger"],
}


def test_the_sparse_host_config_a_client_sends_gives_the_stored_ones_spec():
    assert spec(STORED_HOST_CONFIG) == spec({})
    assert spec({"MaskedPaths": [], "ReadonlyPaths": []})["linux"].keys().isdisjoint(
        {"maskedPaths", "readonlyPaths"})


def test_memory_without_swap_gets_as_much_swap_again():
    assert spec({"Memory": 64 << 20})["linux"]["resources"]["memory"] == {
        "limit": 67108864, "swap": 134217728, "disableOOMKiller": False}


def test_user_files_are_found_across_overlay_directories(tmp_path: Path):
    upper, lower = tmp_path / "upper", tmp_path / "lower"
    (upper / "etc").mkdir(parents=True)
    (lower / "etc").mkdir(parents=True)
    (upper / "etc/passwd").write_text("app:x:1000:1000::/:/bin/sh\n")
    (lower / "etc/passwd").write_text("root:x:0:0::/:/bin/sh\n")
    (lower / "etc/group").write_text("staff:x:50:app\n")
    assert users.resolve("app", (), [str(upper), str(lower)]) == (1000, 1000, [50])


def test_limits_the_host_cannot_apply_are_discarded_as_dockerd_does():
    hc = {"Memory": 64 << 20, "MemorySwappiness": 10, "BlkioWeight": 300,
          "OomKillDisable": True}
    bare = resources.CgroupSupport(blkio_weight=False, swap=False, swappiness=False,
                                   oom_kill_disable=False)
    s = make_spec(SpecInput(CID, {"Cmd": ["true"]}, hc, cgroups=bare))
    assert s["linux"]["resources"]["memory"] == {"limit": 67108864, "disableOOMKiller": False}
    assert s["linux"]["resources"]["blockIO"] == {"weight": 0}
    full = make_spec(SpecInput(CID, {"Cmd": ["true"]}, hc, cgroups=resources.CgroupSupport()))
    assert full["linux"]["resources"]["blockIO"] == {"weight": 300}


def test_cgroup_support_is_read_from_the_v1_hierarchies(tmp_path: Path):
    (tmp_path / "memory").mkdir()
    (tmp_path / "memory/memory.swappiness").write_text("60")
    (tmp_path / "blkio").mkdir()
    assert resources.CgroupSupport.probe(str(tmp_path)) == resources.CgroupSupport(
        blkio_weight=False, blkio_weight_device=False, blkio_throttle=False, swap=False,
        swappiness=True, oom_kill_disable=False)


def test_apparmor_profile_when_the_host_has_apparmor():
    def profile(hc):
        return make_spec(SpecInput(CID, {"Cmd": ["true"]}, hc, apparmor=True))["process"][
            "apparmorProfile"]
    assert profile({}) == "docker-default"
    assert profile({"Privileged": True}) == "unconfined"
    assert profile({"SecurityOpt": ["apparmor=mine"], "Privileged": True}) == "mine"
    assert "apparmorProfile" not in spec()["process"]


def test_writable_cgroups_leaves_the_cgroup_mount_read_write():
    s = spec({"SecurityOpt": ["writable-cgroups=true"]})
    assert s["mounts"][4]["options"] == ["nosuid", "noexec", "nodev"]
    assert s["mounts"][3]["options"][-1] == "ro"


def test_propagating_binds_make_the_rootfs_propagate():
    shared = {"destination": "/data", "type": "bind", "source": "/srv",
              "options": ["rbind", "rshared"]}
    slave = {**shared, "destination": "/other", "options": ["rbind", "rslave"]}
    assert spec(mounts=[*ETC, shared, slave])["linux"]["rootfsPropagation"] == "shared"
    assert spec(mounts=[*ETC, slave])["linux"]["rootfsPropagation"] == "rslave"
    assert "rootfsPropagation" not in spec()["linux"]


def test_device_requests_have_no_driver_here():
    with pytest.raises(InvalidParameter, match=r'could not select device driver "" with '
                                               r"capabilities: \[\[gpu\]\]"):
        spec({"DeviceRequests": [{"Driver": "", "Count": -1, "Capabilities": [["gpu"]]}]})


@pytest.mark.parametrize("hc", [{"CapAdd": ["nope"]}, {"SecurityOpt": ["x=y"]},
                                {"Tmpfs": {"/a": "bogus"}}, {"Memory": 1},
                                {"DeviceCgroupRules": ["bogus"]}])
def test_check_refuses_at_create_what_dockerd_refuses_then(hc):
    with pytest.raises(InvalidParameter):
        check(SpecInput(CID, {"Cmd": ["true"]}, hc))
    check(SpecInput(CID, {"Cmd": ["true"]}, {}))


def test_cmd_and_entrypoint_may_be_single_strings():
    s = make_spec(SpecInput(CID, {"Entrypoint": "/bin/sh", "Cmd": "-c"}, {}))
    assert s["process"]["args"] == ["/bin/sh", "-c"]
