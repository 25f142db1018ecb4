"""ChainIDs (OCI image-spec, config.md "Layer ChainID"): one name for a stack of layers.

    ChainID(L0)      = DiffID(L0)
    ChainID(L0..Ln)  = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln))

A DiffID names one layer's changes; the ChainID names the file system those changes make on
top of everything below, which is what a committed snapshot holds, so snapshots are named by
it: two images sharing their first layers share those snapshots.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from dockyard.image.digest import Digest
from dockyard.image.errors import InvalidArgument


def chain_ids(diff_ids: Sequence[str]) -> list[Digest]:
    """The ChainID of every prefix of `diff_ids`: [ChainID(L0), ChainID(L0..L1), ...]."""
    out: list[Digest] = []
    for diff_id in diff_ids:
        d = Digest(diff_id)
        if not out:
            out.append(d)
        else:
            text = f"{out[-1]} {d}".encode()
            out.append(Digest("sha256:" + hashlib.sha256(text).hexdigest()))
    return out


def chain_id(diff_ids: Sequence[str]) -> Digest:
    """The ChainID of the whole stack; InvalidArgument for an empty one, which has none."""
    if not diff_ids:
        raise InvalidArgument("chain id of no layers")
    return chain_ids(diff_ids)[-1]
