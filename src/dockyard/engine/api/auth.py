"""POST /auth: check credentials against a registry, as `docker login` asks dockerd to.

    GET <endpoint>/v2/   200 ─► "Login Succeeded"
                         401 ─► answer its challenge (Basic: our credentials; Bearer: a
                                token fetched with them), ask again ─► 200, or 401 in
                                Docker's words

The registry's endpoints come from the daemon's settings (redirects, mirrors excepted:
a login goes to the registry itself or where it is redirected).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from dockyard.engine.api.server import DAEMON, Route, json_body
from dockyard.engine.errors import EngineError, InvalidParameter
from dockyard.engine.images.registry import host_of, registry_hosts

TIMEOUT = 30


class Unauthorized(EngineError):
    status = 401


async def check_login(config: Any, server: str, username: str, password: str,
                      identity_token: str = "") -> None:
    import aiohttp

    from dockyard.distribution.auth import RegistryAuth
    from dockyard.distribution.client import ssl_for
    from dockyard.distribution.credentials import Credentials
    from dockyard.distribution.errors import DistributionError, HostsError

    host = host_of(server)
    creds = Credentials(host, username, password, identity_token)
    auth = RegistryAuth(lambda _h: creds)
    try:
        endpoints = [e for e in registry_hosts(config).endpoints(host) if not e.pull_only]
    except HostsError as e:
        raise InvalidParameter(str(e)) from None
    last: Exception | None = None
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as session:
        for endpoint in endpoints:
            url = endpoint.url("")
            try:
                for _ in range(2):
                    headers = await auth.headers(session, endpoint.url_base, "")
                    async with session.get(url, headers=headers,
                                           ssl=ssl_for(endpoint)) as resp:
                        if resp.status == 200:
                            return
                        if resp.status != 401:
                            raise EngineError(f"login attempt to {url} failed with status: "
                                              f"{resp.status} {resp.reason}")
                        if not await auth.challenged(session, endpoint.url_base, "", resp):
                            raise Unauthorized(f"login attempt to {url} failed with status: "
                                               "401 Unauthorized")
                raise Unauthorized(f"login attempt to {url} failed with status: "
                                   "401 Unauthorized")
            except DistributionError as e:
                raise Unauthorized(str(e)) from None
            except (aiohttp.ClientConnectionError, TimeoutError) as e:
                last = e
                continue
    detail = str(last) if last else "no endpoint"
    raise EngineError(f'Get "{endpoints[-1].url("") if endpoints else server}": {detail}')


async def login(request: web.Request) -> web.Response:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise InvalidParameter("invalid JSON: expected an object")
    daemon = request.app[DAEMON]
    await check_login(daemon.config, str(body.get("serveraddress") or ""),
                      str(body.get("username") or ""), str(body.get("password") or ""),
                      str(body.get("identitytoken") or ""))
    return web.json_response({"Status": "Login Succeeded", "IdentityToken": ""})


def routes(daemon: object) -> list[Route]:
    return [Route("POST", "/auth", login)]
