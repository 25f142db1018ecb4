"""Pull a ~250 MB multi-layer gzip image from a registry on loopback: ours (the distribution
client's pull into a new image library, unpack included) against `docker pull` on Debian's
dockerd 20.10 (overlay2, unpack included) and `skopeo copy` to an OCI layout (fetch only),
in one run. Prints seconds, MB/s and the ratios ours / reference. Needs root.

    .venv/bin/python bench/registry_pull.py [--runs 3] [--mb 250] [--layers 5] [--dir /var/tmp]

The registry is Debian's docker-registry (tests/refregistry.py), the image pushed to it once
by `skopeo copy docker-archive:... docker://127.0.0.1:<port>/bench/pull:v1`. Each side starts
from nothing each run: a new library root, a new OCI directory, for dockerd the image removed
(`docker rmi`) after each run. Everything is synced before the clock starts, the order of the
sides turns each run, and our trees are deleted only at the end. Times are wall clock of the
whole command, interpreter start included (ours runs this file with --pull-into). "dockyard
warm" is the same pull inside this process, with the modules loaded; "dockyard-containerd" is
the pull as the engine will ask for it, through a running supervisor's transfer service (a
namespace of its own each run), as `docker pull` is served by a daemon already running.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from tests.refdocker import ref_dockerd, unavailable  # noqa: E402
from tests.refregistry import ref_registry  # noqa: E402
from tests.refregistry import unavailable as registry_unavailable  # noqa: E402

from benchutil import image_parser, nothing, timed  # noqa: E402
from images_data import layer_info, make_docker_archive, make_layers  # noqa: E402

REPO_TAG = "bench/pull:v1"
OURS = "dockyard pull"
WARM = "dockyard warm"  # the same pull in a process that has it imported, as a daemon has
DAEMON = "dockyard-containerd"  # through the supervisor's transfer service, over gRPC
SIDES = (OURS, WARM, DAEMON, "docker pull", "skopeo copy")


def pull_into(root: Path, ref: str) -> None:
    """Our side, in its own process: pull and unpack `ref` into a new library at `root`."""
    import aiohttp

    from dockyard.distribution.transfer import pull
    from dockyard.image.library import ImageLibrary

    async def run() -> None:
        async with aiohttp.ClientSession() as session:
            with ImageLibrary(root) as lib:
                await pull(lib, ref, session=session)
    asyncio.run(run())


@contextlib.contextmanager
def supervisor(work: Path) -> Iterator[Callable[[str, str], None]]:
    """A dockyard-containerd for the run; yields pull(namespace, ref), a namespace (and so a
    new image library) per pull."""
    from dockyard.containerd.client import Client

    token = uuid.uuid4().hex[:8]
    state = Path(f"/run/dyb-pull-{token}")
    sock = state / "containerd.sock"
    with open(work / "supervisor.log", "w") as log:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "dockyard-containerd"),
                                 "--address", str(sock), "--root", str(work / "supervisor"),
                                 "--state", str(state), "--log-level", "warn"], stderr=log)
    clients: list[Client] = []
    try:
        deadline = time.monotonic() + 20
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("dockyard-containerd did not start")
            time.sleep(0.02)

        def pull(namespace: str, ref: str) -> None:
            c = Client(str(sock), namespace)
            clients.append(c)
            for _ in c.pull(ref):
                pass
        yield pull
    finally:
        for c in clients:
            c.close()
        proc.terminate()
        proc.wait(30)
        subprocess.run(["rm", "-rf", str(state)], check=False)


def main() -> int:
    ap = image_parser(__doc__, mb=250)
    ap.add_argument("--pull-into", nargs=2, metavar=("ROOT", "REF"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.pull_into:
        pull_into(Path(args.pull_into[0]), args.pull_into[1])
        return 0
    if os.geteuid() != 0:
        raise SystemExit("registry_pull: needs root")
    for reason in (registry_unavailable(),
                   None if shutil.which("skopeo") else "skopeo is not installed"):
        if reason:
            raise SystemExit(f"registry_pull: {reason}")
    layers = make_layers(args.cache, total_mb=args.mb, layers=args.layers)
    infos = [layer_info(p) for p in layers]
    gz = sum(i["size"] for i in infos) / 1e6
    tar = sum(i["uncompressed_size"] for i in infos) / 1e6
    work = Path(tempfile.mkdtemp(prefix="dyb-pull-", dir=args.dir))
    results: dict[str, list[float]] = {k: [] for k in SIDES}
    try:
        archive = make_docker_archive(work / "image.tar", layers, REPO_TAG)
        with ref_registry(work) as reg:
            ref = f"{reg.host}/{REPO_TAG}"
            subprocess.run(["skopeo", "--insecure-policy", "copy", "-q",
                            "--dest-tls-verify=false", f"docker-archive:{archive}",
                            f"docker://{ref}"], check=True)
            print(f"image: {len(layers)} layers, {gz:.0f} MB gzip, {tar:.0f} MB tar, in "
                  f"docker-registry at {reg.host}; {args.runs} runs each", flush=True)
            reason = unavailable()
            with ref_dockerd(work) if reason is None else nothing() as docker, \
                    supervisor(work) as daemon_pull:
                for n in range(args.runs):
                    sides = {
                        OURS: [sys.executable, __file__, "--pull-into",
                               str(work / f"ours-{n}"), ref],
                        WARM: (lambda n=n: pull_into(work / f"ours-warm-{n}", ref)),
                        DAEMON: (lambda n=n: daemon_pull(f"pull{n}", ref)),
                        "docker pull": ((lambda: docker.docker("pull", "-q", ref))
                                        if docker is not None else None),
                        "skopeo copy": ["skopeo", "--insecure-policy", "copy", "-q",
                                        "--src-tls-verify=false", f"docker://{ref}",
                                        f"oci:{work / f'oci-{n}'}:v1"],
                    }
                    order = list(sides)[n % 5:] + list(sides)[:n % 5]
                    for name in order:
                        if sides[name] is not None:
                            results[name].append(timed(sides[name]))  # type: ignore[arg-type]
                    if docker is not None:
                        docker.docker("rmi", ref)
                    print(f"run {n + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s"
                                                       for k, v in results.items() if v),
                          flush=True)
            if reason is not None:
                print(f"docker pull not measured: {reason}")
    finally:
        for root in work.glob("ours-*"):
            subprocess.run(["rm", "-rf", str(root)], check=False)
        shutil.rmtree(work, ignore_errors=True)
    report(results, gz, tar)
    return 0


def report(results: dict[str, list[float]], gz: float, tar: float) -> None:
    print()
    print(f"{'':19} {'best s':>8} {'median s':>9} {'MB/s gzip':>10} {'MB/s tar':>9}")
    for k, v in results.items():
        if v:
            print(f"{k:19} {min(v):8.2f} {statistics.median(v):9.2f} {gz / min(v):10.0f} "
                  f"{tar / min(v):9.0f}")
    for ours in (OURS, WARM, DAEMON):
        for ref_name in ("docker pull", "skopeo copy"):
            if results[ref_name] and results[ours]:
                best = min(results[ours]) / min(results[ref_name])
                med = statistics.median(results[ours]) / statistics.median(results[ref_name])
                print(f"ratio {ours} / {ref_name}: {best:.2f} (best of runs), "
                      f"{med:.2f} (medians)")


if __name__ == "__main__":
    sys.exit(main())
