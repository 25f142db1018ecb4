"""Credentials, limits and seccomp applied for real, each in a forked child that reports what
it sees (its /proc/self/status, errnos) through a pipe. The test process itself never changes
its own credentials, limits or filters."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import select
import signal
import socket
import struct
import traceback

import pytest

from dockyard.runtime.errors import ConfigError
from dockyard.runtime.linux import capabilities, credentials, rlimits, seccomp
from dockyard.runtime.linux import syscalls as sc

pytestmark = pytest.mark.root

CAP_SYS_RESOURCE = 1 << capabilities.CAP_SYS_RESOURCE
NO_SYS_RESOURCE = ("CAP_SYS_RESOURCE is not in this machine's bounding set: nothing here "
                   "can raise a hard rlimit or lower oom_score_adj")


def have_sys_resource() -> bool:
    return bool(sc.capget()[0] & CAP_SYS_RESOURCE)


def in_child(fn, *args):
    """Run fn(*args) in a forked child.

    Returns (wait status, {"ok": result} or {"error": text}); None instead when it was killed.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(r)
            null = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1, 2):  # never touch the runner's terminal or capture files
                os.dup2(null, fd)
            try:
                out = {"ok": fn(*args)}
                code = 0
            except BaseException as e:
                out = {"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()}
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    return status, (json.loads(b"".join(chunks)) if chunks else None)


def run(fn, *args):
    """in_child for a child that must succeed: its result."""
    status, out = in_child(fn, *args)
    assert out is not None and "ok" in out, out
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    return out["ok"]


def error_of(fn, *args) -> str:
    """in_child for a child that must fail: its error, as "ExceptionType: message"."""
    status, out = in_child(fn, *args)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 1, (status, out)
    return out["error"]


def proc_status() -> dict[str, str]:
    with open("/proc/self/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def hexmask(names: list[str]) -> str:
    return f"{capabilities.mask(names):016x}"


def drop_sys_resource() -> None:
    eff, prm, inh = sc.capget()
    sc.capset(eff & ~CAP_SYS_RESOURCE, prm & ~CAP_SYS_RESOURCE, inh & ~CAP_SYS_RESOURCE)


# ------------------------------------------------------------------ credentials

CAPS = {
    "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"],
    "permitted": ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"],
    "effective": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
    "inheritable": ["CAP_NET_BIND_SERVICE", "CAP_NET_RAW"],
    "ambient": ["CAP_NET_BIND_SERVICE"],
}


def test_apply_sets_ids_groups_capabilities_and_umask():
    def child():
        warnings = credentials.apply({"user": {"uid": 1000, "gid": 1001, "umask": 0o027,
                                               "additionalGids": [20, 10, 20]},
                                      "capabilities": CAPS})
        return {"status": proc_status(), "umask": os.umask(0o022), "warnings": warnings}

    got = run(child)
    st = got["status"]
    assert st["Uid"].split() == ["1000"] * 4
    assert st["Gid"].split() == ["1001"] * 4
    assert st["Groups"].split() == ["10", "20"]
    assert st["CapBnd"] == hexmask(CAPS["bounding"])
    assert st["CapPrm"] == hexmask(CAPS["permitted"])
    assert st["CapEff"] == hexmask(CAPS["effective"])
    assert st["CapInh"] == hexmask(CAPS["inheritable"])
    assert st["CapAmb"] == hexmask(CAPS["ambient"])
    assert st["NoNewPrivs"] == "0"
    assert got["umask"] == 0o027
    assert got["warnings"] == []


def test_no_capabilities_object_means_none_even_for_root():
    def child():
        credentials.apply({"user": {"uid": 0, "gid": 0}})
        return {"status": proc_status(), "umask": os.umask(0)}

    got = run(child)
    st = got["status"]
    assert st["Uid"].split() == ["0"] * 4
    assert st["Groups"].split() == []  # root's groups do not leak in
    for key in ("CapBnd", "CapPrm", "CapEff", "CapInh", "CapAmb"):
        assert int(st[key], 16) == 0, key
    assert got["umask"] == 0o022  # the default


def test_ambient_capability_outside_inheritable_is_a_warning():
    caps = dict(CAPS, ambient=["CAP_KILL"])  # in permitted, not in inheritable

    def child():
        warnings = credentials.apply({"user": {"uid": 1000, "gid": 1000},
                                      "capabilities": caps})
        return {"status": proc_status(), "warnings": warnings}

    got = run(child)
    assert int(got["status"]["CapAmb"], 16) == 0
    assert got["warnings"] == ["can't raise ambient capability CAP_KILL: Operation not "
                               "permitted"]


def test_effective_outside_permitted_fails_naming_the_step():
    caps = dict(CAPS, effective=["CAP_CHOWN"])

    def child():
        credentials.apply({"user": {"uid": 1000, "gid": 1000}, "capabilities": caps})

    error = error_of(child)
    assert error.startswith("PermissionError: [Errno 1] unable to apply caps: capset")


def test_stdio_is_given_to_the_new_user(tmp_path):
    log = tmp_path / "stdout"
    log.write_text("")

    def child():
        fd = os.open(log, os.O_WRONLY)
        os.dup2(fd, 1)
        credentials.apply({"user": {"uid": 1000, "gid": 1000}})
        return {"stdout": os.fstat(1).st_uid, "stdin": os.fstat(0).st_uid}

    got = run(child)
    assert got == {"stdout": 1000, "stdin": 0}  # fd 0 is /dev/null: left alone
    assert os.stat(log).st_uid == 1000
    assert os.stat("/dev/null").st_uid == 0


def enter_user_namespace_as_root() -> None:
    """A new user namespace mapping only our own ids to 0, with setgroups denied (all that a
    process may map for itself)."""
    uid, gid = os.getuid(), os.getgid()
    sc.unshare(sc.CLONE_NEWUSER)
    for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"),
                       ("gid_map", f"0 {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)


def test_unmapped_gid_in_a_user_namespace_is_named():
    def child():
        enter_user_namespace_as_root()
        credentials.apply({"user": {"uid": 1000, "gid": 1000}})

    error = error_of(child)
    assert "unable to setup user: cannot setgid to unmapped gid 1000 in user namespace" in \
        error


def test_groups_are_left_alone_where_setgroups_is_denied():
    def child():
        enter_user_namespace_as_root()
        credentials.apply({"user": {"uid": 0, "gid": 0, "additionalGids": [0]},
                           "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"],
                                            "permitted": ["CAP_KILL"]}})
        return proc_status()

    st = run(child)
    assert st["Uid"].split() == ["0"] * 4
    assert st["CapEff"] == hexmask(["CAP_KILL"])


