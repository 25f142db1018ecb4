"""The hijacked connection (api/hijack.py): the head Docker's clients expect, frames, detach
keys, and a real aiohttp server whose handler takes the socket over, with half-close."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest
from aiohttp import web

from dockyard.engine.api.hijack import (
    MULTIPLEXED_STREAM,
    RAW_STREAM,
    Hijack,
    conn_response,
    response_head,
)
from dockyard.engine.containers.stdcopy import DetachKeys, frame, parse_detach_keys


def test_a_frame_has_the_stream_three_zero_bytes_and_a_big_endian_length():
    assert frame(1, b"hi\n") == b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"
    assert frame(2, b"x" * 256)[:8] == b"\x02\x00\x00\x00\x00\x00\x01\x00"


def test_the_upgrade_head_is_dockers_101_upgraded():
    head = response_head(upgrade=True, content_type=MULTIPLEXED_STREAM)
    assert head == (b"HTTP/1.1 101 UPGRADED\r\nContent-Type: "
                    b"application/vnd.docker.multiplexed-stream\r\nConnection: Upgrade\r\n"
                    b"Upgrade: tcp\r\n\r\n")


def test_without_an_upgrade_the_head_is_a_plain_200_with_no_length():
    head = response_head(upgrade=False, content_type=RAW_STREAM, headers=[("Api-Version", "1")])
    assert head == (b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
                    b"Api-Version: 1\r\n\r\n")


def test_detach_keys_are_parsed_as_docker_does():
    assert parse_detach_keys("ctrl-p,ctrl-q") == b"\x10\x11"
    assert parse_detach_keys("a,ctrl-@,ctrl-_,DEL") == b"a\x00\x1f\x7f"
    with pytest.raises(ValueError, match="Unknown character: 'ctrl-1'"):
        parse_detach_keys("ctrl-1")


def test_detach_keys_end_the_input_even_split_across_reads():
    keys = DetachKeys(b"\x10\x11")
    assert keys.feed(b"ab\x10") == (b"ab", False)
    assert keys.feed(b"\x11rest") == (b"", True)


def test_a_partial_detach_sequence_is_passed_on_when_it_does_not_complete():
    keys = DetachKeys(b"\x10\x11")
    assert keys.feed(b"\x10") == (b"", False)
    assert keys.feed(b"x") == (b"\x10x", False)
    assert keys.feed(b"\x10\x10\x11") == (b"\x10", True)


def test_no_detach_keys_pass_everything():
    assert DetachKeys(b"").feed(b"\x10\x11") == (b"\x10\x11", False)


async def _echo_server(path: Path) -> web.AppRunner:
    """A handler that reads a JSON body, hijacks, echoes stdin in frames until the client
    half-closes, then writes a last frame: what exec start does."""

    async def handler(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        async with Hijack(request, MULTIPLEXED_STREAM) as conn:
            conn.write(frame(1, f"body={body['x']}\n".encode()))
            while data := await conn.read():
                conn.write(frame(1, data))
                await conn.drain()
            conn.write(frame(2, b"eof\n"))
        return conn_response()

    async def ping(request: web.Request) -> web.Response:
        return web.Response(text="OK")

    app = web.Application()
    app.router.add_post("/start", handler)
    app.router.add_get("/_ping", ping)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.UnixSite(runner, str(path)).start()
    return runner


def _client(path: Path, upgrade: bool) -> bytes:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(str(path))
    body = b'{"x": 7}'
    head = (b"POST /start HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n" % len(body))
    if upgrade:
        head += b"Connection: Upgrade\r\nUpgrade: tcp\r\n"
    s.sendall(head + b"\r\n" + body)
    data = b""
    while b"\r\n\r\n" not in data:  # as Docker's clients do: the answer, then stdin
        data += s.recv(65536)
    s.sendall(b"one")
    time.sleep(0.05)
    s.sendall(b"two")
    s.shutdown(socket.SHUT_WR)
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    return data


@pytest.mark.parametrize("upgrade", [True, False])
def test_a_hijacked_connection_echoes_until_the_client_half_closes(tmp_path, upgrade):
    path = tmp_path / "api.sock"

    async def main() -> bytes:
        runner = await _echo_server(path)
        try:
            return await asyncio.to_thread(_client, path, upgrade)
        finally:
            await runner.cleanup()

    data = asyncio.run(main())
    head, _, rest = data.partition(b"\r\n\r\n")
    expected = b"HTTP/1.1 101 UPGRADED" if upgrade else b"HTTP/1.1 200 OK"
    assert head.startswith(expected)
    out, err = b"", b""
    while rest:
        n = int.from_bytes(rest[4:8], "big")
        if rest[0] == 1:
            out += rest[8:8 + n]
        else:
            err += rest[8:8 + n]
        rest = rest[8 + n:]
    assert out == b"body=7\nonetwo" and err == b"eof\n"


def test_the_server_serves_other_requests_after_a_hijack(tmp_path):
    path = tmp_path / "api.sock"

    def ping() -> bytes:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(str(path))
        s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
        data = s.recv(4096)
        s.close()
        return data

    async def main() -> bytes:
        runner = await _echo_server(path)
        try:
            await asyncio.to_thread(_client, path, True)
            return await asyncio.to_thread(ping)
        finally:
            await runner.cleanup()

    assert b"200 OK" in asyncio.run(main())


def test_a_client_that_closes_its_socket_is_seen_gone(tmp_path):
    """Half-closed, it still gets the output; closed altogether, the handler hears of it
    (a unix socket tells the two apart) and stops waiting for output nobody reads."""
    path = tmp_path / "api.sock"
    seen: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        async with Hijack(request, RAW_STREAM) as conn:
            assert await conn.read() == b""
            seen.append("eof")
            await asyncio.wait_for(asyncio.shield(conn.lost), 10)
            seen.append("lost")
        return conn_response()

    def client() -> None:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(str(path))
        s.sendall(b"POST /x HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                  b"\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(4096)
        s.shutdown(socket.SHUT_WR)
        time.sleep(0.3)
        s.close()

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/x", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.UnixSite(runner, str(path)).start()
        try:
            await asyncio.to_thread(client)
            for _ in range(100):
                if "lost" in seen:
                    break
                await asyncio.sleep(0.05)
        finally:
            await runner.cleanup()

    asyncio.run(main())
    assert seen == ["eof", "lost"]
