"""make_app: the registry as an aiohttp Application.

Every request takes one path through here:

    raw path ─ routes.match() ─► (route, name, reference)     no match: 404 NAME_UNKNOWN
             ─ METHODS[route] ─► method allowed?               no: 405 UNSUPPORTED
             ─ access.authorize(request, scopes)               401 (+ WWW-Authenticate) / 403
             ─ HANDLERS[route][method](request, match, settings)
             ─ RegistryError ─► the spec's JSON error body; anything else: 500 UNKNOWN

and every response carries `Docker-Distribution-API-Version: registry/2.0` and is logged
(method, path, status, bytes, duration). The path is matched raw, before any decoding or
dot-segment folding, so `..`, `%2e%2e` or `%2F` never form a repository name.

Scopes asked of the access controller (`access.authorize`):
    GET HEAD                    ("repository", name, {"pull"})
    POST PATCH PUT, upload GET  ("repository", name, {"pull", "push"})
    DELETE                      ("repository", name, {"delete"})
    POST ?mount=&from=<src>     and ("repository", src, {"pull"})
    GET /v2/_catalog            ("registry", "catalog", {"*"})
    GET /v2/                    no scope: authentication only
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, Protocol

from aiohttp import web

from dockyard.registry.errors import RegistryError
from dockyard.registry.routes import METHODS, Match, Route, match, valid_name
from dockyard.registry.server import base, blobs, manifests, referrers, tags, uploads
from dockyard.registry.server.base import (
    API_VERSION,
    EXTRA_HEADERS,
    SCOPES,
    SETTINGS,
    USER,
    Handlers,
    Settings,
)
from dockyard.registry.storage.blobs import RegistryStore

Scope = tuple[str, str, frozenset[str]]

HANDLERS: Mapping[Route, Handlers] = {
    Route.BASE: base.HANDLERS,
    Route.CATALOG: tags.CATALOG,
    Route.TAGS: tags.TAGS,
    Route.MANIFEST: manifests.HANDLERS,
    Route.BLOB: blobs.HANDLERS,
    Route.UPLOADS: uploads.UPLOADS,
    Route.UPLOAD: uploads.UPLOAD,
    Route.REFERRERS: referrers.HANDLERS,
}

HEALTH_PATHS = frozenset({"/healthz", "/debug/health"})
_PULL, _PUSH, _DELETE = frozenset({"pull"}), frozenset({"pull", "push"}), frozenset({"delete"})


class Access(Protocol):
    async def authorize(self, request: web.Request, scopes: list[Scope]) -> str | None: ...

    def challenge(self, request: web.Request, scopes: list[Scope]) -> dict[str, str]: ...


ACCESS: web.AppKey[Any] = web.AppKey("access", object)
LOG: web.AppKey[logging.Logger] = web.AppKey("log", logging.Logger)


def scopes_for(request: web.Request, m: Match) -> list[Scope]:
    method = request.method
    if m.route is Route.BASE:
        return []
    if m.route is Route.CATALOG:
        return [("registry", "catalog", frozenset({"*"}))]
    if method == "DELETE" and m.route is not Route.UPLOAD:
        actions = _DELETE
    elif method in ("GET", "HEAD") and m.route is not Route.UPLOAD:
        actions = _PULL
    else:
        actions = _PUSH
    out: list[Scope] = [("repository", m.name, actions)]
    source = request.query.get("from")
    if m.route is Route.UPLOADS and "mount" in request.query and source and valid_name(source):
        out.append(("repository", source, _PULL))
    return out


def _raw_path(request: web.Request) -> str:
    return request.raw_path.split("?", 1)[0]


async def dispatch(request: web.Request) -> web.StreamResponse:
    path = _raw_path(request)
    if path in HEALTH_PATHS:
        return web.json_response({})
    m = match(path)
    if m is None:
        raise RegistryError("NAME_UNKNOWN", {"path": path})
    handlers = HANDLERS[m.route]
    handler = handlers.get(request.method)
    if handler is None or request.method not in METHODS[m.route]:
        raise RegistryError("UNSUPPORTED", f"{request.method} is not allowed on {m.route}")
    access = request.app[ACCESS]
    if access is not None:
        scopes = scopes_for(request, m)
        request[SCOPES] = scopes
        request[USER] = await access.authorize(request, scopes)
    return await handler(request, m, request.app[SETTINGS])


@web.middleware
async def errors_and_log(request: web.Request, handler: Any) -> web.StreamResponse:
    started = time.monotonic()
    log = request.app[LOG]
    try:
        resp = await handler(request)
    except RegistryError as e:
        resp = _error_response(request, e)
    except web.HTTPException:
        raise
    except Exception as e:
        log.exception("%s %s: internal error", request.method, _raw_path(request))
        resp = _error_response(request, RegistryError("UNKNOWN", type(e).__name__))
    log.info("%s %s %d %d %.1fms user=%s", request.method, _raw_path(request), resp.status,
             resp.body_length if resp.prepared else len(getattr(resp, "body", b"") or b""),
             (time.monotonic() - started) * 1000, request.get(USER) or "-")
    return resp


def _error_response(request: web.Request, e: RegistryError) -> web.Response:
    headers = {"Content-Type": "application/json", **request.get(EXTRA_HEADERS, {})}
    access = request.app[ACCESS]
    if e.status == 401 and access is not None:
        headers.update(access.challenge(request, request.get(SCOPES, [])))
    return web.Response(status=e.status, body=e.body(), headers=headers)


async def _add_version(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[API_VERSION[0]] = API_VERSION[1]


def make_app(store: RegistryStore, *, access: Access | None = None,
             delete_enabled: bool = True,
             log: logging.Logger | None = None) -> web.Application:
    app = web.Application(middlewares=[errors_and_log], client_max_size=1 << 20)
    app[SETTINGS] = Settings(store, delete_enabled)
    app[ACCESS] = access
    app[LOG] = log or logging.getLogger("dockyard.registry")
    app.on_response_prepare.append(_add_version)
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app
