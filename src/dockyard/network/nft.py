"""The one place that runs `nft`: apply a script computed by nftrules.py, delete our table,
read it back. Synchronous (a short subprocess); the engine calls it from a worker thread.

Every failure is an NftError carrying nft's own message. Only the table named by the caller
is ever touched: no `flush ruleset`, no other table.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from typing import Any

from dockyard.network import nftrules

TIMEOUT = 30.0
# how nft is run: a path, or a command prefix (tests run it in another network namespace
# with ("ip", "netns", "exec", <name>, "nft"))
Command = str | Sequence[str]


class NftError(Exception):
    """`nft` failed (or could not run); `message` is what nft said."""

    def __init__(self, action: str, message: str, returncode: int | None = None) -> None:
        super().__init__(f"nft {action}: {message}")
        self.action = action
        self.message = message
        self.returncode = returncode


def _run(action: str, args: list[str], script: str | None = None,
         nft: Command = "nft") -> str:
    command = [nft] if isinstance(nft, str) else list(nft)
    try:
        proc = subprocess.run([*command, *args], input=script, capture_output=True, text=True,
                              timeout=TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise NftError(action, str(e)) from e
    if proc.returncode != 0:
        message = proc.stderr.strip() or proc.stdout.strip() or f"exit {proc.returncode}"
        raise NftError(action, message, proc.returncode)
    return proc.stdout


def apply(script: str, *, check: bool = False, nft: Command = "nft") -> None:
    """Run `script` as one transaction (`nft -f -`); with check, only validate it (`-c`)."""
    _run("check" if check else "apply", ["-c", "-f", "-"] if check else ["-f", "-"],
         script, nft)


def delete_table(table: str, *, nft: Command = "nft") -> None:
    """Remove our table; nothing happens if it does not exist."""
    apply(nftrules.delete_script(table), nft=nft)


def read_table(table: str, *, nft: Command = "nft") -> dict[str, Any] | None:
    """`nft -j list table inet <table>` parsed, or None when there is no such table."""
    if table not in tables(nft=nft):
        return None
    out = _run("list", ["-j", "list", "table", nftrules.FAMILY, table], nft=nft)
    try:
        return json.loads(out)
    except ValueError as e:
        raise NftError("list", f"unreadable JSON from nft: {e}") from e


def tables(*, nft: Command = "nft") -> list[str]:
    """The names of the host's tables of our family (inet)."""
    out = _run("list", ["-j", "list", "tables", nftrules.FAMILY], nft=nft)
    try:
        items = json.loads(out).get("nftables", [])
    except (ValueError, AttributeError) as e:
        raise NftError("list", f"unreadable JSON from nft: {e}") from e
    return [item["table"]["name"] for item in items
            if isinstance(item, dict) and "table" in item]


def chains(document: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """A table read by read_table as {chain name: [rule expressions]}, for checks and tests."""
    result: dict[str, list[dict[str, Any]]] = {}
    for item in document.get("nftables", []):
        if "chain" in item:
            result.setdefault(item["chain"]["name"], [])
        elif "rule" in item:
            result.setdefault(item["rule"]["chain"], []).append(item["rule"])
    return result
