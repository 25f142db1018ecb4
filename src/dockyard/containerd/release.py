"""What this build is: the version (the installed package's) and the revision (set by a
release build; empty in a checkout). Kept apart so that `--version` imports nothing else."""

from __future__ import annotations

from importlib import metadata

REVISION = ""


def version() -> str:
    try:
        return metadata.version("dockyard")
    except metadata.PackageNotFoundError:
        return "0+unknown"
