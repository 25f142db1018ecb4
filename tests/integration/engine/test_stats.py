"""GET /containers/{id}/stats against a real dockyardd: Docker's document, streamed and not,
and `docker stats --no-stream`."""

from __future__ import annotations

import json

import pytest

from tests.conftest import unique

pytestmark = pytest.mark.root


@pytest.fixture
def running(engine) -> str:
    n = unique("stats")
    engine.docker("run", "-d", "--name", n, "-m", "64m", "busybox", "sh", "-c",
                  "while :; do :; done")
    yield n
    engine.docker("rm", "-f", n, check=False)


def test_one_document_has_dockers_shape(engine, running) -> None:
    doc = engine.sdk.api.stats(running, stream=False)
    assert doc["name"] == f"/{running}" and len(doc["id"]) == 64
    for key in ("read", "preread", "pids_stats", "blkio_stats", "num_procs", "storage_stats",
                "cpu_stats", "precpu_stats", "memory_stats"):
        assert key in doc, key
    cpu = doc["cpu_stats"]
    assert cpu["cpu_usage"]["total_usage"] > doc["precpu_stats"]["cpu_usage"]["total_usage"] > 0
    assert cpu["system_cpu_usage"] > doc["precpu_stats"]["system_cpu_usage"]
    assert cpu["online_cpus"] >= 1 and "throttling_data" in cpu
    assert {"usage_in_kernelmode", "usage_in_usermode"} <= set(cpu["cpu_usage"])
    mem = doc["memory_stats"]
    assert 0 < mem["usage"] <= mem["limit"] == 64 << 20
    assert isinstance(mem["stats"], dict)
    assert doc["pids_stats"]["current"] >= 1
    assert not doc["preread"].startswith("0001-")


def test_one_shot_has_no_previous_reading(engine, running) -> None:
    doc = engine.sdk.api.stats(running, stream=False, one_shot=True)
    assert doc["preread"] == "0001-01-01T00:00:00Z"
    assert doc["cpu_stats"]["cpu_usage"]["total_usage"] > 0


def test_stream_sends_a_document_a_second(engine, running) -> None:
    stream = engine.sdk.api.stats(running, stream=True, decode=True)
    first, second = next(stream), next(stream)
    assert first["preread"] == "0001-01-01T00:00:00Z"
    assert second["preread"] == first["read"]
    assert second["precpu_stats"]["cpu_usage"]["total_usage"] == \
        first["cpu_stats"]["cpu_usage"]["total_usage"]


def test_docker_stats_no_stream_prints_numbers(engine, running) -> None:
    out = engine.docker("stats", "--no-stream", "--format", "{{json .}}", running).stdout
    row = json.loads(out)
    assert row["Name"] == running
    assert float(row["CPUPerc"].rstrip("%")) > 10  # a busy loop
    assert row["MemUsage"].endswith("64MiB") and row["PIDs"] == "1"


def test_stopped_container_gives_zeroes(engine) -> None:
    n = unique("stats")
    engine.docker("create", "--name", n, "busybox", "true")
    try:
        doc = engine.sdk.api.stats(n, stream=False)
        assert doc["read"] == "0001-01-01T00:00:00Z" and doc["memory_stats"] == {}
        out = engine.docker("stats", "--no-stream", "--format", "{{.CPUPerc}} {{.MemUsage}}",
                            n).stdout.decode()
        assert out.split()[0] == "0.00%"
    finally:
        engine.docker("rm", "-f", n, check=False)


def test_stream_ends_when_the_container_is_removed(engine) -> None:
    n = unique("stats")
    engine.docker("run", "-d", "--name", n, "busybox", "sleep", "60")
    stream = engine.sdk.api.stats(n, stream=True, decode=True)
    assert next(stream)["name"] == f"/{n}"
    engine.docker("rm", "-f", n)
    rest = list(stream)  # what was read before the removal, then the end
    assert len(rest) <= 2
