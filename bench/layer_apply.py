"""apply_layer on a generated ~200 MB gzip layer against `tar -xzf` of the same blob, in one
run; prints MB/s of each (compressed bytes per second, and uncompressed) and the ratio
(ours / tar). tar decompresses with pigz when it is installed, else gzip, in a second
process, so it has two CPUs' worth too. Needs root (owners, devices).

    .venv/bin/python bench/layer_apply.py [--runs N] [--dir /var/tmp] [--files N]

The layer mimics an image's: 20,000 files of 1 to 24 KiB in 1,000 directories, 62 files of
1 to 4 MiB, symlinks and hard links; data a third random, two thirds text. Each
run unpacks into a new directory on the same file system; caches are warm (the blob is
read from the page cache); each side's writes are left in the page cache, synced before
the next run starts, outside the times, and the trees are kept to the end: on an ext4
without a journal, inodes deleted in the last 30 s make creating new ones slow
(recently_deleted), which would slow whichever side runs next. --dir /dev/shm measures
without a disk; see `settle` for --drop-caches.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import statistics
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from dockyard.image.layers.apply import apply_layer
from dockyard.image.layers.compression import compressor

WORDS = [b"lib", b"usr", b"share", b"config", b"python", b"include", b"int", b"return",
         b"static", b"const", b"void", b"struct", b"\n", b"    ", b"{", b"}", b"();"]


def pool(rng: random.Random, size: int) -> bytes:
    """A third random bytes, two thirds text-like runs, in 4 KiB pieces."""
    parts = []
    for i in range(size // 4096):
        if i % 3 == 0:
            parts.append(rng.randbytes(4096))
        else:
            text = b" ".join(rng.choice(WORDS) for _ in range(900))
            parts.append(text[:4096].ljust(4096))
    return b"".join(parts)


def make_layer(path: Path, files: int, rng: random.Random) -> int:
    data = pool(rng, 64 << 20)

    def content(size: int) -> bytes:
        start = rng.randrange(0, len(data) - size)
        return data[start:start + size]

    def add(tar: tarfile.TarFile, name: str, kind: bytes, size: int = 0, **extra) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.size, info.mode = kind, size, extra.pop("mode", 0o644)
        info.mtime, info.uid, info.gid = 1_700_000_000, 0, 0
        for k, v in extra.items():
            setattr(info, k, v)
        tar.addfile(info, io.BytesIO(content(size)) if size else None)

    with open(path, "wb") as out:
        gz = compressor(out, "gzip", level=1)
        with tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            dirs = [f"usr/lib/d{d:04}" for d in range(files // 20)]
            add(tar, "usr", tarfile.DIRTYPE, mode=0o755)
            add(tar, "usr/lib", tarfile.DIRTYPE, mode=0o755)
            for d in dirs:
                add(tar, d, tarfile.DIRTYPE, mode=0o755)
                for f in range(20):
                    add(tar, f"{d}/f{f}.so", tarfile.REGTYPE, rng.randint(1024, 24 << 10))
                add(tar, f"{d}/link", tarfile.SYMTYPE, linkname="f0.so", mode=0o777)
                add(tar, f"{d}/hard", tarfile.LNKTYPE, linkname=f"{d}/f1.so")
            add(tar, "big", tarfile.DIRTYPE, mode=0o755)
            for b in range(files // 320):
                add(tar, f"big/blob{b}", tarfile.REGTYPE, rng.randint(1 << 20, 4 << 20))
        gz.close()
    return path.stat().st_size


def tar_command(blob: Path, dest: Path) -> list[str]:
    unzip = "pigz" if shutil.which("pigz") else "gzip"
    return ["tar", "--numeric-owner", "-I", unzip, "-xf", str(blob), "-C", str(dest)]


def fresh(path: Path) -> Path:
    path.mkdir()
    return path


def settle(blob: Path, drop_caches: bool) -> None:
    """The same start for every run: nothing dirty, and (with --drop-caches) the page cache
    emptied but for the blob. In a VM, memory the guest has not touched yet costs a fault in
    the host on first use (dd: 0.4 GB/s then, 4 GB/s on reused pages); without dropping, each
    run pays that for its own page cache and the runs drift."""
    os.sync()
    if drop_caches:
        Path("/proc/sys/vm/drop_caches").write_text("1")
        with open(blob, "rb") as f:
            while f.read(1 << 20):
                pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", default=None)
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--drop-caches", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dyt-bench-apply-", dir=args.dir))
    try:
        blob = work / "layer.tar.gz"
        size = make_layer(blob, args.files, random.Random(1))
        ours, ref = [], []
        for i in range(args.runs):
            settle(blob, args.drop_caches)
            t = time.perf_counter()
            with open(blob, "rb") as f:
                applied = apply_layer(fresh(work / f"ours{i}"), f, whiteouts="delete")
            ours.append(time.perf_counter() - t)
            settle(blob, args.drop_caches)
            t = time.perf_counter()
            subprocess.run(tar_command(blob, fresh(work / f"tar{i}")), check=True)
            ref.append(time.perf_counter() - t)
        mb, raw = size / 1e6, applied.uncompressed_size / 1e6
        best_ours, best_ref = min(ours), min(ref)
        print(f"layer: {mb:.0f} MB gzip, {raw:.0f} MB tar, {args.files} files")
        print(f"apply_layer: {mb / best_ours:6.1f} MB/s  ({raw / best_ours:.0f} MB/s tar)  "
              f"best {best_ours:.2f} s, median {statistics.median(ours):.2f} s")
        print(f"tar -xzf:    {mb / best_ref:6.1f} MB/s  ({raw / best_ref:.0f} MB/s tar)  "
              f"best {best_ref:.2f} s, median {statistics.median(ref):.2f} s")
        print(f"speed ratio (ours / tar): {best_ref / best_ours:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
