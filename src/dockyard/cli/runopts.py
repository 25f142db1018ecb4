"""`docker run`/`docker create` flags, and the container config they make (the body of
POST /containers/create): pure functions of the parsed options."""

from __future__ import annotations

import os

from dockyard.cli.flags import CommandError, Flag

RUN_FLAGS = [
    Flag(None, "add-host", list), Flag("a", "attach", list), Flag(None, "cap-add", list),
    Flag(None, "cap-drop", list), Flag(None, "cgroup-parent", str),
    Flag(None, "cgroupns", str), Flag(None, "cidfile", str),
    Flag("c", "cpu-shares", int), Flag(None, "cpus", float), Flag(None, "cpuset-cpus", str),
    Flag(None, "cpuset-mems", str), Flag("d", "detach", bool), Flag(None, "detach-keys", str),
    Flag(None, "device", list), Flag(None, "dns", list), Flag(None, "dns-option", list),
    Flag(None, "dns-search", list), Flag(None, "domainname", str),
    Flag(None, "entrypoint", str), Flag("e", "env", list), Flag(None, "env-file", list),
    Flag(None, "expose", list), Flag(None, "group-add", list),
    Flag(None, "health-cmd", str), Flag(None, "health-interval", str),
    Flag(None, "health-retries", int), Flag(None, "health-timeout", str),
    Flag(None, "health-start-period", str), Flag("h", "hostname", str),
    Flag(None, "init", bool), Flag("i", "interactive", bool), Flag(None, "ip", str),
    Flag(None, "ip6", str), Flag(None, "ipc", str), Flag(None, "isolation", str),
    Flag("l", "label", list), Flag(None, "label-file", list), Flag(None, "link", list),
    Flag(None, "log-driver", str), Flag(None, "log-opt", list),
    Flag(None, "mac-address", str), Flag("m", "memory", str),
    Flag(None, "memory-reservation", str), Flag(None, "memory-swap", str),
    Flag(None, "memory-swappiness", int, default=-1), Flag(None, "mount", list),
    Flag(None, "name", str), Flag(None, "network", str), Flag(None, "net", str),
    Flag(None, "network-alias", list), Flag(None, "net-alias", list),
    Flag(None, "no-healthcheck", bool), Flag(None, "oom-kill-disable", bool),
    Flag(None, "oom-score-adj", int), Flag(None, "pid", str), Flag(None, "pids-limit", int),
    Flag(None, "platform", str), Flag(None, "privileged", bool), Flag("p", "publish", list),
    Flag("P", "publish-all", bool), Flag(None, "pull", str, default="missing"),
    Flag("q", "quiet", bool), Flag(None, "read-only", bool), Flag(None, "restart", str),
    Flag(None, "rm", bool), Flag(None, "runtime", str), Flag(None, "security-opt", list),
    Flag(None, "shm-size", str), Flag(None, "sig-proxy", bool, default=True),
    Flag(None, "stop-signal", str), Flag(None, "stop-timeout", int),
    Flag(None, "storage-opt", list), Flag(None, "sysctl", list), Flag(None, "tmpfs", list),
    Flag("t", "tty", bool), Flag(None, "ulimit", list), Flag("u", "user", str),
    Flag(None, "userns", str), Flag(None, "uts", str), Flag("v", "volume", list),
    Flag(None, "volume-driver", str), Flag(None, "volumes-from", list),
    Flag("w", "workdir", str),
]

_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}


def ram_in_bytes(value: str) -> int:
    """go-units RAMInBytes: 512m, 1.5g, 64k, 1024 (binary multiples)."""
    s = value.strip().lower()
    if s.endswith("ib"):
        s = s[:-2]
    elif s.endswith("b") and len(s) > 1 and s[-2] in "kmgtp":
        s = s[:-1]
    unit = s[-1:] if s[-1:] in _UNITS and s[-1:] else ""
    number = s[:-1] if unit else s
    try:
        n = float(number)
    except ValueError:
        raise CommandError(f"invalid size: '{value}'", 125) from None
    if n < 0:
        raise CommandError(f"invalid size: '{value}'", 125)
    return int(n * _UNITS[unit])


def parse_env(opts) -> list[str]:
    env: list[str] = []
    for path in opts.env_file:
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError as e:
            raise CommandError(f"open {path}: {e.strerror.lower()}", 125) from None
        for line in lines:
            line = line.lstrip()
            if line and not line.startswith("#"):
                env.append(_env_item(line))
    env += [_env_item(e) for e in opts.env]
    return [e for e in env if e is not None]


def _env_item(item: str) -> str | None:
    if "=" in item:
        return item
    value = os.environ.get(item)
    return None if value is None else f"{item}={value}"


