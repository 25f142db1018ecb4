"""A token server for Docker's token authentication: it checks who asks and signs a JWT
granting what the policy allows of what they asked for.

    GET  <path>?service=S&scope=repository:app:pull,push&scope=...[&account=U]
         [&offline_token=true]            Authorization: Basic (optional: anonymous)
    POST <path>  (form, Docker's OAuth2 flow)
         grant_type=password       username, password, service, scope, client_id,
                                   [access_type=offline]
         grant_type=refresh_token  refresh_token, service, scope, client_id

    200  {"token": T, "access_token": T, "expires_in": 300,
          "issued_at": "2024-01-01T00:00:00Z"[, "refresh_token": R]}
    401  bad credentials: WWW-Authenticate: Basic realm="...", and an UNAUTHORIZED error
    400  an unknown service, a malformed scope, an unsupported grant type

A scope may be repeated, or several may share one parameter separated by spaces. The
token's `access` claim holds, per resource asked for, only the actions the policy grants;
a resource with none granted is left out (the registry then answers 401, not this server).

The policy is a callable `(user or None, Access asked) -> actions granted`. By default an
authenticated user gets everything asked, an anonymous one `pull` only.

A refresh token (what `docker login` stores as `identitytoken`) is handed out for
`offline_token=true` or `access_type=offline`; they are random strings held in memory, so
they do not outlive the server.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from dockyard.registry.auth.access import basic_credentials
from dockyard.registry.auth.htpasswd import Htpasswd, HtpasswdError
from dockyard.registry.auth.token import Access, TokenIssuer

Policy = Callable[[str | None, Access], Iterable[str]]

_TYPE = re.compile(r"^[a-z0-9]+(?:\([a-zA-Z0-9]+\))?$")
_ACTION = re.compile(r"^(?:\*|[a-z]+)$")


def default_policy(user: str | None, access: Access) -> Iterable[str]:
    """Authenticated users get what they ask; anonymous ones may only pull."""
    if user:
        return access.actions
    return [a for a in access.actions if a == "pull"]


class BadRequest(Exception):
    pass


def parse_scopes(values: Iterable[str]) -> list[Access]:
    """`scope` parameters (each maybe several, space-separated), one Access per resource with
    the union of the actions asked for it, in the order first asked."""
    merged: dict[tuple[str, str], list[str]] = {}
    for value in values:
        for text in value.split():
            kind, sep, rest = text.partition(":")
            name, sep2, actions = rest.rpartition(":")
            parts = actions.split(",")
            if not (sep and sep2 and name and _TYPE.match(kind)
                    and all(_ACTION.match(p) for p in parts)):
                raise BadRequest(f"invalid scope {text!r}: want type:name:actions")
            have = merged.setdefault((kind, name), [])
            have += [p for p in parts if p not in have]
    return [Access(kind, name, tuple(actions)) for (kind, name), actions in merged.items()]


def _error(status: int, code: str, message: str,
           headers: dict[str, str] | None = None) -> web.Response:
    # the spec's error list, and the `details` Docker Hub's token server sends
    body = {"errors": [{"code": code, "message": message}], "details": message}
    return web.json_response(body, status=status, headers=headers)


class TokenServer:
    def __init__(self, issuer: TokenIssuer, users: Htpasswd | None = None,
                 policy: Policy = default_policy, realm: str = "dockyard-token") -> None:
        self.issuer, self.users, self.policy, self.realm = issuer, users, policy, realm
        self._refresh: dict[str, str] = {}  # refresh token -> user

    def grant(self, user: str | None, asked: Iterable[Access]) -> list[Access]:
        out = []
        for access in asked:
            allowed = set(self.policy(user, access))
            actions = tuple(a for a in access.actions if a in allowed)
            if actions:
                out.append(Access(access.type, access.name, actions))
        return out

    def _unauthorized(self, message: str) -> web.Response:
        return _error(401, "UNAUTHORIZED", message,
                      {"WWW-Authenticate": f'Basic realm="{self.realm}"'})

    async def _check(self, user: str, password: str) -> bool:
        if self.users is None:
            return False
        try:
            return await asyncio.to_thread(self.users.check, user, password)
        except (OSError, HtpasswdError) as e:
            raise web.HTTPInternalServerError(text=f"htpasswd: {e}") from None

    def _service(self, service: str | None) -> None:
        if service and service != self.issuer.service:
            raise BadRequest(f"unknown service {service!r}")

    def _answer(self, user: str | None, asked: list[Access], offline: bool,
                refresh: str | None = None) -> web.Response:
        body: dict[str, Any] = self.issuer.response(user or "", self.grant(user, asked))
        if user and (offline or refresh):
            if refresh is None:
                refresh = secrets.token_urlsafe(32)
                self._refresh[refresh] = user
            body["refresh_token"] = refresh
        return web.json_response(body)

    async def get(self, request: web.Request) -> web.Response:
        q = request.query
        user: str | None = None
        creds = basic_credentials(request)
        if request.headers.get("Authorization") and creds is None:
            return self._unauthorized("malformed basic credentials")
        try:
            self._service(q.get("service"))
            asked = parse_scopes(q.getall("scope", []))
        except BadRequest as e:
            return _error(400, "INVALID_REQUEST", str(e))
        if creds is not None:
            if not await self._check(*creds):
                return self._unauthorized("incorrect username or password")
            user = creds[0]
            if q.get("account") and q["account"] != user:
                return _error(400, "INVALID_REQUEST", "account does not match the "
                                                      "credentials")
        offline = q.get("offline_token", "").lower() == "true"
        return self._answer(user, asked, offline)

    async def post(self, request: web.Request) -> web.Response:
        form = await request.post()
        field = {k: v for k, v in form.items() if isinstance(v, str)}
        try:
            self._service(field.get("service"))
            asked = parse_scopes([field.get("scope", "")])
        except BadRequest as e:
            return _error(400, "INVALID_REQUEST", str(e))
        grant = field.get("grant_type", "")
        if grant == "password":
            user, password = field.get("username", ""), field.get("password", "")
            if not user or not await self._check(user, password):
                return self._unauthorized("incorrect username or password")
            response = self._answer(user, asked, field.get("access_type") == "offline")
        elif grant == "refresh_token":
            token = field.get("refresh_token", "")
            owner = self._refresh.get(token)
            if owner is None:
                return self._unauthorized("invalid refresh token")
            response = self._answer(owner, asked, False, refresh=token)
        else:
            return _error(400, "UNSUPPORTED", f"unsupported grant_type {grant!r}")
        return response


def token_app(issuer: TokenIssuer, users: Htpasswd | None = None,
              policy: Policy = default_policy, *, path: str = "/token",
              realm: str = "dockyard-token") -> web.Application:
    """An aiohttp application serving the token endpoint at `path` (GET and POST)."""
    server = TokenServer(issuer, users, policy, realm)
    app = web.Application()
    app.router.add_get(path, server.get)
    app.router.add_post(path, server.post)
    return app
