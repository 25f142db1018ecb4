"""What a killed engine leaves in <data-root>/tmp goes at the next start, mounts undone first
and nothing removed through a mount (engine/scratch.py)."""

from __future__ import annotations

import subprocess

import pytest

from dockyard.engine import scratch

pytestmark = pytest.mark.root


def test_leftovers_go_and_what_a_view_bound_in_stays(tmp_path):
    root = tmp_path / "tmp"
    view = root / "rootfs-x" / "vol"
    view.mkdir(parents=True)
    host = tmp_path / "host"
    host.mkdir()
    (host / "keep").write_text("host data")
    (root / "context-1.tar").write_text("spool")
    (root / "build-y" / "context").mkdir(parents=True)
    subprocess.run(["mount", "--bind", str(host), str(view)], check=True)
    try:
        assert scratch.clean(root) == []
    finally:
        subprocess.run(["umount", "-l", str(view)], capture_output=True)
    assert list(root.iterdir()) == []
    assert (host / "keep").read_text() == "host data"
