"""The OCI runtime spec (a bundle's config.json) that dockyardd makes for a Docker container,
from its Config and HostConfig, the way dockerd builds it (daemon/oci_linux.go on top of
oci/defaults.go), so that a container looks the same inside as under Docker.

    make_spec(SpecInput(id, config, host_config, mounts=…))  ->  {"ociVersion": …, …}

The steps, in the order the spec is assembled:
  check      what dockerd refuses at this stage (InvalidParameter, Docker's wording)
  caps       Docker's default set, CapAdd/CapDrop ("ALL", with or without CAP_), privileged
  process    args (with docker-init for Init), env, cwd, user from the rootfs's passwd/group,
             terminal, rlimits, noNewPrivileges, oomScoreAdj, apparmor
  mounts     Docker's defaults (/proc, /dev, /dev/pts, /sys, /sys/fs/cgroup, /dev/mqueue,
             /dev/shm), then the caller's and Tmpfs ones sorted by depth; a caller's mount
             replaces the default at the same place
  linux      namespaces per *Mode, sysctls, devices and resources, cgroupsPath,
             seccomp, masked and read-only paths

Caller-resolved things (volumes, binds, /etc/hosts, /etc/resolv.conf, /etc/hostname, the
/dev/shm of a shareable IPC, namespace paths to join) come in as data: this module looks at
the host only for device nodes, the docker-init binary, the kernel's capability count and
which cgroup limits it supports (each can be passed in instead, as the tests do).
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dockyard.engine.containers import capabilities, resources, seccomp_default, users
from dockyard.engine.containers.spec_mounts import INIT_IN_CONTAINER, mounts, tmpfs_mounts
from dockyard.engine.errors import InvalidParameter

OCI_VERSION = "1.0.2-dev"
DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MASKED_PATHS = ("/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/proc/scsi", "/sys/firmware")
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

# Sysctls that a new network namespace gets unless the container sets them itself: ports
# below 1024 and ICMP echo sockets without CAP_NET_BIND_SERVICE / CAP_NET_RAW.
NETNS_SYSCTLS = {"net.ipv4.ip_unprivileged_port_start": "0",
                 "net.ipv4.ping_group_range": "0 2147483647"}
IPC_SYSCTLS = frozenset({"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                         "kernel.shmall", "kernel.shmmax", "kernel.shmmni",
                         "kernel.shm_rmid_forced"})

RLIMITS = frozenset({"as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue",
                     "nice", "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending",
                     "stack"})


@dataclass(frozen=True)
class SpecInput:
    id: str                          # container id (64 hex)
    config: Mapping[str, Any]        # Config, merged with the image's (Cmd, Env… final)
    host_config: Mapping[str, Any]   # HostConfig as the API received it
    mounts: Sequence[Mapping[str, Any]] = ()   # OCI mounts the caller resolved
    cgroup_parent: str = "/docker"   # the daemon's; HostConfig.CgroupParent wins when set
    netns_path: str | None = None    # join this network namespace (or host's, for "host")
    pidns_path: str | None = None    # PidMode container:<id>
    ipcns_path: str | None = None    # IpcMode container:<id>
    hostname: str = ""               # Config.Hostname or the id's first 12 chars
    rootfs: str | Sequence[str] | None = None  # where /etc/passwd and /etc/group are read:
                                     # the rootfs, or an overlay's dirs (upper first)
    init_path: str | None = None     # the daemon's init-path; None: look for docker-init
    apparmor: bool = False           # AppArmor enabled on the host (docker-default loaded)
    arch: str | None = None          # GOARCH-style; None: this machine's
    kernel: tuple[int, ...] | None = None      # for the profile's minKernel; None: uname
    all_caps: tuple[str, ...] | None = None    # the kernel's; None: /proc's cap_last_cap
    default_cgroupns: str = "host"   # "host" on cgroup v1 (here), "private" on v2
    cgroups: resources.CgroupSupport | None = None  # None: probe /sys/fs/cgroup


@dataclass(frozen=True)
class SecurityOpts:
    no_new_privileges: bool = False
    seccomp: str | None = None       # None: the default; "unconfined"; else a JSON profile
    apparmor: str | None = None
    unconfined_paths: bool = False   # systempaths=unconfined
    writable_cgroups: bool = False   # writable-cgroups=true


def make_spec(i: SpecInput) -> dict[str, Any]:
    """The OCI spec dockerd would give containerd for this container; root.path "rootfs"."""
    hc = i.host_config
    check(i)
    sec = security_opts(hc.get("SecurityOpt") or ())
    caps = capabilities.tweak(hc.get("CapAdd"), hc.get("CapDrop"),
                              privileged=bool(hc.get("Privileged")),
                              available=i.all_caps)
    spec: dict[str, Any] = {"ociVersion": OCI_VERSION, "process": process(i, caps, sec),
                            "root": {"path": "rootfs"}}
    if hc.get("ReadonlyRootfs"):
        spec["root"]["readonly"] = True
    if not _is_host(hc.get("UTSMode")) and i.hostname:
        spec["hostname"] = i.hostname
    spec["mounts"] = mounts(i, writable_cgroups=sec.writable_cgroups)
    spec["hooks"] = {}  # as dockerd writes it: no hooks of its own (networking is set up
    #                     before the start, the namespace passed in as netns_path)
    if hc.get("Annotations"):
        spec["annotations"] = dict(hc["Annotations"])
    spec["linux"] = linux(i, caps, sec)
    return spec


# -- check ---------------------------------------------------------------------------------

def check(i: SpecInput) -> None:
    """What dockerd refuses when a container is created (make_spec checks it again)."""
    hc, config = i.host_config, i.config
    if not command(config):
        raise InvalidParameter("No command specified")
    workdir = config.get("WorkingDir") or ""
    if workdir and not posixpath.isabs(workdir):
        raise InvalidParameter(f"the working directory '{workdir}' is invalid, it needs to be "
                               "an absolute path")
    _check_mode("IPC", hc.get("IpcMode"), ("", "none", "private", "shareable", "host"), True)
    _check_mode("PID", hc.get("PidMode"), ("", "host"), True)
    _check_mode("UTS", hc.get("UTSMode"), ("", "host"), False)
    _check_mode("USER", hc.get("UsernsMode"), ("", "host", "private"), False)
    cgroupns = hc.get("CgroupnsMode") or ""
    if cgroupns not in ("", "host", "private"):
        raise InvalidParameter(f"invalid cgroup namespace mode: {cgroupns}")
    resources.validate(hc)
    for request in hc.get("DeviceRequests") or ():
        wanted = " ".join("[" + " ".join(c) + "]" for c in request.get("Capabilities") or ())
        raise InvalidParameter(f'could not select device driver "{request.get("Driver", "")}"'
                               f" with capabilities: [{wanted}]")
    for ul in hc.get("Ulimits") or ():
        if str(ul.get("Name", "")).lower() not in RLIMITS:
            raise InvalidParameter(f"invalid ulimit type: {ul.get('Name', '')}")
        if int(ul.get("Soft", 0)) > int(ul.get("Hard", 0)):
            raise InvalidParameter(f"ulimit soft limit must be less than or equal to hard "
                                   f"limit: {ul.get('Soft')} > {ul.get('Hard')}")
    if (hc.get("ShmSize") or 0) < 0:
        raise InvalidParameter("SHM size can not be less than 0")
    # What else dockerd refuses when the container is created rather than started.
    security_opts(hc.get("SecurityOpt") or ())
    capabilities.normalize(hc.get("CapAdd") or (), "CapAdd")
    capabilities.normalize(hc.get("CapDrop") or (), "CapDrop")
    tmpfs_mounts(hc.get("Tmpfs"))
    resources.cgroup_rules(hc)


def _check_mode(what: str, mode: str | None, plain: Sequence[str], container: bool) -> None:
    mode = mode or ""
    if mode in plain or (container and mode.startswith("container:") and mode[10:]):
        return
    raise InvalidParameter(f"invalid {what} mode: {mode}")


def _is_host(mode: str | None) -> bool:
    return (mode or "") == "host"


def _joins(mode: str | None) -> bool:
    return (mode or "").startswith("container:")


def security_opts(opts: Sequence[str]) -> SecurityOpts:
    """HostConfig.SecurityOpt, as dockerd parses it ("key=value", the old "key:value")."""
    nnp, seccomp, apparmor, unconfined, cgroups_rw = False, None, None, False, False
    for opt in opts:
        if opt == "no-new-privileges":
            nnp = True
            continue
        sep = "=" if "=" in opt else ":"
        key, found, value = opt.partition(sep)
        if not found:
            raise InvalidParameter(f'invalid --security-opt 1: "{opt}"')
        if key == "label":
            continue  # SELinux labels: nothing to do on a host without SELinux
        if key == "apparmor":
            apparmor = value
        elif key == "seccomp":
            seccomp = value
        elif key == "no-new-privileges" and value.lower() in ("true", "1", "false", "0"):
            nnp = value.lower() in ("true", "1")
        elif key == "systempaths" and value == "unconfined":
            unconfined = True
        elif key == "writable-cgroups" and value.lower() in ("true", "1", "false", "0"):
            cgroups_rw = value.lower() in ("true", "1")
        else:
            raise InvalidParameter(f'invalid --security-opt 2: "{opt}"')
    return SecurityOpts(nnp, seccomp, apparmor, unconfined, cgroups_rw)


# -- process -------------------------------------------------------------------------------

def command(config: Mapping[str, Any]) -> list[str]:
    """Entrypoint then Cmd; either may be a single string (the API's strslice)."""
    def words(value: Any) -> list[str]:
        return [value] if isinstance(value, str) else list(value or ())
    return [*words(config.get("Entrypoint")), *words(config.get("Cmd"))]


def process(i: SpecInput, caps: list[str], sec: SecurityOpts) -> dict[str, Any]:
    hc, config = i.host_config, i.config
    args = command(config)
    if hc.get("Init"):
        args = [INIT_IN_CONTAINER, "--", *args]
    uid, gid, gids = users.resolve(config.get("User") or "", hc.get("GroupAdd") or (),
                                   i.rootfs)
    out: dict[str, Any] = {}
    if config.get("Tty"):
        out["terminal"] = True
        size = hc.get("ConsoleSize") or (0, 0)
        if size[0] and size[1]:
            out["consoleSize"] = {"height": int(size[0]), "width": int(size[1])}
    out["user"] = {"uid": uid, "gid": gid, "additionalGids": gids}
    out["args"] = args
    out["env"] = environment(i)
    out["cwd"] = posixpath.normpath(config.get("WorkingDir") or "/")
    cap_set: dict[str, list[str]] = {"bounding": list(caps)}
    if uid == 0:  # a non-root user starts with nothing effective, as under Docker
        cap_set.update(effective=list(caps), permitted=list(caps))
    out["capabilities"] = cap_set
    rlimits = [{"type": "RLIMIT_" + str(u["Name"]).upper(), "hard": int(u.get("Hard", 0)),
                "soft": int(u.get("Soft", 0))} for u in hc.get("Ulimits") or ()]
    if rlimits:
        out["rlimits"] = rlimits
    if i.apparmor:
        out["apparmorProfile"] = sec.apparmor or ("unconfined" if hc.get("Privileged")
                                                  else "docker-default")
    if sec.no_new_privileges:
        out["noNewPrivileges"] = True
    out["oomScoreAdj"] = int(hc.get("OomScoreAdj") or 0)
    return out


def environment(i: SpecInput) -> list[str]:
    """PATH and HOSTNAME (and TERM with a tty), then Config.Env replacing or appending; an
    entry without "=" removes the variable."""
    env = [DEFAULT_PATH_ENV, f"HOSTNAME={i.hostname}"]
    if i.config.get("Tty"):
        env.append("TERM=xterm")
    for entry in i.config.get("Env") or ():
        key = entry.partition("=")[0]
        at = next((n for n, e in enumerate(env) if e.partition("=")[0] == key), None)
        if "=" not in entry:
            if at is not None:
                del env[at]
        elif at is None:
            env.append(entry)
        else:
            env[at] = entry
    return env


# -- linux ---------------------------------------------------------------------------------

def namespaces(i: SpecInput) -> list[dict[str, Any]]:
    hc = i.host_config
    out: list[dict[str, Any]] = [{"type": "mount"}]
    net = hc.get("NetworkMode") or ""
    if _joins(net) and not i.netns_path:
        raise InvalidParameter(f"cannot join the network of {net[10:]}: no namespace path")
    if i.netns_path:
        out.append({"type": "network", "path": i.netns_path})
    elif not _is_host(net):
        out.append({"type": "network"})
    if not _is_host(hc.get("UTSMode")):
        out.append({"type": "uts"})
    for kind, mode, path in (("pid", hc.get("PidMode"), i.pidns_path),
                             ("ipc", hc.get("IpcMode"), i.ipcns_path)):
        if _joins(mode):
            if not path:
                raise InvalidParameter(f"cannot join the {kind.upper()} namespace of "
                                       f"{(mode or '')[10:]}: no namespace path")
            out.append({"type": kind, "path": path})
        elif not _is_host(mode):
            out.append({"type": kind})
    if (hc.get("CgroupnsMode") or i.default_cgroupns) == "private":
        out.append({"type": "cgroup"})
    return out


def sysctls(i: SpecInput) -> dict[str, str]:
    """Docker's defaults for a private network namespace, kernel.domainname, then the
    container's own, each checked to live in a namespace the container does not share."""
    hc, config = i.host_config, i.config
    out: dict[str, str] = {}
    net = hc.get("NetworkMode") or ""
    if not _is_host(net) and not _joins(net):
        out.update(NETNS_SYSCTLS)
    if config.get("Domainname") and not _is_host(hc.get("UTSMode")):
        out["kernel.domainname"] = config["Domainname"]
    for key, value in (hc.get("Sysctls") or {}).items():
        check_sysctl(key, hc)
        out[key] = str(value)
    return dict(sorted(out.items()))


def check_sysctl(key: str, hc: Mapping[str, Any]) -> None:
    if key in IPC_SYSCTLS or key.startswith("fs.mqueue."):
        if _is_host(hc.get("IpcMode")):
            raise InvalidParameter(f'sysctl "{key}" is not allowed in the hosts ipc namespace')
    elif key.startswith("net."):
        if _is_host(hc.get("NetworkMode")):
            raise InvalidParameter(f'sysctl "{key}" not allowed in host network namespace')
    elif key in ("kernel.domainname", "kernel.hostname"):
        if _is_host(hc.get("UTSMode")):
            raise InvalidParameter(f'sysctl "{key}" is not allowed in the hosts uts namespace')
        if key == "kernel.hostname":
            raise InvalidParameter('sysctl "kernel.hostname" is not allowed as it conflicts '
                                   'with the OCI "hostname" field')
    else:
        raise InvalidParameter(f'sysctl "{key}" is not in a separate kernel namespace')


def rootfs_propagation(binds: Sequence[Mapping[str, Any]]) -> str:
    """A bind that propagates needs the rootfs to propagate too: "shared" for a shared
    one, "rslave" for a slave one (the caller made the sources shared or slave)."""
    kinds = {o for m in binds for o in m.get("options") or ()}
    if kinds & {"shared", "rshared"}:
        return "shared"
    if kinds & {"slave", "rslave"}:
        return "rslave"
    return ""


def seccomp(i: SpecInput, caps: list[str], sec: SecurityOpts) -> dict[str, Any] | None:
    if i.host_config.get("Privileged") or sec.seccomp == "unconfined":
        return None
    if sec.seccomp in (None, "", "builtin"):
        profile: Any = seccomp_default.default_profile()
    else:
        try:
            profile = json.loads(sec.seccomp)
        except ValueError as e:
            raise InvalidParameter(f"Decoding seccomp profile failed: {e}") from None
    return seccomp_default.resolve(profile, caps, arch=i.arch, kernel=i.kernel)


def linux(i: SpecInput, caps: list[str], sec: SecurityOpts) -> dict[str, Any]:
    hc = i.host_config
    out: dict[str, Any] = {}
    propagation = rootfs_propagation(i.mounts)
    if propagation:
        out["rootfsPropagation"] = propagation
    ctl = sysctls(i)
    if ctl:
        out["sysctl"] = ctl
    nodes, device_rules = resources.devices(hc)
    support = i.cgroups or resources.CgroupSupport.probe()
    out["resources"] = {"devices": device_rules,
                        **resources.resources(resources.adapt(hc, support))}
    parent = hc.get("CgroupParent") or i.cgroup_parent
    out["cgroupsPath"] = posixpath.join(parent, i.id)
    out["namespaces"] = namespaces(i)
    if nodes:
        out["devices"] = nodes
    profile = seccomp(i, caps, sec)
    if profile is not None:
        out["seccomp"] = profile
    if not hc.get("Privileged") and not sec.unconfined_paths:
        masked = hc.get("MaskedPaths")
        readonly = hc.get("ReadonlyPaths")
        masked = list(MASKED_PATHS if masked is None else masked)
        readonly = list(READONLY_PATHS if readonly is None else readonly)
        if masked:
            out["maskedPaths"] = masked
        if readonly:
            out["readonlyPaths"] = readonly
    return out
