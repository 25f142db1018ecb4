"""Image references as Docker writes and normalizes them.

    [domain[:port]/]path[:tag][@digest]

`busybox` is `docker.io/library/busybox:latest` in full; `index.docker.io` is `docker.io`;
the first component is a domain only if it has a "." or a ":" or is `localhost` (or has an
uppercase letter, which a path may not). Errors use Docker's words ("invalid reference
format", "... must be lowercase"), since the CLI and the API show them as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dockyard.image.digest import Digest
from dockyard.image.errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_MAX = 255

_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"^(?P<name>(?:{_DOMAIN}/)?{_PATH_PART}(?:/{_PATH_PART})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$")
_HEX64 = re.compile(r"^[a-f0-9]{64}$")


@dataclass(frozen=True)
class Reference:
    """A normalized reference: `domain/path` with at most one tag and one digest."""

    domain: str
    path: str
    tag: str | None = None
    digest: Digest | None = None

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}"

    def familiar_name(self) -> str:
        """What `docker images` shows: `busybox`, `user/app`, `host:5000/app`."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        path = self.path
        if path.startswith(OFFICIAL_PREFIX) and path.count("/") == 1:
            path = path[len(OFFICIAL_PREFIX):]
        return path

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def familiar(self) -> str:
        out = self.familiar_name()
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def with_default_tag(self) -> Reference:
        """`busybox` means `busybox:latest`; a reference with a digest keeps none."""
        if self.tag is None and self.digest is None:
            return Reference(self.domain, self.path, DEFAULT_TAG)
        return self


def _split_domain(text: str) -> tuple[str, str]:
    """Docker's splitDockerDomain, on the whole text (tag and digest included)."""
    first, sep, rest = text.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost"
                   and first.lower() == first):
        domain, remainder = DEFAULT_DOMAIN, text
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_PREFIX + remainder
    return domain, remainder


def parse(text: str) -> Reference:
    """Parse and normalize, as `docker pull`/`docker tag` do (ParseNormalizedNamed)."""
    if not isinstance(text, str) or not text:
        raise InvalidArgument("invalid reference format")
    if _HEX64.match(text):
        raise InvalidArgument(f"invalid repository name ({text}), cannot specify 64-byte "
                              "hexadecimal strings")
    domain, remainder = _split_domain(text)
    remote = remainder.split(":", 1)[0].split("@", 1)[0]
    if remote.lower() != remote:
        raise InvalidArgument(f"invalid reference format: repository name ({remote}) must be "
                              "lowercase")
    m = _REFERENCE.match(f"{domain}/{remainder}")
    if not m:
        raise InvalidArgument("invalid reference format")
    name = m.group("name")
    if len(name) > NAME_MAX:
        raise InvalidArgument(f"repository name must not be more than {NAME_MAX} characters")
    digest = Digest(m.group("digest")) if m.group("digest") else None
    return Reference(domain, name[len(domain) + 1:], m.group("tag"), digest)


def parse_tagged(text: str) -> Reference:
    """A reference with `latest` filled in when it names neither tag nor digest."""
    return parse(text).with_default_tag()