def parse_publish(specs: list[str]) -> tuple[dict, dict]:
    """-p [ip:][hostPort:]containerPort[/proto] → (ExposedPorts, PortBindings)."""
    exposed: dict = {}
    bindings: dict = {}
    for spec in specs:
        proto = "tcp"
        body = spec
        if "/" in spec.rsplit(":", 1)[-1]:
            body, _, proto = spec.rpartition("/")
        if body.startswith("["):
            ip, _, rest = body[1:].partition("]")
            parts = [ip, *rest.lstrip(":").split(":")]
        else:
            parts = body.split(":")
        if len(parts) == 1:
            ip, host, ctr = "", "", parts[0]
        elif len(parts) == 2:
            ip, host, ctr = "", parts[0], parts[1]
        elif len(parts) == 3:
            ip, host, ctr = parts
        else:
            raise CommandError(f"invalid port format: {spec}", 125)
        if not ctr or not ctr.replace("-", "").isdigit():
            raise CommandError(f"invalid containerPort: {ctr}", 125)
        key = f"{ctr}/{proto}"
        exposed[key] = {}
        bindings.setdefault(key, []).append({"HostIp": ip, "HostPort": host})
    return exposed, bindings


def parse_volumes(specs: list[str]) -> tuple[list[str], dict]:
    """-v: host paths and named volumes become Binds; a lone path an anonymous volume."""
    binds: list[str] = []
    anon: dict = {}
    for spec in specs:
        parts = spec.split(":")
        if len(parts) == 1:
            anon[spec] = {}
        else:
            binds.append(spec)
    return binds, anon


def parse_mounts(specs: list[str]) -> list[dict]:
    mounts = []
    for spec in specs:
        m: dict = {"Type": "volume"}
        for field in spec.split(","):
            k, eq, v = field.partition("=")
            k = k.strip().lower()
            if k == "type":
                m["Type"] = v
            elif k in ("source", "src"):
                m["Source"] = v
            elif k in ("target", "destination", "dst"):
                m["Target"] = v
            elif k in ("readonly", "ro"):
                m["ReadOnly"] = not eq or v.lower() in ("1", "true")
            elif k == "bind-propagation":
                m.setdefault("BindOptions", {})["Propagation"] = v
            elif k == "tmpfs-size":
                m.setdefault("TmpfsOptions", {})["SizeBytes"] = ram_in_bytes(v)
            elif k == "volume-nocopy":
                m.setdefault("VolumeOptions", {})["NoCopy"] = not eq or v == "true"
        if "Target" not in m:
            raise CommandError(f"invalid argument \"{spec}\" for \"--mount\" flag: target is "
                               "required", 125)
        mounts.append(m)
    return mounts


def parse_restart(policy: str | None) -> dict | None:
    if not policy:
        return None
    name, _, count = policy.partition(":")
    if name not in ("no", "always", "unless-stopped", "on-failure"):
        raise CommandError(f"invalid restart policy: unknown policy '{name}'; use one of "
                           "'no', 'always', 'on-failure', or 'unless-stopped'", 125)
    out: dict = {"Name": name}
    if count:
        if name != "on-failure":
            raise CommandError("invalid restart policy: maximum retry count can only be "
                               "used with 'on-failure'", 125)
        out["MaximumRetryCount"] = int(count)
    return out


def _kv(items: list[str]) -> dict:
    return dict(item.partition("=")[::2] for item in items)


def _labels(opts) -> dict:
    labels: dict = {}
    for path in opts.label_file:
        with open(path) as f:
            for line in f.read().splitlines():
                if line.strip() and not line.startswith("#"):
                    k, _, v = line.partition("=")
                    labels[k] = v
    labels.update(_kv(opts.label))
    return labels


