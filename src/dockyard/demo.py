"""`dockyard-demo`: the README's first command. Builds a busybox bundle from the host's
busybox-static and runs a container in it with dockyard-runc: no image, no network.

Later issues grow this into "start the daemons and `dockyard run`".
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from dockyard.bootstrap import busybox

SCRIPT = ("echo \"hello from $(hostname), pid $$ in its own namespaces\"; "
          "echo \"uid=$(id -u) caps: $(grep CapEff /proc/self/status)\"; "
          "ls /; cat /proc/self/cgroup | head -3")


def runtime_cmd() -> list[str]:
    launcher = Path(sys.executable).parent / "dockyard-runc"
    if launcher.exists():
        return [str(launcher)]
    return [sys.executable, "-m", "dockyard.runtime.main"]


def main() -> int:
    if os.geteuid() != 0:
        sys.stderr.write("dockyard-demo: containers need root; run it as root\n")
        return 1
    work = Path(tempfile.mkdtemp(prefix="dockyard-demo-"))
    cid = f"dockyard-demo-{uuid.uuid4().hex[:8]}"
    root = work / "state"
    try:
        bundle = busybox.make_bundle(work / "bundle", ["sh", "-c", SCRIPT])
        print(f"bundle: {bundle} (busybox from {busybox.find_busybox()})", flush=True)
        cmd = [*runtime_cmd(), "--root", str(root), "run", "--bundle", str(bundle), cid]
        print("$", " ".join(cmd), flush=True)
        return subprocess.run(cmd).returncode
    finally:
        subprocess.run([*runtime_cmd(), "--root", str(root), "delete", "--force", cid],
                       capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
