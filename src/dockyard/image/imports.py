"""New images from file systems: a root filesystem tarball (`docker import`), and
`bootstrap`, a busybox image made from the host's busybox-static with no network.

Both write one layer, a config and an OCI manifest under a lease, then name the image. The
bootstrap image is reproducible: every file's time is set to the busybox binary's and the
layer is written in a fixed order, so the same busybox gives the same image ID everywhere.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from dockyard.bootstrap import busybox
from dockyard.image import mediatypes as mt
from dockyard.image import platforms, reference
from dockyard.image.layers.compression import detect
from dockyard.image.layers.diff import write_diff
from dockyard.image.library import ImageLibrary
from dockyard.image.manifest import Descriptor

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BOOTSTRAP_NAMES = ("busybox:latest",)


def image_config(diff_ids: Sequence[str], *, created: str, created_by: str,
                 comment: str = "", config: Mapping[str, Any] | None = None) -> bytes:
    host = platforms.host()
    doc: dict[str, Any] = {"architecture": host.architecture, "os": host.os}
    if host.variant:
        doc["variant"] = host.variant
    doc.update(created=created, config=dict(config or {}),
               rootfs={"type": "layers", "diff_ids": list(diff_ids)},
               history=[{"created": created, "created_by": created_by,
                         **({"comment": comment} if comment else {})}])
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def import_rootfs(lib: ImageLibrary, stream: BinaryIO, name: str | None = None, *,
                  source: str = "-", config: Mapping[str, Any] | None = None,
                  message: str = "") -> Descriptor:
    """Make an image of one layer from a tarball (plain, gzip or zstd) read from `stream`."""
    with lib.lease() as lease:
        digest, size = lib.put_stream(stream, lease)
        with lib.content.reader_at(digest) as r:
            compression = detect(r.read(8))
        diff_id = digest if not compression else lib.uncompressed_digest(digest, compression)
        layer = Descriptor(mt.layer_type(compression), digest, size)
        config_bytes = image_config([diff_id], created=_now(), created_by="",
                                    comment=message or f"Imported from {source}",
                                    config=config)
        target = lib.put_image(config_bytes, [layer], lease)
        lib.tag(str(reference.parse_tagged(name)) if name else str(target.digest), target)
        return target


def bootstrap(lib: ImageLibrary, names: Sequence[str] = BOOTSTRAP_NAMES, *,
              unpack: bool = True, busybox_path: Path | None = None) -> Descriptor:
    """A busybox image (`busybox:latest` unless other names are given) from busybox-static."""
    full = [str(reference.parse_tagged(n)) for n in names]  # bad names fail first
    binary = busybox_path or busybox.find_busybox()
    stamp = os.stat(binary).st_mtime_ns
    created = datetime.fromtimestamp(stamp / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with tempfile.TemporaryDirectory(dir=lib.root, prefix="bootstrap-") as tmp, \
            lib.lease() as lease:
        rootfs = busybox.make_rootfs(Path(tmp) / "rootfs", binary)
        _set_times(rootfs, stamp)
        layer_path = Path(tmp) / "layer.tar.gz"
        with open(layer_path, "wb") as out:
            diff = write_diff(None, rootfs, out, compression="gzip", mode="compare")
        with open(layer_path, "rb") as f:
            digest, size = lib.put_stream(f, lease, expected=diff.digest)
        layer = Descriptor(mt.OCI_LAYER_GZIP, digest, size)
        config = image_config([diff.diff_id], created=created,
                              created_by=f"dockyard image bootstrap ({binary})",
                              config={"Env": [DEFAULT_PATH], "Cmd": ["sh"]})
        target = lib.put_image(config, [layer], lease)
        if unpack:
            lib.unpack(target)
        for name in full:
            lib.tag(name, target)
        return target


def _set_times(root: Path, ns: int) -> None:
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            os.utime(os.path.join(top, name), ns=(ns, ns), follow_symlinks=False)
    os.utime(root, ns=(ns, ns))
