"""Dockerfile builds through dockyardd's /build (the classic builder's API), driven by the
docker CLI (DOCKER_BUILDKIT=0) and the docker SDK, on the busybox base: what is built, what
the cache reuses (counted from the output, never timed), multi-stage builds, cache mounts,
.dockerignore, heredocs, hostile contexts, failures that leave nothing behind."""

from __future__ import annotations

import contextlib
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


@pytest.fixture(autouse=True, scope="module")
def _classic_builder():
    """The docker CLI talks the classic builder's API (ours) only with BuildKit off; set for
    the module, so that builds on several threads see it too."""
    old = os.environ.get("DOCKER_BUILDKIT")
    os.environ["DOCKER_BUILDKIT"] = "0"
    yield
    if old is None:
        os.environ.pop("DOCKER_BUILDKIT", None)
    else:
        os.environ["DOCKER_BUILDKIT"] = old


def build(engine, ctx: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return engine.docker("build", *args, str(ctx), check=check, timeout=180)


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


def snapshots(engine) -> set[str]:
    """The keys of the supervisor's snapshots in the engine's namespace."""
    import grpc

    from dockyard.api.services.snapshots.v1 import snapshots_pb2, snapshots_pb2_grpc

    with grpc.insecure_channel(f"unix://{engine.supervisor_address}") as ch:
        stub = snapshots_pb2_grpc.SnapshotsStub(ch)
        return {info.name for r in stub.List(snapshots_pb2.ListSnapshotsRequest(
            snapshotter="overlayfs"), metadata=(("containerd-namespace", "moby"),),
            timeout=30) for info in r.info}


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
    snaps = snapshots(engine)
    p = build(engine, ctx, check=False)
    assert p.returncode == 3
    assert b"about to fail" in p.stdout
    assert b"returned a non-zero code: 3" in p.stderr
    assert set(engine.docker("ps", "-aq").stdout.decode().split()) == before
    assert snapshots(engine) == snaps  # no container's, no step's


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
    # `../` stops at the context's root and a symlink is followed inside it, as the classic
    # builder scopes them: both name nothing there, and the host's file is never read
    for source in ("../outside/host-secret", "link"):
        write(ctx, {"Dockerfile": f"FROM busybox\nCOPY {source} /x\n"})
        p = build(engine, ctx, "-t", tag, check=False)
        assert p.returncode != 0, p.stdout
        assert b"file not found in build context" in p.stderr
        assert b"host data" not in p.stdout + p.stderr


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


def test_add_unpacks_local_archives_and_fetches_urls_served_on_loopback(engine, tmp_path):
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    (served / "remote.txt").write_text("from the url\n")
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    with tarfile.open(ctx / "bundle.tar.gz", "w:gz") as tar:
        data = b"inside the archive\n"
        info = tarfile.TarInfo("pkg/file.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    port = server.server_address[1]
    write(ctx, {"Dockerfile": f"""FROM busybox
ADD bundle.tar.gz /opt/
ADD http://127.0.0.1:{port}/remote.txt /downloads/
COPY --chown=1:2 --chmod=640 owned.txt /owned.txt
"""})
    (ctx / "owned.txt").write_text("owned\n")
    tag = unique("ba")
    try:
        # the step's container has its own network: the host's loopback is not its, so the
        # URL is fetched by the builder, as dockerd's classic builder fetches it
        build(engine, ctx, "-t", tag)
        assert run(engine, tag, "cat", "/opt/pkg/file.txt") == "inside the archive\n"
        assert run(engine, tag, "cat", "/downloads/remote.txt") == "from the url\n"
        assert run(engine, tag, "stat", "-c", "%u:%g %a", "/owned.txt") == "1:2 640\n"
    finally:
        server.shutdown()
        engine.docker("rmi", tag, check=False)


def test_onbuild_triggers_build_args_and_labels(engine, tmp_path):
    base, child = unique("bo"), unique("bp")
    (tmp_path / "base").mkdir()
    (tmp_path / "child").mkdir()
    write(tmp_path / "base", {"Dockerfile": "FROM busybox\nONBUILD RUN echo triggered > /t\n"})
    write(tmp_path / "child", {"Dockerfile": f"""ARG WHICH={base}
FROM $WHICH
ARG WHICH
ARG LATE=default
RUN echo "$WHICH $LATE" > /args
"""})
    try:
        build(engine, tmp_path / "base", "-t", base)
        p = build(engine, tmp_path / "child", "-t", child, "--build-arg", "LATE=given",
                  "--build-arg", "NEVER=declared", "--label", "built.by=test")
        assert run(engine, child, "cat", "/t") == "triggered\n"
        assert run(engine, child, "cat", "/args") == f"{base} given\n"
        assert b"[Warning] One or more build-args [NEVER] were not consumed" in \
            p.stdout + p.stderr
        doc = engine.sdk.api.inspect_image(child)
        assert doc["Config"]["Labels"] == {"built.by": "test"}
        assert not doc["Config"].get("OnBuild")  # triggers run once, then are gone
    finally:
        engine.docker("rmi", child, base, check=False)


def test_intermediate_images_are_hidden_and_the_cache_can_be_pruned(engine, tmp_path):
    tag = unique("bi")
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo a > /a\nRUN echo b > /b\n"})
    try:
        build(engine, ctx, "-t", tag)
        listed = engine.docker("images", "-q").stdout.decode().split()
        everything = engine.docker("images", "-aq").stdout.decode().split()
        assert len(everything) > len(listed)  # the RUN's intermediate image, with -a only
        assert build(engine, ctx, "-t", tag).stdout.count(b"Using cache") == 2
        pruned = engine.docker("builder", "prune", "-af").stdout.decode()
        assert "Total reclaimed space" in pruned
        assert build(engine, ctx, "-t", tag).stdout.count(b"Using cache") == 0
    finally:
        engine.docker("rmi", tag, check=False)


def test_independent_stages_both_feed_the_final_one(engine, tmp_path):
    tag = unique("bq")
    ctx = write(tmp_path, {"Dockerfile": """FROM busybox AS left
RUN echo left > /out
FROM busybox AS right
RUN echo right > /out
FROM busybox
COPY --from=left /out /left
COPY --from=right /out /right
COPY --from=0 /out /first
"""})
    try:
        out = build(engine, ctx, "-t", tag).stdout.decode()
        assert run(engine, tag, "cat", "/left", "/right", "/first") == "left\nright\nleft\n"
        # run side by side, shown one stage after the other, as the classic builder shows them
        steps = [int(n) for n in re.findall(r"^Step (\d+)/8 :", out, re.M)]
        assert steps == list(range(1, 9)), out
        lines = out.splitlines()
        running = [i for i, line in enumerate(lines) if "Running in" in line]
        assert lines.index("Step 2/8 : RUN echo left > /out") < running[0] < \
            lines.index("Step 3/8 : FROM busybox AS right") < \
            lines.index("Step 4/8 : RUN echo right > /out") < running[1]
    finally:
        engine.docker("rmi", tag, check=False)


def test_the_dockyard_cli_builds_with_a_secret_that_no_layer_keeps(engine, tmp_path):
    from tests.integration.engine.test_cli import dy

    secret = tmp_path / "token"
    secret.write_text("s3kr1t-value")
    ctx = write(tmp_path / "ctx", {"Dockerfile": """FROM busybox
RUN --mount=type=secret,id=tok wc -c < /run/secrets/tok > /length
RUN ls /run/secrets 2>/dev/null | wc -l > /left
""", ".dockerignore": "*\n!Dockerfile\n"})
    tag = unique("bk")
    iid = tmp_path / "iid"
    try:
        p = dy(engine, "build", "--progress", "plain", "-t", tag, "--iidfile", str(iid),
               "--secret", f"id=tok,src={secret}", str(ctx))
        assert p.returncode == 0, p.stderr.decode()
        assert iid.read_text().startswith("sha256:")
        assert run(engine, tag, "cat", "/length").strip() == "12"
        assert run(engine, tag, "cat", "/left").strip() == "0"
        saved = engine.docker("save", tag).stdout
        assert b"s3kr1t-value" not in saved
        with tarfile.open(fileobj=io.BytesIO(saved)) as outer:
            for member in outer.getmembers():
                if member.isfile():
                    data = outer.extractfile(member).read()
                    with contextlib.suppress(tarfile.TarError), \
                            tarfile.open(fileobj=io.BytesIO(data)) as layer:
                        for f in layer.getmembers():
                            assert "tok" not in f.name.split("/")[-1:], f.name
                            if f.isfile():
                                assert b"s3kr1t-value" not in layer.extractfile(f).read()
    finally:
        engine.docker("rmi", tag, check=False)


def test_a_context_tar_that_climbs_out_is_refused(engine, tmp_path):
    import docker.errors

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("Dockerfile", b"FROM busybox\n"), ("../../escaped", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    with pytest.raises(docker.errors.BuildError) as e:
        engine.sdk.images.build(fileobj=buf, custom_context=True, tag=unique("bz"))
    assert "invalid build context" in str(e.value)
    assert not list((engine.data_root / "tmp").glob("**/escaped"))
    assert not (engine.data_root / "escaped").exists()


def test_run_mounts_network_shell_and_outputs(engine, tmp_path):
    from tests.integration.engine.test_cli import dy

    tags = [unique("bn"), unique("bn")]
    ctx = write(tmp_path / "ctx", {"Dockerfile": """FROM busybox AS tools
RUN echo from the tools stage > /tool.txt
FROM busybox
SHELL ["/bin/sh", "-ec"]
RUN --mount=type=bind,source=input.txt,target=/in cat /in > /bound
RUN --mount=type=bind,from=tools,source=/tool.txt,target=/t cat /t > /from-stage
RUN --mount=type=tmpfs,target=/scratch touch /scratch/x && ls /scratch > /tmpfs
RUN --network=none ip -o link | wc -l > /links
""", "input.txt": "from the context\n"})
    try:
        build(engine, ctx, *[a for t in tags for a in ("-t", t)])
        assert run(engine, tags[1], "cat", "/bound", "/from-stage", "/tmpfs", "/links") == (
            "from the context\nfrom the tools stage\nx\n1\n")
        for path in ("/in", "/t", "/scratch"):  # mount points leave no trace
            assert run(engine, tags[0], "sh", "-c", f"test -e {path} || echo gone") == "gone\n"
        assert engine.sdk.api.inspect_image(tags[0])["Config"]["Shell"] == ["/bin/sh", "-ec"]
        out = tmp_path / "out"
        p = dy(engine, "build", "-q", "-o", f"type=local,dest={out}", str(ctx))
        assert p.returncode == 0, p.stderr.decode()
        assert (out / "bound").read_text() == "from the context\n"
        tar = tmp_path / "fs.tar"
        assert dy(engine, "build", "-q", "-o", f"type=tar,dest={tar}", str(ctx)).returncode == 0
        with tarfile.open(tar) as t:
            assert "from-stage" in t.getnames()
        assert engine.sdk.api.inspect_image(tags[0])["RepoTags"]  # a named result stays
        ctx2 = write(tmp_path / "ctx2", {"Dockerfile": "FROM busybox\nRUN echo o > /o\n"})
        before = set(engine.docker("images", "-q", "--no-trunc").stdout.decode().split())
        p = dy(engine, "build", "-q", "-o", f"type=local,dest={tmp_path / 'out2'}", str(ctx2))
        assert p.returncode == 0 and (tmp_path / "out2" / "o").read_text() == "o\n"
        after = set(engine.docker("images", "-q", "--no-trunc").stdout.decode().split())
        assert after == before  # exported, not kept: no dangling image (as BuildKit)
    finally:
        engine.docker("rmi", *tags, check=False)


def test_a_bad_tag_is_refused_before_anything_is_built(engine, tmp_path):
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo never > /x\n"})
    r = engine.sdk.api.post(engine.sdk.api._url("/build"), params={"t": "Bad:Tag:x"},
                            data=b"", headers={"Content-Type": "application/x-tar"})
    assert r.status_code == 400 and "invalid reference format" in r.json()["message"]
    del ctx


def test_concurrent_builds_share_the_cache_safely(engine, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    tags = [unique("bw") for _ in range(3)]
    dirs = []
    for i, tag in enumerate(tags):
        dirs.append(write(tmp_path / tag, {"Dockerfile": f"""FROM busybox AS one
RUN echo one {i % 2} > /one
FROM busybox AS two
RUN echo two {i % 2} > /two
FROM busybox
COPY --from=one /one /one
COPY --from=two /two /two
"""}))
    try:
        with ThreadPoolExecutor(3) as pool:
            done = list(pool.map(lambda a: build(engine, a[0], "-t", a[1]), zip(dirs, tags,
                                                                                strict=True)))
        assert all(p.returncode == 0 for p in done)
        for i, tag in enumerate(tags):
            assert run(engine, tag, "cat", "/one", "/two") == f"one {i % 2}\ntwo {i % 2}\n"
    finally:
        engine.docker("rmi", *tags, check=False)


def test_a_client_gone_mid_upload_leaves_nothing_and_the_next_build_works(engine, tmp_path):
    import socket
    import time

    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name, body in (("Dockerfile", b"FROM busybox\nCOPY big /big\n"),
                           ("big", os.urandom(3 << 20))):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    part = data.getvalue()[:1 << 20]  # the upload stops a third into "big"
    before = {p.name for p in (engine.data_root / "tmp").iterdir()} \
        if (engine.data_root / "tmp").exists() else set()
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(engine.sock))
        s.sendall(b"POST /v1.41/build?t=gone HTTP/1.1\r\nHost: docker\r\n"
                  b"Content-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\n\r\n" +
                  f"{len(part):x}\r\n".encode() + part + b"\r\n")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the daemon notices, unpacks no further, cleans up
        left = {p.name for p in (engine.data_root / "tmp").iterdir()} - before
        if not left:
            break
        time.sleep(0.1)
    assert not left, left
    ctx = write(tmp_path / "ctx", {"Dockerfile": "FROM busybox\nCMD [\"true\"]\n"})
    assert "Successfully built" in build(engine, ctx).stdout.decode()
    log = engine.log.read_text()
    assert "Traceback" not in log, log[-3000:]
