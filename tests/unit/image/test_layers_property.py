"""Random stacks of layers against a model of the merged tree: applied onto one directory
("delete" whiteouts), and applied each into its own upper directory ("overlay" whiteouts)
and stacked by a real overlay mount (root), both must show what the model says.

The layers are ones a diff could produce, which is where the two ways agree: every entry's
parent directories are in the layer; nothing is written through a symlink; a hard link
points into its own layer; within a layer a path is a directory or not, never both, and
nothing is whited out that the layer writes (OCI: such a deletion would be an opaque
directory instead). Within those rules everything is drawn at random: names from a small
set, so that layers collide; files, directories, symlinks, hard links, whiteouts, opaque
directories with their marker before or after their entries.
"""

from __future__ import annotations

import os
import stat
import tempfile
from contextlib import ExitStack
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockyard.image.errors import InvalidArgument
from dockyard.image.layers.tarstream import DIR, REGULAR, SYMLINK
from dockyard.image.snapshots import Mount
from dockyard.mounting import mount_all, unmount_all
from tests.unit.image.test_layers_tarfiles import (
    MTIME,
    apply,
    file,
    folder,
    hardlink,
    layer,
    opaque,
    snapshot,
    symlink,
    whiteout,
)

NAMES = ("a", "b", "c")
FILE_MODES = (0o644, 0o600, 0o755, 0o4755)
DIR_MODES = (0o755, 0o700, 0o1777)
TARGETS = ("a", "../b", "/c", "a/b", "nowhere")
Path_ = tuple[str, ...]
Node = tuple  # (REGULAR, data, mode) | (DIR, mode) | (SYMLINK, target)


class LayerDraw:
    """One layer drawn against the model of the tree below it, which it updates as the
    layer would ("delete" semantics, whiteouts and opaque directories included)."""

    def __init__(self, model: dict[Path_, Node]) -> None:
        self.model = model
        self.entries: list[bytes] = []
        self.kinds: dict[Path_, bool] = {}  # path -> is a directory, in this layer
        self.touched: set[Path_] = set()
        self.dead: set[Path_] = set()  # whited out here: nothing more at or below
        self.files: list[Path_] = []
        self.opaques: list[tuple[Path_, int]] = []

    def free(self, path: Path_, is_dir: bool) -> bool:
        if any(path[:i] in self.dead for i in range(1, len(path) + 1)):
            return False
        if any(self.kinds.get(path[:i]) is False for i in range(1, len(path))):
            return False
        return self.kinds.get(path, is_dir) == is_dir

    def parents(self, path: Path_) -> None:
        for i in range(1, len(path)):
            p = path[:i]
            if p not in self.kinds:
                node = self.model.get(p)
                self.put(p, (DIR, node[1] if node and node[0] == DIR else 0o755))

    def put(self, path: Path_, node: Node) -> None:
        name = "/".join(path)
        if node[0] == REGULAR:
            self.entries.append(file(name, node[1], mode=node[2]))
        elif node[0] == DIR:
            self.entries.append(folder(name, mode=node[1]))
        else:
            self.entries.append(symlink(name, node[1]))
        self._set(path, node)

    def _set(self, path: Path_, node: Node) -> None:
        old = self.model.get(path)
        if not (old and old[0] == DIR and node[0] == DIR):
            self._remove(path)
        self.model[path] = node
        self.kinds[path] = node[0] == DIR
        self.touched.update(path[:i] for i in range(1, len(path) + 1))

    def _remove(self, path: Path_) -> None:
        for p in [p for p in self.model if p[:len(path)] == path]:
            del self.model[p]

    def op(self, data: st.DataObject) -> None:
        kind = data.draw(st.sampled_from(("file", "file", "dir", "symlink", "hardlink",
                                          "whiteout", "opaque")))
        below = sorted(p for p in self.model if p not in self.touched)
        if kind in ("whiteout", "opaque") and below and data.draw(st.booleans()):
            path = data.draw(st.sampled_from(below))  # mostly something from below
        else:
            path = tuple(data.draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3)))
        is_dir = kind in ("dir", "opaque")
        if kind == "whiteout":  # of what is there: a layer could not have seen anything else
            if path not in self.model or path in self.touched or not self.free(path, False):
                return
            self.parents(path)
            self.entries.append(whiteout("/".join(path)))
            self._remove(path)
            self.dead.add(path)
            return
        if not self.free(path, is_dir):
            return
        self.parents(path)
        if kind == "file":
            node = (REGULAR, data.draw(st.binary(max_size=12)),
                    data.draw(st.sampled_from(FILE_MODES)))
            self.put(path, node)
            self.files.append(path)
        elif kind == "dir":
            self.put(path, (DIR, data.draw(st.sampled_from(DIR_MODES))))
        elif kind == "symlink":
            self.put(path, (SYMLINK, data.draw(st.sampled_from(TARGETS))))
        elif kind == "hardlink":
            targets = [t for t in self.files if t != path and self.model.get(t, ("",))[0]
                       == REGULAR]
            if targets:
                target = data.draw(st.sampled_from(targets))
                self.entries.append(hardlink("/".join(path), "/".join(target)))
                self._set(path, self.model[target])
        else:
            if path not in self.kinds:
                node = self.model.get(path)
                self.put(path, (DIR, node[1] if node and node[0] == DIR else 0o755))
            at = data.draw(st.integers(self.entries_index(path), len(self.entries)))
            self.opaques.append((path, at))

    def entries_index(self, path: Path_) -> int:
        """Just after the (last) entry that made `path` a directory in this layer."""
        name = "/".join(path) + "/"
        heads = [i for i, e in enumerate(self.entries) if e[:len(name)] == name.encode()]
        return heads[-1] + 1 if heads else 0

    def finish(self) -> bytes:
        for path, at in sorted(self.opaques, key=lambda o: -o[1]):
            self.entries.insert(at, opaque("/".join(path)))
        for path, _ in self.opaques:
            for p in [p for p in self.model if p[:len(path)] == path and p != path]:
                if p not in self.touched:
                    del self.model[p]
        return layer(*self.entries)


