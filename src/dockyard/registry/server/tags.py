"""Listings: a repository's tags (end-8) and the registry's catalog, both sorted and
paginated by `n` and `last` with a `Link: <…>; rel="next"` header while more follow."""

from __future__ import annotations

from aiohttp import web

from dockyard.registry.errors import RegistryError
from dockyard.registry.routes import Match, URLs
from dockyard.registry.server.base import (
    Handlers,
    Settings,
    blocking,
    json_response,
    page_size,
    paginate,
)

_urls = URLs("")


def _link(url: str) -> dict[str, str]:
    return {"Link": f'<{url}>; rel="next"'}


async def get_tags(request: web.Request, match: Match, settings: Settings) -> web.Response:
    n, last = page_size(request), request.query.get("last")
    store = settings.store
    if not await blocking(store.repository_exists, match.name):
        raise RegistryError("NAME_UNKNOWN", {"name": match.name})
    tags, more = paginate(await blocking(store.tags, match.name), n, last)
    headers = _link(_urls.tags(match.name, n, tags[-1])) if more and tags else {}
    return json_response({"name": match.name, "tags": tags}, headers=headers)


async def get_catalog(request: web.Request, match: Match,
                      settings: Settings) -> web.Response:
    n, last = page_size(request), request.query.get("last")
    names, more = paginate(await blocking(settings.store.repositories), n, last)
    headers = _link(_urls.catalog(n, names[-1])) if more and names else {}
    return json_response({"repositories": names}, headers=headers)


TAGS: Handlers = {"GET": get_tags}
CATALOG: Handlers = {"GET": get_catalog}
