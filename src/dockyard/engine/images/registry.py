"""What a pull or push needs to reach a registry, computed from the daemon's settings and the
client's X-Registry-Auth header (pure: no I/O).

    daemon.json                        transfer.RegistryConfig
      registry-mirrors             ->    registry_mirrors
      insecure-registries          ->    insecure_registries
      registry-hosts {host: {...}} ->    hosts {host: RegistryHost}

    X-Registry-Auth: base64url(JSON {"username", "password", "serveraddress",
                                     "identitytoken", "registrytoken"})
      -> {host: AuthConfig} for the reference's registry, the header's server address and
         the hosts the registry is redirected to (credentials go to whoever answers)
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import urlsplit

from dockyard.api.services.transfer.v1 import transfer_pb2 as pb
from dockyard.engine.errors import InvalidParameter

DOCKER_IO_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}


def registry_config(config: Any) -> pb.RegistryConfig:
    """The transfer service's RegistryConfig from a DaemonConfig."""
    out = pb.RegistryConfig(registry_mirrors=list(config.registry_mirrors),
                            insecure_registries=list(config.insecure_registries))
    for host, h in (config.registry_hosts or {}).items():
        out.hosts[host].CopyFrom(pb.RegistryHost(
            mirrors=list(h.get("mirrors") or []), insecure=bool(h.get("insecure")),
            ca_file=str(h.get("ca_file") or ""), redirect=str(h.get("redirect") or ""),
            fallback=bool(h.get("fallback"))))
    return out


def host_of(server: str) -> str:
    """`https://index.docker.io/v1/` -> docker.io; `http://127.0.0.1:5000` -> 127.0.0.1:5000."""
    server = server.strip()
    if not server:
        return "docker.io"
    netloc = urlsplit(server).netloc if "://" in server else server.split("/", 1)[0]
    return "docker.io" if netloc in DOCKER_IO_ALIASES else netloc


def decode_auth_header(value: str | None) -> dict[str, Any]:
    """The X-Registry-Auth document (empty when absent); InvalidParameter when malformed."""
    if not value or not value.strip():
        return {}
    text = value.strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        doc = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidParameter("invalid X-Registry-Auth header: expected base64url-encoded "
                               "JSON") from None
    if not isinstance(doc, dict):
        raise InvalidParameter("invalid X-Registry-Auth header: expected a JSON object")
    return doc


def auth_configs(doc: dict[str, Any], domain: str, config: Any = None) -> dict[str, pb.AuthConfig]:
    """Credentials by host for a transfer to the registry `domain`."""
    auth = pb.AuthConfig(username=str(doc.get("username") or ""),
                         password=str(doc.get("password") or ""),
                         identity_token=str(doc.get("identitytoken") or ""),
                         registry_token=str(doc.get("registrytoken") or ""))
    if not (auth.username or auth.password or auth.identity_token or auth.registry_token):
        return {}
    hosts = {domain}
    if doc.get("serveraddress"):
        hosts.add(host_of(str(doc["serveraddress"])))
    entry = ((config.registry_hosts or {}) if config is not None else {}).get(domain) or {}
    for target in [entry.get("redirect") or "", *(entry.get("mirrors") or [])]:
        if target:
            hosts.add(host_of(str(target)))
    if domain == "docker.io":
        hosts.add("registry-1.docker.io")
    return {h: auth for h in hosts}


def registry_hosts(config: Any) -> Any:
    """The distribution client's RegistryHosts for the daemon's settings (for what the
    engine asks registries itself: logins and searches)."""
    from dockyard.distribution.hosts import RegistryHosts

    base = RegistryHosts.from_daemon_config({
        "registry-mirrors": list(config.registry_mirrors),
        "insecure-registries": list(config.insecure_registries)})
    table = {h: dict(v) for h, v in (config.registry_hosts or {}).items()}
    return RegistryHosts.from_hosts_config(table, base) if table else base
