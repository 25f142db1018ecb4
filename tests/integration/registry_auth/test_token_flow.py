"""The token server on a loopback port, asked directly and through our client's
`RegistryAuth` in front of a small endpoint guarded by our access controllers."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from dockyard.distribution.auth import RegistryAuth, token_error
from dockyard.distribution.challenge import TokenCache
from dockyard.distribution.credentials import Credentials
from dockyard.distribution.errors import Denied, Unauthorized, from_response
from dockyard.registry.auth.access import AccessController, HtpasswdAccess, TokenAccess
from dockyard.registry.auth.htpasswd import Htpasswd, entry
from dockyard.registry.auth.token import Access, Claims, TokenIssuer, TokenVerifier
from dockyard.registry.auth.tokenserver import token_app
from dockyard.registry.errors import RegistryError
from tests.refregistry import free_port

KEY = ec.generate_private_key(ec.SECP256R1())
SERVICE, ISSUER = "registry.test", "dockyard-token"
VERIFIER = TokenVerifier([KEY.public_key()], ISSUER, SERVICE)


@pytest.fixture
def users(tmp_path: Path) -> Htpasswd:
    path = tmp_path / "htpasswd"
    path.write_text(entry("alice", "s3cret", rounds=4) + "\n" + entry("bob", "b0b", rounds=4))
    return Htpasswd(path)


def readers(user: str | None, access: Access) -> list[str]:
    """alice may do anything; bob and anonymous users may only pull."""
    return list(access.actions) if user == "alice" else [a for a in access.actions
                                                         if a == "pull"]


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode())
            .decode()}


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def run(fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    async def main() -> Any:
        async with aiohttp.ClientSession() as session:
            return await fn(session, *args)
    return asyncio.run(main())


def claims(body: dict[str, Any]) -> Claims:
    return VERIFIER.verify(body["token"])


async def get_token(session: aiohttp.ClientSession, base: str, params: list[tuple[str, str]],
                    headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    async with session.get(base + "/token", params=params, headers=headers or {}) as r:
        return r.status, await r.json(), r.headers


def test_token_endpoint_grants_by_policy(users: Htpasswd) -> None:
    app = token_app(TokenIssuer(KEY, ISSUER, SERVICE), users, readers)
    push = [("service", SERVICE), ("scope", "repository:app:pull,push")]

    async def scenario(session: aiohttp.ClientSession) -> None:
        async with serving(app) as base:
            status, body, _ = await get_token(session, base, push, basic("alice", "s3cret"))
            assert status == 200 and body["token"] == body["access_token"]
            assert body["expires_in"] == 300 and body["issued_at"].endswith("Z")
            c = claims(body)
            assert c.subject == "alice"
            assert c.access == (Access("repository", "app", ("pull", "push")),)

            status, body, _ = await get_token(session, base, push, basic("bob", "b0b"))
            assert status == 200
            assert claims(body).access == (Access("repository", "app", ("pull",)),)

            status, body, _ = await get_token(session, base, push)  # anonymous
            assert status == 200 and claims(body).subject == ""
            assert claims(body).access == (Access("repository", "app", ("pull",)),)

            # several scopes: repeated, or space-separated in one parameter; merged
            status, body, _ = await get_token(session, base, [
                ("scope", "repository:a:pull repository:b:push"), ("scope", "repository:a:push"),
                ("scope", "registry:catalog:*")], basic("alice", "s3cret"))
            assert status == 200
            assert set(claims(body).access) == {Access("repository", "a", ("pull", "push")),
                                                Access("repository", "b", ("push",)),
                                                Access("registry", "catalog", ("*",))}
            # nothing granted: a token without access
            status, body, _ = await get_token(session, base, [("scope", "repository:a:push")])
            assert status == 200 and claims(body).access == ()

    run(scenario)


def test_token_endpoint_refuses_bad_requests(users: Htpasswd) -> None:
    app = token_app(TokenIssuer(KEY, ISSUER, SERVICE), users, realm="tokens")

    async def scenario(session: aiohttp.ClientSession) -> None:
        async with serving(app) as base:
            status, body, headers = await get_token(
                session, base, [("service", SERVICE)], basic("alice", "wrong"))
            assert status == 401 and headers["WWW-Authenticate"] == 'Basic realm="tokens"'
            assert body["errors"][0]["code"] == "UNAUTHORIZED"
            assert body["details"] == "incorrect username or password"
            status, body, _ = await get_token(session, base, [], basic("nobody", "s3cret"))
            assert status == 401
            status, body, _ = await get_token(session, base, [("service", "elsewhere")])
            assert status == 400 and "unknown service" in body["details"]
            for bad in ("repository:app", "repository::pull", "Repo:app:pull",
                        "repository:app:PULL"):
                status, body, _ = await get_token(session, base, [("scope", bad)])
                assert status == 400, bad
            status, body, _ = await get_token(session, base, [("account", "bob")],
                                              basic("alice", "s3cret"))
            assert status == 400
            status, body, _ = await get_token(session, base, [],
                                              {"Authorization": "Basic !!"})
            assert status == 401

    run(scenario)


def test_refresh_tokens_and_the_oauth_form(users: Htpasswd) -> None:
    app = token_app(TokenIssuer(KEY, ISSUER, SERVICE), users)
    scope = "repository:app:pull,push"

    async def post(session: aiohttp.ClientSession, base: str,
                   form: dict[str, str]) -> tuple[int, Any]:
        async with session.post(base + "/token", data=form) as r:
            return r.status, await r.json()

    async def scenario(session: aiohttp.ClientSession) -> None:
        async with serving(app) as base:
            status, body, _ = await get_token(session, base, [("offline_token", "true")],
                                              basic("alice", "s3cret"))
            assert status == 200 and body["refresh_token"]
            refresh = body["refresh_token"]
            status, body, _ = await get_token(session, base, [], basic("alice", "s3cret"))
            assert "refresh_token" not in body

            status, body = await post(session, base, {
                "grant_type": "refresh_token", "refresh_token": refresh, "service": SERVICE,
                "scope": scope, "client_id": "test"})
            assert status == 200 and body["refresh_token"] == refresh
            assert claims(body).subject == "alice"
            assert claims(body).access == (Access("repository", "app", ("pull", "push")),)

            status, body = await post(session, base, {
                "grant_type": "password", "username": "bob", "password": "b0b",
                "access_type": "offline", "scope": scope, "client_id": "test"})
            assert status == 200 and body["refresh_token"] != refresh
            assert claims(body).subject == "bob"

            for form in ({"grant_type": "refresh_token", "refresh_token": "made-up"},
                         {"grant_type": "password", "username": "bob", "password": "x"}):
                status, body = await post(session, base, form)
                assert status == 401
            status, body = await post(session, base, {"grant_type": "client_credentials"})
            assert status == 400

    run(scenario)


# -- the client against a guarded endpoint ------------------------------------------------

def guarded_app(controller: AccessController, token: web.Application | None = None,
                ) -> web.Application:
    """`GET|PUT /v2/<name>/thing`: pull for GET, push for PUT; `/token` if given."""
    async def handler(request: web.Request) -> web.Response:
        actions = frozenset({"pull"} if request.method == "GET" else {"pull", "push"})
        scopes = [("repository", request.match_info["name"], actions)]
        try:
            user = await controller.authorize(request, scopes)
        except RegistryError as e:
            return web.Response(status=e.status, body=e.body(),
                                content_type="application/json",
                                headers=controller.challenge(request, scopes))
        return web.json_response({"user": user})

    app = web.Application()
    app.router.add_route("*", "/v2/{name}/thing", handler)
    if token is not None:
        app.add_subapp("/auth", token)
    return app


async def fetch(session: aiohttp.ClientSession, auth: RegistryAuth, base: str, method: str,
                name: str) -> Any:
    """What Repository._request does: headers, and on a 401 one challenge and retry."""
    scope = f"repository:{name}:{'pull' if method == 'GET' else 'pull,push'}"
    url = f"{base}/v2/{name}/thing"
    for attempt in (1, 2):
        resp = await session.request(method, url,
                                     headers=await auth.headers(session, base, scope))
        if resp.status == 401 and attempt == 1 and \
                await auth.challenged(session, base, scope, resp):
            resp.release()
            continue
        break
    async with resp:
        if resp.status != 200:
            raise from_response(resp.status, await resp.read(), url)
        return (await resp.json())["user"]


class Counting:
    """The token app, counting the requests it answers."""

    def __init__(self, users: Htpasswd) -> None:
        self.count = 0

        @web.middleware
        async def count(request: web.Request, handler: Any) -> web.StreamResponse:
            self.count += 1
            return await handler(request)

        self.app = token_app(TokenIssuer(KEY, ISSUER, SERVICE), users, readers)
        self.app.middlewares.append(count)


def with_token_server(users: Htpasswd, fn: Callable[..., Awaitable[Any]]) -> Any:
    tokens = Counting(users)

    async def scenario(session: aiohttp.ClientSession) -> Any:
        port = free_port()  # the realm names the port before the app is built
        realm = f"http://127.0.0.1:{port}/auth/token"
        app = guarded_app(TokenAccess(VERIFIER, realm, SERVICE), tokens.app)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            return await fn(session, f"http://127.0.0.1:{port}", tokens)
        finally:
            await runner.cleanup()

    return run(scenario)


def creds(user: str = "", password: str = "", identity: str = "") -> Callable[[str], Any]:
    return lambda host: Credentials(host, user, password, identity) \
        if user or identity else None


def test_bearer_flow_fetches_caches_and_refetches(users: Htpasswd) -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, tokens: Counting) -> None:
        auth = RegistryAuth(creds("alice", "s3cret"), TokenCache())
        assert await auth.headers(session, base, "repository:app:pull") == {}
        assert await fetch(session, auth, base, "PUT", "app") == "alice"
        assert tokens.count == 1
        for _ in range(3):  # cached for the same scope, fetched beforehand for a new one
            assert await fetch(session, auth, base, "PUT", "app") == "alice"
            assert await fetch(session, auth, base, "GET", "other") == "alice"
        assert tokens.count == 2
        header = await auth.headers(session, base, "repository:app:pull,push")
        assert header["Authorization"].startswith("Bearer ")

    with_token_server(users, scenario)


def test_bearer_flow_refusals(users: Htpasswd) -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, tokens: Counting) -> None:
        bob = RegistryAuth(creds("bob", "b0b"))
        assert await fetch(session, bob, base, "GET", "app") == "bob"
        with pytest.raises(Unauthorized) as info:  # a token without push
            await fetch(session, bob, base, "PUT", "app")
        assert info.value.status == 401

        anonymous = RegistryAuth(creds())
        assert await fetch(session, anonymous, base, "GET", "app") is None
        with pytest.raises(Unauthorized):
            await fetch(session, anonymous, base, "PUT", "app")

        wrong = RegistryAuth(creds("alice", "nope"))
        with pytest.raises(Unauthorized) as info:
            await fetch(session, wrong, base, "GET", "app")
        assert str(info.value) == "unauthorized: incorrect username or password"

    with_token_server(users, scenario)


def test_bearer_flow_with_an_identity_token(users: Htpasswd) -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, tokens: Counting) -> None:
        status, body, _ = await get_token(session, base + "/auth",
                                          [("offline_token", "true")],
                                          basic("alice", "s3cret"))
        assert status == 200
        auth = RegistryAuth(creds(identity=body["refresh_token"]))
        assert await fetch(session, auth, base, "PUT", "app") == "alice"
        stale = RegistryAuth(creds(identity="revoked"))
        with pytest.raises(Unauthorized, match="invalid refresh token"):
            await fetch(session, stale, base, "GET", "app")

    with_token_server(users, scenario)


def test_basic_flow(users: Htpasswd) -> None:
    async def scenario(session: aiohttp.ClientSession) -> None:
        async with serving(guarded_app(HtpasswdAccess(users, "dockyard"))) as base:
            auth = RegistryAuth(creds("alice", "s3cret"))
            assert await fetch(session, auth, base, "PUT", "app") == "alice"
            assert (await auth.headers(session, base, "repository:x:pull"))[
                "Authorization"] == basic("alice", "s3cret")["Authorization"]
            with pytest.raises(Unauthorized):
                await fetch(session, RegistryAuth(creds("alice", "nope")), base, "GET", "app")
            with pytest.raises(Unauthorized):
                await fetch(session, RegistryAuth(creds()), base, "GET", "app")

    run(scenario)


def test_unreachable_token_server_is_unauthorized(users: Htpasswd) -> None:
    async def scenario(session: aiohttp.ClientSession) -> None:
        async with serving(web.Application()) as gone:
            pass
        controller = TokenAccess(VERIFIER, gone + "/token", SERVICE)
        async with serving(guarded_app(controller)) as base:
            with pytest.raises(Unauthorized, match="cannot get a token"):
                await fetch(session, RegistryAuth(creds()), base, "GET", "app")

    run(scenario)


def test_token_server_refusals_read_as_docker_prints_them() -> None:
    url = "http://auth.test/token"
    assert str(token_error(401, b"", url, True)) == \
        "unauthorized: incorrect username or password"
    assert str(token_error(401, b"not json", url, False)) == \
        "unauthorized: authentication required"
    assert str(token_error(401, b'{"details": "account locked"}', url, True)) == \
        "unauthorized: account locked"
    body = b'{"errors": [{"code": "UNAUTHORIZED", "message": "no such user"}]}'
    err = token_error(401, body, url, True)
    assert str(err) == "unauthorized: no such user" and err.code == "UNAUTHORIZED"
    denied = token_error(403, b"", url, True)
    assert isinstance(denied, Denied) and denied.status == 403
    assert isinstance(token_error(500, b"", url, False), Unauthorized)


def test_requests_refused_together_share_one_token(users: Htpasswd) -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, tokens: Counting) -> None:
        auth = RegistryAuth(creds("alice", "s3cret"))
        users_seen = await asyncio.gather(*(fetch(session, auth, base, "PUT", "app")
                                            for _ in range(5)))
        assert users_seen == ["alice"] * 5 and tokens.count == 1

    with_token_server(users, scenario)
