"""Bridge networking, dockyardd against Debian's dockerd, in one run. Needs root.

    .venv/bin/python bench/network_run.py [--runs 20] [--mb 200] [--only start|throughput]
                                          [--ours-config '{"key": value}']

1. start: the same docker CLI runs `docker run --rm busybox true` (the default bridge
   network: a veth, an address, the network's rules) against each engine, a process per run,
   the engines taking turns; medians and the ratio dockyardd / dockerd (goal <= 0.5).
2. throughput: against each engine a container runs a server on port 5000 published as
   `-p 127.0.0.1:<free port>:5000` (`nc -ll -p 5000 -e sh -c 'dd of=/dev/null bs=1M; echo
   ok'`: a process per connection that reads to EOF and then answers). The client, here on
   the host, connects to 127.0.0.1:<port>, sends --mb MiB, half-closes and waits for "ok":
   connect to answer is timed. dockyardd DNATs 127.0.0.1 to the container in nftables (the
   kernel's path); dockerd (its default, --userland-proxy=true) goes through docker-proxy.
   Medians in MiB/s and the ratio dockyardd / dockerd (goal >= 1.0).

Both engines get the same busybox image (built from Debian's busybox-static and loaded from
the archive Dockyard saves, as bench/engine_run.py does); neither pulls anything. The
reference is tests/refdocker.py's isolated dockerd 20.10 with a bridge of its own and
iptables (bench/refbridge.py); ours is tests/integration/engine/harness.py's dockyardd, its
daemon.json extended by --ours-config. When dockyardd cannot do something (its bridge
networking is new), its rows say n/a with the error, and the reference is still measured.

The host's network state (nft ruleset, net.* sysctls, links) is snapshotted before either
engine starts and put back after both are down, also on an error, Ctrl-C or SIGTERM; the
last lines say what was restored and whether `nft list ruleset` is as before (exit 1 if
not).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from tests.integration.engine.harness import busybox_archive, running_engine  # noqa: E402
from tests.refdocker import docker_cli, unavailable  # noqa: E402
from tests.refregistry import free_port  # noqa: E402

from refbridge import HostNetGuard, bridged_ref_dockerd  # noqa: E402

OURS, REF = "dockyardd", "dockerd"
PORT = 5000
SERVER = ["nc", "-ll", "-p", str(PORT), "-e", "sh", "-c",
          "dd of=/dev/null bs=1M 2>/dev/null; echo ok"]
TIMEOUT = 120.0  # any one docker command
CHUNK = memoryview(bytes(1 << 20))


class Failed(Exception):
    pass


class Side:
    """One engine as the docker CLI sees it; `error` once something failed (then n/a)."""

    def __init__(self, name: str, label: str, cli: str, host: str, config: Path) -> None:
        self.name, self.label, self.cli, self.host = name, label, cli, host
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("DOCKER_")} | {
            "DOCKER_CONFIG": str(config), "DOCKER_CLI_HINTS": "false"}
        config.mkdir(parents=True, exist_ok=True)
        self.error: str | None = None
        self.port = 0

    def cmd(self, *args: str) -> list[str]:
        return [self.cli, "-H", self.host, *args]

    def docker(self, *args: str) -> str:
        try:
            done = subprocess.run(self.cmd(*args), capture_output=True, text=True,
                                  env=self.env, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            raise Failed(f"docker {' '.join(args)}: no answer in {TIMEOUT:.0f} s") from e
        if done.returncode != 0:
            raise Failed(f"docker {' '.join(args)} exited {done.returncode}: "
                         f"{(done.stderr or done.stdout).strip()}")
        return done.stdout

    def timed(self, *args: str) -> float:
        start = time.perf_counter()
        self.docker(*args)
        return time.perf_counter() - start

    def fail(self, what: str, e: Exception) -> None:
        self.error = self.error or f"{what}: {e}"
        print(f"  {self.name}: {what} failed: {e}", flush=True)


# -- throughput ----------------------------------------------------------------------------

def transfer(port: int, total: int, timeout: float = 60) -> float:
    """Seconds from connect to the server's answer after it read `total` bytes to EOF."""
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        left = total
        while left:
            n = min(left, len(CHUNK))
            s.sendall(CHUNK[:n])
            left -= n
        s.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := s.recv(64):
            reply += chunk
    took = time.perf_counter() - start
    if reply != b"ok\n":
        raise Failed(f"the server answered {reply!r} after {total} bytes, not b'ok\\n'")
    return took