def draw_stack(data: st.DataObject) -> tuple[list[bytes], dict[Path_, Node]]:
    model: dict[Path_, Node] = {}
    layers = []
    for _ in range(data.draw(st.integers(1, 4), label="layers")):
        draw = LayerDraw(model)
        for _ in range(data.draw(st.integers(1, 12), label="ops")):
            draw.op(data)
        layers.append(draw.finish())
    return layers, model


def expected(model: dict[Path_, Node]) -> dict[str, tuple]:
    """The model as snapshot() reads a tree (owners: root's, or ours when not root)."""
    owner = 0 if os.geteuid() == 0 else os.geteuid()
    out = {}
    for path, node in model.items():
        name = "/".join(path)
        if node[0] == REGULAR:
            out[name] = (stat.S_IFREG, node[2], owner, owner, node[1], (), MTIME)
        elif node[0] == DIR:
            out[name] = (stat.S_IFDIR, node[1], owner, owner, None, (), None)
        else:
            out[name] = (stat.S_IFLNK, 0o777, owner, owner, node[1], (), MTIME)
    return out


def limits(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@limits(200)
@given(st.data())
def test_delete_whiteouts_onto_one_directory_make_the_model(data: st.DataObject) -> None:
    layers, model = draw_stack(data)
    with tempfile.TemporaryDirectory(prefix="dyt-layers-") as tmp:
        root = Path(tmp)
        for blob in layers:
            apply(root, blob, whiteouts="delete")
        assert snapshot(root) == expected(model)


@pytest.mark.root
@limits(80)
@given(st.data())
def test_overlay_whiteouts_stacked_by_overlayfs_make_the_model(data: st.DataObject) -> None:
    layers, model = draw_stack(data)
    with tempfile.TemporaryDirectory(prefix="dyt-layers-") as tmp, ExitStack() as stack:
        base = Path(tmp)
        uppers = []
        for i, blob in enumerate(layers):
            upper = base / f"layer{i}"
            upper.mkdir()
            apply(upper, blob, whiteouts="overlay")
            uppers.append(upper)
        (base / "empty").mkdir()
        merged = base / "merged"
        merged.mkdir()
        lower = ":".join(str(u) for u in [*reversed(uppers), base / "empty"])
        mount_all([Mount("overlay", "overlay", (f"lowerdir={lower}", "ro"))], merged)
        stack.callback(unmount_all, merged)
        assert snapshot(merged) == expected(model)


SAMPLE = layer(folder("d"), file("d/f", b"data" * 300, mode=0o4755, uid=7),
               symlink("d/l", "../d/f"), hardlink("d/h", "d/f"), whiteout("d/gone"),
               opaque("d"), file("x" * 120, b"long", mtime_ns=MTIME + 5),
               file("d/x", xattrs=(("user.a", b"v"),)))


def with_checksums(data: bytearray) -> bytes:
    """Headers (blocks with the ustar magic) given right checksums again, so that damage
    reaches past the checksum test."""
    for at in range(0, len(data) - 511, 512):
        block = data[at:at + 512]
        if block[257:262] == b"ustar":
            block[148:156] = b" " * 8
            data[at + 148:at + 156] = b"%06o\0 " % sum(block)
    return bytes(data)


@pytest.mark.root
@limits(150)
@given(st.lists(st.tuples(st.integers(0, len(SAMPLE) - 1), st.integers(0, 255)),
                min_size=1, max_size=6), st.booleans())
def test_damaged_layers_fail_as_invalid_argument_inside_the_root(
        damage: list[tuple[int, int]], cut: bool) -> None:
    data = bytearray(SAMPLE)
    for at, value in damage:
        data[at] = value
    blob = with_checksums(data)
    if cut:
        blob = blob[:damage[0][0]]
    with tempfile.TemporaryDirectory(prefix="dyt-layers-") as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        for whiteouts in ("delete", "overlay"):
            try:
                apply(root, blob, whiteouts=whiteouts)
            except InvalidArgument:
                pass
        assert os.listdir(tmp) == ["root"]
