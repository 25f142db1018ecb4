"""`dockyard-runc run` of /bin/true against Debian's `runc run`, on the same bundle, in one
run; prints each mean and the ratio (ours / reference), then where our time goes.

    .venv/bin/python bench/runtime_run.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from dockyard.bootstrap import busybox

REPO = Path(__file__).resolve().parent.parent


def hyperfine(commands: dict[str, str], runs: int, out: Path) -> dict[str, float]:
    args = ["hyperfine", "-N", "--warmup", "5", "--runs", str(runs), "--export-json", str(out)]
    for name, cmd in commands.items():
        args += ["-n", name, cmd]
    subprocess.run(args, check=True)
    data = json.loads(out.read_text())
    return {r["command"]: r["mean"] for r in data["results"]}


def trace_steps(ours: Path, work: Path, bundle: Path, runs: int) -> list[tuple[str, float]]:
    """Run with DOCKYARD_RUNC_TRACE set (runtime/tracepoints.py); the mean time of each
    step from the CLI's start, in the order the steps happen."""
    sums: dict[str, float] = {}
    for i in range(runs):
        log = work / f"trace{i}.log"
        subprocess.run([str(ours), "--root", str(work / "traced"), "run", "-b", str(bundle),
                        f"traced-{i}"], check=True, env={"DOCKYARD_RUNC_TRACE": str(log)})
        marks = [line.split(" ", 2) for line in log.read_text().splitlines()]
        t0 = int(marks[0][0])
        for us, _pid, step in marks:
            sums[step] = sums.get(step, 0.0) + (int(us) - t0) / 1000
    return sorted(((k, v / runs) for k, v in sums.items()), key=lambda kv: kv[1])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    a = ap.parse_args()
    runc = shutil.which("runc")
    if not runc or not shutil.which("hyperfine"):
        print("needs runc and hyperfine (scripts/install.sh installs them)")
        return 1
    ours = REPO / ".venv" / "bin" / "dockyard-runc"
    python = REPO / ".venv" / "bin" / "python"
    work = Path(tempfile.mkdtemp(prefix="dockyard-bench-"))
    try:
        bundle = busybox.make_bundle(work / "bundle", ["/bin/true"])
        tag = uuid.uuid4().hex[:8]
        cmds = {
            "runc": f"{runc} --root {work}/runc run -b {bundle} bench-{tag}",
            "dockyard-runc": f"{ours} --root {work}/dy run -b {bundle} bench-{tag}",
        }
        means = hyperfine(cmds, a.runs, work / "run.json")
        steps = trace_steps(ours, work, bundle, a.runs)
        print()
        for k, v in means.items():
            print(f"{k:>16}: {v * 1000:7.2f} ms")
        print(f"{'ratio':>16}: {means['dockyard-runc'] / means['runc']:7.2f}  (ours / runc)")
        print("\nwhere dockyard-runc's time goes (mean of traced runs, ms since the CLI's "
              "main() began; its interpreter start comes before, see below):")
        prev = 0.0
        for step, at in steps:
            print(f"  {at:7.2f}  (+{at - prev:5.2f})  {step}")
            prev = at
        parts = hyperfine({
            "interpreter start (python -I -S -c pass)": f"{python} -I -S -c pass",
            "imports of the CLI side": f"{python} -I -S -c 'import sys; "
                                       f"sys.path[:0]=[\"{REPO}/src\"]; "
                                       "import dockyard.runtime.cli, dockyard.runtime.container'",
            "imports of stage-1 (all it may need)": f"{python} -I -S -c 'import sys; "
                                       f"sys.path[:0]=[\"{REPO}/src\"]; "
                                       "import dockyard.runtime.linux.init, "
                                       "dockyard.runtime.linux.seccomp, dockyard.runtime.hooks'",
        }, 30, work / "parts.json")
        print("\nfixed costs (each a fresh process; `run` starts two interpreters: the CLI, and "
              "stage-1 from a sealed memfd copy, in parallel with the CLI's own work):")
        for k, v in parts.items():
            print(f"  {k:>40}: {v * 1000:6.2f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
