"""`docker build` (the classic builder) against dockyardd and against Debian's dockerd, in one
run. Needs root.

    .venv/bin/python bench/build_run.py [--runs 10] [--only cold|warm] [--cli PATH]
                                        [--show-output]

The same docker CLI runs `DOCKER_BUILDKIT=0 docker build -t <tag> <context>` against each
engine, a process per build, the engines taking turns; medians, best, and the ratio
dockyardd / dockerd (goal <= 0.5; the issue's reference: "Docker here: 0.65 s cold, 0.085 s
cached for a four-step Dockerfile with a 10 MB COPY").

1. copy, cold: FROM busybox, COPY of 10 MB of random bytes (generated once per run of the
   benchmark), RUN wc -c, CMD. Before each timed build, untimed, on both sides the same
   reset: `docker rmi -f <tag>`, `docker builder prune -af`, `docker image prune -f`; then
   `docker images -aq` must list busybox only (else the benchmark stops). dockerd 20.10's
   classic builder keeps its cache as the intermediate images themselves (each step's image
   is a parent of the next; builder prune only empties BuildKit's cache): `rmi` of the tag
   deletes the result and its untagged parents, `image prune` the leaves of stages that are
   not the result's ancestors. dockyardd keeps a cache index (<data-root>/build/cache.json)
   that builder prune empties, deleting the untagged images it names. A reset rather than
   --no-cache: --no-cache still writes the steps' images on both sides, leaves the previous
   result's images behind (on dockerd a whole chain per build) and is not what a first
   build does.
2. copy, warm: the same build again, unchanged: every step a cache hit (checked: the
   number of " ---> Using cache" lines of each side is printed).
3. multi-stage, cold: two independent stages (each RUN sleeps 1 s, as a step that waits
   for something would, then writes a file) and a final stage that COPY --from both; the
   classic builder runs the stages one after the other, dockyardd side by side. Reset as 1.

Each row starts with one untimed build (and reset) per side: the first build of an engine
is not what is measured. Before each timed build, untimed, a sync(2): unmounting an overlay
makes the kernel write out every dirty page of the file system under it, and the pages one
side left (its context, its layers) would otherwise be written during the other's build.
The output of one build per side and row (IDs replaced) is compared: lines dockerd prints
that dockyardd does not, and the reverse, are listed at the end, with anything a build
wrote to stderr.

Both engines get the same busybox image (built from Debian's busybox-static and loaded from
the archive Dockyard saves, as bench/engine_run.py does); neither pulls anything. The
reference is tests/refdocker.py's isolated dockerd 20.10 with its own containerd; ours is
tests/integration/engine/harness.py's dockyardd with its own dockyard-containerd. At the
end both are taken down (containers, images, mounts, cgroups, directories with them), the
work directory removed and net.ipv4.ip_forward set back.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from tests.integration.engine.harness import busybox_archive, running_engine  # noqa: E402
from tests.refdocker import docker_cli, ref_dockerd, unavailable  # noqa: E402

from benchutil import ip_forward_kept, timed  # noqa: E402

OURS, REF = "dockyardd", "dockerd"
TIMEOUT = 300.0
DATA_MB = 10
COPY_DOCKERFILE = """FROM busybox
COPY data.bin /data.bin
RUN wc -c /data.bin > /size
CMD ["cat", "/size"]
"""
MULTI_DOCKERFILE = """FROM busybox AS a
RUN sleep 1 && echo a > /a
FROM busybox AS b
RUN sleep 1 && echo b > /b
FROM busybox
COPY --from=a /a /a
COPY --from=b /b /b
CMD ["cat", "/a", "/b"]
"""
ISSUE = {"copy, cold": 0.65, "copy, warm": 0.085}
IDS = re.compile(r"\b(sha256:)?[0-9a-f]{12,64}\b")
SIZE = re.compile(r"\d+(\.\d+)?\s?[kMG]?B\b")


@dataclass
class Side:
    name: str
    host: str
    cli: str
    config: Path
    baseline: set[str] = field(default_factory=set)  # `images -aq` with busybox only

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env.update(DOCKER_CONFIG=str(self.config), DOCKER_BUILDKIT="0",
                   DOCKER_CLI_HINTS="false")
        done = subprocess.run([self.cli, "-H", self.host, *args], capture_output=True,
                              text=True, env=env, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
        if check and done.returncode != 0:
            raise SystemExit(f"{self.name}: docker {' '.join(args)} exited "
                             f"{done.returncode}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        return done

    def images(self) -> set[str]:
        return set(self.docker("images", "-aq", "--no-trunc").stdout.split())

    def reset(self, tag: str) -> None:
        """The tag's image and every cached step gone; only busybox left (checked)."""
        self.docker("rmi", "-f", tag, check=False)
        self.docker("builder", "prune", "-af")
        self.docker("image", "prune", "-f")
        left = self.images() - self.baseline
        if left:
            raise SystemExit(f"{self.name}: after the reset, images besides busybox: "
                             f"{sorted(left)}\n{self.docker('images', '-a').stdout}")


