"""Registry credentials from Docker's client configuration and credential helpers.

The file is `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`:

    {
      "auths": {
        "https://index.docker.io/v1/": {"auth": "<base64 of user:password>"},
        "registry.example.com":        {"username": "u", "password": "p"},
        "ghcr.io":                     {"auth": "...", "identitytoken": "<refresh token>"}
      },
      "credsStore": "pass",                        # helper for every registry
      "credHelpers": {"123.dkr.ecr.us-east-1.amazonaws.com": "ecr-login"}
    }

Docker Hub's key is `https://index.docker.io/v1/`; every other registry's is `host[:port]`,
though keys written with a scheme or a path (`https://host/v1/`) also match `host`.
A registry's helper is its `credHelpers` entry, else `credsStore`, else none (the file).

A helper is an executable `docker-credential-<name>` speaking this protocol:

    docker-credential-<name> get     stdin: server URL
                                     stdout: {"ServerURL": .., "Username": .., "Secret": ..}
                                     not found: exit 1, "credentials not found in native
                                     keychain" on stdout
    docker-credential-<name> store   stdin: {"ServerURL": .., "Username": .., "Secret": ..}
    docker-credential-<name> erase   stdin: server URL

A Username of `<token>` means the Secret is an identity (refresh) token, not a password.
Writes replace config.json atomically and leave it mode 0600.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockyard.distribution.errors import CredentialsError
from dockyard.fsutil import write_atomic

HUB_KEY = "https://index.docker.io/v1/"
HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
TOKEN_USERNAME = "<token>"
NOT_FOUND = "credentials not found in native keychain"
HELPER_TIMEOUT = 30.0


@dataclass(frozen=True)
class Credentials:
    server_url: str
    username: str = ""
    password: str = ""
    identity_token: str = ""

    def __repr__(self) -> str:  # never print secrets
        return f"Credentials(server_url={self.server_url!r}, username={self.username!r})"


def config_dir(env: Mapping[str, str] | None = None, home: str | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("DOCKER_CONFIG"):
        return Path(env["DOCKER_CONFIG"])
    return Path(home if home is not None else Path.home()) / ".docker"


def hostname(key: str) -> str:
    """Docker's ConvertToHostname: drop a scheme and any path."""
    for scheme in ("http://", "https://"):
        if key.startswith(scheme):
            key = key[len(scheme):]
            break
    return key.split("/", 1)[0]


def server_key(host: str) -> str:
    """The key Docker stores a registry's credentials under."""
    host = hostname(host)
    return HUB_KEY if host in HUB_HOSTS else host


def _decode_auth(key: str, entry: Mapping[str, Any], path: Path) -> Credentials:
    username = entry.get("username") or ""
    password = entry.get("password") or ""
    if entry.get("auth"):
        try:
            text = base64.b64decode(entry["auth"], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError, TypeError):
            raise CredentialsError(f"{path}: invalid auth for {key!r}: not base64") from None
        username, sep, password = text.partition(":")
        if not sep:
            raise CredentialsError(f"{path}: invalid auth for {key!r}: want user:password")
    token = entry.get("identitytoken") or ""
    if not all(isinstance(v, str) for v in (username, password, token)):
        raise CredentialsError(f"{path}: invalid entry for {key!r}: want strings")
    return Credentials(key, username, password, token)


class CredentialHelper:
    """`docker-credential-<name>`, found on PATH (or `env["PATH"]`) and run per call."""

    def __init__(self, name: str, env: Mapping[str, str] | None = None,
                 timeout: float = HELPER_TIMEOUT) -> None:
        self.program = f"docker-credential-{name}"
        self.env = dict(os.environ if env is None else env)
        self.timeout = timeout

    def _run(self, action: str, stdin: str) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run([self.program, action], input=stdin, capture_output=True,
                                  text=True, env=self.env, timeout=self.timeout, check=False)
        except FileNotFoundError:
            raise CredentialsError(f"exec: {self.program!r}: executable file not found in "
                                   "$PATH") from None
        except subprocess.TimeoutExpired:
            raise CredentialsError(f"{self.program} {action}: no answer in "
                                   f"{self.timeout:g}s") from None
        except OSError as e:
            raise CredentialsError(f"{self.program} {action}: {e}") from None

    def _fail(self, verb: str, proc: subprocess.CompletedProcess[str]) -> CredentialsError:
        out = (proc.stdout.strip() or proc.stderr.strip())
        return CredentialsError(f"error {verb} credentials - err: exit status "
                                f"{proc.returncode}, out: `{out}`")

    def get(self, server_url: str) -> Credentials | None:
        proc = self._run("get", server_url)
        if proc.returncode != 0:
            if NOT_FOUND in proc.stdout or NOT_FOUND in proc.stderr:
                return None
            raise self._fail("getting", proc)
        try:
            doc = json.loads(proc.stdout)
            username, secret = doc["Username"], doc["Secret"]
        except (ValueError, KeyError, TypeError):
            raise CredentialsError(f"{self.program} get: invalid answer "
                                   f"{proc.stdout[:200]!r}") from None
        if not isinstance(username, str) or not isinstance(secret, str):
            raise CredentialsError(f"{self.program} get: invalid answer: want strings")
        if not username and not secret:
            return None
        if username == TOKEN_USERNAME:
            return Credentials(server_url, identity_token=secret)
        return Credentials(server_url, username, secret)

    def store(self, creds: Credentials) -> None:
        if creds.identity_token:
            username, secret = TOKEN_USERNAME, creds.identity_token
        else:
            username, secret = creds.username, creds.password
        doc = {"ServerURL": creds.server_url, "Username": username, "Secret": secret}
        proc = self._run("store", json.dumps(doc))
        if proc.returncode != 0:
            raise self._fail("storing", proc)

    def erase(self, server_url: str) -> None:
        proc = self._run("erase", server_url)
        if proc.returncode != 0 and NOT_FOUND not in proc.stdout + proc.stderr:
            raise self._fail("erasing", proc)


