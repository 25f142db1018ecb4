"""The HTTP/1.1 transport: hosts, bodies by length, chunks or close, upgrades."""

from __future__ import annotations

import socket

import pytest

from dockyard.client.transport import Connection, parse_host


@pytest.mark.parametrize(("host", "want"), [
    ("unix:///run/d.sock", ("unix", "/run/d.sock", 0)),
    ("tcp://10.0.0.1:2376", ("tcp", "10.0.0.1", 2376)),
    ("tcp://[::1]:2375", ("tcp", "::1", 2375)),
    ("tcp://example.com", ("tcp", "example.com", 2375)),
])
def test_docker_host_syntax(host, want):
    assert parse_host(host) == want


def test_a_bad_scheme_is_refused():
    with pytest.raises(ValueError):
        parse_host("ftp://x")


def answer(raw: bytes) -> Connection:
    a, b = socket.socketpair()
    b.sendall(raw)
    b.close()
    return Connection(a)


def test_content_length_body():
    c = answer(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nApi-Version: 1.51\r\n\r\nhelloEXTRA")
    r = c.read_response()
    assert r.status == 200 and r.headers["api-version"] == "1.51" and r.read() == b"hello"


def test_chunked_body_and_lines():
    c = answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"4\r\n{\"a\"\r\n5\r\n:1}\n{\r\n6\r\n\"b\":2}\r\n0\r\n\r\n")
    assert list(c.read_response().lines()) == [b'{"a":1}', b'{"b":2}']


def test_body_until_close_and_no_body_statuses():
    assert answer(b"HTTP/1.0 200 OK\r\n\r\nall of it").read_response().read() == b"all of it"
    assert answer(b"HTTP/1.1 204 No Content\r\n\r\n").read_response().read() == b""


def test_a_101_upgrade_keeps_what_followed_the_head():
    c = answer(b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
               b"\x01\x00\x00\x00\x00\x00\x00\x02hi")
    r = c.read_response()
    assert r.status == 101
    assert c.reader.read_some() == b"\x01\x00\x00\x00\x00\x00\x00\x02hi"


def test_requests_carry_their_body_length():
    a, b = socket.socketpair()
    Connection(a).send_request("POST", "/v1.51/x", {"Host": "api"}, b'{"k":1}')
    a.close()
    data = b.recv(4096)
    assert data.startswith(b"POST /v1.51/x HTTP/1.1\r\nHost: api\r\nContent-Length: 7\r\n")
    assert data.endswith(b'\r\n\r\n{"k":1}')
