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
        parts = hyperfine({
            "interpreter (python -I -S)": f"{python} -I -S -c pass",
            "cli imports": f"{python} -I -S -c 'import sys; sys.path[:0]=[\"{REPO}/src\"]; "
                           "import dockyard.runtime.cli, dockyard.runtime.container'",
            "init imports": f"{python} -I -S -c 'import sys; sys.path[:0]=[\"{REPO}/src\"]; "
                            "import dockyard.runtime.linux.init'",
        }, 30, work / "parts.json")
        print()
        for k, v in means.items():
            print(f"{k:>16}: {v * 1000:7.2f} ms")
        print(f"{'ratio':>16}: {means['dockyard-runc'] / means['runc']:7.2f}  (ours / runc)")
        print("where our time goes (each a fresh process; `run` pays the interpreter twice: "
              "the CLI and the sealed-memfd init):")
        for k, v in parts.items():
            print(f"  {k:>28}: {v * 1000:6.2f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
