"""The API client against a scripted daemon on a unix socket: negotiation and errors."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from dockyard.client.api import APIClient, APIError, DaemonUnreachable, encode_query


class FakeDaemon:
    """Answers each connection with the next canned response; records the requests."""

    def __init__(self, path: Path, answers: list[bytes]) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(str(path))
        self.sock.listen(8)
        self.answers = answers
        self.requests: list[bytes] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        for answer in self.answers:
            conn, _ = self.sock.accept()
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            self.requests.append(data)
            conn.sendall(answer)
            conn.close()


def ok(body: bytes, extra: str = "") -> bytes:
    return (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def test_the_first_request_negotiates_the_lower_version(tmp_path):
    d = FakeDaemon(tmp_path / "d.sock", [ok(b"OK", "Api-Version: 1.43\r\n"), ok(b"[]")])
    client = APIClient(f"unix://{tmp_path}/d.sock")
    assert client.get("/containers/json", {"all": True}) == []
    d.thread.join(5)
    assert d.requests[0].startswith(b"GET /_ping ")
    assert d.requests[1].startswith(b"GET /v1.43/containers/json?all=1 ")


def test_docker_api_version_skips_the_ping(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_API_VERSION", "1.41")
    d = FakeDaemon(tmp_path / "d.sock", [ok(b"{}")])
    client = APIClient.from_env(f"unix://{tmp_path}/d.sock")
    assert client.get("/info") == {}
    d.thread.join(5)
    assert d.requests[0].startswith(b"GET /v1.41/info ")


def test_error_bodies_become_one_exception_with_dockers_message(tmp_path):
    body = b'{"message":"No such container: x"}'
    FakeDaemon(tmp_path / "d.sock", [
        b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)])
    client = APIClient(f"unix://{tmp_path}/d.sock", version="1.51")
    with pytest.raises(APIError) as e:
        client.get("/containers/x/json")
    assert e.value.status == 404 and e.value.message == "No such container: x"


def test_an_absent_daemon_is_reported_as_docker_does(tmp_path):
    client = APIClient(f"unix://{tmp_path}/none.sock", version="1.51")
    with pytest.raises(DaemonUnreachable, match="Cannot connect to the Docker daemon at "
                       f"unix://{tmp_path}/none.sock. Is the docker daemon running?"):
        client.get("/info")


def test_queries_encode_filters_as_json_and_skip_nones():
    q = encode_query({"all": True, "limit": None, "filters": {"name": ["a b"]}})
    assert q == "?all=1&filters=%7B%22name%22%3A%5B%22a%20b%22%5D%7D"