@dataclass
class Row:
    name: str
    what: str
    ctx: Path
    cold: bool
    times: dict[str, list[float]] = field(default_factory=dict)
    outputs: dict[str, subprocess.CompletedProcess] = field(default_factory=dict)


def build(side: Side, row: Row, tag: str) -> subprocess.CompletedProcess:
    done = side.docker("build", "-t", tag, str(row.ctx))
    if "Successfully tagged" not in done.stdout:
        raise SystemExit(f"{side.name}: {row.name}: no 'Successfully tagged':\n{done.stdout}")
    return done


def measure(row: Row, sides: list[Side], runs: int, tag: str) -> None:
    for side in sides:  # warm-up, untimed
        side.reset(tag)
        build(side, row, tag)
    row.times = {s.name: [] for s in sides}
    for n in range(runs):
        order = sides[n % len(sides):] + sides[:n % len(sides)]
        for side in order:
            if row.cold:
                side.reset(tag)
            os.sync()  # neither side's unwritten pages are left for the other to write
            out: list[subprocess.CompletedProcess] = []
            row.times[side.name].append(timed(lambda s=side, o=out: o.append(build(s, row, tag))))
            row.outputs.setdefault(side.name, out[0])
    for side in sides:
        side.reset(tag)


def table(rows: list[Row]) -> None:
    print(f"  {'':22} {OURS + ' median':>16} {'best':>8} {REF + ' median':>15} {'best':>8}"
          f" {'ratio':>6}")
    for row in rows:
        ours, ref = row.times[OURS], row.times[REF]
        ratio = statistics.median(ours) / statistics.median(ref)
        issue = f"   (issue: docker {ISSUE[row.name]:.3f} s)" if row.name in ISSUE else ""
        print(f"  {row.name:22} {statistics.median(ours):14.3f} s {min(ours):6.3f} s "
              f"{statistics.median(ref):13.3f} s {min(ref):6.3f} s {ratio:6.2f}"
              f"{'  ok' if ratio <= 0.5 else '  >0.5'}{issue}")
    print("  ratio = dockyardd / dockerd, medians; goal <= 0.5")


def normalized(text: str) -> list[str]:
    lines = [SIZE.sub("<size>", IDS.sub("<id>", line.rstrip())) for line in text.splitlines()]
    return [line for line in lines if line]


