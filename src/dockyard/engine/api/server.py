"""The Engine API application: every route at its plain path and under /v<major>.<minor>/,
the version checked as dockerd checks it, every error turned into `{"message": …}` with the
status its class carries (errors.py), and dockerd's headers on every answer.

Each resource module has `routes(daemon) -> list[Route]`; make_app registers them all.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from dockyard import __version__
from dockyard.engine.errors import EngineError, InvalidParameter

API_VERSION = "1.51"
MIN_API_VERSION = "1.24"
MAX_JSON_BODY = 16 << 20
log = logging.getLogger("dockyard.engine")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
DAEMON = web.AppKey("daemon", object)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler


def version_tuple(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


def api_version(request: web.Request) -> tuple[int, int]:
    """The version the client asked for (the newest when its path has none)."""
    return request.get("api_version", version_tuple(API_VERSION))


def server_header() -> str:
    return f"Docker/{__version__} (linux)"


@web.middleware
async def errors_and_versions(request: web.Request, handler: Handler) -> web.StreamResponse:
    asked = request.match_info.get("api_version")
    try:
        if asked is not None:
            v = version_tuple(asked)
            if v < version_tuple(MIN_API_VERSION):
                raise InvalidParameter(
                    f"client version {asked} is too old. Minimum supported API version is "
                    f"{MIN_API_VERSION}, please upgrade your client to a newer version")
            if v > version_tuple(API_VERSION):
                raise InvalidParameter(f"client version {asked} is too new. Maximum "
                                       f"supported API version is {API_VERSION}")
            request["api_version"] = v
        response = await handler(request)
    except EngineError as e:
        response = error_response(e.status, e.message)
    except web.HTTPException as e:
        if e.status == 404:
            response = error_response(404, "page not found")
        elif e.status == 405:
            response = error_response(405, "method not allowed")
        elif e.status == 413:
            response = error_response(413, "request body too large")
        else:
            raise
    except (ConnectionResetError, BrokenPipeError):
        raise
    except Exception as e:  # a bug of ours: one line for the client, the trace in our log
        log.exception("%s %s", request.method, request.path)
        response = error_response(500, f"{type(e).__name__}: {e}")
    if not response.prepared:
        add_headers(response)
    return response


def add_headers(response: web.StreamResponse) -> None:
    response.headers.setdefault("Api-Version", API_VERSION)
    response.headers.setdefault("Docker-Experimental", "false")
    response.headers.setdefault("Ostype", "linux")
    response.headers.setdefault("Server", server_header())


def error_response(status: int, message: str) -> web.Response:
    if status == 304:
        return web.Response(status=304)
    # "application/json" exactly: the docker CLI decodes an error body only then (with a
    # charset it prints the JSON as it is).
    return web.Response(body=json.dumps({"message": message}).encode(), status=status,
                        headers={"Content-Type": "application/json"})


async def json_body(request: web.Request, *, required: bool = True) -> Any:
    """The request's JSON document; InvalidParameter, in Docker's words, when it is not."""
    if request.content_length is not None and request.content_length > MAX_JSON_BODY:
        raise InvalidParameter("request body too large")
    data = await request.content.read(MAX_JSON_BODY + 1)
    if len(data) > MAX_JSON_BODY:
        raise InvalidParameter("request body too large")
    if not data.strip():
        if required:
            raise InvalidParameter("invalid JSON: EOF")
        return None
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidParameter(f"invalid JSON: {e}") from None


def query_bool(request: web.Request, name: str, default: bool = False) -> bool:
    """Docker's boolean query values: 1/true/True/yes; 0/false/False/no or absent."""
    value = request.query.get(name)
    if value is None or value == "":
        return default
    low = value.lower()
    if low in ("1", "true", "yes", "t"):
        return True
    if low in ("0", "false", "no", "f"):
        return False
    raise InvalidParameter(f"invalid value for {name}: {value!r}")


def query_int(request: web.Request, name: str, default: int | None = None) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidParameter(f"invalid value for {name}: {value!r}") from None


def query_time(request: web.Request, name: str) -> int | None:
    """A time in the query (`since`, `until`) in nanoseconds: Unix seconds with an optional
    fraction, as Docker's clients send it, or an RFC 3339 time."""
    value = request.query.get(name)
    if not value:
        return None
    try:
        secs, _, frac = value.partition(".")
        return int(secs) * 1_000_000_000 + int((frac + "000000000")[:9] or 0)
    except ValueError:
        pass
    from dockyard.engine.containers.model import parse_rfc3339

    try:
        return int(parse_rfc3339(value) * 1e9)
    except ValueError:
        raise InvalidParameter(f"invalid value for {name}: {value!r}") from None


def query_filters(request: web.Request) -> dict[str, list[str]]:
    """The `filters` query parameter: {"key": ["v", …]} or the old {"key": {"v": true}}."""
    raw = request.query.get("filters")
    if not raw:
        return {}
    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise InvalidParameter(f"invalid filter: {e}") from None
    if not isinstance(doc, dict):
        raise InvalidParameter("invalid filter: not an object")
    out: dict[str, list[str]] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            out[key] = [k for k, on in value.items() if on]
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            out[key] = list(value)
        else:
            raise InvalidParameter(f"invalid filter: {key}")
    return out


def check_filters(filters: dict[str, list[str]], allowed: set[str]) -> None:
    for key in filters:
        if key not in allowed:
            raise InvalidParameter(f"invalid filter '{key}'")


def make_app(daemon: Any, route_lists: list[list[Route]]) -> web.Application:
    app = web.Application(middlewares=[errors_and_versions], client_max_size=MAX_JSON_BODY)
    app[DAEMON] = daemon
    for routes in route_lists:
        for r in routes:
            app.router.add_route(r.method, r.path, r.handler)
            app.router.add_route(r.method, r"/v{api_version:\d+\.\d+}" + r.path, r.handler)
    return app
