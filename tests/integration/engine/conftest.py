"""Fixtures: `busybox_tar` (once per session), `engine` (one dockyardd per test module, with
busybox loaded) and `fresh_engine` (one per test, for tests that stop or restart it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.engine.harness import Engine, busybox_archive, running_engine

pytestmark = pytest.mark.root


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return busybox_archive(tmp_path_factory.mktemp("engine-busybox"))


@pytest.fixture(scope="module")
def engine(busybox_tar: Path) -> Iterator[Engine]:
    with running_engine(Path("/var/tmp"), busybox_tar) as e:
        yield e


@pytest.fixture
def fresh_engine(busybox_tar: Path) -> Iterator[Engine]:
    with running_engine(Path("/var/tmp"), busybox_tar) as e:
        yield e
