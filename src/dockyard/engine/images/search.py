"""GET /images/search: the registry's v1 search API (Docker Hub's), through the daemon's
registry settings. Registries without one (the OCI Distribution API has none, nor has
dockyard-registry) answer 404, which reaches the client as dockerd words it:
"Unexpected status code 404".

    term "busybox"             docker.io's search, q=busybox
    term "host:5000/busybox"   host:5000's search, q=busybox
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dockyard.engine.errors import EngineError, InvalidParameter

SEARCH_FILTERS = {"is-automated", "is-official", "stars"}
TIMEOUT = 30


def split_term(term: str) -> tuple[str, str]:
    """(registry host, query) as dockerd's ParseSearchIndexInfo splits them."""
    first, sep, rest = term.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return "docker.io", term


def keep(result: Mapping[str, Any], filters: Mapping[str, Sequence[str]]) -> bool:
    for value in filters.get("stars", []):
        try:
            if int(result.get("star_count") or 0) < int(value):
                return False
        except ValueError:
            raise InvalidParameter(f"invalid filter 'stars={value}'") from None
    for key, field in (("is-official", "is_official"), ("is-automated", "is_automated")):
        for value in filters.get(key, []):
            if value.lower() not in ("true", "false"):
                raise InvalidParameter(f"invalid filter '{key}={value}'")
            if bool(result.get(field)) != (value.lower() == "true"):
                return False
    return True


async def search(config: Any, term: str, limit: int,
                 filters: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
    import aiohttp

    from dockyard.distribution.client import ssl_for
    from dockyard.engine.images.registry import registry_hosts

    if not term:
        raise InvalidParameter("term is required")
    if not 1 <= limit <= 100:
        raise InvalidParameter(f"limit {limit} is outside the range of [1, 100]")
    host, query = split_term(term)
    endpoints = registry_hosts(config).endpoints(host)
    last: Exception | None = None
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as session:
        for endpoint in endpoints:
            url = f"{endpoint.url_base}/v1/search"
            try:
                async with session.get(url, params={"q": query, "n": str(limit)},
                                       ssl=ssl_for(endpoint)) as resp:
                    if resp.status != 200:
                        raise EngineError(f"Unexpected status code {resp.status}")
                    doc = await resp.json(content_type=None)
            except (aiohttp.ClientConnectionError, TimeoutError) as e:
                last = e
                continue
            except ValueError:
                raise EngineError("invalid search response from the registry") from None
            results = doc.get("results") if isinstance(doc, dict) else None
            out = []
            for r in results or []:
                if isinstance(r, dict) and keep(r, filters):
                    out.append({"name": str(r.get("name") or ""),
                                "description": str(r.get("description") or ""),
                                "star_count": int(r.get("star_count") or 0),
                                "is_official": bool(r.get("is_official")),
                                "is_automated": bool(r.get("is_automated"))})
            return out[:limit]
    raise EngineError(f"error searching {host}: {last or 'no endpoint'}")
