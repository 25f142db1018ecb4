"""`dockyard` cp, diff, export, commit, stats, system df, network and builder commands against a
real dockyardd, each compared with the docker CLI on the same engine."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.conftest import unique
from tests.integration.engine.test_cli import DOCKYARD, dy, needs

pytestmark = pytest.mark.root


def both(engine, *args: str, input: bytes | None = None) -> tuple:
    """(ours, docker's) completed processes; docker's own logrus noise dropped from stderr."""
    ours = dy(engine, *args, input=input)
    theirs = engine.docker(*args, check=False, input=input)
    theirs.stderr = b"".join(line for line in theirs.stderr.splitlines(keepends=True)
                             if b"level=error" not in line)
    return ours, theirs


def alike(engine, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
    ours, theirs = both(engine, *args, input=input)
    assert ours.stdout == theirs.stdout, args
    assert ours.stderr.decode().replace("dockyard", "docker") == theirs.stderr.decode(), args
    assert ours.returncode == theirs.returncode, args
    return ours


@pytest.fixture
def pair(engine):
    """Two running containers with the same files: one for docker, one for dockyard. No
    network: a bridge's multicast would change NetIO between docker's and our stats."""
    names = [unique("cpd"), unique("cpy")]
    for n in names:
        engine.docker("run", "-d", "--network", "none", "--name", n, "busybox", "sleep", "300")
        engine.docker("exec", n, "sh", "-c", "mkdir -p /tmp/d/e && echo a > /tmp/d/a && "
                      "ln -s a /tmp/d/la && ln -s /tmp/d /tmp/ld && echo x > /tmp/x")
    yield names
    engine.docker("rm", "-f", *names, check=False)


def tree(engine, ctr: str) -> str:
    return engine.docker("exec", ctr, "sh", "-c", "cd /tmp && find . | sort | xargs ls -ld | "
                         "awk '{print $1,$3,$4,$5,$9,$10,$11}'").stdout.decode()


def local_tree(root: Path) -> list[tuple]:
    out = []
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        out.append((str(p.relative_to(root)), st.st_mode, st.st_size if p.is_file() else 0,
                    str(p.readlink()) if p.is_symlink() else ""))
    return out


def test_cp_into_a_container_lands_where_dockers_does(engine, pair, tmp_path):
    needs(engine, "HEAD", f"/containers/{pair[0]}/archive?path=/")
    (tmp_path / "f1").write_text("hello\n")
    (tmp_path / "d1" / "sub").mkdir(parents=True)
    (tmp_path / "d1" / "sub" / "z").write_text("z\n")
    (tmp_path / "lnk").symlink_to("f1")
    cases = [("f1", "/tmp/"), ("f1", "/tmp/newf"), ("f1", "/tmp/x"), ("f1", "/tmp/d"),
             ("d1", "/tmp/d"), ("d1", "/tmp/newd"), ("d1/", "/tmp/newd2/"),
             ("d1/.", "/tmp/d"), ("d1/.", "/tmp/dot2"), ("lnk", "/tmp/"),
             ("-L lnk", "/tmp/lnk2"), ("f1", "/tmp/ld"), ("-a f1", "/tmp/af")]
    for src, dst in cases:
        *flags, path = src.split()
        local = f"{tmp_path}/{path}"  # as typed: a trailing / or /. matters
        assert engine.docker("cp", *flags, local, f"{pair[0]}:{dst}", check=False
                             ).returncode == 0, src
        ours = dy(engine, "cp", *flags, local, f"{pair[1]}:{dst}")
        assert ours.returncode == 0, (src, ours.stderr)
        assert ours.stdout == ours.stderr == b""  # no terminal: no progress, no summary
    assert tree(engine, pair[1]) == tree(engine, pair[0])


def test_cp_out_of_a_container_lands_where_dockers_does(engine, pair, tmp_path):
    needs(engine, "HEAD", f"/containers/{pair[0]}/archive?path=/")
    theirs, ours = tmp_path / "docker", tmp_path / "dockyard"
    for root in (theirs, ours):
        (root / "exd").mkdir(parents=True)
        (root / "exf").write_text("q\n")
        (root / "lexd").symlink_to("exd")
    cases = [("/tmp/x", "/"), ("/tmp/x", "/newx"), ("/tmp/x", "/exf"), ("/tmp/x", "/exd"),
             ("/tmp/d", "/exd"), ("/tmp/d", "/nd"), ("/tmp/d/", "/nd2/"),
             ("/tmp/d/.", "/nd3"), ("/tmp/d/.", "/exd"), ("/tmp/ld", "/ldn"),
             ("-L /tmp/ld", "/ldf"), ("-L /tmp/d/la", "/laf"), ("/tmp/d/la", "/lexd"),
             ("/bin", "/bin2")]
    for src, dst in cases:
        *flags, path = src.split()
        assert engine.docker("cp", *flags, f"{pair[0]}:{path}", f"{theirs}{dst}",
                             check=False).returncode == 0, src
        p = dy(engine, "cp", *flags, f"{pair[0]}:{path}", f"{ours}{dst}")
        assert p.returncode == 0, (src, p.stderr)
    assert local_tree(ours) == local_tree(theirs)


def test_cp_fails_with_dockers_words_and_status(engine, pair, tmp_path):
    needs(engine, "HEAD", f"/containers/{pair[0]}/archive?path=/")
    c = pair[0]
    (tmp_path / "f1").write_text("x")
    (tmp_path / "d1").mkdir()
    f1, d1 = str(tmp_path / "f1"), str(tmp_path / "d1")
    for args in [(f"{c}:/nope", str(tmp_path / "out")), (str(tmp_path / "nope"), f"{c}:/tmp"),
                 ("nope:/x", str(tmp_path)), ("a", "b"), (f"{c}:/a", f"{c}:/b"),
                 ("", f"{c}:/x"), (f"{c}:/x", ""), (f1, f"{c}:/tmp/nodir/"),
                 (f1, f"{c}:/nope/x"), (d1, f"{c}:/tmp/x"), (f1, "nope:/tmp"),
                 (f"{c}:/tmp/x", "/nonexist/y"), (f"{c}:/tmp/d", f1),
                 (f"{c}:/tmp/x", str(tmp_path / "nd") + "/"), ("-", f"{c}:/tmp/x"),
                 (f1, f"{c}:/dev/null")]:
        alike(engine, "cp", *args, input=b"")
    alike(engine, "cp")
    alike(engine, "cp", "--nope", "a", "b")


def test_cp_streams_tar_archives_both_ways(engine, pair):
    needs(engine, "HEAD", f"/containers/{pair[0]}/archive?path=/")
    ours = dy(engine, "cp", f"{pair[0]}:/tmp/d", "-")
    theirs = engine.docker("cp", f"{pair[0]}:/tmp/d", "-")
    assert ours.returncode == 0
    with tarfile.open(fileobj=io.BytesIO(ours.stdout)) as a, \
            tarfile.open(fileobj=io.BytesIO(theirs.stdout)) as b:
        assert [(m.name, m.size, m.mode) for m in a] == [(m.name, m.size, m.mode) for m in b]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo("in/new.txt")
        info.size = 3
        t.addfile(info, io.BytesIO(b"new"))
    p = dy(engine, "cp", "-", f"{pair[1]}:/tmp", input=buf.getvalue())
    assert p.returncode == 0, p.stderr
    assert engine.docker("exec", pair[1], "cat", "/tmp/in/new.txt").stdout == b"new"


def test_diff_export_and_commit_match_docker(engine, pair, tmp_path):
    needs(engine, "GET", f"/containers/{pair[0]}/changes")
    c = pair[0]
    engine.docker("exec", c, "sh", "-c", "echo hi > /tmp/new && rm /bin/ls")
    assert alike(engine, "diff", c).stdout.decode().splitlines()[:2] == ["C /bin", "D /bin/ls"]
    alike(engine, "diff", "nope")
    alike(engine, "diff")
    alike(engine, "container", "diff", c)
    alike(engine, "export", "nope")
    alike(engine, "export", "-o", "/nonexist/x.tar", c)
    out = tmp_path / "ours.tar"
    assert dy(engine, "export", "-o", str(out), c).returncode == 0
    assert out.stat().st_mode & 0o777 == 0o600  # docker's atomic writer makes it 0600
    theirs = engine.docker("export", c).stdout
    with tarfile.open(out) as a, tarfile.open(fileobj=io.BytesIO(theirs)) as b:
        assert sorted(a.getnames()) == sorted(b.getnames())
    for args in [("nope",), (c, "BAD:x:y"), (c, "x/Y"), (c, "a@b"), ()]:
        alike(engine, "commit", *args)
    repo = unique("dycommit")
    p = dy(engine, "commit", "-m", "msg", "-a", "me", "-c", "ENV A=1", "-c", 'CMD ["sh"]',
           "--pause=false", c, f"{repo}:2")
    assert p.returncode == 0 and p.stdout.startswith(b"sha256:"), p.stderr
    shown = engine.docker("inspect", f"{repo}:2", "--format",
                          "{{.Id}}|{{.Comment}}|{{.Author}}|{{.Config.Cmd}}|{{.Config.Env}}")
    fields = shown.stdout.decode().strip().split("|")
    assert fields[:4] == [p.stdout.decode().strip(), "msg", "me", "[sh]"]
    assert "A=1" in fields[4]
    engine.docker("rmi", f"{repo}:2")


def test_stats_once_matches_docker(engine, pair):
    needs(engine, "GET", f"/containers/{pair[0]}/stats?stream=0&one-shot=1")
    c = pair[0]
    fmt = "{{.Container}} {{.ID}} {{.Name}} {{.PIDs}} {{.NetIO}}"
    for args in [("--no-stream", "--format", fmt, c),
                 ("--no-stream", "--no-trunc", "--format", fmt, c),
                 ("--no-stream", c, "nope"), ("--no-stream", "--format", fmt),
                 ("container", "stats", "--no-stream", "--format", fmt, c)]:
        if args[0] == "container":
            alike(engine, *args)
        else:
            alike(engine, "stats", *args)
    table = dy(engine, "stats", "--no-stream", c).stdout.decode().splitlines()
    assert table[0] == engine.docker("stats", "--no-stream", c).stdout.decode().splitlines()[0]
    assert table[1].split()[:2] == [engine.docker("inspect", "-f", "{{.Id}}", c)
                                    .stdout.decode()[:12], c]
    json_row = dy(engine, "stats", "--no-stream", "--format", "json", c).stdout
    assert json_row.startswith(b'{"BlockIO":"0B / 0B","CPUPerc":"')


def test_stats_streams_redraws_as_docker_does(engine, pair):
    needs(engine, "GET", f"/containers/{pair[0]}/stats?stream=0&one-shot=1")
    try:
        p = subprocess.run([DOCKYARD, "-H", engine.host, "stats", "--format",
                            "{{.Name}} {{.PIDs}}", pair[0]], capture_output=True, timeout=2.5)
        out = p.stdout
    except subprocess.TimeoutExpired as e:
        out = e.stdout or b""
    blocks = out.split(b"\x1b[J")
    assert len(blocks) >= 3, out
    name = pair[0].encode()
    # docker 28: home, the rows, then each line again with erase-to-end of line
    assert blocks[1] == (b"\x1b[H" + name + b" 1\n\x1b[H" + name + b" 1 \x1b[K\n \x1b[K\n")


def test_container_and_builder_aliases_and_system_tables_match_docker(engine):
    needs(engine, "GET", "/system/df")
    for args in [("system", "df"), ("system", "df", "--format", "json"), ("system", "df", "-v"),
                 ("network", "ls"), ("network", "ls", "--format", "json"),
                 ("network", "inspect", "bridge"), ("network", "rm", "nope"),
                 ("container", "ls", "-a", "--format", "{{.Names}}"),
                 ("image", "ls", "--format", "{{.Repository}}")]:
        alike(engine, *args)
    for args in [("builder", "prune", "-f"), ("builder", "prune", "-af")]:
        ours, theirs = both(engine, *args)
        assert ours.stdout == theirs.stdout and ours.returncode == theirs.returncode == 0
