"""`dockyard-demo`: the README's first command, with no network.

Starts the engine `dockyardd` (which starts its supervisor `dockyard-containerd`) on a data
root, exec root and socket of its own; makes the `busybox:latest` image from the host's
busybox-static and loads it with `dockyard load`; then `dockyard run`s a container, lists
what is there and stops the engine, which stops its containers and its supervisor.
Everything it made is removed afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

SCRIPT = ("echo \"hello from $(hostname), pid $$ in its own namespaces\"; "
          "echo \"uid=$(id -u) caps: $(grep CapEff /proc/self/status)\"; "
          "ls /; cat /proc/self/cgroup | head -3")
BIN = Path(sys.executable).parent


def pings(sock: Path) -> bool:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.settimeout(2)
        s.connect(str(sock))
        s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
        return b" 200 " in s.recv(64)
    except OSError:
        return False
    finally:
        s.close()


def show(host: str, *args: str) -> int:
    cmd = [str(BIN / "dockyard"), "-H", host, *args]
    print("$ dockyard", " ".join(args), flush=True)
    return subprocess.run(cmd).returncode


def main() -> int:
    if os.geteuid() != 0:
        sys.stderr.write("dockyard-demo: containers need root; run it as root\n")
        return 1
    from dockyard.image.archive.save import save
    from dockyard.image.imports import bootstrap
    from dockyard.image.library import ImageLibrary

    token = f"dockyard-demo-{uuid.uuid4().hex[:8]}"
    work = Path(tempfile.mkdtemp(prefix=f"{token}-", dir="/var/tmp"))
    exec_root = Path("/run") / token
    sock = exec_root / "dockyard.sock"
    host = f"unix://{sock}"
    # Its own bridge and nftables table (a dockyardd of the host's keeps its own), and the
    # host's ip_forward left as it is: the demo's containers talk to nothing beyond it.
    tag = token.rsplit("-", 1)[-1][:8]
    (work / "daemon.json").write_text(json.dumps({
        "cgroup-parent": f"/{token}", "bridge": f"dyd{tag}", "nft-table": f"dockyard_demo_{tag}",
        "ip-forward": False}))
    engine = None
    try:
        with ImageLibrary(work / "images") as lib:
            bootstrap(lib)
            save(lib, ["docker.io/library/busybox:latest"], work / "busybox.tar")
        shutil.rmtree(work / "images")
        with open(work / "dockyardd.log", "wb") as log:
            engine = subprocess.Popen(
                [str(BIN / "dockyardd"), "--data-root", str(work / "data"), "--exec-root",
                 str(exec_root), "-H", host, "--config-file", str(work / "daemon.json")],
                stdout=log, stderr=log)
        print(f"dockyardd (pid {engine.pid}) on {host}", flush=True)
        deadline = time.monotonic() + 30
        while not pings(sock):
            if engine.poll() is not None or time.monotonic() > deadline:
                sys.stderr.write((work / "dockyardd.log").read_text())
                return 1
            time.sleep(0.05)
        steps = [("load", "-i", str(work / "busybox.tar")),
                 ("run", "--rm", "--network", "none", "--name", "demo", "busybox",
                  "sh", "-c", SCRIPT),
                 ("images",), ("ps", "-a")]
        for step in steps:
            code = show(host, *step)
            if code != 0:
                return code
        return 0
    finally:
        if engine is not None and engine.poll() is None:
            engine.send_signal(signal.SIGTERM)  # stops containers and the supervisor
            try:
                engine.wait(30)
            except subprocess.TimeoutExpired:
                engine.kill()
                engine.wait()
        _clean(work, exec_root, f"/{token}")


def _clean(work: Path, exec_root: Path, cgroup_parent: str) -> None:
    for root in (exec_root, work):
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4] for line in f if line.split()[4].startswith(str(root))]
        for point in sorted(points, key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True)
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        d = hierarchy / cgroup_parent.lstrip("/")
        if d.is_dir():
            for sub in sorted(d.rglob("*"), key=lambda p: len(str(p)), reverse=True):
                if sub.is_dir():
                    sub.rmdir()
            d.rmdir()
    shutil.rmtree(exec_root, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
