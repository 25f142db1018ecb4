"""Image references as docker's CLI reads and shows them (distribution/reference's
normalised and familiar forms), without `re`."""

from __future__ import annotations

DEFAULT_DOMAIN = "docker.io"


def split(ref: str) -> tuple[str, str, str, str]:
    """(domain, path, tag, digest) of a normalised reference; tag "" when absent."""
    name, at, digest = ref.partition("@")
    tag = ""
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, rest
    else:
        domain, path = DEFAULT_DOMAIN, name
    if domain in ("index.docker.io",):
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = "library/" + path
    return domain, path, tag, digest if at else ""


def normalize(ref: str) -> str:
    """busybox → docker.io/library/busybox (tag and digest kept)."""
    domain, path, tag, digest = split(ref)
    out = f"{domain}/{path}"
    if tag:
        out += ":" + tag
    if digest:
        out += "@" + digest
    return out


def familiar_name(ref: str) -> str:
    domain, path, _, _ = split(ref)
    if domain == DEFAULT_DOMAIN:
        return path.removeprefix("library/")
    return f"{domain}/{path}"


def familiar(ref: str) -> str:
    _, _, tag, digest = split(ref)
    out = familiar_name(ref)
    if tag:
        out += ":" + tag
    if digest:
        out += "@" + digest
    return out


def with_default_tag(ref: str) -> tuple[str, bool]:
    """The reference with ":latest" when it names neither tag nor digest; whether added."""
    _, _, tag, digest = split(ref)
    if tag or digest:
        return ref, False
    return ref + ":latest", True


def is_valid(ref: str) -> bool:
    """The lower-case rule docker checks first (a fuller check is the daemon's)."""
    name = ref.partition("@")[0]
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:
        name = name[:colon]
    return bool(name) and name == name.lower() and " " not in ref
