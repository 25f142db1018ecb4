"""The reference dockerd (tests/refdocker.py) WITH networking: its default bridge on a bridge
of its own and its iptables rules, and a guard that puts the host's network state back.

    with HostNetGuard() as guard:             # snapshot now; restore and verify on leaving
        with bridged_ref_dockerd(tmp) as ref: # dockerd -b dyb<6 hex> --iptables=true ...
            ref.docker("run", "--rm", "busybox", "true")
    print(guard.restored, guard.problems)     # what was put back; what still differs
    assert guard.ok                           # nothing differs (ruleset diff empty too)

What dockerd 20.10 does to the host with a bridge and iptables, and what is done about it:
- the bridge: `--bridge NAME` needs an existing bridge with an IPv4 address (dockerd takes
  it as the gateway and its subnet as the default network's pool; --bip and --fixed-cidr
  are not needed, and --bip is refused together with -b). So `bridge()` creates
  `dyb<6 hex>` with 10.<a>.<b>.1/24 (a >= 192, a /24 that no route of any table overlaps)
  and deletes it on leaving (dockerd never deletes a bridge it did not create). Docker's
  own docker0 is never made or touched.
- iptables (Debian 12: iptables-nft, so nftables tables `ip filter` and `ip nat`): dockerd
  creates the chains DOCKER, DOCKER-USER, DOCKER-ISOLATION-STAGE-1/2 and rules jumping to
  them, plus a MASQUERADE for its subnet and, per published port, DNAT/ACCEPT rules, and it
  never removes them on shutdown. After dockerd stopped, the guard deletes those of the
  iptables tables (ip/ip6 filter, nat, mangle, raw, security) that did not exist before;
  in those that did, every rule whose handle is new (nft never reuses a handle within a
  table), every new chain, and it sets back any base chain policy that changed. It then
  compares `nft list ruleset` (counters masked) with the snapshot.
- sysctls: `--ip-forward=false` (refdocker's default, kept) means dockerd neither sets
  net.ipv4.ip_forward=1 nor turns the FORWARD policy to DROP; `--userland-proxy=true` means
  no route_localnet. br_netfilter is built into this kernel (net.bridge.* already exist, no
  modprobe). The guard still snapshots net.ipv4.*, net.ipv4.conf.*.*, net.ipv6.conf.*.*,
  net.bridge.* and net.netfilter.* (the writable ones) and writes back any that changed
  (dockyardd, like dockerd by default, sets ip_forward=1 and leaves it) - unless another
  dockerd or dockyardd that may need them is running then: that is reported instead.
- links: veths go with their container's network namespace; the guard reports links that
  were not there before, and deletes those named in its `remove_links`.
- ip6tables: `--ip6tables=false` (refdocker's default, kept), so no ip6 tables.
- docker-proxy (the userland proxy for published ports) is dockerd's child; dockerd stops
  it on shutdown, `bridged_ref_dockerd` kills any left (by the container address it names).

Nothing leaves the machine: dockerd pulls nothing (refdocker's dead proxy; the image is
loaded) and forwards nothing (ip_forward is not its to set).
What another program changes meanwhile is only reported (the tables and links it makes),
except in the iptables tables, where it would be undone: no other iptables user here.
"""

from __future__ import annotations

import contextlib
import difflib
import glob
import ipaddress
import json
import os
import random
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent)]

from tests.refdocker import RefDocker, alive, ref_dockerd  # noqa: E402

# the tables iptables-nft makes (dockerd's, with ip6tables=false only ip ones)
IPTABLES_TABLES = tuple((fam, name) for fam in ("ip", "ip6")
                        for name in ("filter", "nat", "mangle", "raw", "security"))
SYSCTL_GLOBS = ("/proc/sys/net/ipv4/*", "/proc/sys/net/ipv4/conf/*/*",
                "/proc/sys/net/ipv6/conf/*/*", "/proc/sys/net/bridge/*",
                "/proc/sys/net/netfilter/*")
_COUNTER = re.compile(r"counter packets \d+ bytes \d+")
_EXPIRES = re.compile(r" expires \S+")


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.strip()}")
    return done


