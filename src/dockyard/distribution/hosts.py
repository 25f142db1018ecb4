"""Which URLs to try for a registry host, in order, with which TLS settings.

    endpoints("docker.io")
      1. redirect target        when configured; with fallback=False it is the only one
      2. mirrors                pull only (dockerd's registry-mirrors are docker.io's)
      3. the origin             docker.io's API is registry-1.docker.io;
                                https with verification, or for an insecure registry
                                https without verification, then plain http

A registry is insecure (HTTP allowed, certificates unchecked) when it is listed exactly as
it is named (`host:port`, or `host` for the default port), or when it is an IP literal (or
`localhost`) inside a listed CIDR.
127.0.0.0/8 and ::1/128 are insecure by default, as in dockerd; we do not resolve names
(pure code), so only `localhost` stands for a loopback address.

Two configuration forms. dockerd's daemon.json:

    {"registry-mirrors": ["https://mirror.example"], "insecure-registries":
     ["10.0.0.0/8", "myreg:5000"]}

and our own per-host table (architecture decision 9: tests pull only from loopback):

    {"docker.io":       {"mirrors": ["http://127.0.0.1:5000"], "ca_file": "/ca.pem"},
     "registry.k8s.io": {"redirect": "http://127.0.0.1:5000/k8s", "fallback": false},
     "10.1.2.3:5000":   {"insecure": true}}
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from dockyard.distribution.errors import HostsError

DOCKER_IO = "docker.io"
DOCKER_IO_API = "registry-1.docker.io"
_DOCKER_IO_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
DEFAULT_INSECURE_CIDRS = ("127.0.0.0/8", "::1/128")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class TLSConfig:
    verify: bool = True
    ca_file: str | None = None


@dataclass(frozen=True)
class Endpoint:
    """One place to send a registry's API calls: `{url_base}/v2/...`."""

    scheme: str
    host: str  # host[:port] as it goes into the URL
    path_prefix: str = ""  # "" or "/k8s": a mirror that serves under a path
    tls: TLSConfig = field(default_factory=TLSConfig)
    is_mirror: bool = False
    pull_only: bool = False

    @property
    def url_base(self) -> str:
        return f"{self.scheme}://{self.host}{self.path_prefix}"

    def url(self, path: str = "") -> str:
        return f"{self.url_base}/v2/{path.lstrip('/')}"


@dataclass(frozen=True)
class Mirror:
    scheme: str
    host: str
    path_prefix: str = ""

    @classmethod
    def parse(cls, text: str) -> Mirror:
        """A mirror URL as dockerd's ValidateMirror takes it: http or https, no
        credentials, query or fragment; a path is kept as a prefix."""
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018  (raises on a bad port)
        except ValueError:
            raise HostsError(f"invalid mirror: {text!r} is not a valid URI") from None
        if parts.scheme not in ("http", "https"):
            raise HostsError(f"invalid mirror: unsupported scheme {parts.scheme!r} in {text!r}")
        if parts.query or parts.fragment:
            raise HostsError(f"invalid mirror: query or fragment at end of the URI {text!r}")
        if parts.username is not None or parts.password is not None:
            raise HostsError(f"invalid mirror: username/password not allowed in URI {text!r}")
        if not parts.hostname:
            raise HostsError(f"invalid mirror: no host in {text!r}")
        return cls(parts.scheme, parts.netloc.lower(), parts.path.rstrip("/"))


@dataclass(frozen=True)
class Redirect:
    """Send a host's traffic (pull and push) to `target`; `fallback` lets the origin be
    tried after it. `target` is a URL (its scheme then is the only one tried) or a bare
    `host[:port]` (treated like any registry host)."""

    target: str
    fallback: bool = False


def canonical_host(host: str) -> str:
    """Lowercase, with docker.io's other names folded into `docker.io`."""
    host = host.lower()
    return DOCKER_IO if host in _DOCKER_IO_ALIASES else host


