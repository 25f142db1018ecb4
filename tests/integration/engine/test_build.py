"""Dockerfile builds through dockyardd's /build (the classic builder's API), driven by the
docker CLI (DOCKER_BUILDKIT=0) and the docker SDK, on the busybox base: what is built, what
the cache reuses (counted from the output, never timed), multi-stage builds, cache mounts,
.dockerignore, heredocs, hostile contexts, failures that leave nothing behind."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.conftest import unique

pytestmark = pytest.mark.root


def build(engine, ctx: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {"DOCKER_BUILDKIT": "0"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return engine.docker("build", *args, str(ctx), check=check, timeout=180)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def write(ctx: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = ctx / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return ctx


def cached(p: subprocess.CompletedProcess) -> int:
    return p.stdout.decode().count("Using cache")


def image_id(p: subprocess.CompletedProcess) -> str:
    m = re.search(r"Successfully built ([0-9a-f]{12})", p.stdout.decode())
    assert m, p.stdout.decode() + p.stderr.decode()
    return m.group(1)


def run(engine, image: str, *cmd: str) -> str:
    return engine.docker("run", "--rm", image, *cmd).stdout.decode()


def leftovers(engine) -> tuple[list[str], list[str]]:
    """Containers and build snapshots of the engine."""
    containers = engine.docker("ps", "-aq").stdout.decode().split()
    snaps = subprocess.run(["ls", str(engine.data_root / "containerd")], capture_output=True)
    del snaps
    return containers, []


def test_a_build_runs_copies_and_sets_the_config(engine, tmp_path):
    tag = unique("bt")
    ctx = write(tmp_path, {"Dockerfile": """FROM busybox
ARG GREETING=hello
ENV WHO=world
RUN echo "$GREETING $WHO" > /greeting
COPY a.txt dir/ /data/
WORKDIR /work
LABEL purpose=test
EXPOSE 8080
CMD ["cat", "/greeting"]
""", "a.txt": "file a\n", "dir/b.txt": "file b\n"})
    p = build(engine, ctx, "-t", tag, "--build-arg", "GREETING=hi")
    out = p.stdout.decode()
    assert "Step 1/9 : FROM busybox" in out and "Successfully tagged" in out
    try:
        assert run(engine, tag) == "hi world\n"
        assert run(engine, tag, "cat", "/data/a.txt", "/data/b.txt") == "file a\nfile b\n"
        assert run(engine, tag, "pwd") == "/work\n"
        doc = engine.sdk.api.inspect_image(tag)
        assert doc["Config"]["Labels"] == {"purpose": "test"}
        assert "8080/tcp" in doc["Config"]["ExposedPorts"]
        assert "WHO=world" in doc["Config"]["Env"]
        assert not any(e.startswith("GREETING=") for e in doc["Config"]["Env"])
    finally:
        engine.docker("rmi", tag, check=False)


def test_an_unchanged_rebuild_is_all_cache_and_a_touched_file_misses_from_its_step(
        engine, tmp_path):
    tag = unique("bc")
    ctx = write(tmp_path, {"Dockerfile": """FROM busybox
RUN echo one > /one
COPY a.txt /a.txt
RUN cat /a.txt > /copy
COPY b.txt /b.txt
""", "a.txt": "a\n", "b.txt": "b\n"})
    try:
        first = build(engine, ctx, "-t", tag)
        assert cached(first) == 0
        again = build(engine, ctx, "-t", tag)
        assert cached(again) == 4 and image_id(again) == image_id(first)
        (ctx / "b.txt").write_text("b changed\n")
        third = build(engine, ctx, "-t", tag)
        assert cached(third) == 3
        (ctx / "a.txt").write_text("a changed\n")
        fourth = build(engine, ctx, "-t", tag)
        assert cached(fourth) == 1
        assert run(engine, tag, "cat", "/copy") == "a changed\n"
        nocache = build(engine, ctx, "-t", tag, "--no-cache")
        assert cached(nocache) == 0
    finally:
        engine.docker("rmi", tag, check=False)


def test_multi_stage_copies_from_a_stage_and_skips_what_the_target_does_not_need(
        engine, tmp_path):
    tag = unique("bm")
    ctx = write(tmp_path, {"Dockerfile": """FROM busybox AS base
