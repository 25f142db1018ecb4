"""dockyardd's configuration: dockerd's flags and daemon.json keys where they mean the same,
plus `registry-hosts` (Dockyard's registry redirects: a host's traffic sent to a mirror, with
no fallback unless asked, so that nothing reaches docker.io in tests).

    {
      "hosts": ["unix:///run/dockyard/dockyard.sock"],
      "data-root": "/var/lib/dockyard",
      "exec-root": "/run/dockyard",
      "pidfile": "/run/dockyard.pid",
      "containerd": "",                       # a running supervisor; else we start our own
      "registry-mirrors": ["http://127.0.0.1:5000"],
      "insecure-registries": ["127.0.0.1:5000"],
      "registry-hosts": {"docker.io": {"redirect": "127.0.0.1:5000", "insecure": true}},
      "live-restore": false,
      "log-level": "info",
      "log-driver": "json-file",
      "log-opts": {"max-size": "10m", "max-file": "3"},
      "cgroup-parent": "/docker",             # containers' cgroups: <parent>/<id>
      "tls": false, "tlsverify": false, "tlscacert": "", "tlscert": "", "tlskey": "",
      "tcp-insecure": false,                  # plain TCP: only with this explicit opt-out
      "bridge": "dockyard0",                  # the default bridge network's bridge; "none"
      "bip": "172.17.0.1/16",                 #   for no default bridge network at all
      "fixed-cidr": "", "mtu": 1500, "icc": true, "ip-masq": true, "ip-forward": true,
      "iptables": true,                       # manage the nftables table (below)
      "default-address-pools": [{"base": "172.17.0.0/16", "size": 16}, …],
      "host-gateway-ip": "",                  # --add-host x:host-gateway (else the bridge's)
      "dns": [], "dns-search": [], "dns-opts": [],
      "nft-table": "dockyard",                # Dockyard's own: the one nftables table it owns
      "resolv-conf": "/etc/resolv.conf"       # Dockyard's own: the host's resolver settings
    }

As with dockerd, a key given both as a flag and in the file is an error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_CONFIG_FILE = "/etc/dockyard/daemon.json"
DEFAULT_SOCKET = "unix:///run/dockyard/dockyard.sock"


class ConfigError(Exception):
    pass


@dataclass
class DaemonConfig:
    hosts: list[str] = field(default_factory=list)
    data_root: str = "/var/lib/dockyard"
    exec_root: str = "/run/dockyard"
    pidfile: str = ""
    containerd: str = ""
    registry_mirrors: list[str] = field(default_factory=list)
    insecure_registries: list[str] = field(default_factory=list)
    registry_hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    live_restore: bool = False
    log_level: str = "info"
    log_driver: str = "json-file"
    log_opts: dict[str, str] = field(default_factory=dict)
    tls: bool = False
    tlsverify: bool = False
    tlscacert: str = ""
    tlscert: str = ""
    tlskey: str = ""
    tcp_insecure: bool = False
    debug: bool = False
    group: str = "dockyard"
    cgroup_parent: str = "/docker"
    bridge: str = "dockyard0"
    bip: str = ""
    fixed_cidr: str = ""
    mtu: int = 1500
    icc: bool = True
    ip_masq: bool = True
    ip_forward: bool = True
    iptables: bool = True
    default_address_pools: list[dict[str, Any]] = field(default_factory=list)
    host_gateway_ip: str = ""
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_opts: list[str] = field(default_factory=list)
    nft_table: str = "dockyard"
    resolv_conf: str = "/etc/resolv.conf"

    @property
    def pid_path(self) -> str:
        return self.pidfile or str(Path(self.exec_root) / "dockyardd.pid")

    def listen(self) -> list[str]:
        return self.hosts or [f"unix://{Path(self.exec_root) / 'dockyard.sock'}"]


_KEYS = {f.name.replace("_", "-"): f for f in fields(DaemonConfig)}


def from_json(data: Mapping[str, Any], where: str = "daemon.json") -> dict[str, Any]:
    """The settings of a daemon.json document, checked: unknown keys and wrong types are
    errors, worded as dockerd words them."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: the configuration must be a JSON object")
    out: dict[str, Any] = {}
    for key, value in data.items():
        f = _KEYS.get(key)
        if f is None:
            raise ConfigError(f"the following directives don't match any configuration "
                              f"option: {key}")
        kind = f.type if isinstance(f.type, str) else f.type.__name__
        ok = {"bool": isinstance(value, bool), "str": isinstance(value, str),
              "int": isinstance(value, int) and not isinstance(value, bool),
              "list[dict[str, Any]]": isinstance(value, list)
              and all(isinstance(v, dict) for v in value),
              "list[str]": isinstance(value, list) and all(isinstance(v, str) for v in value),
              "dict[str, str]": isinstance(value, dict)
              and all(isinstance(v, str) for v in value.values()),
              "dict[str, dict[str, Any]]": isinstance(value, dict)
              and all(isinstance(v, dict) for v in value.values())}.get(kind, True)
        if not ok:
            raise ConfigError(f"{where}: {key}: wrong type {type(value).__name__}")
        out[f.name] = value
    return out


def load(path: str | None, flags: Mapping[str, Any]) -> DaemonConfig:
    """Defaults, then the file (if any; the default path may be missing), then flags."""
    settings: dict[str, Any] = {}
    file = path or DEFAULT_CONFIG_FILE
    try:
        text = Path(file).read_text()
    except FileNotFoundError:
        if path:
            raise ConfigError(f"unable to configure the Docker daemon with file {file}: "
                              f"open {file}: no such file or directory") from None
        text = ""
    if text.strip():
        try:
            settings = from_json(json.loads(text), file)
        except json.JSONDecodeError as e:
            raise ConfigError(f"unable to configure the Docker daemon with file {file}: "
                              f"{e}") from None
    given = {k: v for k, v in flags.items() if v is not None and v != []}
    clash = sorted(k for k in given if k in settings)
    if clash:
        raise ConfigError("the following directives are specified both as a flag and in the "
                          "configuration file: " + ", ".join(
                              f"{k.replace('_', '-')}: (from flag: {flags[k]}, from file: "
                              f"{settings[k]})" for k in clash))
    settings.update(given)
    return DaemonConfig(**settings)
