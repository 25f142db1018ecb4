"""The endpoint table: every path of the spec matches its route, names with route words in
them are told apart, bad names match nothing, and the URL builder makes what matches."""

from __future__ import annotations

import json

import pytest

from dockyard.image.errors import InvalidArgument
from dockyard.registry.errors import CODES, RegistryError
from dockyard.registry.routes import METHODS, Match, Route, URLs, match, valid_name, valid_tag

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(("path", "expected"), [
    ("/v2/", Match(Route.BASE)),
    ("/v2", Match(Route.BASE)),
    ("/v2/_catalog", Match(Route.CATALOG)),
    ("/v2/library/busybox/tags/list", Match(Route.TAGS, "library/busybox")),
    ("/v2/app/manifests/latest", Match(Route.MANIFEST, "app", "latest")),
    (f"/v2/a/b/c/manifests/{D}", Match(Route.MANIFEST, "a/b/c", D)),
    (f"/v2/app/blobs/{D}", Match(Route.BLOB, "app", D)),
    ("/v2/app/blobs/uploads/", Match(Route.UPLOADS, "app")),
    ("/v2/app/blobs/uploads", Match(Route.UPLOADS, "app")),
    ("/v2/app/blobs/uploads/0f2c-11aa", Match(Route.UPLOAD, "app", "0f2c-11aa")),
    (f"/v2/app/referrers/{D}", Match(Route.REFERRERS, "app", D)),
    # route words inside a repository name
    ("/v2/blobs/manifests/v1", Match(Route.MANIFEST, "blobs", "v1")),
    ("/v2/a/manifests/b/manifests/v1", Match(Route.MANIFEST, "a/manifests/b", "v1")),
    ("/v2/tags/list/tags/list", Match(Route.TAGS, "tags/list")),
    (f"/v2/x/blobs/y/blobs/{D}", Match(Route.BLOB, "x/blobs/y", D)),
])
def test_paths_match_their_routes(path: str, expected: Match) -> None:
    assert match(path) == expected


@pytest.mark.parametrize("path", [
    "/v2/UPPER/manifests/latest", "/v2/../etc/manifests/latest", "/v2/a//b/tags/list",
    "/v2/-a/tags/list", "/v2/a/manifests/-bad", "/v2/a/blobs/notadigest", "/v1/_ping",
    "/v2/a/manifests/" + "t" * 129, "/v2/" + "a" * 256 + "/tags/list", "/v2/a/unknown",
    "/v2/a/tags/list\n", "/v2/\n",
])
def test_bad_paths_match_nothing(path: str) -> None:
    assert match(path) is None


def test_methods_per_route() -> None:
    assert METHODS[Route.MANIFEST] >= {"GET", "HEAD", "PUT", "DELETE"}
    assert METHODS[Route.UPLOADS] == {"POST"}
    assert set(METHODS) == set(Route)


def test_names_and_tags() -> None:
    assert valid_name("a.b_c__d--e/f") and not valid_name("a_") and not valid_name("A")
    assert not valid_name("app\n") and not valid_tag("v1\n")
    assert valid_tag("v1.0_rc-1") and not valid_tag(".hidden") and not valid_tag("t" * 129)


def test_built_urls_match_back() -> None:
    urls = URLs("http://127.0.0.1:5000/")
    assert urls.root() == "http://127.0.0.1:5000/v2/"
    assert urls.tags("a/b", n=10, last="v1") == "http://127.0.0.1:5000/v2/a/b/tags/list?n=10&last=v1"
    assert urls.catalog(n=2) == "http://127.0.0.1:5000/v2/_catalog?n=2"
    assert urls.uploads("a", mount=D, source="b/c").endswith(
        "/v2/a/blobs/uploads/?mount=sha256%3A" + "a" * 64 + "&from=b%2Fc")
    assert urls.upload("a", "id-1", digest=D).endswith("/v2/a/blobs/uploads/id-1?digest="
                                                       "sha256%3A" + "a" * 64)
    assert urls.referrers("a", D, "application/x").endswith("?artifactType=application%2Fx")
    for url, route in ((urls.manifest("a/b", "v1"), Route.MANIFEST),
                       (urls.blob("a/b", D), Route.BLOB),
                       (urls.referrers("a/b", D), Route.REFERRERS)):
        assert match(url.removeprefix("http://127.0.0.1:5000")) == Match(
            route, "a/b", "v1" if route is Route.MANIFEST else D)
    with pytest.raises(InvalidArgument, match="invalid repository name"):
        urls.manifest("../x", "v1")


def test_error_bodies_are_the_specs() -> None:
    e = RegistryError("MANIFEST_UNKNOWN", {"Tag": "nope"})
    assert e.status == 404
    assert json.loads(e.body()) == {"errors": [{"code": "MANIFEST_UNKNOWN",
                                                "message": "manifest unknown",
                                                "detail": {"Tag": "nope"}}]}
    assert RegistryError("RANGE_INVALID").status == 416
    assert {CODES[c][0] for c in ("UNAUTHORIZED", "DENIED", "TOOMANYREQUESTS")} == {401, 403,
                                                                                    429}
    with pytest.raises(ValueError, match="unknown registry error code"):
        RegistryError("NOPE")
