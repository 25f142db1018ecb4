"""Registry credentials from the docker config (DOCKER_CONFIG or ~/.docker/config.json),
as the X-Registry-Auth header carries them: base64url of a JSON AuthConfig.

    config.json  {"auths": {"<registry>": {"auth": base64("user:pass"),
                                            "identitytoken": "…"}},
                  "credsStore": "<helper>", "credHelpers": {"<registry>": "<helper>"}}
"""

from __future__ import annotations

import os

from dockyard.runtime import jsonio

INDEX_SERVER = "https://index.docker.io/v1/"


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


def save_config(doc: dict) -> None:
    os.makedirs(config_dir(), exist_ok=True)
    path = config_path()
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(jsonio.dumps_pretty(doc))
        f.write("\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def registry_of(image: str) -> str:
    """The registry host of an image reference; the index's address for Docker Hub."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return INDEX_SERVER if first in ("docker.io", "index.docker.io") else first
    return INDEX_SERVER


def _key_matches(key: str, registry: str) -> bool:
    k = key.split("://", 1)[-1].rstrip("/")
    r = registry.split("://", 1)[-1].rstrip("/")
    return k == r or k.split("/", 1)[0] == r.split("/", 1)[0]


def _b64decode(s: str) -> bytes:
    import binascii

    return binascii.a2b_base64(s.encode())


def credentials(registry: str, doc: dict | None = None) -> dict | None:
    """{"username", "password", "serveraddress"} or {"identitytoken", …} for `registry`."""
    doc = load_config() if doc is None else doc
    helper = (doc.get("credHelpers") or {}).get(registry.split("://", 1)[-1].rstrip("/"))
    helper = helper or doc.get("credsStore")
    if helper:
        found = _from_helper(helper, registry)
        if found:
            return found
    for key, entry in (doc.get("auths") or {}).items():
        if not _key_matches(key, registry) or not isinstance(entry, dict):
            continue
        out = {"serveraddress": registry}
        if entry.get("auth"):
            user, _, password = _b64decode(entry["auth"]).decode().partition(":")
            out.update(username=user, password=password)
        if entry.get("identitytoken"):
            out["identitytoken"] = entry["identitytoken"]
        return out
    return None


def _from_helper(helper: str, registry: str) -> dict | None:
    import subprocess

    try:
        p = subprocess.run([f"docker-credential-{helper}", "get"], input=registry.encode(),
                           capture_output=True, timeout=30)
    except OSError:
        return None
    if p.returncode != 0:
        return None
    try:
        doc = jsonio.loads(p.stdout)
    except ValueError:
        return None
    if doc.get("Username") == "<token>":
        return {"identitytoken": doc.get("Secret", ""), "serveraddress": registry}
    return {"username": doc.get("Username", ""), "password": doc.get("Secret", ""),
            "serveraddress": registry}


def encode_header(auth: dict) -> str:
    import base64

    return base64.urlsafe_b64encode(jsonio.dumps(auth).encode()).decode()


def registry_auth_header(image: str) -> dict[str, str]:
    """{"X-Registry-Auth": …} for pushing or pulling `image` (an empty config otherwise)."""
    creds = credentials(registry_of(image)) or {}
    return {"X-Registry-Auth": encode_header(creds)}


def store(registry: str, username: str, password: str, token: str = "") -> None:
    import base64

    doc = load_config()
    auths = doc.setdefault("auths", {})
    entry = {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}
    if token:
        entry = {"auth": base64.b64encode(f"{username}:".encode()).decode(),
                 "identitytoken": token}
    auths[registry] = entry
    save_config(doc)


def erase(registry: str) -> bool:
    doc = load_config()
    auths = doc.get("auths") or {}
    keys = [k for k in auths if _key_matches(k, registry)]
    for k in keys:
        del auths[k]
    if keys:
        save_config(doc)
    return bool(keys)
