"""Connection-tracking entries of a released address deleted over ctnetlink, against the real
kernel: entries made with the conntrack tool, then looked for with it."""

from __future__ import annotations

import random
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from dockyard.network import conntrack

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(shutil.which("conntrack") is None, reason="needs conntrack")]


def entries(prefix: str) -> list[str]:
    out = subprocess.run(["conntrack", "-L"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if f"={prefix}" in line]


def insert(*args: str) -> None:
    subprocess.run(["conntrack", "-I", *args, "-t", "120"], capture_output=True, check=True)


@pytest.fixture
def prefix() -> Iterator[str]:
    """A /24 of 10.252-254.x nobody else uses here; its entries go afterwards."""
    net = f"10.{random.randrange(252, 255)}.{random.randrange(256)}."
    yield net
    for match in ("--orig-src", "--orig-dst", "--reply-src", "--reply-dst"):
        for host in range(1, 10):
            subprocess.run(["conntrack", "-D", match, f"{net}{host}"], capture_output=True)


def test_entries_from_to_and_dnated_to_the_address_go_and_others_stay(prefix):
    ours, peer, other = f"{prefix}7", f"{prefix}8", f"{prefix}9"
    insert("-s", ours, "-d", other, "-p", "tcp", "--sport", "1234", "--dport", "80",
           "--state", "ESTABLISHED", "-u", "SEEN_REPLY")                      # from it
    insert("-s", peer, "-d", ours, "-p", "udp", "--sport", "53", "--dport", "5353")  # to it
    insert("-s", peer, "-d", f"{prefix}99", "-r", ours, "-q", peer, "-p", "tcp",
           "--sport", "1111", "--dport", "8080", "--reply-port-src", "80",
           "--reply-port-dst", "1111", "--state", "ESTABLISHED")              # DNATed to it
    insert("-s", peer, "-d", other, "-p", "tcp", "--sport", "1", "--dport", "2",
           "--state", "ESTABLISHED")                                          # not its
    assert len(entries(prefix)) == 4

    assert conntrack.delete_entries([ours]) == 3

    left = entries(prefix)
    assert len(left) == 1 and f"src={peer} dst={other} sport=1 dport=2" in left[0]


def test_nothing_to_delete_is_no_error(prefix):
    assert conntrack.delete_entries([f"{prefix}5", "fd00:dead::5"]) == 0
    assert conntrack.delete_entries([]) == 0
