"""What every resource handler shares: its signature, the app's state, digest and
pagination parsing, body streaming into a writer; and the handler of `/v2/` itself."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from dockyard.image.digest import Digest
from dockyard.image.errors import InvalidArgument
from dockyard.registry.errors import RegistryError
from dockyard.registry.routes import Match
from dockyard.registry.storage.blobs import RegistryStore

API_VERSION = ("Docker-Distribution-API-Version", "registry/2.0")
CHUNK = 1 << 20


@dataclass(frozen=True)
class Settings:
    store: RegistryStore
    delete_enabled: bool


SETTINGS: web.AppKey[Settings] = web.AppKey("settings", Settings)



def _request_key(name: str, kind: type) -> Any:
    """A typed request-storage key where aiohttp has them (3.12+), else the plain name."""
    maker = getattr(web, "RequestKey", None)
    return maker(name, kind) if maker is not None else name


EXTRA_HEADERS: Any = _request_key("extra_headers", dict)  # added to an error response
SCOPES: Any = _request_key("scopes", list)
USER: Any = _request_key("user", str)

Handler = Callable[[web.Request, Match, Settings], Awaitable[web.StreamResponse]]
Handlers = Mapping[str, Handler]


def blocking(fn: Callable[..., Any], *args: Any) -> Awaitable[Any]:
    """Run a blocking storage call off the event loop."""
    return asyncio.to_thread(fn, *args)


def digest_of(text: str | None) -> Digest:
    if not text:
        raise RegistryError("DIGEST_INVALID", "a digest is required")
    try:
        return Digest(text)
    except InvalidArgument as e:
        raise RegistryError("DIGEST_INVALID", str(e)) from None


def page_size(request: web.Request) -> int | None:
    raw = request.query.get("n")
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise RegistryError("PAGINATION_NUMBER_INVALID", {"n": raw})
    return int(raw)


def paginate(items: list[str], n: int | None, last: str | None) -> tuple[list[str], bool]:
    """Items after `last`, at most `n` of them, and whether more follow."""
    if last:
        items = [i for i in items if i > last]
    if n is None:
        return items, False
    return items[:n], len(items) > n


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None,
                  content_type: str = "application/json") -> web.Response:
    return web.Response(body=json.dumps(body).encode(), status=status,
                        headers={"Content-Type": content_type, **(headers or {})})


def empty(status: int, headers: Mapping[str, str]) -> web.Response:
    return web.Response(status=status, headers={"Content-Length": "0", **headers})


async def copy_body(request: web.Request, writer: Any) -> int:
    """Stream the request body into a storage writer, a megabyte at a time off the loop;
    return the bytes written."""
    total = 0
    buf = bytearray()
    async for chunk in request.content.iter_chunked(1 << 16):
        buf += chunk
        if len(buf) >= CHUNK:
            total += await blocking(writer.write, bytes(buf))
            buf.clear()
    if buf:
        total += await blocking(writer.write, bytes(buf))
    return total


async def get_base(request: web.Request, match: Match, settings: Settings) -> web.Response:
    return json_response({})


HANDLERS: Handlers = {"GET": get_base, "HEAD": get_base}
