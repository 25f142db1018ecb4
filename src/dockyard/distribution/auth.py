"""The client side of registry authentication: what `Repository` asks before each request
and after a 401 (the `Authenticator` protocol of distribution.client).

    headers(base, scope)       Bearer host:   a cached token for (realm, service, scope),
                                              fetched first if there is none yet
                               Basic host:    the host's credentials
                               unknown host:  nothing (the 401 will say what it wants)
    challenged(.., response)   Bearer:  fetch a fresh token for our scope merged with the
                                        challenge's, cache it; True (retry)
                               Basic:   True if we have credentials and the refused
                                        request did not carry them (else they are wrong)

A token is asked for as Docker does: with an identity token (config.json's
`identitytoken`) by POST grant_type=refresh_token; with a user and password by GET with
Basic auth; else anonymously by GET. Credentials are looked up once per host.

A token server that refuses becomes `Unauthorized` with Docker's words:
"unauthorized: incorrect username or password" when we sent credentials,
"unauthorized: authentication required" when we did not, unless the server said more.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import aiohttp

from dockyard.distribution.challenge import (
    Challenge,
    Token,
    TokenCache,
    TokenKey,
    find,
    parse_challenges,
    parse_token,
    token_key,
    token_request,
)
from dockyard.distribution.credentials import Credentials, DockerConfig
from dockyard.distribution.errors import (
    ChallengeError,
    Denied,
    RegistryError,
    TooManyRequests,
    Unauthorized,
    parse_error_body,
)

CLIENT_ID = "dockyard"

CredentialSource = Callable[[str], Credentials | None]


def _host(base: str) -> str:
    return urlsplit(base).netloc


def _basic(creds: Credentials) -> dict[str, str]:
    raw = f"{creds.username}:{creds.password}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


class RegistryAuth:
    def __init__(self, credentials: CredentialSource | None = None,
                 cache: TokenCache | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        self._source = credentials if credentials is not None else DockerConfig().lookup
        self.cache = cache if cache is not None else TokenCache()
        self._clock = clock
        self._creds: dict[str, Credentials | None] = {}
        self._bearer: dict[str, Challenge] = {}  # host -> its challenge, without scope
        self._basic: set[str] = set()  # hosts that asked for Basic
        self._locks: dict[TokenKey, asyncio.Lock] = {}

    def credentials(self, host: str) -> Credentials | None:
        if host not in self._creds:
            self._creds[host] = self._source(host)
        return self._creds[host]

    async def headers(self, session: aiohttp.ClientSession, base: str,
                      scope: str) -> dict[str, str]:
        host = _host(base)
        if host in self._basic:
            creds = self.credentials(host)
            if creds is None or not (creds.username or creds.password):
                return {}
            return _basic(creds)
        challenge = self._bearer.get(host)
        if challenge is None:
            return {}
        token = await self._token(session, host, challenge, scope)
        return {"Authorization": f"Bearer {token.token}"}

    async def challenged(self, session: aiohttp.ClientSession, base: str, scope: str,
                         response: aiohttp.ClientResponse) -> bool:
        host = _host(base)
        try:
            challenges = parse_challenges(response.headers.getall("WWW-Authenticate", []))
        except ChallengeError:
            return False
        bearer = find(challenges, "bearer")
        if bearer is not None:
            self._bearer[host] = Challenge("bearer", {k: v for k, v in bearer.params.items()
                                                      if k not in ("scope", "error")})
            self._basic.discard(host)
            response.release()  # we answer with True or raise: its body is not wanted
            sent = response.request_info.headers.get("Authorization", "")
            refused = sent[7:] if sent.lower().startswith("bearer ") else ""
            await self._token(session, host, bearer, scope, refused=refused)
            return True
        if find(challenges, "basic") is not None:
            sent = response.request_info.headers.get("Authorization", "")
            if sent.lower().startswith("basic "):
                return False  # the credentials we sent were refused
            creds = self.credentials(host)
            if creds is None or not (creds.username or creds.password):
                return False
            self._basic.add(host)
            return True
        return False

    async def _token(self, session: aiohttp.ClientSession, host: str, challenge: Challenge,
                     scope: str, *, refused: str | None = None) -> Token:
        """A token for `scope`, cached or fetched. After a 401 (`refused` is the token the
        refused request carried, "" if none) the scope is widened by the challenge's, and a
        cached token serves only if it is not the refused one: when concurrent requests
        are refused together, one fetches and the others take its token."""
        ours = scope.split()
        realm, query = token_request(challenge, ours)
        service = challenge.params.get("service", "")
        key = token_key(realm, service, ours)
        wider = token_key(realm, service, [v for k, v in query if k == "scope"])
        lock = self._locks.setdefault(wider, asyncio.Lock())
        async with lock:
            cached = self.cache.get(key if refused is None else wider)
            if cached is not None and cached.token != refused:
                return cached
            token = await self._fetch(session, host, realm, query)
            self.cache.put(key, token)
            if wider != key:  # the challenge widened the scope: the token serves both
                self.cache.put(wider, token)
            return token

    async def _fetch(self, session: aiohttp.ClientSession, host: str, realm: str,
                     query: list[tuple[str, str]]) -> Token:
        creds = self.credentials(host)
        sent = creds is not None and bool(creds.identity_token or creds.username)
        try:
            if creds is not None and creds.identity_token:
                form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token,
                        "client_id": CLIENT_ID,
                        "scope": " ".join(v for k, v in query if k == "scope")}
                form.update((k, v) for k, v in query if k == "service")
                resp = await session.post(realm, data=form)
            else:
                headers = (_basic(creds) if creds is not None and creds.username else {})
                resp = await session.get(realm, params=query, headers=headers)
            async with resp:
                body = await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError) as e:
            raise Unauthorized(f"unauthorized: cannot get a token from {realm}: {e}",
                               url=realm) from None
        if status == 200:
            try:
                return parse_token(body, self._clock())
            except ChallengeError as e:
                raise Unauthorized(f"unauthorized: {e}", status=status, url=realm) from None
        raise token_error(status, body, realm, sent)


def token_error(status: int, body: bytes, url: str, sent_credentials: bool) -> RegistryError:
    """A token server's refusal as Docker reports it."""
    errors = parse_error_body(body)
    detail = errors[0].message if errors and errors[0].message else _details(body)
    cls: type[RegistryError] = {403: Denied, 429: TooManyRequests}.get(status, Unauthorized)
    if detail:
        message = detail
    elif status == 401:
        message = ("incorrect username or password" if sent_credentials
                   else "authentication required")
    else:
        message = f"token server {url} answered {status}"
    words = {Denied: "denied", TooManyRequests: "toomanyrequests"}.get(cls, "unauthorized")
    return cls(f"{words}: {message}", status=status, url=url, errors=errors)


def _details(body: bytes) -> str:
    """The `details` (Docker Hub) or `error_description` (OAuth2) of an error body."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ""
    if not isinstance(doc, dict):
        return ""
    for field in ("details", "error_description"):
        if isinstance(doc.get(field), str) and doc[field]:
            return str(doc[field])
    return ""