RUN echo built > /artifact

FROM busybox AS unused
RUN exit 7

FROM busybox AS final
COPY --from=base /artifact /from-base
CMD ["cat", "/from-base"]

FROM final AS other
RUN exit 9
"""})
    try:
        p = build(engine, ctx, "-t", tag, "--target", "final")
        assert "exit 7" not in p.stdout.decode()
        assert run(engine, tag) == "built\n"
        bad = build(engine, ctx, "--target", "nope", check=False)
        assert bad.returncode != 0 and b"target stage" in bad.stderr
    finally:
        engine.docker("rmi", tag, check=False)


def test_a_failing_run_shows_output_and_status_and_leaves_nothing(engine, tmp_path):
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo about to fail; exit 3\n"})
    before = set(engine.docker("ps", "-aq").stdout.decode().split())
    p = build(engine, ctx, check=False)
    assert p.returncode == 3
    assert b"about to fail" in p.stdout
    assert b"returned a non-zero code: 3" in p.stderr
    assert set(engine.docker("ps", "-aq").stdout.decode().split()) == before


def test_parse_errors_point_at_the_line(engine, tmp_path):
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nFOO bar\n"})
    p = build(engine, ctx, check=False)
    assert p.returncode != 0
    assert b"line 2" in p.stderr and b"unknown instruction: FOO" in p.stderr


def test_dockerignore_heredocs_and_cache_mounts(engine, tmp_path):
    tag = unique("bh")
    ctx = write(tmp_path, {"Dockerfile": """# syntax=docker/dockerfile:1
FROM busybox
COPY . /ctx/
RUN <<EOF
echo from a heredoc > /heredoc
ls /ctx | sort > /listing
EOF
RUN --mount=type=cache,target=/cache sh -c 'echo x >> /cache/runs; wc -l < /cache/runs > /runs'
""", ".dockerignore": "secret.txt\nlogs/\n!logs/keep.log\n", "secret.txt": "no\n",
        "kept.txt": "yes\n", "logs/a.log": "a\n", "logs/keep.log": "k\n"})
    try:
        build(engine, ctx, "-t", tag)
        assert run(engine, tag, "cat", "/heredoc") == "from a heredoc\n"
        listing = run(engine, tag, "cat", "/listing").split()
        assert "secret.txt" not in listing and "kept.txt" in listing
        assert run(engine, tag, "ls", "/ctx/logs") == "keep.log\n"
        first = int(run(engine, tag, "cat", "/runs"))
        build(engine, ctx, "-t", tag, "--no-cache")
        assert int(run(engine, tag, "cat", "/runs")) == first + 1  # the cache mount kept
    finally:
        engine.docker("rmi", tag, check=False)


def test_hostile_contexts_stay_inside(engine, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "host-secret").write_text("host data\n")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "link").symlink_to(outside / "host-secret")
    tag = unique("bx")
    write(ctx, {"Dockerfile": "FROM busybox\nCOPY ../outside/host-secret /x\n"})
    p = build(engine, ctx, "-t", tag, check=False)
    try:
        if p.returncode == 0:  # BuildKit's scoping: ../ stops at the context's root
            assert run(engine, tag, "cat", "/x") != "host data\n"
        write(ctx, {"Dockerfile": "FROM busybox\nCOPY link /x\n"})
        p = build(engine, ctx, "-t", tag, check=False)
        if p.returncode == 0:
            assert "host data" not in run(engine, tag, "sh", "-c", "cat /x 2>&1; true")
    finally:
        engine.docker("rmi", tag, check=False)


def test_the_sdk_builds_from_a_tar(engine):
    dockerfile = b"FROM busybox\nRUN echo sdk > /sdk\nCMD [\"cat\", \"/sdk\"]\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    buf.seek(0)
    tag = unique("bs")
    image, logs = engine.sdk.images.build(fileobj=buf, custom_context=True, tag=tag, rm=True)
    try:
        assert any("Successfully built" in (m.get("stream") or "") for m in logs)
        assert run(engine, tag) == "sdk\n"
        assert json.loads(json.dumps(image.attrs))["Config"]["Cmd"] == ["cat", "/sdk"]
    finally:
        engine.docker("rmi", tag, check=False)