def _split_host(host: str) -> str:
    """The host part without the port (and without brackets for IPv6)."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") > 1:  # a bare IPv6 address
        return host
    return host.rsplit(":", 1)[0]


def _parse_insecure(entries: Iterable[str]) -> tuple[frozenset[str], tuple[Network, ...]]:
    names: set[str] = set()
    networks: list[Network] = []
    for entry in entries:
        if not isinstance(entry, str) or not entry:
            raise HostsError(f"invalid insecure registry {entry!r}")
        text = entry
        for scheme in ("http://", "https://"):  # dockerd strips these, with a warning
            if text.lower().startswith(scheme):
                text = text[len(scheme):]
        if "://" in text:
            raise HostsError(f"insecure registry {entry} should not contain '://'")
        text = text.rstrip("/")
        if "/" in text:
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                raise HostsError(f"invalid insecure registry {entry!r}: not a CIDR") from None
        else:
            names.add(canonical_host(text))
    return frozenset(names), tuple(networks)


class RegistryHosts:
    def __init__(self, mirrors: Mapping[str, Iterable[Mirror | str]] | None = None,
                 insecure: Iterable[str] = (),
                 ca_files: Mapping[str, str] | None = None,
                 redirects: Mapping[str, Redirect] | None = None) -> None:
        self.mirrors = {canonical_host(h): [m if isinstance(m, Mirror) else Mirror.parse(m)
                                            for m in ms]
                        for h, ms in (mirrors or {}).items()}
        names, networks = _parse_insecure([*DEFAULT_INSECURE_CIDRS, *insecure])
        self._insecure_names = names
        self._insecure_networks = networks
        self.ca_files = {canonical_host(h): p for h, p in (ca_files or {}).items()}
        self.redirects = {canonical_host(h): r for h, r in (redirects or {}).items()}

    @classmethod
    def from_daemon_config(cls, config: Mapping[str, Any]) -> RegistryHosts:
        """dockerd's `registry-mirrors` (docker.io's mirrors) and `insecure-registries`."""
        mirrors = _string_list(config, "registry-mirrors")
        insecure = _string_list(config, "insecure-registries")
        return cls({DOCKER_IO: mirrors} if mirrors else {}, insecure)

    @classmethod
    def from_hosts_config(cls, config: Mapping[str, Any],
                          base: RegistryHosts | None = None) -> RegistryHosts:
        """Our per-host table (see the module docstring), on top of `base` if given."""
        mirrors: dict[str, list[Mirror | str]] = (
            {h: list(ms) for h, ms in base.mirrors.items()} if base else {})
        insecure: list[str] = [*base._insecure_names] if base else []
        networks = [str(n) for n in base._insecure_networks] if base else []
        ca_files = dict(base.ca_files) if base else {}
        redirects = dict(base.redirects) if base else {}
        if not isinstance(config, Mapping):
            raise HostsError("hosts configuration must be an object")
        for host, entry in config.items():
            if not isinstance(entry, Mapping):
                raise HostsError(f"hosts configuration for {host!r} must be an object")
            unknown = set(entry) - {"mirrors", "insecure", "ca_file", "redirect", "fallback"}
            if unknown:
                raise HostsError(f"hosts configuration for {host!r}: unknown keys "
                                 f"{sorted(unknown)}")
            if "mirrors" in entry:
                mirrors[host] = list(_string_list(entry, "mirrors", host))
            if entry.get("insecure") is True:
                insecure.append(host)
            elif entry.get("insecure") not in (None, False):
                raise HostsError(f"hosts configuration for {host!r}: 'insecure' must be a "
                                 "boolean")
            if "ca_file" in entry:
                if not isinstance(entry["ca_file"], str):
                    raise HostsError(f"hosts configuration for {host!r}: 'ca_file' must be "
                                     "a path")
                ca_files[host] = entry["ca_file"]
            if "redirect" in entry:
                redirects[host] = _parse_redirect(host, entry)
        return cls(mirrors, [*insecure, *networks], ca_files, redirects)

    def is_insecure(self, host: str) -> bool:
        host = canonical_host(host)
        if host in self._insecure_names:
            return True
        name = _split_host(host)
        if name == "localhost":
            name = "127.0.0.1"
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            return False
        return any(address in network for network in self._insecure_networks)

    def endpoints(self, host: str) -> list[Endpoint]:
        """Where to send the API calls for `host`, in the order to try them."""
        host = canonical_host(host)
        out: list[Endpoint] = []
        redirect = self.redirects.get(host)
        if redirect is not None:
            out += self._redirect_endpoints(redirect)
            if not redirect.fallback:
                return out
        for mirror in self.mirrors.get(host, ()):
            out.append(Endpoint(mirror.scheme, mirror.host, mirror.path_prefix,
                                self._tls(mirror.host), is_mirror=True, pull_only=True))
        api_host = DOCKER_IO_API if host == DOCKER_IO else host
        out += self._origin(api_host, tls_host=host)
        return out

    def _tls(self, host: str) -> TLSConfig:
        return TLSConfig(verify=not self.is_insecure(host),
                         ca_file=self.ca_files.get(canonical_host(host)))

    def _origin(self, api_host: str, tls_host: str, prefix: str = "") -> list[Endpoint]:
        tls = self._tls(tls_host)
        out = [Endpoint("https", api_host, prefix, tls)]
        if not tls.verify:
            out.append(Endpoint("http", api_host, prefix, tls))
        return out

    def _redirect_endpoints(self, redirect: Redirect) -> list[Endpoint]:
        if "://" in redirect.target:
            m = Mirror.parse(redirect.target)
            return [Endpoint(m.scheme, m.host, m.path_prefix, self._tls(m.host))]
        return self._origin(redirect.target.lower(), tls_host=redirect.target)


def _string_list(config: Mapping[str, Any], key: str, where: str = "") -> list[str]:
    value = config.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        place = f"hosts configuration for {where!r}: " if where else ""
        raise HostsError(f"{place}{key!r} must be a list of strings")
    return value


def _parse_redirect(host: str, entry: Mapping[str, Any]) -> Redirect:
    target, fallback = entry["redirect"], entry.get("fallback", False)
    if not isinstance(target, str) or not target:
        raise HostsError(f"hosts configuration for {host!r}: 'redirect' must be a URL or "
                         "host[:port]")
    if not isinstance(fallback, bool):
        raise HostsError(f"hosts configuration for {host!r}: 'fallback' must be a boolean")
    if "://" in target:
        Mirror.parse(target)  # validate now, not at the first pull
    elif "/" in target:
        raise HostsError(f"hosts configuration for {host!r}: redirect {target!r} has a path "
                         "but no scheme")
    return Redirect(target, fallback)
