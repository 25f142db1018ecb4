"""The content store suite against LocalStore."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.image.content.local import LocalStore
from tests.conformance.content_suite import ContentStoreSuite, StoreFactory


class TestLocalStore(ContentStoreSuite):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> Iterator[StoreFactory]:
        opened: list[LocalStore] = []

        def make() -> LocalStore:
            opened.append(LocalStore(tmp_path / "content"))
            return opened[-1]

        yield make
        for store in opened:
            store.close()
