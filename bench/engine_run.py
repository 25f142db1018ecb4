"""`docker run` against dockyardd and against Debian's dockerd, in one run. Needs root.

    .venv/bin/python bench/engine_run.py [--runs 20] [--many 50] [--parallel 8]

1. run: the same docker CLI running `docker run --rm --network none busybox true` against
   each engine (a process per run, as a user types it), and `dockyard run` (ours) against
   dockyardd when the dockyard CLI is installed.
2. many: --many `docker run -d --network none busybox true`, --parallel at a time, against
   each; then the containers are removed (not timed).
3. version: `dockyard version` and `docker version` against dockyardd (the CLI's start-up).

Both engines get the same busybox image (built from Debian's busybox-static and loaded from
the archive Dockyard saves); neither pulls anything. The reference is tests/refdocker.py's
isolated dockerd 20.10 with its own containerd; ours is tests/integration/engine/harness.py's
dockyardd with its own dockyard-containerd.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from tests.integration.engine.harness import busybox_archive, running_engine  # noqa: E402
from tests.refdocker import docker_cli, ref_dockerd, unavailable  # noqa: E402

from benchutil import ip_forward_kept  # noqa: E402

V = Path(sys.executable).parent


def run(cmd: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr}")
    return took


def many(cmd_for: list[str], n: int, parallel: int) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(lambda _i: run(cmd_for), range(n)))
    return time.perf_counter() - start


def report(name: str, v: list[float]) -> None:
    print(f"  {name:28} median {statistics.median(v) * 1000:7.1f} ms   "
          f"best {min(v) * 1000:7.1f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--many", type=int, default=50)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--dir", default="/var/tmp")
    args = ap.parse_args()
    if reason := unavailable():
        raise SystemExit(f"engine_run: {reason}")
    cli = docker_cli() or "docker"
    work = Path(tempfile.mkdtemp(prefix="dyb-engine-", dir=args.dir))
    try:
        with ip_forward_kept():
            return compare(args, cli, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def compare(args: argparse.Namespace, cli: str, work: Path) -> int:
    archive = busybox_archive(work)
    ours_cli = V / "dockyard"
    with running_engine(work, archive) as ours, ref_dockerd(work) as ref:
        ref.docker("load", "-i", str(archive))
        run_args = ["run", "--rm", "--network", "none", "busybox", "true"]
        sides = {"docker CLI -> dockyardd": [cli, "-H", ours.host, *run_args],
                 "docker CLI -> dockerd": [cli, "-H", ref.host, *run_args]}
        if ours_cli.exists():
            sides["dockyard CLI -> dockyardd"] = [str(ours_cli), "-H", ours.host, *run_args]
        for cmd in sides.values():  # warm up
            run(cmd)
        results: dict[str, list[float]] = {name: [] for name in sides}
        for n in range(args.runs):
            names = list(sides)
            order = names[n % len(names):] + names[:n % len(names)]
            for name in order:
                results[name].append(run(sides[name]))
        print(f"run: docker run --rm --network none busybox true, {args.runs} runs")
        for name, v in results.items():
            report(name, v)
        base = statistics.median(results["docker CLI -> dockerd"])
        for name in sides:
            if name != "docker CLI -> dockerd":
                print(f"  ratio {name} / docker CLI -> dockerd: "
                      f"{statistics.median(results[name]) / base:.2f} (medians)")

        detached = ["run", "-d", "--network", "none", "busybox", "true"]
        t_ours = many([cli, "-H", ours.host, *detached], args.many, args.parallel)
        t_ref = many([cli, "-H", ref.host, *detached], args.many, args.parallel)
        print(f"many: {args.many} x docker run -d, {args.parallel} at a time: dockyardd "
              f"{t_ours:.2f} s, dockerd {t_ref:.2f} s, ratio {t_ours / t_ref:.2f}")
        for host in (ours.host, ref.host):
            subprocess.run([cli, "-H", host, "container", "prune", "-f"], capture_output=True)

        if ours_cli.exists():
            version = {"dockyard version": [str(ours_cli), "-H", ours.host, "version"],
                       "docker version": [cli, "-H", ours.host, "version"]}
            times: dict[str, list[float]] = {k: [] for k in version}
            for _ in range(args.runs):
                for k, cmd in version.items():
                    times[k].append(run(cmd))
            print("version: against dockyardd")
            for k, v in times.items():
                report(k, v)
            ratio = (statistics.median(times["dockyard version"])
                     / statistics.median(times["docker version"]))
            print(f"  ratio dockyard version / docker version: {ratio:.2f} (medians)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
