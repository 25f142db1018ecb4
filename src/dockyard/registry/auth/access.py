"""Access control for the registry server: who is asking, and may they do what they ask.

The server names what a request needs as scopes, `(type, name, actions)`:

    GET  /v2/app/manifests/v1        [("repository", "app", {"pull"})]
    PUT  /v2/app/blobs/uploads/..    [("repository", "app", {"pull", "push"})]
    GET  /v2/_catalog                [("registry", "catalog", {"*"})]

and asks its controller before acting:

    user = await controller.authorize(request, scopes)      # the user name, or None
      RegistryError("UNAUTHORIZED")  credentials missing, wrong, or (tokens) too narrow:
                                     answer 401 with controller.challenge(request, scopes)
      RegistryError("DENIED")        authenticated, but this user may not: answer 403

Three controllers, as distribution configures them (`auth:` in its config.yml):

    NoAccessControl   everyone may do everything
    HtpasswdAccess    Basic credentials checked against an htpasswd file; any valid user may
                      do anything (distribution's htpasswd has no per-user rights)
                          WWW-Authenticate: Basic realm="<realm>"
    TokenAccess       a Bearer JWT from the token server (Docker's token authentication
                      spec); its `access` claim must grant every action asked for
                          WWW-Authenticate: Bearer realm="<token url>",service="<service>",
                              scope="repository:app:pull,push"[,error="insufficient_scope"]

A token that is valid but does not grant the scope is a 401 with `error="insufficient_scope"`,
not a 403: the client then asks the token server again with the scope named in the
challenge (RFC 6750 section 3.1), as the reference registry expects.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Iterable
from typing import Protocol

from aiohttp import web

from dockyard.registry.auth.htpasswd import Htpasswd, HtpasswdError
from dockyard.registry.auth.token import TokenError, TokenVerifier
from dockyard.registry.errors import RegistryError

ScopeSpec = tuple[str, str, frozenset[str]]  # (type, name, actions)

_ORDER = {"pull": 0, "push": 1, "delete": 2}


class AccessController(Protocol):
    async def authorize(self, request: web.Request, scopes: list[ScopeSpec]) -> str | None: ...

    def challenge(self, request: web.Request, scopes: list[ScopeSpec]) -> dict[str, str]: ...


def scope_text(scopes: Iterable[ScopeSpec]) -> str:
    """The challenge's `scope` value: `type:name:a,b` per scope, separated by spaces."""
    return " ".join(
        f"{kind}:{name}:{','.join(sorted(actions, key=lambda a: (_ORDER.get(a, 3), a)))}"
        for kind, name, actions in scopes)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _detail(scopes: Iterable[ScopeSpec]) -> list[dict[str, str]]:
    """What distribution puts in an UNAUTHORIZED error's detail: the access wanted."""
    return [{"Type": kind, "Name": name, "Action": action}
            for kind, name, actions in scopes for action in sorted(actions)]


def _credentials(request: web.Request, scheme: str) -> str | None:
    """The credentials of an `Authorization: <scheme> <credentials>` header, or None."""
    given, _, value = request.headers.get("Authorization", "").strip().partition(" ")
    if given.lower() != scheme or not value.strip():
        return None
    return value.strip()


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    """User and password from `Authorization: Basic base64(user:password)`, or None when the
    header is absent or malformed."""
    value = _credentials(request, "basic")
    if value is None:
        return None
    try:
        text = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, ValueError):
        return None
    user, sep, password = text.partition(":")
    return (user, password) if sep and user else None


class NoAccessControl:
    """Every request is allowed, anonymously."""

    async def authorize(self, request: web.Request, scopes: list[ScopeSpec]) -> str | None:
        return None

    def challenge(self, request: web.Request, scopes: list[ScopeSpec]) -> dict[str, str]:
        return {}


class HtpasswdAccess:
    """Basic auth against an htpasswd file; a valid user may do anything."""

    def __init__(self, users: Htpasswd, realm: str) -> None:
        self.users, self.realm = users, realm

    async def authorize(self, request: web.Request, scopes: list[ScopeSpec]) -> str | None:
        creds = basic_credentials(request)
        if creds is None:
            raise RegistryError("UNAUTHORIZED", _detail(scopes))
        try:
            # bcrypt costs tens of milliseconds: keep it off the event loop
            ok = await asyncio.to_thread(self.users.check, *creds)
        except (OSError, HtpasswdError) as e:
            raise RegistryError("UNKNOWN", message=f"htpasswd: {e}") from None
        if not ok:
            raise RegistryError("UNAUTHORIZED", _detail(scopes))
        return creds[0]

    def challenge(self, request: web.Request, scopes: list[ScopeSpec]) -> dict[str, str]:
        return {"WWW-Authenticate": f"Basic realm={_quote(self.realm)}"}


class TokenAccess:
    """Bearer tokens from a token server whose keys `verifier` trusts."""

    def __init__(self, verifier: TokenVerifier, realm: str, service: str) -> None:
        self.verifier, self.realm, self.service = verifier, realm, service

    def _check(self, request: web.Request, scopes: list[ScopeSpec]) -> tuple[str | None, str]:
        """(subject, "") when allowed, else (None, the challenge's error: "" when there
        is no token, "invalid_token" or "insufficient_scope")."""
        token = _credentials(request, "bearer")
        if token is None:
            return None, ""
        try:
            claims = self.verifier.verify(token)
        except TokenError:
            return None, "invalid_token"
        if not all(claims.allows(kind, name, action)
                   for kind, name, actions in scopes for action in actions):
            return None, "insufficient_scope"
        return claims.subject, ""

    async def authorize(self, request: web.Request, scopes: list[ScopeSpec]) -> str | None:
        subject, error = self._check(request, scopes)
        if error or subject is None:
            raise RegistryError("UNAUTHORIZED", _detail(scopes))
        return subject or None

    def challenge(self, request: web.Request, scopes: list[ScopeSpec]) -> dict[str, str]:
        params: list[tuple[str, str]] = [("realm", self.realm), ("service", self.service)]
        if scopes:
            params.append(("scope", scope_text(scopes)))
        _, error = self._check(request, scopes)
        if error:
            params.append(("error", error))
        value = ",".join(f"{k}={_quote(v)}" for k, v in params)
        return {"WWW-Authenticate": f"Bearer {value}"}

