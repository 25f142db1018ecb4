"""One supervisor shared by the tests that only need a namespace of their own; the tests that
kill or restart it start their own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.containerd.daemon import Daemon, running_daemon, unique


@pytest.fixture(scope="session")
def daemon() -> Iterator[Daemon]:
    with running_daemon() as d:
        yield d


@pytest.fixture
def namespace() -> str:
    return unique("ns")