# -- host network state ----------------------------------------------------------------------

def ruleset_text() -> str:
    """`nft list ruleset`, counters and timeouts masked (they move by themselves)."""
    text = sh("nft", "list", "ruleset").stdout
    return _EXPIRES.sub("", _COUNTER.sub("counter", text))


def ruleset_objects() -> list[dict]:
    return [o for o in json.loads(sh("nft", "-j", "list", "ruleset").stdout)["nftables"]
            if "metainfo" not in o]


def by_table(text: str) -> dict[tuple[str, str], str]:
    """`nft list ruleset` split into its tables: (family, name) -> text."""
    tables: dict[tuple[str, str], str] = {}
    key = ("", "")
    for line in text.splitlines(keepends=True):
        if line.startswith("table "):
            fam, name = line.split()[1:3]
            key = (fam, name)
        tables[key] = tables.get(key, "") + line
    return tables


def read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def table_of(o: dict) -> tuple[str, str]:
    """(family, table) of an object of `nft -j list ruleset`."""
    kind, x = next(iter(o.items()))
    return x["family"], x["name"] if kind == "table" else x["table"]


def sysctls() -> dict[str, str]:
    values = {}
    for pattern in SYSCTL_GLOBS:
        for path in glob.glob(pattern):
            try:
                if not os.stat(path).st_mode & 0o200 or os.path.isdir(path):
                    continue
                with open(path) as f:
                    values[path] = f.read()
            except OSError:
                continue
    return values


def links() -> dict[str, str]:
    """Link name -> kind ("" when the kernel gives none)."""
    out = json.loads(sh("ip", "-d", "-j", "link", "show").stdout)
    return {link["ifname"]: link.get("linkinfo", {}).get("info_kind", "") for link in out}


