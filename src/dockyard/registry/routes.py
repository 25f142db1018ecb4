"""The OCI Distribution Spec's endpoints as data, shared by the server (matching) and the
client (building URLs), as distribution's routes.go is.

    end-1   GET          /v2/
    end-2   GET HEAD     /v2/<name>/blobs/<digest>
    end-3   GET HEAD     /v2/<name>/manifests/<reference>
    end-4   POST         /v2/<name>/blobs/uploads/[?digest=<digest>]
    end-5   PATCH        /v2/<name>/blobs/uploads/<id>
    end-6   PUT          /v2/<name>/blobs/uploads/<id>?digest=<digest>
    end-7   PUT          /v2/<name>/manifests/<reference>
    end-8   GET          /v2/<name>/tags/list[?n=<int>&last=<tag>]
    end-9   DELETE       /v2/<name>/manifests/<reference>
    end-10  DELETE       /v2/<name>/blobs/<digest>
    end-11  POST         /v2/<name>/blobs/uploads/?mount=<digest>&from=<other name>
    end-12  GET          /v2/<name>/referrers/<digest>[?artifactType=<type>]
    end-13  GET          /v2/<name>/blobs/uploads/<id>
            GET          /v2/_catalog[?n=<int>&last=<name>]

A name is one or more path components (`[a-z0-9]+` joined by `.`, `_`, `__` or dashes),
slash-separated; the last path segments say which endpoint it is, so a repository may be
called `a/blobs/b` and still be told apart (the route's suffix is matched from the right).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote, urlencode

from dockyard.image.errors import InvalidArgument

NAME_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME = rf"{NAME_COMPONENT}(?:/{NAME_COMPONENT})*"
TAG = r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}"
DIGEST = r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+"
REFERENCE = rf"(?:{TAG}|{DIGEST})"
UPLOAD_ID = r"[a-zA-Z0-9._=-]+"
NAME_MAX = 255

_NAME_RE = re.compile(rf"^{NAME}$")
_TAG_RE = re.compile(rf"^{TAG}$")


class Route(StrEnum):
    BASE = "base"
    CATALOG = "catalog"
    TAGS = "tags"
    MANIFEST = "manifest"
    BLOB = "blob"
    UPLOADS = "uploads"  # POST starts an upload (or mounts, or is monolithic)
    UPLOAD = "upload"  # GET, PATCH, PUT, DELETE on one upload
    REFERRERS = "referrers"


@dataclass(frozen=True)
class Match:
    route: Route
    name: str = ""
    reference: str = ""  # a tag or digest (manifest), a digest (blob, referrers), an upload id


_PATTERNS: tuple[tuple[Route, re.Pattern[str]], ...] = (
    (Route.BASE, re.compile(r"^/v2/?$")),
    (Route.CATALOG, re.compile(r"^/v2/_catalog$")),
    (Route.TAGS, re.compile(rf"^/v2/(?P<name>{NAME})/tags/list$")),
    (Route.MANIFEST, re.compile(rf"^/v2/(?P<name>{NAME})/manifests/(?P<ref>{REFERENCE})$")),
    (Route.UPLOADS, re.compile(rf"^/v2/(?P<name>{NAME})/blobs/uploads/?$")),
    (Route.UPLOAD, re.compile(rf"^/v2/(?P<name>{NAME})/blobs/uploads/(?P<ref>{UPLOAD_ID})$")),
    (Route.BLOB, re.compile(rf"^/v2/(?P<name>{NAME})/blobs/(?P<ref>{DIGEST})$")),
    (Route.REFERRERS, re.compile(rf"^/v2/(?P<name>{NAME})/referrers/(?P<ref>{DIGEST})$")),
)

# Which methods each route answers; HEAD goes with GET.
METHODS: dict[Route, frozenset[str]] = {
    Route.BASE: frozenset({"GET", "HEAD"}),
    Route.CATALOG: frozenset({"GET"}),
    Route.TAGS: frozenset({"GET"}),
    Route.MANIFEST: frozenset({"GET", "HEAD", "PUT", "DELETE"}),
    Route.BLOB: frozenset({"GET", "HEAD", "DELETE"}),
    Route.UPLOADS: frozenset({"POST"}),
    Route.UPLOAD: frozenset({"GET", "PATCH", "PUT", "DELETE"}),
    Route.REFERRERS: frozenset({"GET"}),
}


def match(path: str) -> Match | None:
    """The endpoint a request path names, or None (the server answers 404 NAME_UNKNOWN or a
    plain 404). The first pattern that fits wins, in the order above, which puts
    `…/blobs/uploads/…` before `…/blobs/<digest>`."""
    for route, pattern in _PATTERNS:
        m = pattern.fullmatch(path)
        if m is None:
            continue
        groups = m.groupdict()
        name = groups.get("name") or ""
        if len(name) > NAME_MAX:
            return None
        return Match(route, name, groups.get("ref") or "")
    return None


def valid_name(name: str) -> bool:
    return len(name) <= NAME_MAX and _NAME_RE.fullmatch(name) is not None


def valid_tag(tag: str) -> bool:
    return _TAG_RE.fullmatch(tag) is not None


class URLs:
    """URLs of a registry's endpoints, under `base` ("https://host:port", no trailing /)."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    def _url(self, path: str, query: dict[str, str] | None = None) -> str:
        url = self.base + path
        if query:
            url += "?" + urlencode(query)
        return url

    def root(self) -> str:
        return self._url("/v2/")

    def catalog(self, n: int | None = None, last: str | None = None) -> str:
        return self._url("/v2/_catalog", _page(n, last))

    def tags(self, name: str, n: int | None = None, last: str | None = None) -> str:
        return self._url(f"/v2/{_name(name)}/tags/list", _page(n, last))

    def manifest(self, name: str, reference: str) -> str:
        return self._url(f"/v2/{_name(name)}/manifests/{quote(reference, safe=':')}")

    def blob(self, name: str, digest: str) -> str:
        return self._url(f"/v2/{_name(name)}/blobs/{quote(digest, safe=':')}")

    def uploads(self, name: str, *, digest: str | None = None, mount: str | None = None,
                source: str | None = None) -> str:
        query: dict[str, str] = {}
        if mount is not None:
            query["mount"] = mount
            if source is not None:
                query["from"] = source
        if digest is not None:
            query["digest"] = digest
        return self._url(f"/v2/{_name(name)}/blobs/uploads/", query)

    def upload(self, name: str, upload_id: str, digest: str | None = None) -> str:
        return self._url(f"/v2/{_name(name)}/blobs/uploads/{quote(upload_id, safe='')}",
                         {"digest": digest} if digest else None)

    def referrers(self, name: str, digest: str, artifact_type: str | None = None) -> str:
        return self._url(f"/v2/{_name(name)}/referrers/{quote(digest, safe=':')}",
                         {"artifactType": artifact_type} if artifact_type else None)


def _name(name: str) -> str:
    if not valid_name(name):
        raise InvalidArgument(f"invalid repository name {name!r}")
    return name


def _page(n: int | None, last: str | None) -> dict[str, str]:
    query: dict[str, str] = {}
    if n is not None:
        query["n"] = str(n)
    if last is not None:
        query["last"] = last
    return query
