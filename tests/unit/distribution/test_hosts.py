from __future__ import annotations

import pytest

from dockyard.distribution.errors import HostsError
from dockyard.distribution.hosts import (
    Endpoint,
    Mirror,
    Redirect,
    RegistryHosts,
    TLSConfig,
)

SECURE = TLSConfig(verify=True)
INSECURE = TLSConfig(verify=False)
LOOPBACK = "http://127.0.0.1:5000"


def test_docker_io_goes_to_registry_1() -> None:
    for name in ("docker.io", "index.docker.io", "registry-1.docker.io", "Docker.IO"):
        assert RegistryHosts().endpoints(name) == [Endpoint("https", "registry-1.docker.io")]


def test_endpoint_urls() -> None:
    assert Endpoint("https", "registry-1.docker.io").url("library/busybox/manifests/latest") \
        == "https://registry-1.docker.io/v2/library/busybox/manifests/latest"
    assert Endpoint("http", "127.0.0.1:5000", "/k8s").url() == "http://127.0.0.1:5000/k8s/v2/"
    assert Endpoint("http", "127.0.0.1:5000", "/k8s").url_base == "http://127.0.0.1:5000/k8s"


def test_registry_mirrors_come_first_and_are_pull_only() -> None:
    hosts = RegistryHosts.from_daemon_config(
        {"registry-mirrors": ["https://mirror.example/", "http://10.0.0.5:5000"],
         "insecure-registries": ["10.0.0.0/8"]})
    assert hosts.endpoints("docker.io") == [
        Endpoint("https", "mirror.example", "", SECURE, is_mirror=True, pull_only=True),
        Endpoint("http", "10.0.0.5:5000", "", INSECURE, is_mirror=True, pull_only=True),
        Endpoint("https", "registry-1.docker.io"),
    ]
    assert hosts.endpoints("quay.io") == [Endpoint("https", "quay.io")]


@pytest.mark.parametrize(("host", "insecure"), [
    ("localhost", True), ("localhost:5000", True), ("127.0.0.1:5000", True),
    ("127.1.2.3", True), ("[::1]:5000", True), ("::1", True),
    ("10.1.2.3:5000", True), ("10.1.2.3", True), ("192.168.1.1:5000", False),
    ("myreg:5000", True), ("myreg", False), ("myreg:5001", False),
    ("plain.example", True), ("plain.example:443", False),
    ("fd00::1", True), ("[fd00::1]:5000", True), ("fe80::1", False),
    ("docker.io", False), ("quay.io", False), ("localhost.example", False),
])
def test_insecure_registries(host: str, insecure: bool) -> None:
    hosts = RegistryHosts.from_daemon_config({"insecure-registries": [
        "10.0.0.0/8", "myreg:5000", "http://plain.example", "fd00::/8"]})
    assert hosts.is_insecure(host) is insecure


def test_insecure_origin_tries_https_unverified_then_http() -> None:
    assert RegistryHosts().endpoints("localhost:5000") == [
        Endpoint("https", "localhost:5000", "", INSECURE),
        Endpoint("http", "localhost:5000", "", INSECURE),
    ]


def test_ca_files_apply_to_the_host() -> None:
    hosts = RegistryHosts(ca_files={"myreg:5000": "/etc/ca.pem"})
    assert hosts.endpoints("myreg:5000") == [
        Endpoint("https", "myreg:5000", "", TLSConfig(True, "/etc/ca.pem"))]


@pytest.mark.parametrize("host", ["docker.io", "registry.k8s.io", "gcr.io"])
def test_redirect_to_loopback_without_fallback(host: str) -> None:
    hosts = RegistryHosts.from_hosts_config({
        host: {"redirect": f"{LOOPBACK}/{host}", "fallback": False,
               "mirrors": ["https://mirror.example"]}})
    assert hosts.endpoints(host) == [Endpoint("http", "127.0.0.1:5000", f"/{host}", INSECURE)]


@pytest.mark.parametrize(("host", "origin"), [
    ("docker.io", "registry-1.docker.io"), ("registry.k8s.io", "registry.k8s.io"),
    ("gcr.io", "gcr.io"),
])
def test_redirect_to_loopback_with_fallback(host: str, origin: str) -> None:
    hosts = RegistryHosts.from_hosts_config({
        host: {"redirect": LOOPBACK, "fallback": True, "mirrors": ["https://mirror.example"]}})
    assert hosts.endpoints(host) == [
        Endpoint("http", "127.0.0.1:5000", "", INSECURE),
        Endpoint("https", "mirror.example", "", SECURE, is_mirror=True, pull_only=True),
        Endpoint("https", origin),
    ]


