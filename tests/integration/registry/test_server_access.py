"""The access hook: the scopes each request asks for, 401 with the controller's challenge,
403, and the per-request log line."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest
from aiohttp import web

from dockyard.registry.errors import RegistryError
from tests.integration.registry import Server, digest_of, serve

Scope = tuple[str, str, frozenset[str]]


class TinyAccess:
    """Basic auth with one user who may pull and push `mine/*` and pull `shared`."""

    def __init__(self) -> None:
        self.asked: list[list[Scope]] = []

    async def authorize(self, request: web.Request, scopes: list[Scope]) -> str | None:
        self.asked.append(scopes)
        header = request.headers.get("Authorization", "")
        if header != "Basic " + base64.b64encode(b"me:pw").decode():
            raise RegistryError("UNAUTHORIZED", "no credentials")
        for kind, name, actions in scopes:
            if kind == "registry" or name.startswith("mine/"):
                continue
            if name == "shared" and actions <= {"pull"}:
                continue
            raise RegistryError("DENIED", {"name": name, "actions": sorted(actions)})
        return "me"

    def challenge(self, request: web.Request, scopes: list[Scope]) -> dict[str, str]:
        return {"WWW-Authenticate": 'Basic realm="test"'}


AUTH = {"Authorization": "Basic " + base64.b64encode(b"me:pw").decode()}


def test_unauthenticated_is_401_with_challenge(tmp_path: Path) -> None:
    access = TinyAccess()

    async def body(reg: Server) -> None:
        r = await reg.request("GET", "/v2/")
        assert (r.status, r.codes()) == (401, ["UNAUTHORIZED"])
        assert r.headers["WWW-Authenticate"] == 'Basic realm="test"'
        assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
        assert (await reg.request("GET", "/v2/", headers=AUTH)).status == 200
        assert (await reg.request("GET", "/healthz")).status == 200
    serve(tmp_path, body, access=access)
    assert access.asked[0] == []


def test_scopes_per_method_and_denied(tmp_path: Path) -> None:
    access = TinyAccess()

    async def body(reg: Server) -> None:
        digest = digest_of(b"x")
        r = await reg.request("POST", f"/v2/mine/a/blobs/uploads/?digest={digest}", data=b"x",
                              headers=AUTH)
        assert r.status == 201
        assert access.asked[-1] == [("repository", "mine/a", frozenset({"pull", "push"}))]
        await reg.request("HEAD", f"/v2/mine/a/blobs/{digest}", headers=AUTH)
        assert access.asked[-1] == [("repository", "mine/a", frozenset({"pull"}))]
        await reg.request("DELETE", f"/v2/mine/a/blobs/{digest}", headers=AUTH)
        assert access.asked[-1] == [("repository", "mine/a", frozenset({"delete"}))]
        await reg.request("GET", "/v2/_catalog", headers=AUTH)
        assert access.asked[-1] == [("registry", "catalog", frozenset({"*"}))]
        r = await reg.request("POST", f"/v2/mine/b/blobs/uploads/?mount={digest}&from=shared",
                              headers=AUTH)
        assert access.asked[-1] == [("repository", "mine/b", frozenset({"pull", "push"})),
                                    ("repository", "shared", frozenset({"pull"}))]
        assert r.status == 202  # not in shared: a plain upload
        r = await reg.request("POST", f"/v2/mine/b/blobs/uploads/?mount={digest}&from=other",
                              headers=AUTH)
        assert (r.status, r.codes()) == (403, ["DENIED"])
        r = await reg.request("PUT", "/v2/shared/manifests/v1", data=b"{}", headers=AUTH)
        assert (r.status, r.codes()) == (403, ["DENIED"])
        assert "WWW-Authenticate" not in r.headers
    serve(tmp_path, body, access=access)


def test_every_request_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("dockyard.registry.test")

    async def body(reg: Server) -> None:
        await reg.request("GET", "/v2/")
        await reg.request("GET", "/v2/x/manifests/none")
    with caplog.at_level(logging.INFO, logger=log.name):
        serve(tmp_path, body, log=log)
    lines = [r.getMessage() for r in caplog.records if r.name == log.name]
    assert lines[0].startswith("GET /v2/ 200 2 ")
    assert lines[1].startswith("GET /v2/x/manifests/none 404 ")
    assert "ms" in lines[1]
