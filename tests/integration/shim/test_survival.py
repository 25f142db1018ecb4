"""What outlives what: shims outlive their supervisor (kill -9) and answer a new one rightly;
a shim killed -9 is cleaned up after by cleanup_dead; twenty shims at once, and what each
costs in memory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from dockyard.shim.cleanup import cleanup_dead
from dockyard.shim.client import ShimClient
from dockyard.shim.protocol import unix_path
from dockyard.shim.spawn import default_runtime
from tests.conftest import REPO
from tests.integration.shim.conftest import alive, kill_shim, log_entries, mounted, shim_pid

pytestmark = pytest.mark.root

SUPERVISOR = textwrap.dedent("""
    import json, sys, time
    sys.path.insert(0, {repo!r})
    from pathlib import Path
    from dockyard.shim.client import ShimClient
    from dockyard.shim.spawn import start_shim
    addresses = []
    for bundle, cid in {containers!r}:
        address = start_shim("test", cid, Path(bundle), state_dir=Path({state!r}),
                             runtime_root=Path({root!r}))
        c = ShimClient(address)
        c.create(log={{"path": bundle + "/container.log", "max_size": 0, "max_file": 1}})
        events, attached = c.events(), c.attach(stdout=True, stderr=True)
        c.start()
        addresses.append(address)
    print(json.dumps(addresses), flush=True)
    time.sleep(100)
""")


def test_shims_outlive_their_supervisor_and_answer_the_next_one(shims):
    long_bundle, long_id = shims.bundle(
        ["sh", "-c", "for i in $(seq 1 40); do echo $i; sleep 0.02; done; exit 5"])
    short_bundle, short_id = shims.bundle(["sh", "-c", "sleep 0.2; echo bye; exit 6"])
    shims.held += [(long_bundle, long_id), (short_bundle, short_id)]
    script = SUPERVISOR.format(repo=str(REPO), state=str(shims.state),
                               root=str(shims.runtime_root),
                               containers=[(str(long_bundle), long_id),
                                           (str(short_bundle), short_id)])
    supervisor = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        addresses = json.loads(supervisor.stdout.readline())
    finally:
        supervisor.kill()  # SIGKILL: its connections (an events stream, a reader) just drop
        supervisor.wait()
        supervisor.stdout.close()
    time.sleep(0.4)  # the short one exits while no client is connected
    long_client, short_client = ShimClient(addresses[0]), ShimClient(addresses[1])
    shims.clients += [long_client, short_client]
    state = short_client.state()
    assert (state["status"], state["exit_status"]) == ("stopped", 6)
    assert short_client.wait() == {"exit_status": 6, "exited_at": state["exited_at"]}
    assert long_client.state()["status"] == "running"
    assert long_client.wait()["exit_status"] == 5
    assert [int(e["log"]) for e in log_entries(long_bundle / "container.log")] == \
        list(range(1, 41))
    assert [e["log"] for e in log_entries(short_bundle / "container.log")] == ["bye\n"]
    for client in (long_client, short_client):
        client.delete()


@pytest.mark.parametrize("exited_first", [False, True])
def test_after_a_shim_is_killed_cleanup_dead_leaves_nothing_behind(shims, exited_first):
    bundle, cid = shims.bundle(["sh", "-c", "exit 3" if exited_first else "sleep 100"],
                               copy=False)
    client = shims.start(bundle, cid)
    client.create(rootfs=[{"type": "bind", "source": str(shims.rootfs),
                           "options": ["rbind", "ro"]}])
    init = client.start()["pid"]
    if exited_first:
        client.wait()
    address = (bundle / "address").read_text()
    assert mounted(bundle / "rootfs")
    kill_shim(bundle)
    assert alive(init) != exited_first  # the container outlives its shim
    done = cleanup_dead(bundle, cid, runtime=default_runtime(), runtime_root=shims.runtime_root)
    assert done["exit_status"] == (3 if exited_first else 137)
    assert json.loads((bundle / "exit.json").read_text()) == done
    assert not alive(init)
    assert not mounted(bundle / "rootfs")
    assert not (shims.runtime_root / cid).exists()
    assert not os.path.exists(unix_path(address))
    assert cleanup_dead(bundle, cid, runtime=None, runtime_root=shims.runtime_root) == done


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def pss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Pss:"))


def test_twenty_shims_at_once_each_light(shims, capsys):
    clients = []
    for _ in range(20):
        client, _bundle, _cid = shims.container(["sh", "-c", "echo up; sleep 100"],
                                                log=None)
        client.start()
        clients.append((client, _bundle, _cid))
    time.sleep(0.1)
    sizes, shares = [], []
    for client, bundle, cid in clients:
        pid = shim_pid(bundle)
        with open(f"/proc/{pid}/comm") as f:
            assert f.read().strip() == "dockyard-shim"
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().split(b"\0")
        assert args[0].endswith(b"dockyard-shim") and cid.encode() in args
        assert client.state()["status"] == "running"
        sizes.append(rss_kib(pid))
        shares.append(pss_kib(pid))
    with capsys.disabled():
        print(f"\n20 shims, RSS (KiB): min {min(sizes)} mean {sum(sizes) // len(sizes)} "
              f"max {max(sizes)}; PSS mean {sum(shares) // len(shares)}")
    assert max(sizes) < 13 * 1024  # containerd-shim-runc-v2 takes about 13 MB here
    for client, _bundle, _cid in clients:
        client.kill(signal=signal.SIGKILL)
    for client, _bundle, _cid in clients:
        assert client.wait()["exit_status"] == 137
        client.delete()