def test_redirect_to_a_bare_host_follows_its_security() -> None:
    hosts = RegistryHosts(redirects={"index.docker.io": Redirect("localhost:5000")})
    assert hosts.endpoints("docker.io") == [
        Endpoint("https", "localhost:5000", "", INSECURE),
        Endpoint("http", "localhost:5000", "", INSECURE),
    ]
    hosts = RegistryHosts(redirects={"gcr.io": Redirect("mirror.example")},
                          ca_files={"mirror.example": "/ca.pem"})
    assert hosts.endpoints("gcr.io") == [
        Endpoint("https", "mirror.example", "", TLSConfig(True, "/ca.pem"))]


def test_hosts_config_on_top_of_daemon_config() -> None:
    base = RegistryHosts.from_daemon_config({"registry-mirrors": ["https://m.example"],
                                             "insecure-registries": ["10.0.0.0/8"]})
    hosts = RegistryHosts.from_hosts_config(
        {"quay.io": {"insecure": True, "ca_file": "/q.pem"}}, base=base)
    assert hosts.is_insecure("10.9.9.9")
    assert hosts.is_insecure("quay.io")
    assert hosts.endpoints("quay.io") == [
        Endpoint("https", "quay.io", "", TLSConfig(False, "/q.pem")),
        Endpoint("http", "quay.io", "", TLSConfig(False, "/q.pem")),
    ]
    assert hosts.endpoints("docker.io")[0].host == "m.example"


@pytest.mark.parametrize(("text", "want"), [
    ("https://mirror.example", Mirror("https", "mirror.example")),
    ("https://mirror.example/", Mirror("https", "mirror.example")),
    ("http://Mirror.Example:5000/path/", Mirror("http", "mirror.example:5000", "/path")),
    ("http://[::1]:5000", Mirror("http", "[::1]:5000")),
])
def test_mirror_parse(text: str, want: Mirror) -> None:
    assert Mirror.parse(text) == want


@pytest.mark.parametrize(("text", "why"), [
    ("mirror.example", "unsupported scheme"),
    ("ftp://mirror.example", "unsupported scheme"),
    ("https://mirror.example/?a=b", "query or fragment"),
    ("https://mirror.example/#x", "query or fragment"),
    ("https://u:p@mirror.example", "username/password"),
    ("https://", "no host"),
    ("https://mirror.example:99999", "not a valid URI"),
])
def test_mirror_parse_rejects(text: str, why: str) -> None:
    with pytest.raises(HostsError, match=why):
        Mirror.parse(text)


@pytest.mark.parametrize(("config", "why"), [
    ({"registry-mirrors": "https://m"}, "'registry-mirrors' must be a list"),
    ({"registry-mirrors": ["m.example"]}, "unsupported scheme"),
    ({"insecure-registries": ["ftp://x"]}, "should not contain '://'"),
    ({"insecure-registries": ["10.0.0.0/33"]}, "not a CIDR"),
    ({"insecure-registries": [""]}, "invalid insecure registry"),
    ({"insecure-registries": [5]}, "must be a list of strings"),
])
def test_bad_daemon_config(config: dict[str, object], why: str) -> None:
    with pytest.raises(HostsError, match=why):
        RegistryHosts.from_daemon_config(config)


@pytest.mark.parametrize(("config", "why"), [
    ({"gcr.io": "x"}, "must be an object"),
    ({"gcr.io": {"mirror": []}}, "unknown keys"),
    ({"gcr.io": {"mirrors": "https://m"}}, "'mirrors' must be a list"),
    ({"gcr.io": {"insecure": "yes"}}, "'insecure' must be a boolean"),
    ({"gcr.io": {"ca_file": 1}}, "'ca_file' must be a path"),
    ({"gcr.io": {"redirect": ""}}, "'redirect' must be"),
    ({"gcr.io": {"redirect": LOOPBACK, "fallback": "no"}}, "'fallback' must be a boolean"),
    ({"gcr.io": {"redirect": "ftp://127.0.0.1"}}, "unsupported scheme"),
    ({"gcr.io": {"redirect": "127.0.0.1:5000/x"}}, "has a path but no scheme"),
])
def test_bad_hosts_config(config: dict[str, object], why: str) -> None:
    with pytest.raises(HostsError, match=why):
        RegistryHosts.from_hosts_config(config)