class DockerConfig:
    """One config.json: read on every call (another `docker login` may have changed it)."""

    def __init__(self, path: Path | str | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.path = Path(path) if path is not None else config_dir(env) / "config.json"
        self.env = env

    def load(self) -> dict[str, Any]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as e:
            raise CredentialsError(f"{self.path}: cannot read: {e}") from None
        if not text.strip():
            return {}
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise CredentialsError(f"{self.path}: invalid JSON: {e}") from None
        if not isinstance(doc, dict):
            raise CredentialsError(f"{self.path}: want a JSON object")
        for field, kind in (("auths", dict), ("credHelpers", dict), ("credsStore", str)):
            if field in doc and not isinstance(doc[field], kind):
                raise CredentialsError(f"{self.path}: {field!r} must be a JSON "
                                       f"{'object' if kind is dict else 'string'}")
        return doc

    def helper_for(self, host: str, doc: Mapping[str, Any] | None = None) -> str | None:
        doc = self.load() if doc is None else doc
        helpers = doc.get("credHelpers") or {}
        key = server_key(host)
        name = helpers.get(key) or helpers.get(hostname(key)) or doc.get("credsStore")
        return name or None

    def lookup(self, host: str) -> Credentials | None:
        """The credentials for a registry host (`docker.io`, `host:5000`), or None."""
        doc = self.load()
        key = server_key(host)
        helper = self.helper_for(host, doc)
        if helper:
            return CredentialHelper(helper, self.env).get(key)
        auths = doc.get("auths") or {}
        matches = [k for k in auths if k == key] or [
            k for k in auths if server_key(k) == key]
        for k in matches:
            entry = auths[k]
            if not isinstance(entry, dict):
                raise CredentialsError(f"{self.path}: entry for {k!r} must be an object")
            creds = _decode_auth(key, entry, self.path)
            if creds.username or creds.password or creds.identity_token:
                return creds
        return None

    def store(self, host: str, creds: Credentials) -> None:
        """`docker login`: into the helper (leaving an empty entry, as Docker does) or
        into the file."""
        doc = self.load()
        key = server_key(host)
        creds = Credentials(key, creds.username, creds.password, creds.identity_token)
        auths = doc.setdefault("auths", {})
        for k in [k for k in auths if k != key and server_key(k) == key]:
            del auths[k]
        helper = self.helper_for(host, doc)
        if helper:
            CredentialHelper(helper, self.env).store(creds)
            auths[key] = {}
        else:
            entry: dict[str, str] = {}
            if creds.username or creds.password:
                raw = f"{creds.username}:{creds.password}".encode()
                entry["auth"] = base64.b64encode(raw).decode()
            if creds.identity_token:
                entry["identitytoken"] = creds.identity_token
            auths[key] = entry
        self._write(doc)

    def erase(self, host: str) -> None:
        """`docker logout`: from the helper and the file."""
        doc = self.load()
        key = server_key(host)
        helper = self.helper_for(host, doc)
        if helper:
            CredentialHelper(helper, self.env).erase(key)
        auths = doc.get("auths") or {}
        stale = [k for k in auths if server_key(k) == key]
        for k in stale:
            del auths[k]
        if stale:
            self._write(doc)

    def _write(self, doc: Mapping[str, Any]) -> None:
        directory = self.path.parent
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(doc, indent="\t") + "\n", mode=0o600)