def differences(rows: list[Row], show: bool) -> None:
    print("output: one build per row and side, IDs and sizes replaced")
    for row in rows:
        ours, ref = row.outputs[OURS], row.outputs[REF]
        if show:
            for name, p in ((REF, ref), (OURS, ours)):
                print(f"  --- {row.name}, {name} stdout ---")
                print("\n".join(f"    {line}" for line in p.stdout.splitlines()))
        hits = {name: p.stdout.count("Using cache") for name, p in row.outputs.items()}
        print(f"  {row.name}: ' ---> Using cache' lines: {OURS} {hits[OURS]}, "
              f"{REF} {hits[REF]}")
        diff = list(difflib.unified_diff(normalized(ref.stdout), normalized(ours.stdout),
                                         f"{REF} stdout", f"{OURS} stdout", lineterm="", n=0))
        if diff:
            print("    stdout, '-' dockerd only, '+' dockyardd only:")
            for line in diff[2:]:
                if not line.startswith("@@"):
                    print(f"      {line}")
        else:
            print("    stdout: the same lines")
        for name, p in row.outputs.items():
            if p.stderr.strip():
                print(f"    {name} stderr: {p.stderr.strip()[:400]!r}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--only", choices=("cold", "warm"))
    ap.add_argument("--cli", help="the docker CLI for both sides (default: Debian's 20.10, "
                                  "else /usr/local/bin/docker)")
    ap.add_argument("--dir", default="/var/tmp")
    ap.add_argument("--show-output", action="store_true",
                    help="also print the whole output of the compared builds")
    args = ap.parse_args()
    if reason := unavailable():
        raise SystemExit(f"build_run: {reason}")
    cli = args.cli or docker_cli() or "docker"
    work = Path(tempfile.mkdtemp(prefix="dyb-build-", dir=args.dir))
    try:
        with ip_forward_kept():
            return compare(args, cli, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def contexts(work: Path) -> tuple[Path, Path]:
    copy_ctx = work / "ctx-copy"
    copy_ctx.mkdir()
    (copy_ctx / "Dockerfile").write_text(COPY_DOCKERFILE)
    (copy_ctx / "data.bin").write_bytes(os.urandom(DATA_MB << 20))
    multi_ctx = work / "ctx-multi"
    multi_ctx.mkdir()
    (multi_ctx / "Dockerfile").write_text(MULTI_DOCKERFILE)
    return copy_ctx, multi_ctx


def compare(args: argparse.Namespace, cli: str, work: Path) -> int:
    archive = busybox_archive(work)
    copy_ctx, multi_ctx = contexts(work)
    rows = []
    if args.only != "warm":
        rows.append(Row("copy, cold", "4 steps, 10 MB COPY, reset before each", copy_ctx, True))
    if args.only != "cold":
        rows.append(Row("copy, warm", "the same build again, unchanged", copy_ctx, False))
    if args.only != "warm":
        rows.append(Row("multi-stage, cold", "2 stages (RUN sleep 1 each) + COPY --from both",
                        multi_ctx, True))
    tag = f"dyb-build-{uuid.uuid4().hex[:8]}"
    with running_engine(work, archive) as ours, ref_dockerd(work) as ref:
        ref.docker("load", "-i", str(archive))
        sides = [Side(OURS, ours.host, cli, work / "cli-ours"),
                 Side(REF, ref.host, cli, work / "cli-ref")]
        for side in sides:
            side.config.mkdir()
            side.baseline = side.images()
        version = sides[0].docker("version", "--format", "{{.Client.Version}}").stdout
        print(f"docker CLI {version.strip()} ({cli}), DOCKER_BUILDKIT=0, {args.runs} runs; "
              f"{REF}: {ref.docker('version', '--format', '{{.Server.Version}}').stdout.strip()}"
              f" (classic builder)", flush=True)
        for row in rows:
            measure(row, sides, args.runs, tag)
            print(f"  {row.name}: {row.what}: done", flush=True)
        table(rows)
        differences(rows, args.show_output)
        for side in sides:
            left = side.docker("ps", "-aq").stdout.split()
            extra = side.images() - side.baseline
            if left or extra:
                print(f"  {side.name}: left after the run: containers {left}, images "
                      f"{sorted(extra)}")
    print(f"cleanup: both engines down and removed; {work} removed on exit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
