"""HTTP/1.1 over a unix socket (or TCP, with TLS), in the few lines the Engine API needs.

Not http.client: importing it costs ~28 ms (email, ssl), three times what `docker version`
takes. Unix sockets go through `_socket` (the `socket` module imports enum); TCP and TLS
import `socket` and `ssl` only when used.

    conn = connect("unix:///run/dockyard/dockyard.sock")
    conn.send_request("GET", "/_ping", {"Host": "docker"}, b"")
    resp = conn.read_response()          # status, reason, headers (lower-cased names)
    resp.read()                          # the body: Content-Length, chunked or until close
"""

from __future__ import annotations

import os

DEFAULT_HOST = "unix:///var/run/docker.sock"


class TransportError(OSError):
    """The daemon could not be reached or broke the protocol."""


def parse_host(host: str) -> tuple[str, str, int]:
    """("unix", path, 0) or ("tcp", hostname, port) from DOCKER_HOST's syntax."""
    if host.startswith("unix://"):
        return "unix", host[7:] or "/var/run/docker.sock", 0
    if host.startswith("/"):
        return "unix", host, 0
    if host.startswith(("tcp://", "http://", "https://")):
        rest = host.split("://", 1)[1].split("/", 1)[0]
    elif "://" in host:
        raise ValueError(f"Invalid bind address format: {host}")
    else:
        rest = host
    name, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        name, port = rest, "2375"
    name = name.strip("[]") or "127.0.0.1"
    return "tcp", name, int(port)


class Buffered:
    """A socket with a read buffer: lines, exact counts, everything until close."""

    def __init__(self, sock, buf: bytes = b"") -> None:
        self.sock = sock
        self.buf = bytearray(buf)

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def readline(self) -> bytes:
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return line
            if not self._fill():
                line = bytes(self.buf)
                self.buf.clear()
                return line

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise TransportError("unexpected EOF")
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_some(self) -> bytes:
        """What is buffered, or one recv's worth; b"" at EOF."""
        if not self.buf and not self._fill():
            return b""
        data = bytes(self.buf)
        self.buf.clear()
        return data


class Response:
    def __init__(self, conn: Connection, status: int, reason: str,
                 headers: dict[str, str]) -> None:
        self.conn = conn
        self.status = status
        self.reason = reason
        self.headers = headers
        te = headers.get("transfer-encoding", "").lower()
        self.chunked = "chunked" in te
        cl = headers.get("content-length")
        self.remaining = int(cl) if cl is not None and not self.chunked else -1
        self.done = self.remaining == 0 or status in (204, 304)

    def read_chunk(self) -> bytes:
        """The next piece of the body as it arrives; b"" at its end."""
        if self.done:
            return b""
        r = self.conn.reader
        if self.chunked:
            line = r.readline()
            if not line:
                raise TransportError("unexpected EOF in a chunked body")
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while r.readline() not in (b"\r\n", b"\n", b""):
                    pass
                self.done = True
                return b""
            data = r.read_exact(size)
            r.read_exact(2)
            return data
        data = r.read_some()
        if self.remaining >= 0:
            if len(data) > self.remaining:
                r.buf[:0] = data[self.remaining:]
                data = data[:self.remaining]
            self.remaining -= len(data)
            if self.remaining == 0 or not data:
                self.done = True
        elif not data:
            self.done = True
        return data

    def read(self) -> bytes:
        parts = []
        while chunk := self.read_chunk():
            parts.append(chunk)
        return b"".join(parts)

    def lines(self):
        """The body split at newlines (JSON message streams), each line as it completes."""
        pending = b""
        while chunk := self.read_chunk():
            pending += chunk
            *complete, pending = pending.split(b"\n")
            yield from (line for line in complete if line.strip())
        if pending.strip():
            yield pending

    def close(self) -> None:
        self.conn.close()


class Connection:
    def __init__(self, sock) -> None:
        self.sock = sock
        self.reader = Buffered(sock)

    def send_request(self, method: str, target: str, headers: dict[str, str],
                     body: bytes = b"") -> None:
        lines = [f"{method} {target} HTTP/1.1"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.sock.sendall(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            self.sock.sendall(body)

    def send_stream(self, method: str, target: str, headers: dict[str, str], source) -> None:
        """A chunked request body from a binary file (`docker load`, `docker build`)."""
        lines = [f"{method} {target} HTTP/1.1", "Transfer-Encoding: chunked"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        while data := source.read(1 << 20):
            self.sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))
        self.sock.sendall(b"0\r\n\r\n")

    def read_response(self) -> Response:
        while True:
            status_line = self.reader.readline()
            if not status_line:
                raise TransportError("the daemon closed the connection")
            parts = status_line.decode("latin-1").rstrip("\r\n").split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/"):
                raise TransportError(f"malformed HTTP response {status_line!r}")
            headers: dict[str, str] = {}
            while (line := self.reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            status = int(parts[1])
            if status != 100:
                return Response(self, status, parts[2] if len(parts) > 2 else "", headers)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def connect(host: str, tls: dict | None = None, timeout: float | None = None) -> Connection:
    """A connection to `host`; `tls` holds ca/cert/key paths and `verify`."""
    kind, address, port = parse_host(host)
    try:
        if kind == "unix":
            import _socket

            sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(address)
            return Connection(sock)
        import socket

        sock = socket.create_connection((address, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:
            sock = _wrap_tls(sock, address, tls)
        return Connection(sock)
    except OSError as e:
        if isinstance(e, TransportError):
            raise
        raise TransportError(e.errno, e.strerror or str(e)) from None


def _wrap_tls(sock, hostname: str, tls: dict):
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.get("verify") and tls.get("ca") and os.path.exists(tls["ca"]):
        ctx.load_verify_locations(tls["ca"])
    elif tls.get("verify"):
        ctx.load_default_certs()
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if tls.get("cert") and os.path.exists(tls["cert"]):
        ctx.load_cert_chain(tls["cert"], tls.get("key"))
    return ctx.wrap_socket(sock, server_hostname=hostname)