def serve(side: Side, wait: float = 30) -> None:
    """The server container on a free host port of 127.0.0.1, answering."""
    side.port = free_port()
    side.docker("run", "-d", "--name", f"dyb-srv-{side.port}", "-p",
                f"127.0.0.1:{side.port}:{PORT}", "busybox", *SERVER)
    deadline = time.monotonic() + wait
    while True:
        try:
            transfer(side.port, 1, timeout=5)
            return
        except (OSError, Failed) as e:
            if time.monotonic() > deadline:
                raise Failed(f"nothing answers on 127.0.0.1:{side.port} after {wait:.0f} s: "
                             f"{e}") from e
            time.sleep(0.05)


def throughput(sides: list[Side], args: argparse.Namespace) -> dict[str, list[float]]:
    total = args.mb << 20
    up = []
    for side in sides:
        side.error = None  # this phase's
        try:
            serve(side)
            transfer(side.port, min(total, 64 << 20))  # warm up
            up.append(side)
        except (OSError, Failed) as e:
            side.fail("the published-port server", e)
    results: dict[str, list[float]] = {s.name: [] for s in up}
    for n in range(args.runs):
        for side in up[n % len(up):] + up[:n % len(up)] if up else []:
            if side.error:
                continue
            try:
                results[side.name].append(transfer(side.port, total))
            except (OSError, Failed) as e:
                side.fail(f"transfer {n + 1}", e)
    for side in sides:
        if side.port:
            try:
                side.docker("rm", "-f", f"dyb-srv-{side.port}")
            except Failed as e:
                print(f"  {side.name}: {e}")
    return {name: ([args.mb / t for t in v] if not by_name(sides, name).error else [])
            for name, v in results.items()}


# -- start ---------------------------------------------------------------------------------

def start(sides: list[Side], runs: int) -> dict[str, list[float]]:
    run_args = ("run", "--rm", "busybox", "true")
    up = []
    for side in sides:
        side.error = None  # this phase's
        try:
            side.timed(*run_args)  # warm up
            up.append(side)
        except Failed as e:
            side.fail("docker run --rm busybox true", e)
    results: dict[str, list[float]] = {s.name: [] for s in sides}
    for n in range(runs):
        for side in up[n % len(up):] + up[:n % len(up)] if up else []:
            if side.error:
                continue
            try:
                results[side.name].append(side.timed(*run_args))
            except Failed as e:
                side.fail(f"run {n + 1}", e)
    return {name: ([] if by_name(sides, name).error else v) for name, v in results.items()}


# -- report --------------------------------------------------------------------------------

def by_name(sides: list[Side], name: str) -> Side:
    return next(s for s in sides if s.name == name)


