"""The rootfs steps for real: each test runs prepare, enter and finalize in a forked child
that has its own mount (and UTS) namespace, then looks around as the container would and
reports through a pipe. The test process never changes namespace, and its mount table must
come out unchanged."""

from __future__ import annotations

import errno
import json
import os
import stat
import traceback

import pytest

from dockyard.bootstrap.busybox import read_config
from dockyard.runtime.errors import StartError
from dockyard.runtime.linux import rootfs
from dockyard.runtime.linux import syscalls as sc

pytestmark = pytest.mark.root


def host_mounts() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return sorted(f.read().splitlines())


def run_container(bundle, check, *, edit=None, before=None, prepare_kw=None,
                  no_pivot=False) -> dict:
    """prepare/enter/finalize in a child; returns check()'s dict, or {"error": message}."""
    spec = read_config(bundle)
    if edit:
        edit(spec)
    rootfs.validate(spec, str(bundle))
    mounts_before = host_mounts()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(r)
        try:
            sc.unshare(sc.CLONE_NEWNS | sc.CLONE_NEWUTS)
            if before:
                before()
            root = rootfs.prepare(spec, str(bundle), **(prepare_kw or {}))
            rootfs.enter(spec, root, no_pivot=no_pivot)
            rootfs.finalize(spec)
            out = {"result": check()}
        except StartError as e:
            out = {"error": str(e)}
        except BaseException:
            out = {"crash": traceback.format_exc()}
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    chunks = []
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    out = json.loads(b"".join(chunks) or b'{"crash": "no report"}')
    assert "crash" not in out, out["crash"]
    assert host_mounts() == mounts_before, "the host's mount table changed"
    return out


def errno_of(fn) -> int:
    try:
        fn()
    except OSError as e:
        return e.errno
    return 0


def write(path: str) -> None:
    with open(path, "w") as f:
        f.write("x")


def fstype_of(path: str) -> str:
    best = ("", "")
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            point = left.split()[4]
            if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) >= len(
                    best[0]):
                best = (point, right.split()[0])
    return best[1]


def test_default_spec_gives_runc_view(make_bundle):
    b = make_bundle(["true"])

    def check():
        null = os.stat("/dev/null")
        with open("/proc/timer_list", "rb") as f:  # masked file (kcore may not exist)
            masked = f.read(16)
        return {
            "proc": fstype_of("/proc"), "self": os.path.exists("/proc/self/status"),
            "null": [stat.S_ISCHR(null.st_mode), os.major(null.st_rdev),
                     os.minor(null.st_rdev), stat.S_IMODE(null.st_mode)],
            "devs": sorted(n for n in ("zero", "full", "random", "urandom", "tty")
                           if stat.S_ISCHR(os.stat("/dev/" + n).st_mode)),
            "ptmx": os.readlink("/dev/ptmx"), "fd": os.readlink("/dev/fd"),
            "stdin": os.readlink("/dev/stdin"), "pts": fstype_of("/dev/pts"),
            "shm": fstype_of("/dev/shm"), "mqueue": fstype_of("/dev/mqueue"),
            "sys": fstype_of("/sys"), "masked": masked.hex(),
            "acpi": fstype_of("/proc/acpi"), "acpiw": errno_of(lambda: write("/proc/acpi/x")),
            "kcore_link": os.readlink("/dev/core") if os.path.lexists("/dev/core") else "",
            "procsys": errno_of(lambda: write("/proc/sys/kernel/hostname")),
            "sysrq": errno_of(lambda: write("/proc/sysrq-trigger")),
            "root": errno_of(lambda: write("/newfile")),
            "sysro": bool(os.statvfs("/sys").f_flag & 1),
            "cgroup": sorted(os.listdir("/sys/fs/cgroup")),
            "cgroupw": errno_of(lambda: os.mkdir("/sys/fs/cgroup/memory/x")),
            "cgroupt": errno_of(lambda: os.mkdir("/sys/fs/cgroup/x")),
            "shmw": errno_of(lambda: write("/dev/shm/ok")),
            "cwd": os.getcwd(), "busybox": os.path.exists("/bin/busybox"),
        }

    r = run_container(b, check)["result"]
    assert r["proc"] == "proc" and r["self"]
    assert r["null"] == [True, 1, 3, 0o666]
    assert r["devs"] == ["full", "random", "tty", "urandom", "zero"]
    assert (r["ptmx"], r["fd"], r["stdin"]) == ("pts/ptmx", "/proc/self/fd", "/proc/self/fd/0")
    assert (r["pts"], r["shm"], r["mqueue"], r["sys"]) == ("devpts", "tmpfs", "mqueue",
                                                          "sysfs")
    assert r["masked"] == ""  # /dev/null bound over it
    assert r["acpi"] == "tmpfs" and r["acpiw"] == errno.EROFS  # a masked directory
    assert r["kcore_link"] == ("/proc/kcore" if os.path.exists("/proc/kcore") else "")
    assert r["procsys"] == errno.EROFS
    assert r["sysrq"] == (errno.EROFS if os.path.exists("/proc/sysrq-trigger") else errno.ENOENT)
    assert r["root"] == errno.EROFS and r["sysro"]
    assert "memory" in r["cgroup"] and "cpu" in r["cgroup"]
    assert r["cgroupw"] == errno.EROFS and r["cgroupt"] == errno.EROFS
    assert r["shmw"] == 0
    assert r["cwd"] == "/" and r["busybox"]


