"""The Engine API client: one request method, version negotiation, errors in one place.

    client = APIClient.from_env()            # DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH
    client.get("/containers/json", {"all": 1})   # decoded JSON, or APIError(status, message)

Paths are versioned lazily: the first request pings the daemon and uses
/v<min(ours, the daemon's API-Version)> (DOCKER_API_VERSION skips the ping), as the docker
CLI does. Hijacked streams (attach, exec start) upgrade the connection to a raw one.
"""

from __future__ import annotations

import os

from dockyard.client.transport import DEFAULT_HOST, Connection, Response, TransportError, connect
from dockyard.runtime import jsonio  # the C JSON codec without `import json`

API_VERSION = "1.51"
MIN_API_VERSION = "1.24"


class APIError(Exception):
    """The daemon answered with an error status; `message` is Docker's `{"message": …}`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.status == 404


class DaemonUnreachable(Exception):
    def __init__(self, host: str, cause: OSError) -> None:
        super().__init__(f"Cannot connect to the Docker daemon at {host}. "
                         "Is the docker daemon running?")
        self.host = host
        self.cause = cause


def _version_tuple(v: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in v.split("."))
    except ValueError:
        return (0,)


def quote(s: str) -> str:
    """Percent-encoding for a path segment or query value (urllib.parse imports re)."""
    out = []
    for ch in s.encode():
        c = chr(ch)
        if (c.isalnum() and ch < 128) or c in "-._~":
            out.append(c)
        else:
            out.append(f"%{ch:02X}")
    return "".join(out)


def encode_query(query: dict | None) -> str:
    if not query:
        return ""
    parts = []
    for k, v in query.items():
        if v is None:
            continue
        if isinstance(v, bool):
            v = "1" if v else "0"
        elif isinstance(v, dict | list):
            v = jsonio.dumps(v)
        parts.append(f"{quote(k)}={quote(str(v))}")
    return "?" + "&".join(parts) if parts else ""


class APIClient:
    def __init__(self, host: str | None = None, version: str | None = None,
                 tls: dict | None = None, timeout: float | None = None) -> None:
        self.host = host or DEFAULT_HOST
        self.version = version
        self.negotiated = version is not None
        self.tls = tls
        self.timeout = timeout
        self.server_version: str | None = None

    @classmethod
    def from_env(cls, host: str | None = None, tls: bool = False, tlsverify: bool = False,
                 cert_path: dict | None = None) -> APIClient:
        host = host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST
        verify = tlsverify or bool(os.environ.get("DOCKER_TLS_VERIFY"))
        tls_config = None
        if tls or verify or (cert_path or {}).get("cert"):
            certs = os.environ.get("DOCKER_CERT_PATH") or os.path.join(
                os.environ.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker"))
            paths = {"ca": os.path.join(certs, "ca.pem"),
                     "cert": os.path.join(certs, "cert.pem"),
                     "key": os.path.join(certs, "key.pem")}
            paths.update({k: v for k, v in (cert_path or {}).items() if v})
            tls_config = {**paths, "verify": verify}
        return cls(host, os.environ.get("DOCKER_API_VERSION") or None, tls_config)

    # -- the seam ----------------------------------------------------------------------

    def _connect(self) -> Connection:
        try:
            return connect(self.host, self.tls, self.timeout)
        except TransportError as e:
            raise DaemonUnreachable(self.host, e) from None

    def _headers(self, extra: dict | None) -> dict[str, str]:
        h = {"Host": "api", "User-Agent": "Docker-Client/dockyard (linux)"}
        if extra:
            h.update(extra)
        return h

    def negotiate(self) -> str:
        if not self.negotiated:
            resp = self.raw("GET", "/_ping")
            resp.read()
            resp.close()
            server = resp.headers.get("api-version") or API_VERSION
            self.server_version = server
            ours = API_VERSION
            self.version = min(ours, server, key=_version_tuple)
            self.negotiated = True
        return self.version or API_VERSION

    def url(self, path: str, query: dict | None = None, versioned: bool = True) -> str:
        prefix = f"/v{self.negotiate()}" if versioned else ""
        return prefix + path + encode_query(query)

    def raw(self, method: str, target: str, body: bytes = b"",
            headers: dict | None = None, source=None) -> Response:
        """One request on a fresh connection; the response with its body unread."""
        conn = self._connect()
        try:
            if source is not None:
                conn.send_stream(method, target, self._headers(headers), source)
            else:
                conn.send_request(method, target, self._headers(headers), body)
            return conn.read_response()
        except TransportError as e:
            conn.close()
            raise DaemonUnreachable(self.host, e) from None
        except OSError as e:
            conn.close()
            raise DaemonUnreachable(self.host, TransportError(str(e))) from None

    def request(self, method: str, path: str, query: dict | None = None, body=None,
                headers: dict | None = None, versioned: bool = True,
                source=None) -> Response:
        """A request whose error statuses become APIError; the body is left to read."""
        data = b""
        h = dict(headers or {})
        if body is not None:
            data = body if isinstance(body, bytes) else jsonio.dumps(body).encode()
            h.setdefault("Content-Type", "application/json" if not isinstance(
                body, bytes) else "application/octet-stream")
        resp = self.raw(method, self.url(path, query, versioned), data, h, source)
        if resp.status >= 400:
            raise error_from(resp)
        return resp

    # -- conveniences ------------------------------------------------------------------

    def call(self, method: str, path: str, query: dict | None = None, body=None,
             headers: dict | None = None, versioned: bool = True):
        resp = self.request(method, path, query, body, headers, versioned)
        data = resp.read()
        resp.close()
        if not data:
            return None
        if resp.headers.get("content-type", "").startswith("application/json"):
            return jsonio.loads(data)
        try:
            return jsonio.loads(data)
        except ValueError:
            return data

    def get(self, path: str, query: dict | None = None, **kw):
        return self.call("GET", path, query, **kw)

    def post(self, path: str, query: dict | None = None, body=None, **kw):
        return self.call("POST", path, query, body, **kw)

    def delete(self, path: str, query: dict | None = None, **kw):
        return self.call("DELETE", path, query, **kw)

    def json_stream(self, method: str, path: str, query: dict | None = None, body=None,
                    headers: dict | None = None, source=None):
        """Each JSON message of a streamed answer (pull, push, load, events)."""
        resp = self.request(method, path, query, body, headers, source=source)
        try:
            for line in resp.lines():
                yield jsonio.loads(line)
        finally:
            resp.close()

    def hijack(self, path: str, query: dict | None = None, body=None) -> Response:
        """POST that upgrades to a raw stream (attach, exec start): the response, whose
        connection's `reader` (buffered) and `sock` carry the stream both ways."""
        data = b"" if body is None else jsonio.dumps(body).encode()
        headers = {"Connection": "Upgrade", "Upgrade": "tcp"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        resp = self.raw("POST", self.url(path, query), data, headers)
        if resp.status >= 400:
            raise error_from(resp)
        return resp


def error_from(resp: Response) -> APIError:
    data = resp.read()
    resp.close()
    message = ""
    try:
        doc = jsonio.loads(data)
        if isinstance(doc, dict):
            message = str(doc.get("message", ""))
    except ValueError:
        message = data.decode(errors="replace").strip()
    if not message:
        message = f"{resp.status} {resp.reason}".strip()
    return APIError(resp.status, message)
