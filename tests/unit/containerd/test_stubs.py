"""The committed stubs are what scripts/gen-protos.sh makes from the committed protos: a proto
changed without regenerating (or a stub edited by hand) fails here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
API = REPO / "src" / "dockyard" / "api"
GENERATED = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def _generated(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.name.endswith(GENERATED)}


def test_committed_stubs_match_a_fresh_generation(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    env = {**os.environ, "PYTHON": sys.executable}
    subprocess.run(["bash", str(REPO / "scripts" / "gen-protos.sh"), str(tmp_path)],
                   check=True, env=env, cwd=REPO, capture_output=True, timeout=120)
    fresh = _generated(tmp_path / "dockyard" / "api")
    committed = _generated(API)
    assert fresh, "gen-protos.sh generated nothing"
    assert sorted(fresh) == sorted(committed), "stubs added or removed: run gen-protos.sh"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stale stubs (run scripts/gen-protos.sh): {stale}"


def test_every_stub_imports_as_part_of_the_package() -> None:
    import importlib

    for path in sorted(API.rglob("*_pb2*.py")):
        module = ".".join(path.relative_to(REPO / "src").with_suffix("").parts)
        importlib.import_module(module)
    for directory in [API, *[p for p in API.rglob("*") if p.is_dir()
                             and p.name != "__pycache__"]]:
        assert (directory / "__init__.py").exists(), f"{directory} is not a package"