def test_bind_ro_tmpfs_size_mode_and_rro(make_bundle, tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "file").write_text("hello")
    b = make_bundle(["true"])

    def edit(spec):
        spec["root"]["readonly"] = False
        spec["mounts"] += [
            {"destination": "/data", "source": str(data), "options": ["rbind", "ro"]},
            {"destination": "/rdata", "source": str(data), "options": ["rbind", "rro"]},
            {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
             "options": ["size=1m", "mode=700", "nosuid"]},
            {"destination": "/etc/hostname.bind", "source": str(data / "file"),
             "options": ["bind"]},
        ]

    def before():  # a submount in the child's namespace: rro reaches it, ro does not
        sc.LINUX.mount("tmpfs", str(data / "sub"), "tmpfs", 0, "size=64k")

    def check():
        sv = os.statvfs("/scratch")
        with open("/data/file") as f:
            content = f.read()
        with open("/etc/hostname.bind") as f:
            bound = f.read()
        return {
            "content": content, "bound": bound,
            "dataw": errno_of(lambda: write("/data/new")),
            "subw": errno_of(lambda: write("/data/sub/new")),
            "rsubw": errno_of(lambda: write("/rdata/sub/new2")),
            "size": sv.f_blocks * sv.f_frsize,
            "mode": stat.S_IMODE(os.stat("/scratch").st_mode),
            "nosuid": bool(sv.f_flag & 2),
            "rootw": errno_of(lambda: write("/tmp/rootw")),
        }

    r = run_container(b, check, edit=edit, before=before)["result"]
    assert r["content"] == "hello" and r["bound"] == "hello"
    assert r["dataw"] == errno.EROFS
    assert r["subw"] == 0  # "ro" is not recursive
    assert r["rsubw"] == errno.EROFS
    assert r["size"] == 1 << 20 and r["mode"] == 0o700 and r["nosuid"]
    assert r["rootw"] == 0
    assert not (data / "new").exists()


