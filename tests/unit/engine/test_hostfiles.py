"""/etc/hosts and /etc/resolv.conf from --add-host and --dns*, as dockerd writes them."""

from __future__ import annotations

import pytest

from dockyard.engine.containers.hostfiles import hosts_file, resolv_conf
from dockyard.engine.errors import InvalidParameter

HOST_RESOLV = "# a comment\nnameserver 10.0.0.2\nsearch corp.example\noptions ndots:2\n"


def test_extra_hosts_follow_the_localhost_lines():
    text = hosts_file(["db:10.1.2.3", "v6=[::1]"])
    assert text.startswith("127.0.0.1\tlocalhost\n")
    assert text.endswith("10.1.2.3\tdb\n::1\tv6\n")


def test_host_networking_starts_from_the_hosts_file():
    assert hosts_file(["x:1.2.3.4"], "127.0.0.1 localhost myhost") == \
        "127.0.0.1 localhost myhost\n1.2.3.4\tx\n"


@pytest.mark.parametrize("entry", ["nocolon", "db:not-an-ip", ":1.2.3.4", "gw:host-gateway"])
def test_bad_extra_hosts_are_refused(entry):
    with pytest.raises(InvalidParameter):
        hosts_file([entry])


def test_resolv_conf_is_the_hosts_unless_told_otherwise():
    assert resolv_conf(HOST_RESOLV) == HOST_RESOLV
    text = resolv_conf(HOST_RESOLV, dns=["1.1.1.1", "9.9.9.9"], search=["a.example"],
                       options=["ndots:5", "timeout:1"])
    assert text == ("# a comment\nsearch a.example\noptions ndots:5 timeout:1\n"
                    "nameserver 1.1.1.1\nnameserver 9.9.9.9\n")
    with pytest.raises(InvalidParameter, match="is not an ip address"):
        resolv_conf(HOST_RESOLV, dns=["dns.example"])
