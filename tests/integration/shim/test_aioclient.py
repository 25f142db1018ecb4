"""AsyncShimClient, as the supervisor uses it: the same protocol from asyncio, with calls in
parallel on pooled connections, an attach as (reader, writer), events as an async iterator."""

from __future__ import annotations

import asyncio

import pytest

from dockyard.shim.aioclient import AsyncShimClient
from dockyard.shim.protocol import ShimError
from dockyard.shim.spawn import start_shim

pytestmark = pytest.mark.root


async def read_frames(reader: asyncio.StreamReader) -> dict[int, bytes]:
    out = {1: b"", 2: b""}
    while True:
        try:
            header = await reader.readexactly(8)
        except asyncio.IncompleteReadError as e:
            assert e.partial == b""
            return out
        out[header[0]] += await reader.readexactly(int.from_bytes(header[4:], "big"))


def test_the_async_client_drives_a_container(shims):
    bundle, cid = shims.bundle(["sh", "-c", "read line; echo got $line; echo err >&2; exit 9"])
    shims.held.append((bundle, cid))

    async def main() -> None:
        address = await asyncio.to_thread(
            start_shim, "test", cid, bundle, state_dir=shims.state,
            runtime_root=shims.runtime_root)
        client = AsyncShimClient(address)
        try:
            hello = await client.connect()
            assert hello["task_pid"] == 0
            created = await client.create(stdin=True)
            events = client.events()
            first = asyncio.ensure_future(events.__anext__())
            reader, writer = await client.attach(stdin=True, stdout=True, stderr=True,
                                                 stdin_once=True)
            waiting = asyncio.ensure_future(client.wait())
            cancelled = asyncio.ensure_future(client.wait())
            await asyncio.sleep(0.05)
            cancelled.cancel()  # its connection is dropped, not reused
            started = await client.start()
            assert started["pid"] == created["pid"]
            writer.write(b"hello\n")
            writer.write_eof()
            assert await read_frames(reader) == {1: b"got hello\n", 2: b"err\n"}
            writer.close()
            exited = await waiting
            assert exited["exit_status"] == 9
            states = await asyncio.gather(*(client.state() for _ in range(5)))
            assert {s["status"] for s in states} == {"stopped"}
            assert (await first)["topic"] == "/tasks/start"
            assert (await events.__anext__())["topic"] == "/tasks/exit"
            await events.aclose()
            with pytest.raises(ShimError) as e:
                await client.kill(signal=9)
            assert e.value.code == "not_found"
            assert (await client.delete())["exit_status"] == 9
            await client.shutdown()
        finally:
            await client.close()

    asyncio.run(asyncio.wait_for(main(), 30))
