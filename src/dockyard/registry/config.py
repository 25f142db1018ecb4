"""The registry's config.yml, the subset of the reference registry's format we act on:

    version: 0.1
    log: {level: info}
    storage:
      filesystem: {rootdirectory: /var/lib/registry}
      delete: {enabled: true}
    http:
      addr: 127.0.0.1:5000
      tls: {certificate: /path/cert.pem, key: /path/key.pem}
    auth:
      htpasswd: {realm: basic-realm, path: /path/htpasswd}
      token: {realm: https://auth/token, service: registry, issuer: auth,
              rootcertbundle: /path/bundle.pem}

Other keys the reference knows are ignored; a wrong type for a key we read is ConfigError.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

DEFAULT_ROOT = "/var/lib/registry"
DEFAULT_ADDR = ":5000"
LOG_LEVELS = ("error", "warn", "info", "debug")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class TLS:
    certificate: str
    key: str


@dataclass(frozen=True)
class HtpasswdAuth:
    realm: str
    path: str


@dataclass(frozen=True)
class TokenAuth:
    realm: str
    service: str
    issuer: str
    rootcertbundle: str


@dataclass(frozen=True)
class UploadPurging:
    """storage.maintenance.uploadpurging: abandoned uploads older than `age` are removed
    every `interval` (the reference's defaults: on, a week, a day)."""

    enabled: bool = True
    age: timedelta = timedelta(hours=168)
    interval: timedelta = timedelta(hours=24)
    dryrun: bool = False


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")


def duration(text: object, where: str) -> timedelta:
    """A Go duration ("168h", "1h30m", "90s", "500ms")."""
    if not isinstance(text, str) or not text:
        raise ConfigError(f"{where}: want a duration like 24h or 30m")
    if text == "0":
        return timedelta(0)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = _DURATION.findall(text)
    if "".join(n + u for n, u in parts) != text:
        raise ConfigError(f"{where}: {text!r} is not a duration like 24h or 30m")
    return timedelta(seconds=sum(float(n) * units[u] for n, u in parts))


@dataclass(frozen=True)
class Config:
    version: str = "0.1"
    log_level: str = "info"
    rootdirectory: str = DEFAULT_ROOT
    delete_enabled: bool = False
    addr: str = DEFAULT_ADDR
    tls: TLS | None = None
    htpasswd: HtpasswdAuth | None = None
    token: TokenAuth | None = None
    upload_purging: UploadPurging = field(default_factory=UploadPurging)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def host_port(self) -> tuple[str, int]:
        """http.addr as (host, port); an empty host means every interface."""
        host, sep, port = self.addr.rpartition(":")
        if not sep or not port.isdigit():
            raise ConfigError(f"http.addr {self.addr!r}: want [host]:port")
        return host.strip("[]") or "0.0.0.0", int(port)


def _section(o: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = o.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}{key}: want a mapping, got {type(value).__name__}")
    return value


def _str(o: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = o.get(key, default)
    if value is None:
        raise ConfigError(f"{where}{key}: required")
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ConfigError(f"{where}{key}: want a string, got {type(value).__name__}")
    return value


def parse(text: str) -> Config:
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config.yml: {e}") from None
    if not isinstance(doc, dict):
        raise ConfigError("config.yml: want a mapping at the top")
    log = _section(doc, "log", "")
    level = _str(log, "level", "log.", "info").lower()
    if level not in LOG_LEVELS:
        raise ConfigError(f"log.level: {level!r} is not one of {LOG_LEVELS}")
    storage = _section(doc, "storage", "")
    fs = _section(storage, "filesystem", "storage.")
    delete = _section(storage, "delete", "storage.")
    enabled = delete.get("enabled", False)
    if not isinstance(enabled, bool):
        raise ConfigError("storage.delete.enabled: want true or false")
    purging = _section(_section(storage, "maintenance", "storage."), "uploadpurging",
                       "storage.maintenance.")
    where = "storage.maintenance.uploadpurging."
    for flag in ("enabled", "dryrun"):
        if not isinstance(purging.get(flag, False), bool):
            raise ConfigError(f"{where}{flag}: want true or false")
    upload_purging = UploadPurging(
        enabled=purging.get("enabled", True),
        age=duration(purging["age"], where + "age") if "age" in purging
        else UploadPurging.age,
        interval=duration(purging["interval"], where + "interval") if "interval" in purging
        else UploadPurging.interval,
        dryrun=purging.get("dryrun", False))
    http = _section(doc, "http", "")
    tls_section = _section(http, "tls", "http.")
    tls = None
    if tls_section.get("certificate") or tls_section.get("key"):
        tls = TLS(_str(tls_section, "certificate", "http.tls."),
                  _str(tls_section, "key", "http.tls."))
    auth = _section(doc, "auth", "")
    htpasswd = token = None
    if "htpasswd" in auth:
        h = _section(auth, "htpasswd", "auth.")
        htpasswd = HtpasswdAuth(_str(h, "realm", "auth.htpasswd.", "basic-realm"),
                                _str(h, "path", "auth.htpasswd."))
    if "token" in auth:
        t = _section(auth, "token", "auth.")
        token = TokenAuth(*(_str(t, k, "auth.token.")
                            for k in ("realm", "service", "issuer", "rootcertbundle")))
    if htpasswd and token:
        raise ConfigError("auth: more than one access controller configured")
    known = {"version", "log", "storage", "http", "auth"}
    return Config(version=_str(doc, "version", "", "0.1"), log_level=level,
                  rootdirectory=_str(fs, "rootdirectory", "storage.filesystem.", DEFAULT_ROOT),
                  delete_enabled=enabled, addr=_str(http, "addr", "http.", DEFAULT_ADDR),
                  tls=tls, htpasswd=htpasswd, token=token, upload_purging=upload_purging,
                  extra={k: v for k, v in doc.items() if k not in known})


def load(path: str | Path) -> Config:
    return parse(Path(path).read_text())
