"""Registry credentials for the CLI, as the X-Registry-Auth header carries them (base64url of
a JSON AuthConfig). Where they live — config.json's `auths`, `credsStore`, `credHelpers` — is
dockyard.distribution.credentials' business: the same reader the registry client uses,
imported only by the commands that send credentials (pull, push, login, logout, run).
`load_config` reads the CLI's own settings (detachKeys, formats) without it."""

from __future__ import annotations

import os

from dockyard.runtime import jsonio

INDEX_SERVER = "https://index.docker.io/v1/"  # credentials.HUB_KEY, without importing it


def config_dir() -> str:
    return os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")


def config_path() -> str:
    return os.path.join(config_dir(), "config.json")


def load_config() -> dict:
    try:
        with open(config_path(), "rb") as f:
            doc = jsonio.loads(f.read())
        return doc if isinstance(doc, dict) else {}
    except (OSError, ValueError):
        return {}


def registry_of(image: str) -> str:
    """The registry host of an image reference; the index's address for Docker Hub."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return INDEX_SERVER if first in ("docker.io", "index.docker.io") else first
    return INDEX_SERVER


def _config():
    from dockyard.distribution.credentials import DockerConfig

    return DockerConfig(config_path())


def credentials(registry: str) -> dict | None:
    """{"username", "password", "serveraddress"} or {"identitytoken", …} for `registry`."""
    found = _config().lookup(registry)
    if found is None:
        return None
    out = {"serveraddress": registry}
    if found.username or found.password:
        out.update(username=found.username, password=found.password)
    if found.identity_token:
        out["identitytoken"] = found.identity_token
    return out


def all_credentials() -> dict[str, dict]:
    """Every registry's credentials by the address config.json names it with (docker's
    GetAllCredentials over `auths` and `credHelpers`): X-Registry-Config for a build."""
    from dockyard.distribution.errors import CredentialsError

    try:
        doc = _config().load()
    except CredentialsError:
        return {}
    out: dict[str, dict] = {}
    for registry in dict.fromkeys([*(doc.get("auths") or {}), *(doc.get("credHelpers") or {})]):
        try:
            found = credentials(registry)
        except CredentialsError:
            continue  # a helper that fails for one registry does not stop the build
        if found:
            out[registry] = found
    return out


def encode_header(auth: dict) -> str:
    import base64

    return base64.urlsafe_b64encode(jsonio.dumps(auth).encode()).decode()


def registry_auth_header(image: str) -> dict[str, str]:
    """{"X-Registry-Auth": …} for pushing or pulling `image` (an empty config otherwise)."""
    creds = credentials(registry_of(image)) or {}
    return {"X-Registry-Auth": encode_header(creds)}


def store(registry: str, username: str, password: str, token: str = "") -> None:
    from dockyard.distribution.credentials import Credentials

    _config().store(registry, Credentials(registry, username, password, token))


def erase(registry: str) -> bool:
    """`docker logout`: False when nothing was stored for `registry`."""
    from dockyard.distribution.credentials import server_key

    config = _config()
    key = server_key(registry)
    known = any(server_key(k) == key for k in config.load().get("auths") or {})
    config.erase(registry)
    return known