def table(sides: list[Side], results: dict[str, list[float]], unit: str, scale: float,
          higher_is_better: bool, goal: str) -> None:
    print(f"  {'':38} {'median ' + unit:>14} {'best ' + unit:>12}")
    for side in sides:
        v = results.get(side.name) or []
        if v:
            best = max(v) if higher_is_better else min(v)
            print(f"  {side.label:38} {statistics.median(v) * scale:14.1f} "
                  f"{best * scale:12.1f}")
        else:
            why = (side.error or "").splitlines()[0] if side.error else ""
            print(f"  {side.label:38} {'n/a':>14} {'n/a':>12}   {why[:160]}")
    ours, ref = results.get(OURS), results.get(REF)
    ratio = f"{statistics.median(ours) / statistics.median(ref):.2f}" if ours and ref \
        else "n/a"
    print(f"  ratio {OURS} / {REF}: {ratio} (medians; goal {goal})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--mb", type=int, default=200, help="MiB per transfer")
    ap.add_argument("--only", choices=("start", "throughput"))
    ap.add_argument("--dir", default="/var/tmp")
    ap.add_argument("--ours-config", type=json.loads, default={},
                    help="JSON object merged into dockyardd's daemon.json")
    args = ap.parse_args()
    if reason := unavailable():
        raise SystemExit(f"network_run: {reason}")
    cli = docker_cli() or "docker"

    def interrupted(signum: int, _frame: object) -> None:
        # once: the cleanup that follows must not be cut short by a second signal
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print(f"\nnetwork_run: {signal.Signals(signum).name}, cleaning up", flush=True)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    work = Path(tempfile.mkdtemp(prefix="dyb-network-", dir=args.dir))
    guard = HostNetGuard()
    status = 0
    try:
        with guard:
            compare(args, cli, work, guard)
    except KeyboardInterrupt:
        status = 130
    finally:
        shutil.rmtree(work, ignore_errors=True)
        report_host(guard)
    return status or (0 if guard.ok else 1)


def compare(args: argparse.Namespace, cli: str, work: Path, guard: HostNetGuard) -> None:
    archive = busybox_archive(work)
    with ExitStack() as stack:
        ref = stack.enter_context(bridged_ref_dockerd(work))
        ref.docker("load", "-i", str(archive))
        sides = [Side(OURS, f"docker CLI -> {OURS} (nft DNAT)", cli, "", work / "cli-ours"),
                 Side(REF, f"docker CLI -> {REF} (docker-proxy)", cli, ref.host,
                      work / "cli-ref")]
        try:
            ours = stack.enter_context(running_engine(work, archive, config=args.ours_config))
            sides[0].host = ours.host
            # the harness gives dockyardd a bridge, subnets and nft table of its own and
            # removes them; should any be left all the same, the guard removes them
            config = getattr(ours, "config", {})
            if config.get("bridge"):
                guard.remove_links.add(config["bridge"])
            if config.get("nft-table"):
                guard.remove_tables.add(("inet", config["nft-table"]))
        except Exception as e:  # the reference is measured all the same
            sides[0].fail("starting dockyardd", e)
        ours_net = "n/a"
        if not sides[0].error:
            try:
                ours_net = sides[0].docker(
                    "network", "inspect", "bridge", "-f",
                    '{{index .Options "com.docker.network.bridge.name"}} '
                    "({{range .IPAM.Config}}{{.Subnet}}{{end}})").strip()
            except Failed as e:
                print(f"  {OURS}: no bridge network: {e}")
        live = [s for s in sides if not s.error]
        version = subprocess.run([cli, "--version"], capture_output=True, text=True).stdout
        print(f"{version.strip()}\n{REF}: bridge {ref.bridge} ({ref.subnet}), iptables, "
              f"userland proxy; {OURS}: bridge {ours_net}, nftables", flush=True)

        if args.only in (None, "start"):
            results = start(live, args.runs)
            print(f"start: docker run --rm busybox true (default bridge network), "
                  f"{args.runs} runs")
            table(sides, results, "ms", 1000, False, "<= 0.5")
        if args.only in (None, "throughput"):
            results = throughput(live, args)
            print(f"throughput: {args.mb} MiB into a container through "
                  f"-p 127.0.0.1:PORT:{PORT}, {args.runs} runs")
            table(sides, results, "MiB/s", 1, True, ">= 1.0")


def report_host(guard: HostNetGuard) -> None:
    if guard.restored:
        print("host: restored: " + "; ".join(guard.restored))
    for note in guard.others:
        print(f"host: (not ours) {note}")
    if guard.ok:
        print("host: nft ruleset, net.* sysctls and links as before the run"
              + (", but for other programs' changes above" if guard.others else ""))
    else:
        print("host: NOT as before:\n  " + "\n  ".join(guard.problems))


if __name__ == "__main__":
    sys.exit(main())
