"""What the networks leave to the background of a start and of an exit: the rest of an
attach, waited for before the task starts, and conntrack deletions, batched and waited for
before an address is handed out again."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from dockyard.engine.networks import endpoints, plumbing


@pytest.fixture
def deleted(monkeypatch) -> list[list[str]]:
    calls: list[list[str]] = []
    monkeypatch.setattr(plumbing, "forget_connections", lambda a: calls.append(list(a)))
    monkeypatch.setattr(endpoints, "FORGET_DELAY", 0.05)
    return calls


def test_releases_close_together_share_one_deletion(deleted):
    async def main() -> None:
        e = endpoints.Endpoints(SimpleNamespace())
        e.forget(["10.0.0.2"])
        e.forget(["10.0.0.3"])
        assert deleted == []  # not in the way of the exit that released them
        await asyncio.wait(list(e.background))
        assert not e.forgetting

    asyncio.run(main())
    assert deleted == [["10.0.0.2", "10.0.0.3"]]


def test_an_address_handed_out_again_waits_for_its_deletion(deleted):
    async def main() -> None:
        e = endpoints.Endpoints(SimpleNamespace())
        e.forget(["10.0.0.2"])
        await e._forget_before_reuse(["10.0.0.9"])
        assert deleted == []
        await e._forget_before_reuse(["10.0.0.2"])
        assert deleted == [["10.0.0.2"]]
        await asyncio.wait(list(e.background))

    asyncio.run(main())
    assert deleted == [["10.0.0.2"]]  # the delayed pass found nothing left to do


def test_ready_raises_what_the_rest_of_attach_raised_and_detach_waits_for_it():
    async def main() -> None:
        e = endpoints.Endpoints(SimpleNamespace())
        c = SimpleNamespace(id="c1", network_settings={})
        gate = asyncio.Event()

        async def rest() -> None:
            await gate.wait()
            raise RuntimeError("port is already allocated")

        e.plumbing[c.id] = asyncio.create_task(rest())
        waiter = asyncio.create_task(e.ready(c))
        await asyncio.sleep(0)
        assert not waiter.done()
        gate.set()
        with pytest.raises(RuntimeError, match="already allocated"):
            await waiter
        assert c.id not in e.plumbing

        gate.clear()
        e.plumbing[c.id] = task = asyncio.create_task(rest())
        detaching = asyncio.create_task(e.detach(c))
        await asyncio.sleep(0)
        assert not detaching.done()  # its threads cannot be stopped half way
        gate.set()
        await detaching
        assert task.done()

    asyncio.run(main())
