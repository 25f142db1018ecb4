"""Authentication challenges and the Docker token flow, without any I/O.

A registry that wants credentials answers 401 with one or more challenges (RFC 7235):

    WWW-Authenticate: Bearer realm="https://auth.docker.io/token",
                      service="registry.docker.io",scope="repository:library/busybox:pull"

    challenge  = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
    auth-param = token BWS "=" BWS ( token / quoted-string )

Several challenges may share one header, separated by commas, and commas may sit inside
quoted strings; the scheme and parameter names are case-insensitive (we keep them
lowercase). For Bearer the client then asks the realm for a token:

    client                                   token server (realm)
      | GET realm?service=S&scope=A&scope=B      |
      |----------------------------------------->|
      |   {"token": T, "expires_in": 300,        |
      |    "issued_at": "2024-01-01T00:00:00Z"}  |
      |<-----------------------------------------|
      | Authorization: Bearer T  (to the registry, until it expires)

`token_request` computes the first arrow, `parse_token` reads the answer, and
`TokenCache` keeps tokens by (realm, service, scopes) until they expire.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from dockyard.distribution import scopes as scopes_mod
from dockyard.distribution.errors import ChallengeError
from dockyard.distribution.scopes import Scope

_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789"
                   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_TOKEN68 = _TCHAR | frozenset("/")  # token68 also allows "/" and ends with "="s
_WS = " \t"

MIN_TOKEN_LIFETIME = 60  # seconds; Docker's floor for expires_in, and its default


@dataclass(frozen=True)
class Challenge:
    """One challenge: a lowercase scheme, lowercase parameter names, or a token68."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)
    token68: str | None = None

    def __str__(self) -> str:
        if self.token68 is not None:
            return f"{self.scheme} {self.token68}"
        if not self.params:
            return self.scheme
        return f"{self.scheme} " + ",".join(f"{k}={_quote(v)}" for k, v in self.params.items())


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, why: str) -> ChallengeError:
        return ChallengeError(f"malformed WWW-Authenticate header {self.text!r}: {why} "
                              f"at offset {self.pos}")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_ws(self) -> None:
        while self.peek() and self.peek() in _WS:
            self.pos += 1

    def skip_list_separators(self) -> None:
        while self.peek() and self.peek() in _WS + ",":
            self.pos += 1

    def token(self, chars: frozenset[str] = _TCHAR) -> str:
        start = self.pos
        while self.peek() and self.peek() in chars:
            self.pos += 1
        return self.text[start:self.pos]

    def quoted(self) -> str:
        self.pos += 1  # the opening quote
        out = []
        while True:
            c = self.peek()
            if not c:
                raise self.fail("unterminated quoted string")
            self.pos += 1
            if c == '"':
                return "".join(out)
            if c == "\\":
                if not self.peek():
                    raise self.fail("unterminated quoted string")
                c = self.peek()
                self.pos += 1
            if (ord(c) < 0x20 and c != "\t") or c == "\x7f":
                raise self.fail("control character in quoted string")
            out.append(c)

    def at_param(self) -> bool:
        """Whether the next list element is `name=value` (else it starts a challenge)."""
        save = self.pos
        try:
            if not self.token():
                return False
            self.skip_ws()
            if self.peek() != "=":
                return False
            self.pos += 1
            self.skip_ws()
            return self.peek() != "=" and (self.peek() == '"' or self.peek() in _TCHAR)
        finally:
            self.pos = save


def _parse_challenge(r: _Reader) -> Challenge:
    scheme = r.token()
    if not scheme:
        raise r.fail("expected an auth scheme")
    scheme = scheme.lower()
    if not r.peek() or r.peek() == ",":
        return Challenge(scheme)
    if r.peek() not in _WS:
        raise r.fail(f"unexpected {r.peek()!r} after scheme")
    r.skip_ws()
    if not r.at_param():
        start = r.pos
        r.token(_TOKEN68)
        while r.peek() == "=":
            r.pos += 1
        value = r.text[start:r.pos]
        r.skip_ws()
        if r.peek() not in ("", ","):
            raise r.fail(f"unexpected {r.peek()!r}")
        return Challenge(scheme, token68=value or None)
    params: dict[str, str] = {}
    while True:
        name = r.token().lower()
        r.skip_ws()
        r.pos += 1  # "=", checked by at_param
        r.skip_ws()
        value = r.quoted() if r.peek() == '"' else r.token()
        if name in params:
            raise r.fail(f"parameter {name!r} given twice")
        params[name] = value
        r.skip_ws()
        if not r.peek():
            break
        if r.peek() != ",":
            raise r.fail(f"unexpected {r.peek()!r}")
        r.skip_list_separators()
        if not r.peek() or not r.at_param():
            break
    return Challenge(scheme, params)


