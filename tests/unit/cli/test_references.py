from __future__ import annotations

from dockyard.cli.references import familiar, normalize, split


def test_normalised_and_familiar_forms():
    assert normalize("busybox") == "docker.io/library/busybox"
    assert normalize("me/app:1") == "docker.io/me/app:1"
    assert normalize("localhost:5000/app") == "localhost:5000/app"
    assert familiar("docker.io/library/busybox:latest") == "busybox:latest"
    assert familiar("127.0.0.1:5000/a/b:t") == "127.0.0.1:5000/a/b:t"
    assert split("reg:5000/app@sha256:ab") == ("reg:5000", "app", "", "sha256:ab")
