"""Image data for the image benchmarks: gzip layers that look like a real image's, a
`docker save` archive and an OCI layout made of them. Deterministic by seed, cached.

    from images_data import make_layers, make_docker_archive, make_oci_layout  # from bench/
    layers = make_layers(Path("/var/tmp/dyb-cache"), total_mb=500, layers=5, seed=1)
    make_docker_archive(work / "big.tar", layers)        # docker load -i big.tar
    make_oci_layout(work / "oci", layers)                 # umoci unpack --image oci:latest b

or from the shell (prints progress and sizes):

    .venv/bin/python bench/images_data.py --cache /var/tmp/dyb-cache --mb 500 --layers 5 \\
        [--docker-archive out.tar] [--oci-layout dir]

What a layer holds (per layer, scaled to its share of `total_mb`, which is MiB of file
content, the size `docker images` shows; the gzip blobs come out 2-3x smaller):
- 45% of the bytes in small text-like files (lognormal sizes, median ~3 KiB, 64 B to
  128 KiB, about 4x compressible), ~30 to a directory, in trees two levels deep;
- 55% in "binaries" of 256 KiB to 8 MiB (a mix of random, repeating, low-entropy and zero
  4 KiB blocks, about 1.7x compressible), in usr/lib and usr/bin;
- every directory as its own entry first, symlinks (lib*.so -> lib*.so.N, and one in 25
  text files has one beside its directory), hard links (a second name for some binaries
  and text files); the layers above the first remove a few of its files with whiteouts
  (`.wh.<name>`), as `RUN rm` would.
Layers get decreasing shares (a big base, smaller ones on top). Tar in PAX format, owner
0:0, fixed mtimes; gzip at level 6 (Go's and pigz's default, what `docker push` makes),
with no name and mtime 0 in its header: the same seed gives the same bytes.

The cache: `<cache>/layers-<mb>m-<n>x-seed<seed>-v<VERSION>/layer-<i>.tar.gz`, each with a
`.json` beside it (diff_id, digest, sizes), `done.json` once all are there. Layers are made
in parallel, one process per core.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import math
import os
import random
import shutil
import tarfile
import time
import zlib
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

VERSION = 1
MTIME = 1_700_000_000
MIB = 1 << 20
BLOCK = 4096
GZIP_LEVEL = 6
TEXT_SHARE = 0.45
CREATED = "2024-01-01T00:00:00Z"
LAYER_MEDIA = "application/vnd.oci.image.layer.v1.tar+gzip"


# -- content ----------------------------------------------------------------------------------

def text_pool(rng: random.Random, size: int) -> bytes:
    """Source-code-like text: words of a Zipf-weighted vocabulary, punctuation, newlines and
    indentation."""
    letters = "etaoinshrdlcumwfgypbvkjxqz_"
    vocab = ["".join(rng.choices(letters, k=rng.randint(2, 11))) for _ in range(3000)]
    vocab += ["\n", "\n    ", "\n        ", "(", ")", ";", "{", "}", "=", ",", "0", "1",
              "return", "if", "const", "static", "#include", "int", "self", "def", "import"]
    rng.shuffle(vocab)
    weights = [1 / (k + 1) ** 1.05 for k in range(len(vocab))]
    words = rng.choices(vocab, weights=weights, k=size // 5)
    text = " ".join(words).encode()
    while len(text) < size:
        text += text[: size - len(text)]
    return text[:size]


def binary_pool(rng: random.Random, size: int) -> bytes:
    """Machine-code-like data in 4 KiB blocks: random, repeats of a recent block (within
    gzip's 32 KiB window), low-entropy (a 24-symbol alphabet) and zero padding."""
    alphabet = rng.randbytes(24)
    blocks: list[bytes] = []
    for _ in range(size // BLOCK):
        kind = rng.random()
        if kind < 0.40 or len(blocks) < 8:
            block = rng.randbytes(BLOCK)
        elif kind < 0.62:
            block = blocks[-rng.randint(1, 7)]
        elif kind < 0.90:
            block = bytes(rng.choices(alphabet, k=BLOCK))
        else:
            block = bytes(BLOCK)
        blocks.append(block)
    return b"".join(blocks)


def lognormal_size(rng: random.Random, median: float, sigma: float, lo: int, hi: int) -> int:
    return int(min(hi, max(lo, rng.lognormvariate(math.log(median), sigma))))


def layer_shares(layers: int) -> list[float]:
    """A big base and smaller layers on top: weights 1, 0.7, 0.49, ... normalized."""
    weights = [0.7**i for i in range(layers)]
    return [w / sum(weights) for w in weights]


class _Hashing(io.RawIOBase):
    """Counts and hashes what passes through on its way to `target`."""

    def __init__(self, target) -> None:
        self.target, self.sha, self.size = target, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.sha.update(data)
        self.size += len(data)
        self.target.write(data)
        return len(data)


def _removable(index: int) -> str:
    return f"etc/bench/removable-{index}.conf"


def write_layer(path: Path, index: int, layers: int, content_bytes: int, seed: int) -> dict:
    """Writes layer `index` of `layers` (gzip tar) to `path`; returns its sidecar info."""
    rng = random.Random(f"dockyard-bench:{seed}:{index}")
    text = text_pool(rng, 8 * MIB)
    binary = binary_pool(rng, 16 * MIB)
    made_dirs: set[str] = set()
    stats = {"files": 0, "dirs": 0, "symlinks": 0, "hardlinks": 0, "whiteouts": 0,
             "content_bytes": 0}

    with open(path, "wb") as raw:
        compressed = _Hashing(raw)
        gz = gzip.GzipFile(filename="", mode="wb", fileobj=compressed,
                           compresslevel=GZIP_LEVEL, mtime=0)
        plain = _Hashing(gz)
        with tarfile.open(fileobj=plain, mode="w|", format=tarfile.PAX_FORMAT,
                          bufsize=1 << 16) as tar:

            def entry(name: str, kind: bytes, mode: int, size: int = 0, link: str = ""):
                info = tarfile.TarInfo(name)
                info.type, info.mode, info.mtime, info.size = kind, mode, MTIME, size
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                info.linkname = link
                return info

            def mkdirs(dirpath: str) -> None:
                parts = dirpath.split("/")
                for i in range(1, len(parts) + 1):
                    d = "/".join(parts[:i])
                    if d not in made_dirs:
                        made_dirs.add(d)
                        tar.addfile(entry(d, tarfile.DIRTYPE, 0o755))
                        stats["dirs"] += 1

            def add_file(name: str, data: bytes, mode: int = 0o644) -> None:
                mkdirs(name.rpartition("/")[0])
                tar.addfile(entry(name, tarfile.REGTYPE, mode, len(data)), io.BytesIO(data))
                stats["files"] += 1
                stats["content_bytes"] += len(data)

            def piece(pool: bytes, size: int) -> bytes:
                start = rng.randrange(0, len(pool) - size)
                return pool[start:start + size]

            if index == 0:
                for k in range(3 * layers):
                    add_file(_removable(k), piece(text, 512))
            else:
                for k in range(3 * (index - 1), 3 * index):
                    head, _, name = _removable(k).rpartition("/")
                    mkdirs(head)
                    tar.addfile(entry(f"{head}/.wh.{name}", tarfile.REGTYPE, 0o644))
                    stats["whiteouts"] += 1

            # Small text files, ~30 to a directory.
            text_budget = int(content_bytes * TEXT_SHARE)
            written, n, top = 0, 0, ""
            while written < text_budget:
                size = min(lognormal_size(rng, 3000, 1.3, 64, 128 << 10), text_budget - written)
                pkg, sub = n // 240, (n // 30) % 8
                if n % 240 == 0:
                    top = rng.choice(("usr/share", "usr/lib/python3", "usr/include", "etc"))
                name = f"{top}/pkg{index}-{pkg:04d}/d{sub}/f{n:06d}.txt"
                add_file(name, piece(text, size))
                if n % 25 == 0:  # a relative symlink from a sibling directory
                    tar.addfile(entry(f"{name.rpartition('/d')[0]}/link{n:06d}.txt",
                                      tarfile.SYMTYPE, 0o777, link=f"d{sub}/f{n:06d}.txt"))
                    stats["symlinks"] += 1
                elif n % 60 == 1:
                    tar.addfile(entry(f"{name}.orig", tarfile.LNKTYPE, 0o644, link=name))
                    stats["hardlinks"] += 1
                written += size
                n += 1

            # Binaries: libraries with a symlink, programs, some with a second (hard) name.
            bin_budget = content_bytes - text_budget
            written, n = 0, 0
            while written < bin_budget:
                size = min(lognormal_size(rng, 1 << 20, 0.9, 256 << 10, 8 << 20),
                           bin_budget - written)
                data = piece(binary, size)
                if n % 2 == 0:
                    name = f"usr/lib/x86_64-linux-gnu/libbench{index}-{n:04d}.so"
                    add_file(f"{name}.{n % 5 + 1}", data)
                    tar.addfile(entry(name, tarfile.SYMTYPE, 0o777,
                                      link=f"libbench{index}-{n:04d}.so.{n % 5 + 1}"))
                    stats["symlinks"] += 1
                else:
                    name = f"usr/bin/tool{index}-{n:04d}"
                    add_file(name, data, 0o755)
                    if n % 3 == 1:
                        tar.addfile(entry(f"{name}-alias", tarfile.LNKTYPE, 0o755, link=name))
                        stats["hardlinks"] += 1
                written += size
                n += 1
        gz.close()

    return {"diff_id": "sha256:" + plain.sha.hexdigest(), "digest": "sha256:"
            + compressed.sha.hexdigest(), "size": compressed.size,
            "uncompressed_size": plain.size, **stats}


def _make_one(path: Path, index: int, layers: int, content_bytes: int, seed: int) -> dict:
    start = time.monotonic()
    tmp = path.with_name(path.name + ".tmp")
    info = write_layer(tmp, index, layers, content_bytes, seed)
    info["seconds"] = round(time.monotonic() - start, 2)
    sidecar(path).write_text(json.dumps(info, indent=1))
    tmp.rename(path)
    return info


def sidecar(layer: Path) -> Path:
    return layer.with_name(layer.name.removesuffix(".tar.gz") + ".json")


def make_layers(dir: Path, total_mb: int = 500, layers: int = 5, seed: int = 1,
                jobs: int | None = None, quiet: bool = False) -> list[Path]:
    """The gzip layers for these parameters, made (in parallel) unless already in the cache
    directory `dir`; returns their paths, base first."""
    def say(msg: str) -> None:
        if not quiet:
            print(msg, flush=True)

    out = Path(dir) / f"layers-{total_mb}m-{layers}x-seed{seed}-v{VERSION}"
    paths = [out / f"layer-{i}.tar.gz" for i in range(layers)]
    done = out / "done.json"
    if done.exists() and all(p.exists() and sidecar(p).exists() for p in paths):
        say(f"layers: cached in {out}")
        return paths
    out.mkdir(parents=True, exist_ok=True)
    total = total_mb * MIB
    shares = layer_shares(layers)
    sizes = [int(total * s) for s in shares]
    sizes[0] += total - sum(sizes)
    jobs = jobs or min(layers, os.cpu_count() or 1)
    say(f"layers: making {layers} layers, {total_mb} MiB of content, seed {seed}, "
        f"{jobs} processes, in {out}")
    start = time.monotonic()
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(_make_one, paths[i], i, layers, sizes[i], seed): i
                   for i in sorted(range(layers), key=lambda i: -sizes[i])}
        for future in as_completed(futures):
            i, info = futures[future], future.result()
            tar_size, gz_size = info["uncompressed_size"], info["size"]
            say(f"  layer {i}: {tar_size / MIB:7.1f} MiB tar -> {gz_size / MIB:6.1f} MiB gzip "
                f"({tar_size / gz_size:.2f}x), {info['files']} files, {info['seconds']:.1f} s")
    infos = [layer_info(p) for p in paths]
    summary = {"total_mb": total_mb, "layers": layers, "seed": seed, "version": VERSION,
               "seconds": round(time.monotonic() - start, 2),
               "size": sum(i["size"] for i in infos),
               "uncompressed_size": sum(i["uncompressed_size"] for i in infos)}
    done.write_text(json.dumps(summary, indent=1))
    say(f"layers: {summary['uncompressed_size'] / MIB:.1f} MiB tar, {summary['size'] / MIB:.1f} "
        f"MiB gzip, in {summary['seconds']:.1f} s")
    return paths


def layer_info(layer: Path) -> dict:
    """diff_id, digest, size and uncompressed_size of a gzip layer: from the sidecar the
    cache keeps beside it, else computed (by reading it all)."""
    try:
        return json.loads(sidecar(layer).read_text())
    except (OSError, ValueError):
        pass
    digest, diff, size, usize = hashlib.sha256(), hashlib.sha256(), 0, 0
    inflate = zlib.decompressobj(wbits=31)
    with open(layer, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
            data = inflate.decompress(chunk)
            diff.update(data)
            usize += len(data)
    return {"diff_id": "sha256:" + diff.hexdigest(), "digest": "sha256:" + digest.hexdigest(),
            "size": size, "uncompressed_size": usize}


# -- image formats ----------------------------------------------------------------------------

def image_config(infos: list[dict]) -> bytes:
    """The image config (Docker's and OCI's alike) for these layers."""
    return json.dumps({
        "architecture": "amd64", "os": "linux", "created": CREATED,
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["/bin/sh"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [i["diff_id"] for i in infos]},
        "history": [{"created": CREATED, "created_by": f"/bin/sh -c #(nop) bench layer {n}"}
                    for n in range(len(infos))],
    }, separators=(",", ":")).encode()


def _hex(digest: str) -> str:
    return digest.split(":", 1)[1]


def make_docker_archive(path: Path, layers: list[Path], repo_tag: str = "bench/big:latest"
                        ) -> Path:
    """A `docker save` archive (the pre-25 layout): `<id>/layer.tar` (the gzip blob as it
    is: docker load decompresses), `<id>/VERSION` and `<id>/json`, the config
    `<sha256>.json`, manifest.json and repositories."""
    infos = [layer_info(p) for p in layers]
    config = image_config(infos)
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    ids = [_hex(i["digest"]) for i in infos]
    repo, _, tag = repo_tag.rpartition(":")
    if not repo or "/" in tag:
        repo, tag = repo_tag, "latest"

    def member(tar: tarfile.TarFile, name: str, data: bytes | None = None,
               source: Path | None = None) -> None:
        info = tarfile.TarInfo(name)
        info.mtime, info.mode = MTIME, 0o644
        if data is None and source is None:
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        elif source is not None:
            info.size = source.stat().st_size
            with open(source, "rb") as f:
                tar.addfile(info, f)
        else:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

    tmp = path.with_name(path.name + ".tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for n, (layer, layer_id) in enumerate(zip(layers, ids, strict=True)):
            v1 = {"id": layer_id, "created": CREATED, **({"parent": ids[n - 1]} if n else {})}
            member(tar, layer_id)
            member(tar, f"{layer_id}/VERSION", b"1.0")
            member(tar, f"{layer_id}/json", json.dumps(v1).encode())
            member(tar, f"{layer_id}/layer.tar", source=layer)
        member(tar, config_name, config)
        manifest = [{"Config": config_name, "RepoTags": [repo_tag],
                     "Layers": [f"{i}/layer.tar" for i in ids]}]
        member(tar, "manifest.json", json.dumps(manifest).encode())
        member(tar, "repositories", json.dumps({repo: {tag: ids[-1]}}).encode())
    tmp.rename(path)
    return path


def make_oci_layout(dir: Path, layers: list[Path], ref: str = "latest") -> Path:
    """An OCI image layout (oci-layout, index.json with the ref.name annotation,
    blobs/sha256/...) that `umoci unpack --image <dir>:<ref> <bundle>` reads. Layer blobs are
    hard links to the cache where it is on the same file system, else copies."""
    dir = Path(dir)
    blobs = dir / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    infos = [layer_info(p) for p in layers]

    def put(data: bytes) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    for layer, info in zip(layers, infos, strict=True):
        target = blobs / _hex(info["digest"])
        if not target.exists():
            try:
                os.link(layer, target)
            except OSError:
                shutil.copyfile(layer, target)
    config = put(image_config(infos))
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
        "layers": [{"mediaType": LAYER_MEDIA, "digest": i["digest"], "size": i["size"]}
                   for i in infos],
    }
    desc = put(json.dumps(manifest, separators=(",", ":")).encode())
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": manifest["mediaType"], **desc,
                            "annotations": {"org.opencontainers.image.ref.name": ref}}]}
    (dir / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (dir / "index.json").write_text(json.dumps(index))
    return dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, default=Path("/var/tmp/dockyard-bench-layers"))
    ap.add_argument("--mb", type=int, default=500)
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--docker-archive", type=Path)
    ap.add_argument("--oci-layout", type=Path)
    args = ap.parse_args()
    layers = make_layers(args.cache, args.mb, args.layers, args.seed)
    if args.docker_archive:
        start = time.monotonic()
        make_docker_archive(args.docker_archive, layers)
        print(f"docker archive: {args.docker_archive} "
              f"({args.docker_archive.stat().st_size / MIB:.1f} MiB, "
              f"{time.monotonic() - start:.1f} s)")
    if args.oci_layout:
        make_oci_layout(args.oci_layout, layers)
        print(f"OCI layout: {args.oci_layout}")


if __name__ == "__main__":
    main()