def parse_challenges(header: str | Iterable[str]) -> list[Challenge]:
    """Every challenge in one header value, or in several (a header repeated)."""
    values = [header] if isinstance(header, str) else list(header)
    out: list[Challenge] = []
    for value in values:
        r = _Reader(value)
        r.skip_list_separators()
        while r.peek():
            out.append(_parse_challenge(r))
            r.skip_list_separators()
    return out


def find(challenges: Iterable[Challenge], scheme: str) -> Challenge | None:
    scheme = scheme.lower()
    return next((c for c in challenges if c.scheme == scheme), None)


def token_request(challenge: Challenge, scopes: Iterable[Scope | str] = (), *,
                  service: str | None = None,
                  account: str | None = None) -> tuple[str, list[tuple[str, str]]]:
    """The realm URL and the query parameters for a Bearer token request.

    The scopes asked for are ours merged with the one the challenge names (a registry says
    what it wants, e.g. after a blob mount); each becomes its own `scope` parameter.
    """
    if challenge.scheme != "bearer":
        raise ChallengeError(f"no token flow for the {challenge.scheme!r} scheme")
    realm = challenge.params.get("realm", "")
    parts = urlsplit(realm)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ChallengeError(f"bearer challenge has an invalid realm {realm!r}")
    wanted = list(scopes)
    if challenge.params.get("scope"):
        wanted += scopes_mod.parse_all(challenge.params["scope"])
    query: list[tuple[str, str]] = []
    service = service if service is not None else challenge.params.get("service")
    if service:
        query.append(("service", service))
    query += [("scope", str(scope)) for scope in scopes_mod.merge(wanted)]
    if account:
        query.append(("account", account))
    return realm, query


@dataclass(frozen=True)
class Token:
    token: str
    expires_at: float  # seconds since the epoch
    refresh_token: str | None = None

    def valid(self, now: float, leeway: float = 0.0) -> bool:
        return now + leeway < self.expires_at


def _parse_time(text: str) -> float:
    try:
        # RFC 3339; Python 3.11 takes "Z" and fractions of any length up to microseconds.
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise ChallengeError(f"token response has an invalid issued_at {text!r}") from None
    if stamp.tzinfo is None:
        raise ChallengeError(f"token response's issued_at {text!r} has no time zone")
    return stamp.timestamp()


def parse_token(body: bytes, now: float) -> Token:
    """A token server's answer: `token` (or OAuth's `access_token`), `expires_in`
    (default and minimum 60 s), `issued_at` (default now), `refresh_token`."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise ChallengeError(f"token response is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ChallengeError("token response is not a JSON object")
    token = doc.get("token") or doc.get("access_token")
    if not isinstance(token, str) or not token:
        raise ChallengeError("token response has no token")
    expires_in = doc.get("expires_in", MIN_TOKEN_LIFETIME)
    if not isinstance(expires_in, int | float) or isinstance(expires_in, bool):
        raise ChallengeError(f"token response has an invalid expires_in {expires_in!r}")
    issued = doc.get("issued_at")
    issued_at = _parse_time(issued) if isinstance(issued, str) and issued else now
    refresh = doc.get("refresh_token")
    return Token(token, issued_at + max(expires_in, MIN_TOKEN_LIFETIME),
                 refresh if isinstance(refresh, str) and refresh else None)


TokenKey = tuple[str, str, tuple[str, ...]]


def token_key(realm: str, service: str, scopes: Iterable[Scope | str]) -> TokenKey:
    return (realm, service, tuple(str(s) for s in scopes_mod.merge(scopes)))


class TokenCache:
    """Tokens by (realm, service, scopes); a token is served until `leeway` seconds
    before it expires."""

    def __init__(self, clock: Callable[[], float] = time.time, leeway: float = 5.0) -> None:
        self._clock = clock
        self._leeway = leeway
        self._tokens: dict[TokenKey, Token] = {}

    def get(self, key: TokenKey) -> Token | None:
        token = self._tokens.get(key)
        if token is None:
            return None
        if not token.valid(self._clock(), self._leeway):
            del self._tokens[key]
            return None
        return token

    def put(self, key: TokenKey, token: Token) -> None:
        self._tokens[key] = token

    def clear(self) -> None:
        self._tokens.clear()
