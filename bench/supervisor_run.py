"""Containers through the supervisor: dockyard-containerd against Debian's containerd 1.6
(containerd-shim-runc-v2, runc), on the same busybox image, in one run. Needs root.

    .venv/bin/python bench/supervisor_run.py [--runs 20] [--many 50] [--parallel 8] [--idle 10]

1. start: create + start + wait + delete of /bin/true. Ours through the gRPC API from this
   process (dockyard.containerd.client: snapshot, container, task, start, wait, delete,
   remove), and `dockyard-ctr run --rm` for the record; theirs `ctr run --rm`, a process per
   run as ctr is meant to be used.
2. many: --many such containers, --parallel at a time.
3. memory: --idle containers left running `sleep`; resident and proportional memory of each
   shim (RSS, PSS from smaps_rollup).

Ours: dockyard-containerd with dockyard-runc, the image pulled from dockyard-registry on
loopback. Theirs: tests/refcontainerd.py, the image imported from the archive Dockyard saves.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from tests.refcontainerd import ref_containerd, unavailable  # noqa: E402
from tests.refdocker import remove_cgroups  # noqa: E402

V = Path(sys.executable).parent
IMAGE = "docker.io/library/busybox:latest"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(path: Path, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 20
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start")
        time.sleep(0.02)


def shim_memory(pids: list[int]) -> tuple[float, float]:
    """Mean RSS and PSS of `pids`, in MiB."""
    rss, pss = [], []
    for pid in pids:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss.append(int(line.split()[1]) / 1024)
            elif line.startswith("Pss:"):
                pss.append(int(line.split()[1]) / 1024)
    return statistics.mean(rss), statistics.mean(pss)


def our_shims(state: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes()
                comm = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if comm == "dockyard-shim" and str(state).encode() in cmd:
                found.append(int(entry.name))
    return found


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def many(run_one: Callable[[int], object], n: int, parallel: int) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(run_one, range(n)))
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--many", type=int, default=50)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--idle", type=int, default=10)
    ap.add_argument("--dir", default="/var/tmp")
    ap.add_argument("--phases", action="store_true",
                    help="also print the median time of each of our gRPC calls")
    args = ap.parse_args()
    if reason := unavailable():
        raise SystemExit(f"supervisor_run: {reason}")

    import aiohttp
    from tests.integration.registry.processes import process

    from dockyard.api.services.tasks.v1.tasks_pb2 import KillRequest
    from dockyard.containerd.client import Client
    from dockyard.distribution.transfer import push
    from dockyard.image.archive.save import save
    from dockyard.image.imports import bootstrap
    from dockyard.image.library import ImageLibrary

    work = Path(tempfile.mkdtemp(prefix="dyb-sup-", dir=args.dir))
    token = uuid.uuid4().hex[:8]
    namespace = f"bench-{token}"  # also the cgroup parent of our containers
    state = Path(f"/run/dyb-sup-{token}")
    sock = state / "containerd.sock"
    host = f"127.0.0.1:{free_port()}"
    ref_name = f"{host}/library/busybox:latest"
    sup: subprocess.Popen | None = None
    results: dict[str, list[float]] = {}
    try:
        with ImageLibrary(work / "lib") as lib:
            bootstrap(lib)
            save(lib, [IMAGE], work / "busybox.tar")
            with process(["serve", "--addr", host, "--root", str(work / "registry")],
                         f"http://{host}/v2/"):
                async def upload() -> None:
                    async with aiohttp.ClientSession() as session:
                        await push(lib, IMAGE, ref_name, session=session)
                asyncio.run(upload())
                with open(work / "supervisor.log", "w") as log:
                    sup = subprocess.Popen([str(V / "dockyard-containerd"), "--address",
                                            str(sock), "--root", str(work / "root"),
                                            "--state", str(state), "--log-level", "warn"],
                                           stderr=log)
                wait_for(sock, sup, "dockyard-containerd")
                client = Client(str(sock), namespace)
                for _ in client.pull(ref_name):
                    pass
        image = client.image(ref_name)
        phases: dict[str, list[float]] = {}
        if args.phases:
            plain_call = client.call

            def call(method: object, request: object) -> object:
                start = time.perf_counter()
                try:
                    return plain_call(method, request)
                finally:
                    name = type(request).__name__.removesuffix("Request")
                    phases.setdefault(name, []).append(time.perf_counter() - start)
            client.call = call  # type: ignore[method-assign]

        def ours(i: int) -> None:
            if client.run(f"t{token}-{i}", image, ["/bin/true"]) != 0:
                raise SystemExit("our /bin/true failed")

        our_ctr = [str(V / "dockyard-ctr"), "--address", str(sock), "-n", namespace]
        with ref_containerd(work) as ref:
            ref.ctr("images", "import", str(work / "busybox.tar"))

            def theirs(i: int) -> None:
                subprocess.run(ref.command("run", "--rm", IMAGE, f"r{token}-{i}", "/bin/true"),
                               check=True, capture_output=True)

            def ours_cli(i: int) -> None:
                subprocess.run([*our_ctr, "run", "--rm", ref_name, f"c{token}-{i}",
                                "/bin/true"], check=True, capture_output=True)

            sides = {"dockyard (gRPC)": ours, "containerd (ctr)": theirs,
                     "dockyard-ctr": ours_cli}
            for fn in sides.values():  # warm up: caches, first cgroups
                fn(10_000)
            for name in sides:
                results[name] = []
            for n in range(args.runs):
                order = list(sides)[n % 3:] + list(sides)[:n % 3]
                for name in order:
                    results[name].append(timed(lambda fn=sides[name], n=n: fn(n)))
            print(f"start: create+start+wait+delete of /bin/true, {args.runs} runs")
            for name, v in results.items():
                print(f"  {name:18} median {statistics.median(v) * 1000:6.1f} ms   "
                      f"best {min(v) * 1000:6.1f} ms")
            base = statistics.median(results["containerd (ctr)"])
            for name, v in phases.items():
                print(f"    {name:22} median {statistics.median(v) * 1000:6.2f} ms")
            for name in ("dockyard (gRPC)", "dockyard-ctr"):
                print(f"  ratio {name} / containerd (ctr): "
                      f"{statistics.median(results[name]) / base:.2f} (medians)")

            t_ours = many(lambda i: ours(20_000 + i), args.many, args.parallel)
            t_theirs = many(lambda i: theirs(20_000 + i), args.many, args.parallel)
            print(f"many: {args.many} containers, {args.parallel} at a time: dockyard "
                  f"{t_ours:.2f} s, containerd {t_theirs:.2f} s, ratio {t_ours / t_theirs:.2f}")

            for i in range(args.idle):
                ref.ctr("run", "-d", IMAGE, f"idle{i}", "sleep", "600")
                mounts = client.new_container(f"idle{i}", image, ["sleep", "600"])
                client.create_task(f"idle{i}", mounts)
                client.start(f"idle{i}")
            time.sleep(0.5)
            o_rss, o_pss = shim_memory(our_shims(state))
            t_rss, t_pss = shim_memory(ref.shim_pids())
            print(f"memory: {args.idle} idle containers, per shim: dockyard RSS {o_rss:.1f} MiB "
                  f"PSS {o_pss:.1f} MiB; containerd-shim-runc-v2 RSS {t_rss:.1f} MiB PSS "
                  f"{t_pss:.1f} MiB; ratio RSS {o_rss / t_rss:.2f}, PSS {o_pss / t_pss:.2f}")
            for i in range(args.idle):
                client.call(client.tasks.Kill, KillRequest(container_id=f"idle{i}", signal=9))
                client.wait(f"idle{i}")
                client.delete_task(f"idle{i}")
                client.remove_container(f"idle{i}")
        client.close()
    finally:
        if sup is not None:
            sup.terminate()
            sup.wait(20)
        subprocess.run(["rm", "-rf", str(work), str(state)], check=False)
        remove_cgroups(f"/{namespace}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
