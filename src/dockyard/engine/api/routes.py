"""Every resource module's routes, in one explicit list (no registration by import)."""

from __future__ import annotations

import importlib
from typing import Any

from dockyard.engine.api.server import Route

MODULES = ["system", "volumes", "images", "auth", "streams", "exec", "containers", "networks",
           "system_usage", "container_files", "build"]


def all_routes(daemon: Any) -> list[list[Route]]:
    return [importlib.import_module(f"dockyard.engine.api.{m}").routes(daemon)
            for m in MODULES]