def engines_running() -> list[str]:
    """dockerd and dockyardd processes alive (at restore time: not the benchmark's)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            comm = Path(f"/proc/{entry}/comm").read_text().strip()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        # refdocker's dockerd without a bridge (--ip-forward=false) needs nothing of these
        refdocker = comm == "dockerd" and b"--ip-forward=false" in cmd \
            and b"--bridge=none" in cmd and b"--bridge=dyb" not in cmd
        if (comm in ("dockerd", "dockyardd") or b"dockyard.engine" in cmd) \
                and not refdocker and alive(int(entry)):
            line = cmd.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry} {line[:80]}")
    return found


class HostNetGuard:
    """Snapshot of the host's network state on entering; on leaving (after the daemons are
    down) everything that changed is put back: `restored` says what, `problems` what still
    differs from the snapshot, `ok` that nothing does. SIGINT and SIGTERM are ignored while
    restoring, so a second Ctrl-C cannot cut the cleanup short."""

    def __init__(self, remove_links: tuple[str, ...] = (),
                 remove_tables: tuple[tuple[str, str], ...] = IPTABLES_TABLES) -> None:
        # what the caller's daemons may leave and the guard may delete when it is new: links
        # by name, nft tables by (family, name); anything else new is only reported, as
        # another program (a test running meanwhile) may own it
        self.remove_links = set(remove_links)
        self.remove_tables = set(remove_tables)
        self.restored: list[str] = []
        self.problems: list[str] = ["not restored yet"]
        self.others: list[str] = []  # changes of other programs, left alone
        self.running: list[str] = []
        self.ok = False

    def __enter__(self) -> HostNetGuard:
        self.text = ruleset_text()
        self.objects = ruleset_objects()
        self.sysctls = sysctls()
        self.links = links()
        return self

    def __exit__(self, *exc: object) -> None:
        old = {sig: signal.signal(sig, signal.SIG_IGN)
               for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.restore()
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)

    def restore(self) -> None:
        self.problems, self.others = [], []
        for step in (self._restore_links, self._restore_nft, self._restore_sysctls):
            try:
                step()
            except (RuntimeError, OSError, ValueError, KeyError) as e:
                self.problems.append(f"{step.__name__.lstrip('_')} failed: {e}")
        after = ruleset_text()
        diff = list(difflib.unified_diff(self.text.splitlines(), after.splitlines(),
                                         "before", "after", lineterm=""))
        if diff:
            # a table the guard may not touch changed: another program's, meanwhile
            was, now = by_table(self.text), by_table(after)
            changed = {t for t in was.keys() | now.keys() if was.get(t) != now.get(t)}
            mine = [t for t in changed if t in self.remove_tables]
            if mine:
                self.problems.append("nft ruleset differs from before:\n" + "\n".join(diff))
            else:
                self.others.append("nft tables of other programs changed, left alone: "
                                   + ", ".join(" ".join(t) for t in sorted(changed)))
        if not self.running:
            for path, value in sysctls().items():
                if self.sysctls.get(path, value) != value:
                    self.problems.append(f"sysctl {path} is {value.strip()}, was "
                                         f"{self.sysctls[path].strip()}")
        new = set(links()) - set(self.links)
        if new & self.remove_links:
            self.problems.append(f"links still there: {', '.join(sorted(new & self.remove_links))}")
        if new - self.remove_links:
            self.others.append("links of other programs, left alone: "
                               + ", ".join(sorted(new - self.remove_links)))
        self.ok = not self.problems

    def _restore_links(self) -> None:
        for name, kind in links().items():
            if name not in self.links and name in self.remove_links \
                    and sh("ip", "link", "del", name, check=False).returncode == 0:
                self.restored.append(f"deleted link {name} ({kind or 'no kind'})")

    def _restore_nft(self) -> None:
        def key(o: dict, kind: str) -> tuple:
            x = o[kind]
            if kind == "table":
                return (x["family"], x["name"])
            if kind == "chain":
                return (x["family"], x["table"], x["name"])
            return (x["family"], x["table"], x["handle"])

        def of(objs: list[dict], kind: str) -> dict[tuple, dict]:
            return {key(o, kind): o[kind] for o in objs if kind in o}

        before, now = self.objects, ruleset_objects()
        tables_before = of(before, "table")
        for fam, name in of(now, "table"):
            if (fam, name) not in tables_before and (fam, name) in self.remove_tables:
                sh("nft", "delete", "table", fam, name)
                self.restored.append(f"deleted nft table {fam} {name}")
        # in the tables that were there before, what is new in those the guard may touch
        now = [o for o in ruleset_objects() if table_of(o) in self.remove_tables]
        rules_before = of(before, "rule")
        deleted: dict[tuple[str, str], list[str]] = {}
        for (fam, table, handle), rule in of(now, "rule").items():
            if (fam, table, handle) not in rules_before:
                sh("nft", "delete", "rule", fam, table, rule["chain"], "handle", str(handle))
                deleted.setdefault((fam, table), []).append("")
        chains_before = of(before, "chain")
        chains_now = of(now, "chain")
        new_chains = [k for k in chains_now if k not in chains_before]
        for fam, table, name in new_chains:
            sh("nft", "flush", "chain", fam, table, name)
        for fam, table, name in new_chains:
            sh("nft", "delete", "chain", fam, table, name)
            deleted.setdefault((fam, table), []).append(name)
        for (fam, table), what in deleted.items():
            chains = [c for c in what if c]
            self.restored.append(f"nft table {fam} {table}: deleted {what.count('')} rules"
                                 f" and {len(chains)} chains ({', '.join(chains)})")
        for k, chain in chains_now.items():
            was = chains_before.get(k, {}).get("policy")
            if was and chain.get("policy") != was:
                fam, table, name = k
                sh("nft", f"chain {fam} {table} {name} {{ policy {was} ; }}")
                self.restored.append(f"nft chain {fam} {table} {name}: policy back to {was}")

    def _restore_sysctls(self) -> None:
        changed = {path: value for path, value in self.sysctls.items()
                   if read(path) not in (None, value)}
        self.running = engines_running() if changed else []
        if self.running:
            self.others.append("sysctls left as they are while another engine runs ("
                               + "; ".join(self.running) + "): " + ", ".join(
                                   f"{p.removeprefix('/proc/sys/')} {read(p)!r} (was "
                                   f"{v!r})" for p, v in changed.items()))
            return
        for path, value in self.sysctls.items():
            try:
                with open(path) as f:
                    if f.read() == value:
                        continue
                with open(path, "w") as f:
                    f.write(value)
                self.restored.append(f"sysctl {path} back to {value.strip()}")
            except OSError:
                continue  # its interface is gone


# -- the bridge and the reference daemon -----------------------------------------------------

def _used_networks() -> list[ipaddress.IPv4Network]:
    used = []
    for route in json.loads(sh("ip", "-4", "-j", "route", "show", "table", "all").stdout):
        dst = route.get("dst", "")
        if dst and dst != "default":
            used.append(ipaddress.ip_network(dst, strict=False))
    for link in json.loads(sh("ip", "-4", "-j", "addr", "show").stdout):
        for a in link.get("addr_info", []):
            used.append(ipaddress.ip_network(f"{a['local']}/{a['prefixlen']}", strict=False))
    return used


def free_subnet() -> ipaddress.IPv4Network:
    """A /24 in 10.192.0.0/10 that nothing on the host routes to or is addressed in (Docker's
    own pools are in 172.16.0.0/12 and 192.168.0.0/16; tests/integration/engine/harness.py
    gives dockyardd random subnets in 10.64.0.0/10 and 10.128.0.0/10)."""
    used = _used_networks()
    rng = random.Random(secrets.randbits(32))
    for _ in range(1000):
        net = ipaddress.ip_network(f"10.{rng.randrange(192, 255)}.{rng.randrange(256)}.0/24")
        if not any(net.overlaps(u) for u in used if u.prefixlen > 0):
            return net
    raise RuntimeError("no free /24 in 10.192.0.0/10")


@contextlib.contextmanager
def bridge(name: str | None = None) -> Iterator[tuple[str, ipaddress.IPv4Network]]:
    """A new Linux bridge `dyb<6 hex>` with <subnet>.1/24, up; deleted on leaving."""
    name = name or f"dyb{secrets.token_hex(3)}"
    net = free_subnet()
    sh("ip", "link", "add", name, "type", "bridge")
    try:
        sh("ip", "addr", "add", f"{net[1]}/{net.prefixlen}", "dev", name)
        sh("ip", "link", "set", name, "up")
        yield name, net
    finally:
        sh("ip", "link", "del", name, check=False)


def bridged_args(bridge_name: str) -> list[str]:
    """dockerd's networking as by default, on our bridge: iptables on (with masquerading),
    the userland proxy for published ports (so 127.0.0.1:PORT goes through docker-proxy).
    refdocker's --ip-forward=false and --ip6tables=false stay: see the module's docstring.
    These come after refdocker's own flags; the last value of a flag wins."""
    return [f"--bridge={bridge_name}", "--iptables=true", "--ip-masq=true",
            "--userland-proxy=true"]


def kill_proxies(net: ipaddress.IPv4Network) -> list[int]:
    """docker-proxy processes still forwarding to `net` (dockerd was killed): killed."""
    killed = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"docker-proxy") and alive(int(entry)):
            args = [a.decode(errors="replace") for a in argv]
            if "-container-ip" in args and ipaddress.ip_address(
                    args[args.index("-container-ip") + 1]) in net:
                with contextlib.suppress(OSError):
                    os.kill(int(entry), signal.SIGKILL)
                killed.append(int(entry))
    return killed


@contextlib.contextmanager
def bridged_ref_dockerd(tmp: Path, bridge_name: str | None = None,
                        **kw) -> Iterator[RefDocker]:
    """tests/refdocker.py's isolated dockerd with a default bridge network on a bridge of
    its own and iptables. The iptables rules it leaves are HostNetGuard's to remove."""
    with bridge(bridge_name) as (name, net):
        try:
            with ref_dockerd(tmp, extra_args=bridged_args(name), **kw) as ref:
                ref.bridge, ref.subnet = name, net  # type: ignore[attr-defined]
                yield ref
        finally:
            kill_proxies(net)
