"""Registry throughput: `skopeo copy` pushes a ~250 MB image to, and pulls it back from,
`dockyard-registry` and Debian's `docker-registry` (distribution 2.8), side by side on
loopback in one run. Prints seconds, MB/s and the throughput ratio ours / reference
(>= 1.0 means ours moves bytes at least as fast).

    .venv/bin/python bench/registry_throughput.py [--runs 3] [--mb 250] [--layers 5]

Each run pushes under a new repository name (nothing is deduplicated) into a registry whose
storage is on the same file system for both, and pulls into a new OCI layout directory.
"""

from __future__ import annotations

import contextlib
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from tests.refregistry import free_port, ref_registry  # noqa: E402
from tests.refregistry import unavailable as registry_unavailable  # noqa: E402
from tests.waiting import wait_http  # noqa: E402

from benchutil import image_parser, timed  # noqa: E402
from images_data import layer_info, make_docker_archive, make_layers  # noqa: E402


@contextlib.contextmanager
def ours(tmp: Path) -> Iterator[str]:
    port = free_port()
    root = tmp / f"ours-{port}"
    proc = subprocess.Popen([sys.executable, "-m", "dockyard.registry.main", "serve",
                             "--addr", f"127.0.0.1:{port}", "--root", str(root)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/v2/", proc, what="dockyard-registry")
        yield f"127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait(10)
        shutil.rmtree(root, ignore_errors=True)


def skopeo(*args: str) -> float:
    return timed(["skopeo", "--insecure-policy", "copy", *args])


def main() -> int:
    ap = image_parser(__doc__, mb=250)
    args = ap.parse_args()
    reason = registry_unavailable()
    if reason or not shutil.which("skopeo"):
        raise SystemExit(reason or "skopeo is not installed")
    layers = make_layers(args.cache, total_mb=args.mb, layers=args.layers)
    gz = sum(layer_info(p)["size"] for p in layers) / 1e6
    work = Path(tempfile.mkdtemp(prefix="dyb-registry-", dir=args.dir))
    times: dict[str, list[float]] = {k: [] for k in
                                     ("ours push", "ref push", "ours pull", "ref pull")}
    try:
        archive = make_docker_archive(work / "image.tar", layers)
        subprocess.run(["cat", str(archive)], stdout=subprocess.DEVNULL, check=True)
        print(f"image: {len(layers)} layers, {gz:.0f} MB gzip; {args.runs} runs each",
              flush=True)
        with ours(work) as our_host, ref_registry(work) as ref:
            for n in range(args.runs):
                pairs = [("ours", our_host), ("ref", ref.host)]
                for side, host in pairs if n % 2 == 0 else pairs[::-1]:
                    dest = f"docker://{host}/bench/run{n}:v1"
                    times[f"{side} push"].append(skopeo(
                        "--dest-tls-verify=false", f"docker-archive:{archive}", dest))
                    out = work / f"{side}-pull-{n}"
                    times[f"{side} pull"].append(skopeo(
                        "--src-tls-verify=false", dest, f"oci:{out}:v1"))
                    shutil.rmtree(out, ignore_errors=True)
                print(f"run {n + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s"
                                                   for k, v in times.items()), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(f"{'':10} {'best s':>8} {'median s':>9} {'MB/s':>7}")
    for k, v in times.items():
        print(f"{k:10} {min(v):8.2f} {statistics.median(v):9.2f} {gz / min(v):7.0f}")
    for op in ("push", "pull"):
        best = min(times[f"ref {op}"]) / min(times[f"ours {op}"])
        med = statistics.median(times[f"ref {op}"]) / statistics.median(times[f"ours {op}"])
        print(f"throughput ratio ours / docker-registry, {op}: {best:.2f} (best of runs), "
              f"{med:.2f} (medians)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