def container_config(opts, image: str, cmd: list[str]) -> dict:
    """The create body: Config fields, HostConfig and NetworkingConfig."""
    attach = opts.attach or ([] if opts.detach else ["stdout", "stderr"])
    attach_set = {a.lower() for a in attach}
    if opts.interactive and not opts.detach:
        attach_set.add("stdin")
    exposed, bindings = parse_publish(opts.publish)
    for e in opts.expose:
        exposed[e if "/" in e else f"{e}/tcp"] = {}
    binds, anon = parse_volumes(opts.volume)
    cfg: dict = {
        "Hostname": opts.hostname or "", "Domainname": opts.domainname or "",
        "User": opts.user or "", "AttachStdin": "stdin" in attach_set,
        "AttachStdout": "stdout" in attach_set, "AttachStderr": "stderr" in attach_set,
        "Tty": opts.tty, "OpenStdin": opts.interactive, "StdinOnce": opts.interactive and
        not opts.detach, "Env": parse_env(opts), "Cmd": cmd or None, "Image": image,
        "Volumes": anon or None, "WorkingDir": opts.workdir or "",
        "Entrypoint": None, "Labels": _labels(opts), "ExposedPorts": exposed or None,
    }
    if opts.entrypoint is not None:
        cfg["Entrypoint"] = [opts.entrypoint] if opts.entrypoint else [""]
    if opts.stop_signal:
        cfg["StopSignal"] = opts.stop_signal
    if opts.stop_timeout is not None:
        cfg["StopTimeout"] = opts.stop_timeout
    if opts.mac_address:
        cfg["MacAddress"] = opts.mac_address
    if opts.no_healthcheck:
        cfg["Healthcheck"] = {"Test": ["NONE"]}
    elif opts.health_cmd:
        cfg["Healthcheck"] = {"Test": ["CMD-SHELL", opts.health_cmd]}
    network = opts.network or opts.net or "default"
    host: dict = {
        "Binds": binds or None, "NetworkMode": network,
        "PortBindings": bindings or None, "PublishAllPorts": opts.publish_all,
        "AutoRemove": opts.rm, "Privileged": opts.privileged, "ReadonlyRootfs": opts.read_only,
        "CapAdd": opts.cap_add or None, "CapDrop": opts.cap_drop or None,
        "Dns": opts.dns, "DnsOptions": opts.dns_option, "DnsSearch": opts.dns_search,
        "ExtraHosts": opts.add_host or None, "GroupAdd": opts.group_add or None,
        "SecurityOpt": opts.security_opt or None, "VolumesFrom": opts.volumes_from or None,
        "Links": opts.link or None, "Mounts": parse_mounts(opts.mount) or None,
        "Tmpfs": {t.partition(":")[0]: t.partition(":")[2] for t in opts.tmpfs} or None,
        "Sysctls": _kv(opts.sysctl) or None,
        "LogConfig": {"Type": opts.log_driver or "", "Config": _kv(opts.log_opt)},
        "Memory": ram_in_bytes(opts.memory) if opts.memory else 0,
        "MemoryReservation": ram_in_bytes(opts.memory_reservation)
        if opts.memory_reservation else 0,
        "NanoCpus": round(opts.cpus * 1e9) if opts.cpus else 0,
        "CpuShares": opts.cpu_shares or 0, "CpusetCpus": opts.cpuset_cpus or "",
        "CpusetMems": opts.cpuset_mems or "",
        "PidsLimit": opts.pids_limit, "OomKillDisable": opts.oom_kill_disable,
        "Devices": [_device(d) for d in opts.device] or None,
        "Ulimits": [_ulimit(u) for u in opts.ulimit] or None,
    }
    if opts.memory_swap:
        host["MemorySwap"] = -1 if opts.memory_swap == "-1" else ram_in_bytes(opts.memory_swap)
    if opts.memory_swappiness != -1:
        host["MemorySwappiness"] = opts.memory_swappiness
    if opts.shm_size:
        host["ShmSize"] = ram_in_bytes(opts.shm_size)
    for key, value in (("PidMode", opts.pid), ("IpcMode", opts.ipc), ("UTSMode", opts.uts),
                       ("UsernsMode", opts.userns), ("CgroupnsMode", opts.cgroupns),
                       ("CgroupParent", opts.cgroup_parent), ("Runtime", opts.runtime),
                       ("OomScoreAdj", opts.oom_score_adj)):
        if value:
            host[key] = value
    if opts.init:
        host["Init"] = True
    restart = parse_restart(opts.restart)
    if restart:
        if opts.rm and restart["Name"] != "no":
            raise CommandError("Conflicting options: --restart and --rm", 125)
        host["RestartPolicy"] = restart
    cfg["HostConfig"] = host
    aliases = opts.network_alias + opts.net_alias
    if (network not in ("default", "bridge", "host", "none") and not
            network.startswith("container:")) or aliases or opts.ip or opts.ip6:
        endpoint: dict = {"Aliases": aliases or None}
        if opts.ip or opts.ip6:
            endpoint["IPAMConfig"] = {"IPv4Address": opts.ip or "",
                                      "IPv6Address": opts.ip6 or ""}
        cfg["NetworkingConfig"] = {"EndpointsConfig": {network: endpoint}}
    return cfg


def _device(spec: str) -> dict:
    parts = spec.split(":")
    return {"PathOnHost": parts[0], "PathInContainer": parts[1] if len(parts) > 1 else parts[0],
            "CgroupPermissions": parts[2] if len(parts) > 2 else "rwm"}


def _ulimit(spec: str) -> dict:
    name, _, limits = spec.partition("=")
    soft, _, hard = limits.partition(":")
    try:
        return {"Name": name, "Soft": int(soft), "Hard": int(hard or soft)}
    except ValueError:
        raise CommandError(f"invalid ulimit argument: {spec}", 125) from None
