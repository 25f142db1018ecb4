"""Image layers: OCI layer tars unpacked into snapshot directories, and made from them.

    compression.py  detect, decompressor, compressor: "" (plain tar), "gzip", "zstd"
    chain.py        ChainIDs of stacks of DiffIDs
    apply.py        apply_layer: decompress, hash and unpack in one streaming pass
    diff.py         write_diff: a snapshot's changes as a layer, hashed as it is written
    tarstream.py    the tar reader apply uses; tarwrite.py, the writer diff uses
    unpack.py       what each member becomes on disk; whiteouts.py, deletions both ways
    changes.py      what a snapshot changed: an overlay upper read, or two trees compared
    safepath.py     directories inside a root, with symlinks kept inside it
    hashing.py      both digests, taken on the way through
"""

from dockyard.image.layers.apply import Applied, apply_layer
from dockyard.image.layers.chain import chain_id, chain_ids
from dockyard.image.layers.diff import Diff, write_diff

__all__ = ["Applied", "Diff", "apply_layer", "chain_id", "chain_ids", "write_diff"]
