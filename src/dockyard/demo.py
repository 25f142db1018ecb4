"""`dockyard-demo`: the README's first command, with no network.

Makes the `busybox:latest` image from the host's busybox-static in an image store of its own
(content store, overlay snapshotter, names in SQLite), unpacks it, mounts a container
snapshot on it as the root of an OCI bundle, and runs a container there with dockyard-runc.
Everything it made is removed afterwards. Later issues grow this into "start the daemons and
`dockyard run`".
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

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
    from dockyard.bootstrap.busybox import write_config
    from dockyard.image.imports import bootstrap
    from dockyard.image.library import ImageLibrary
    from dockyard.mounting import mount_all, unmount_all
    from dockyard.runtime.specgen import default_spec

    work = Path(tempfile.mkdtemp(prefix="dockyard-demo-"))
    cid = f"dockyard-demo-{uuid.uuid4().hex[:8]}"
    state, bundle = work / "state", work / "bundle"
    rootfs = bundle / "rootfs"
    rootfs.mkdir(parents=True)
    lib = ImageLibrary(work / "images")
    try:
        target = bootstrap(lib)
        resolved = lib.resolve(target)
        [record] = lib.images.unpacked(target.digest)
        print(f"image: busybox:latest {resolved.manifest.config.digest} "
              f"({lib.snapshotter_name} snapshot {record.chain_id[:19]}…)", flush=True)
        mount_all(lib.snapshotter.prepare(cid, record.chain_id), rootfs)
        spec = default_spec(["sh", "-c", SCRIPT], terminal=False)
        spec["process"]["env"] = list(resolved.config.config.get("Env", spec["process"]["env"]))
        write_config(bundle, spec)
        cmd = [*runtime_cmd(), "--root", str(state), "run", "--bundle", str(bundle), cid]
        print("$", " ".join(cmd), flush=True)
        return subprocess.run(cmd).returncode
    finally:
        subprocess.run([*runtime_cmd(), "--root", str(state), "delete", "--force", cid],
                       capture_output=True)
        unmount_all(rootfs)
        lib.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