def test_symlink_destination_is_contained(make_bundle, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    b = make_bundle(["true"])
    os.symlink(str(outside), b / "rootfs" / "escape")
    os.symlink("../../../../../../../../etc", b / "rootfs" / "tmp" / "hostetc")

    def edit(spec):
        spec["mounts"] += [
            {"destination": "/escape", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/tmp/hostetc/dockyard-test", "type": "tmpfs", "source": "tmpfs"},
        ]

    def check():
        write("/escape/pwned")
        return {"escape": fstype_of(os.path.realpath("/escape")),
                "etc": os.path.isdir("/etc/dockyard-test")}

    r = run_container(b, check, edit=edit)["result"]
    assert r == {"escape": "tmpfs", "etc": True}
    assert list(outside.iterdir()) == []
    assert not os.path.exists("/etc/dockyard-test")
    assert (b / "rootfs" / "etc" / "dockyard-test").is_dir()


@pytest.mark.parametrize("mount,message", [
    ({"destination": "/proc", "source": "/tmp", "options": ["rbind"]}, "not of type proc"),
    ({"destination": "/proc/sys", "type": "tmpfs", "source": "tmpfs"}, "inside /proc"),
])
def test_mounts_over_proc_are_refused(make_bundle, mount, message):
    b = make_bundle(["true"])
    out = run_container(b, lambda: {}, edit=lambda s: s["mounts"].append(mount))
    assert message in out["error"]


def test_proc_through_a_symlink_is_refused(make_bundle):
    b = make_bundle(["true"])
    os.rmdir(b / "rootfs" / "proc")
    os.symlink("/tmp", b / "rootfs" / "proc")
    out = run_container(b, lambda: {})
    assert "ordinary directory" in out["error"]


def test_linux_devices_and_userns_style_binds(make_bundle):
    b = make_bundle(["true"])

    def edit(spec):
        spec["linux"]["devices"] = [
            {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640,
             "uid": 7, "gid": 8},
            {"path": "/dev/sub/fifo", "type": "p"}]

    def check():
        st = os.stat("/dev/mynull")
        return {"mynull": [stat.S_ISCHR(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid,
                           st.st_gid],
                "fifo": stat.S_ISFIFO(os.stat("/dev/sub/fifo").st_mode)}

    r = run_container(b, check, edit=edit)["result"]
    assert r == {"mynull": [True, 0o640, 7, 8], "fifo": True}

    def check_bound():
        st = os.stat("/dev/zero")
        return [stat.S_ISCHR(st.st_mode), os.major(st.st_rdev), os.minor(st.st_rdev)]

    assert run_container(b, check_bound, prepare_kw={"in_userns": True})["result"] == [
        True, 1, 5]


def test_tmpcopyup_keeps_the_image_content(make_bundle):
    b = make_bundle(["true"])

    def edit(spec):
        spec["mounts"].append({"destination": "/etc", "type": "tmpfs", "source": "tmpfs",
                               "options": ["tmpcopyup"]})

    def check():
        with open("/etc/passwd") as f:
            first = f.readline().strip()
        write("/etc/new")
        return {"passwd": first, "fs": fstype_of("/etc")}

    r = run_container(b, check, edit=edit)["result"]
    assert r == {"passwd": "root:x:0:0:root:/root:/bin/sh", "fs": "tmpfs"}
    assert not (b / "rootfs" / "etc" / "new").exists()


def test_no_pivot_moves_the_root(make_bundle):
    b = make_bundle(["true"])

    def check():
        return {"busybox": os.path.exists("/bin/busybox"), "proc": fstype_of("/proc"),
                "null": stat.S_ISCHR(os.stat("/dev/null").st_mode)}

    assert run_container(b, check, no_pivot=True)["result"] == {
        "busybox": True, "proc": "proc", "null": True}


def test_rootfs_propagation_private_is_applied(make_bundle):
    b = make_bundle(["true"])

    def edit(spec):
        spec["linux"]["rootfsPropagation"] = "rprivate"

    def check():
        with open("/proc/self/mountinfo") as f:
            root = next(line for line in f if line.split()[4] == "/")
        return "shared:" not in root and "master:" not in root

    assert run_container(b, check, edit=edit)["result"] is True
