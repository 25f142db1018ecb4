"""Load and unpack a ~500 MB multi-layer gzip image from a `docker save` archive: ours
(`dockyard-image load`, content store + overlay snapshots) against `docker load` on Debian's
dockerd 20.10 (overlay2), and `umoci unpack` of the same image as an OCI layout, in one run.
Prints seconds, MB/s and the ratios ours / reference. Needs root.

    .venv/bin/python bench/image_unpack.py [--runs 3] [--mb 500] [--layers 5] [--dir /var/tmp]

Each side starts from nothing each run (a new store root or bundle; for dockerd, the image
removed and its layers with it), with the archive in the page cache and everything synced
before the clock starts; the order of the sides turns each run, and our trees are deleted
only at the end (ext4 creates inodes slowly for a while after a big delete). Times are wall
clock of the whole command, interpreter start included.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from tests.refdocker import ref_dockerd, unavailable  # noqa: E402

from benchutil import image_parser, nothing, timed  # noqa: E402
from images_data import layer_info, make_docker_archive, make_layers, make_oci_layout  # noqa: E402

TOOL = [sys.executable, "-m", "dockyard.image.tool"]


def main() -> int:
    ap = image_parser(__doc__, mb=500)
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("image_unpack: needs root")
    layers = make_layers(args.cache, total_mb=args.mb, layers=args.layers)
    infos = [layer_info(p) for p in layers]
    gz = sum(i["size"] for i in infos) / 1e6
    tar = sum(i["uncompressed_size"] for i in infos) / 1e6
    work = Path(tempfile.mkdtemp(prefix="dyb-image-", dir=args.dir))
    results: dict[str, list[float]] = {"dockyard": [], "docker load": [], "umoci unpack": []}
    try:
        archive = make_docker_archive(work / "image.tar", layers)
        make_oci_layout(work / "oci", layers)
        subprocess.run(["cat", str(archive)], stdout=subprocess.DEVNULL, check=True)
        print(f"image: {len(layers)} layers, {gz:.0f} MB gzip, {tar:.0f} MB tar; "
              f"{args.runs} runs each", flush=True)
        reason = unavailable()
        with ref_dockerd(work) if reason is None else nothing() as ref:
            for n in range(args.runs):
                sides = {
                    "dockyard": [*TOOL, "--root", str(work / f"ours-{n}"), "load", "-q", "-i",
                                 str(archive)],
                    "umoci unpack": (["umoci", "unpack", "--image", f"{work / 'oci'}:latest",
                                      str(work / f"bundle-{n}")] if shutil.which("umoci")
                                     else None),
                    "docker load": ((lambda: ref.docker("load", "-q", "-i", str(archive)))
                                    if ref is not None else None),
                }
                order = list(sides)[n % 3:] + list(sides)[:n % 3]  # nobody always goes first
                for name in order:
                    if sides[name] is not None:
                        results[name].append(timed(sides[name]))  # type: ignore[arg-type]
                if ref is not None:  # so that the next run loads anew; its tree goes too
                    ref.docker("rmi", "bench/big:latest")
                print(f"run {n + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s"
                                                   for k, v in results.items() if v), flush=True)
        if reason is not None:
            print(f"docker load not measured: {reason}")
    finally:
        for bundle in work.glob("bundle-*"):
            shutil.rmtree(bundle, ignore_errors=True)
        for root in work.glob("ours-*"):
            _remove_store(root)
        shutil.rmtree(work, ignore_errors=True)
    best = {k: min(v) for k, v in results.items() if v}
    print()
    print(f"{'':14} {'best s':>8} {'median s':>9} {'MB/s gzip':>10} {'MB/s tar':>9}")
    for k, v in results.items():
        if v:
            print(f"{k:14} {min(v):8.2f} {statistics.median(v):9.2f} {gz / min(v):10.0f} "
                  f"{tar / min(v):9.0f}")
    for ref_name in ("docker load", "umoci unpack"):
        if ref_name in best:
            med = statistics.median(results["dockyard"]) / statistics.median(results[ref_name])
            print(f"ratio dockyard / {ref_name}: {best['dockyard'] / best[ref_name]:.2f} "
                  f"(best of runs), {med:.2f} (medians)")
    return 0


def _remove_store(root: Path) -> None:
    """A store's snapshots are plain directories (nothing stays mounted after a load)."""
    if root.exists():
        subprocess.run(["rm", "-rf", str(root)], check=False)


if __name__ == "__main__":
    sys.exit(main())