def test_no_new_privs():
    def child():
        credentials.set_no_new_privs()
        return proc_status()["NoNewPrivs"]

    assert run(child) == "1"


# ------------------------------------------------------------------ oom_score_adj, rlimits

def read_oom(pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/oom_score_adj") as f:
        return int(f.read())


def test_raising_oom_score_adj():
    def child():
        credentials.set_oom_score_adj(os.getpid(), 500)
        return read_oom()

    assert run(child) == 500


def test_lowering_oom_score_adj():
    if not have_sys_resource():
        pytest.skip(NO_SYS_RESOURCE)

    def child():
        credentials.set_oom_score_adj(os.getpid(), -10)
        return read_oom()

    assert run(child) == -10


def test_lowering_oom_score_adj_without_cap_sys_resource_says_why():
    def child():
        drop_sys_resource()
        credentials.set_oom_score_adj(os.getpid(), -1000)

    if read_oom() == -1000:
        pytest.skip("oom_score_adj is at its minimum already")
    error = error_of(child)
    assert "oom_score_adj (-1000)" in error
    assert "lowering oom_score_adj needs CAP_SYS_RESOURCE" in error


def test_lowering_nofile():
    def child():
        rlimits.apply([{"type": "RLIMIT_NOFILE", "soft": 64, "hard": 128},
                       {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}])
        return [rlimits.get(rlimits.RLIMITS["RLIMIT_NOFILE"]),
                rlimits.get(rlimits.RLIMITS["RLIMIT_CORE"])]

    assert run(child) == [[64, 128], [0, 0]]


def test_raising_a_hard_limit():
    if not have_sys_resource():
        pytest.skip(NO_SYS_RESOURCE)

    def child():
        soft, hard = rlimits.get(7)
        rlimits.apply([{"type": "RLIMIT_NOFILE", "soft": soft, "hard": hard + 1}])
        return rlimits.get(7)[1] - hard

    assert run(child) == 1


def test_raising_a_hard_limit_without_cap_sys_resource_says_why():
    def child():
        drop_sys_resource()
        rlimits.apply([{"type": "RLIMIT_NOFILE", "soft": 64, "hard": 128}])
        rlimits.apply([{"type": "RLIMIT_NOFILE", "soft": 64, "hard": 256}])

    error = error_of(child)
    assert error == ("PermissionError: [Errno 1] error setting rlimit type RLIMIT_NOFILE: "
                            "Operation not permitted (raising the hard limit above 128 needs "
                            "CAP_SYS_RESOURCE)")


# ------------------------------------------------------------------ seccomp

def errno_of(fn, *args) -> int:
    try:
        fn(*args)
    except OSError as e:
        return e.errno
    return 0


def mkdir_under(profile: dict, path: str):
    """A child body: load `profile`, then report how mkdir(path) went."""
    def child():
        assert seccomp.load(profile) is None
        return {"mkdir": errno_of(os.mkdir, path), "mode": proc_status()["Seccomp"]}
    return child


def allow_but(*syscalls: dict, **top) -> dict:
    return {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": list(syscalls), **top}


def test_errno_action_fails_the_call_with_eperm(tmp_path):
    prof = allow_but({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"})
    assert run(mkdir_under(prof, str(tmp_path / "d"))) == {"mkdir": errno.EPERM, "mode": "2"}
    assert not (tmp_path / "d").exists()


def test_errno_ret_chooses_the_errno(tmp_path):
    prof = allow_but({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                      "errnoRet": errno.EACCES})
    assert run(mkdir_under(prof, str(tmp_path / "d")))["mkdir"] == errno.EACCES


def test_unknown_syscall_names_are_ignored(tmp_path):
    prof = allow_but({"names": ["no_such_syscall", "mkdir", "mkdirat", "futex_waitv2000"],
                      "action": "SCMP_ACT_ERRNO"})
    assert run(mkdir_under(prof, str(tmp_path / "d")))["mkdir"] == errno.EPERM


def test_log_action_allows(tmp_path):
    prof = allow_but({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_LOG"})
    assert run(mkdir_under(prof, str(tmp_path / "d")))["mkdir"] == 0
    assert (tmp_path / "d").is_dir()


def test_architectures_and_flags(tmp_path):
    prof = allow_but({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
                     architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                     flags=["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                            "SECCOMP_FILTER_FLAG_SPEC_ALLOW"])
    assert run(mkdir_under(prof, str(tmp_path / "d")))["mkdir"] == errno.EPERM


def test_a_long_profile_is_optimised_and_still_exact(tmp_path):
    rare = ["acct", "add_key", "bpf", "delete_module", "finit_module", "fsconfig", "fsmount",
            "fsopen", "fspick", "init_module", "kexec_file_load", "kexec_load", "keyctl",
            "lookup_dcookie", "mount_setattr", "move_mount", "nfsservctl", "open_by_handle_at",
            "open_tree", "perf_event_open", "pivot_root", "quotactl", "reboot",
            "request_key", "setdomainname", "sethostname", "swapoff", "swapon", "sysfs",
            "umount2", "uselib", "userfaultfd", "vhangup", "mkdir", "mkdirat"]
    prof = allow_but(*({"names": [n], "action": "SCMP_ACT_ERRNO"} for n in rare))
    assert run(mkdir_under(prof, str(tmp_path / "d")))["mkdir"] == errno.EPERM


def test_argument_conditions(tmp_path):
    # personality(0xffffffff) only reads the persona: allowed; any other value is refused,
    # and a masked test picks out PER_LINUX32 (8) for a different errno.
    prof = allow_but(
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EINVAL,
         "args": [{"index": 0, "value": 0xFF, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 0xFFFFFFFF, "op": "SCMP_CMP_NE"}]})

    def child():
        personality = sc.libc.personality
        personality.argtypes = (ctypes.c_ulong,)
        seccomp.load(prof)
        out = {}
        for arg in (0xFFFFFFFF, 0, 8):
            ctypes.set_errno(0)
            ret = personality(arg)
            out[str(arg)] = ctypes.get_errno() if ret == -1 else 0
        return out

    assert run(child) == {str(0xFFFFFFFF): 0, "0": errno.EPERM, "8": errno.EINVAL}


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
                                    "SCMP_ACT_KILL", "SCMP_ACT_TRAP"])
def test_kill_and_trap_end_the_process_with_sigsys(tmp_path, action):
    prof = allow_but({"names": ["mkdir", "mkdirat"], "action": action})
    status, out = in_child(mkdir_under(prof, str(tmp_path / "d")))
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS, (status, out)
    assert out is None


def test_default_action_with_an_allow_list(tmp_path):
    # What the child does after loading: mkdir, then write to the pipe and exit; Python may
    # also touch memory and signal masks on the way.
    needed = ["write", "exit", "exit_group", "brk", "mmap", "munmap", "mremap", "madvise",
              "futex", "rt_sigprocmask", "rt_sigaction", "getpid", "gettid", "close"]
    prof = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": errno.ENOSYS,
            "syscalls": [{"names": needed, "action": "SCMP_ACT_ALLOW"}]}

    def child():
        seccomp.load(prof)
        return errno_of(os.mkdir, str(tmp_path / "d"))

    assert run(child) == errno.ENOSYS


def test_loading_without_no_new_privs_needs_cap_sys_admin():
    def child():
        credentials.apply({"user": {"uid": 1000, "gid": 1000}})
        seccomp.load(allow_but({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}))

    error = error_of(child)
    assert "error loading seccomp filter into kernel: Permission denied" in error


def test_with_no_new_privs_the_filter_loads_after_dropping_everything(tmp_path):
    """The init's order when noNewPrivileges is set: nnp, credentials, then seccomp."""
    prof = allow_but({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"})

    def child():
        credentials.set_no_new_privs()
        credentials.apply({"user": {"uid": 1000, "gid": 1000}})
        seccomp.load(prof)
        st = proc_status()
        return {"mkdir": errno_of(os.mkdir, str(tmp_path / "d")), "nnp": st["NoNewPrivs"],
                "uid": st["Uid"], "seccomp": st["Seccomp"]}

    assert run(child) == {"mkdir": errno.EPERM, "nnp": "1", "uid": "1000\t1000\t1000\t1000",
                          "seccomp": "2"}


def test_the_filter_does_not_set_no_new_privs_itself():
    def child():
        seccomp.load(allow_but({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}))
        return proc_status()["NoNewPrivs"]

    assert run(child) == "0"


def test_an_unsupported_flag_is_a_clear_error():
    flag = "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
    if flag in seccomp.features()["supportedFlags"]:
        pytest.skip(f"this libseccomp supports {flag}")

    def child():
        seccomp.load(allow_but({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}, flags=[flag]))

    error = error_of(child)
    assert error.startswith(f"ConfigError: seccomp flag {flag} is not supported by "
                                   f"libseccomp {seccomp.version()}")


def test_bad_action_is_a_config_error_before_anything_loads():
    with pytest.raises(ConfigError, match="SCMP_ACT_BOGUS is not a valid action"):
        seccomp.load(allow_but({"names": ["mkdir"], "action": "SCMP_ACT_BOGUS"}))
    assert proc_status()["Seccomp"] == "0"


SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101


def test_notify_hands_the_fd_to_the_agent_which_answers(tmp_path):
    """A seccomp agent on listenerPath gets the state and the fd, then answers mkdir."""
    import fcntl

    path = str(tmp_path / "agent.sock")
    prof = allow_but({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"},
                     listenerPath=path, listenerMetadata="hello")
    state = json.dumps({"ociVersion": "1.2.0", "fds": ["seccompFd"], "pid": 1,
                        "metadata": "hello", "state": {"id": "c1"}}).encode()
    agent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    agent.bind(path)
    agent.listen(1)

    def child():
        fd = seccomp.load(prof)
        kind = os.readlink(f"/proc/self/fd/{fd}")
        seccomp.send_listener(path, fd, state)
        os.close(fd)
        return {"kind": kind, "mkdir": errno_of(os.mkdir, str(tmp_path / "d"))}

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            agent.close()
            os.write(w, json.dumps(run(child)).encode())
        finally:
            os._exit(0)
    os.close(w)
    try:
        agent.settimeout(10)
        conn, _ = agent.accept()
        msg, fds, _, _ = socket.recv_fds(conn, 65536, 1)
        conn.close()
        assert json.loads(msg) == json.loads(state)
        assert len(fds) == 1
        notify = fds[0]
        assert select.select([notify], [], [], 10)[0], "no notification within 10 s"
        req = bytearray(80)  # struct seccomp_notif
        fcntl.ioctl(notify, SECCOMP_IOCTL_NOTIF_RECV, req, True)
        req_id, _pid, _flags, nr = struct.unpack_from("QIIi", req)
        assert nr in (83, 258)  # mkdir, mkdirat on x86_64
        fcntl.ioctl(notify, SECCOMP_IOCTL_NOTIF_SEND,
                    bytearray(struct.pack("QqiI", req_id, 0, -errno.EXDEV, 0)), True)
        os.close(notify)
    finally:
        agent.close()
        got = os.read(r, 65536)
        os.close(r)
        os.waitpid(pid, 0)
    assert json.loads(got) == {"kind": "anon_inode:seccomp notify", "mkdir": errno.EXDEV}


def test_send_listener_names_the_socket_it_cannot_reach(tmp_path):
    with pytest.raises(OSError, match=r"failed to connect with seccomp agent .*nowhere\.sock"):
        seccomp.send_listener(str(tmp_path / "nowhere.sock"), 0, b"{}")


def test_a_compiled_filter_is_kept_and_reused_and_loads_the_same(tmp_path):
    """The CLI compiles once per profile (seccomp.program with a cache); the init installs
    what it is given."""
    prof = allow_but({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"})
    cache = str(tmp_path / "@seccomp")
    first = seccomp.program(prof, cache)
    assert len(os.listdir(cache)) == 1
    again = seccomp.program(prof, cache)
    assert (again.bpf, again.flags, again.nr) == (first.bpf, first.flags, first.nr)
    assert first.bpf == seccomp.program(prof).bpf  # the same as compiled afresh

    def child():
        assert seccomp.install(seccomp.Program.from_json(again.to_json())) is None
        return {"mkdir": errno_of(os.mkdir, str(tmp_path / "d")), "mode": proc_status()["Seccomp"]}

    assert run(child) == {"mkdir": errno.EPERM, "mode": "2"}
