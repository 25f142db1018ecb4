"""`dockyard build` without a daemon: the classic stream shown as BuildKit shows it, the flags,
the context tar (.dockerignore, a Dockerfile from elsewhere, secrets) and the command end to
end against a scripted socket."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import tarfile
import threading

import pytest

from dockyard.cli import build as b
from dockyard.cli import buildcontext as c
from dockyard.cli.buildprogress import (
    PlainDisplay,
    TtyDisplay,
    failure_report,
    render,
)
from dockyard.cli.flags import CommandError, UsageError
from dockyard.cli.main import main

IMAGE = "sha256:" + "ab" * 32


class Clock:
    """Each reading 0.1s after the last."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        self.now += 0.1
        return self.now


def s(text: str) -> dict:
    return {"stream": text}


SUCCESS = [
    s("Step 1/3 : FROM busybox\n"), s(" ---> 1a2b3c4d5e6f\n"),
    s("Step 2/3 : RUN echo hi && echo there\n"), s(" ---> Running in 0123456789ab\n"),
    s("h"), s("i\nthe"), s("re\n"),
    s(" ---> Removed intermediate container 0123456789ab\n"), s(" ---> 2b3c4d5e6f7a\n"),
    s("Step 3/3 : CMD [\"sh\"]\n"), s(" ---> Running in 123456789abc\n"),
    s("Removing intermediate container 123456789abc\n"), s(" ---> 3c4d5e6f7a8b\n"),
    {"aux": {"ID": IMAGE}}, s("Successfully built abababababab\n"),
    s("Successfully tagged web:1\n"),
]


def plain(messages):
    out = io.StringIO()
    result = render(messages, PlainDisplay(out), Clock())
    return out.getvalue(), result


def test_a_successful_build_reads_as_buildkits_plain_progress():
    text, result = plain(SUCCESS)
    assert text == (
        "#1 [1/3] FROM busybox\n#1 DONE 0.1s\n\n"
        "#2 [2/3] RUN echo hi && echo there\n#2 0.100 hi\n#2 0.200 there\n#2 DONE 0.3s\n\n"
        '#3 [3/3] CMD ["sh"]\n#3 DONE 0.1s\n\n'
        "#4 exporting to image\n"
        f"#4 writing image {IMAGE} done\n"
        "#4 naming to docker.io/library/web:1 done\n"
        "#4 DONE 0.1s\n")
    assert result.ok and result.image_id == IMAGE and result.tags == ["web:1"]


def test_cached_steps_say_cached_and_not_done():
    text, _ = plain([
        s("Step 1/2 : FROM busybox\n"), s(" ---> 1a2b3c4d5e6f\n"),
        s("Step 2/2 : RUN make\n"), s(" ---> Using cache\n"), s(" ---> 2b3c4d5e6f7a\n"),
        {"aux": {"ID": IMAGE}}, s("Successfully built abababababab\n")])
    assert "#2 [2/2] RUN make\n#2 CACHED\n\n#3 exporting to image\n" in text
    assert "#2 DONE" not in text and "naming to" not in text


def test_a_failing_run_reports_its_step_its_output_and_its_exit_status():
    message = "The command '/bin/sh -c echo out && exit 3' returned a non-zero code: 3"
    text, result = plain([
        s("Step 1/2 : FROM busybox\n"), s(" ---> 1a2b3c4d5e6f\n"),
        s("Step 2/2 : RUN echo out && exit 3\n"), s(" ---> Running in 0123456789ab\n"),
        s("out\n"), {"errorDetail": {"code": 3, "message": message}, "error": message}])
    assert text.endswith("#2 [2/2] RUN echo out && exit 3\n#2 0.100 out\n"
                         f"#2 ERROR: {message}\n")
    assert not result.ok and result.code == 3 and "exporting" not in text
    assert failure_report(result) == (
        "------\n > [2/2] RUN echo out && exit 3:\n0.100 out\n------\n"
        f"ERROR: failed to solve: {message}\n")


def test_an_error_before_any_step_has_no_log_box_and_exit_status_one():
    _, result = plain([{"errorDetail": {"message": "dockerfile parse error line 1: unknown "
                                        "instruction: FORM"}, "error": "x"}])
    assert result.code == 1
    assert failure_report(result) == ("ERROR: failed to solve: dockerfile parse error line 1: "
                                      "unknown instruction: FORM\n")


def test_a_pull_during_from_shows_its_status_lines_but_not_the_bars():
    text, _ = plain([
        s("Step 1/1 : FROM alpine\n"),
        {"status": "Pulling from library/alpine", "id": "latest"},
        {"status": "Downloading", "progressDetail": {"current": 5, "total": 9}, "id": "abc"},
        {"status": "Pull complete", "progressDetail": {}, "id": "abc"},
        s(" ---> 1a2b3c4d5e6f\n")])
    assert "#1 0.100 latest: Pulling from library/alpine\n#1 0.200 abc: Pull complete\n" in text
    assert "Downloading" not in text


def test_output_without_a_final_newline_is_shown_at_the_end():
    text, _ = plain([s("Step 1/1 : RUN printf x\n"), s(" ---> Running in 0123456789ab\n"),
                     s("x"), {"errorDetail": {"code": 2, "message": "m"}, "error": "m"}])
    assert "#1 0.100 x\n#1 ERROR: m\n" in text


def test_the_builders_own_lines_end_output_that_did_not_end_its_line():
    text, _ = plain([s("Step 1/2 : RUN printf x\n"), s(" ---> Running in 0123456789ab\n"),
                     s("x"), s(" ---> Removed intermediate container 0123456789ab\n"),
                     s(" ---> 1a2b3c4d5e6f\n"), s("Step 2/2 : RUN printf y\n"), s("y"),
                     s("Step 3/3 : CMD x\n")])
    assert "#1 0.100 x\n#1 DONE" in text and "#2 0.100 y\n#2 DONE" in text


def test_the_terminal_view_shows_steps_marks_and_the_running_steps_last_lines():
    out = io.StringIO()
    d = TtyDisplay(out, Clock(), width=40, tick=0)
    from dockyard.cli.buildprogress import ClassicProgress

    p = ClassicProgress(d, Clock())
    for m in [s("Step 1/2 : FROM busybox\n"), s(" ---> Using cache\n"), s(" ---> 1a2b3c4d5e6f\n"),
              s("Step 2/2 : RUN make all && make install && make check\n"), s("compiling\n")]:
        p.feed(m)
    lines = d.lines()
    assert lines[0].startswith("[+] Building ") and lines[0].endswith("(1/2)")
    assert lines[1].startswith(" => CACHED [1/2] FROM busybox") and lines[1].endswith("s")
    assert lines[2].startswith(" => [2/2] RUN make all") and "..." in lines[2]
    assert all(len(line) <= 40 for line in lines)
    assert lines[3] == " => => # compiling"
    p.finish()
    assert "FINISHED" in d.lines(final=True)[0] and "\x1b[" in out.getvalue()


# -- flags -----------------------------------------------------------------------------------

def test_flags_parse_as_dockers():
    opts, args = b.BUILD.parse(["-t", "a:1", "--tag=b", "-f", "x/Dockerfile", "--no-cache",
                                "--build-arg", "A=1", "--build-arg", "B", "--label", "l=v",
                                "-q", "--progress=plain", "-o", "out", ".", "--rm=false"])
    assert args == ["."] and opts.tag == ["a:1", "b"] and opts.file == "x/Dockerfile"
    assert opts.no_cache and opts.quiet and opts.progress == "plain" and not opts.rm
    assert opts.output == ["out"] and opts.network == "default"


def test_build_requires_exactly_one_path():
    with pytest.raises(UsageError) as e:
        b.BUILD.parse([])
    assert "requires 1 argument" in str(e.value)


def test_a_build_arg_without_a_value_comes_from_the_environment_or_is_null():
    assert b.parse_build_args(["A=1", "B", "C", "D="], {"B": "env"}) == {
        "A": "1", "B": "env", "C": None, "D": ""}


def test_labels_without_a_value_are_empty_and_an_empty_name_is_refused():
    assert b.parse_labels(["a=1", "b"]) == {"a": "1", "b": ""}
    with pytest.raises(UsageError) as e:
        b.parse_labels(["=x"])
    assert e.value.status == 125


@pytest.mark.parametrize(("item", "expected"), [
    ("out", b.Output("local", "out")),
    ("-", b.Output("tar", "-")),
    ("type=local,dest=dir", b.Output("local", "dir")),
    ("type=tar,dest=f.tar", b.Output("tar", "f.tar")),
    ("type=tar", b.Output("tar", "-")),
    ("type=image", b.Output("image")),
])
def test_outputs(item, expected):
    assert b.parse_output(item) == expected


@pytest.mark.parametrize("item", ["type=local", "type=oci,dest=x", "dest=x", "type=tar,x"])
def test_bad_outputs_are_usage_errors(item):
    with pytest.raises(UsageError) as e:
        b.parse_output(item)
    assert e.value.status == 125


def test_secrets_from_a_file_or_the_environment(tmp_path):
    f = tmp_path / "tok"
    f.write_text("s3cret")
    assert b.parse_secret(f"id=tok,src={f}", {}) == b.Secret("tok", str(f))
    assert b.parse_secret(f"id=t2,source={f}", {}) == b.Secret("t2", str(f))
    assert b.parse_secret("id=k,env=VAR", {}) == b.Secret("k", "", "VAR")
    assert b.parse_secret("type=env,id=k,src=VAR", {}) == b.Secret("k", "", "VAR")
    assert b.parse_secret("id=TOKEN", {"TOKEN": "x"}) == b.Secret("TOKEN", "", "TOKEN")
    assert b.parse_secret(f"src={f}", {}).id == "tok"
    assert b.Secret("k", "", "VAR").read({"VAR": "v"}) == b"v"


@pytest.mark.parametrize("item", ["id=../x,src=/etc/hostname", "id=a/b,env=X",
                                  "id=x,src=/nonexistent/file", "id=x,what=1", "id"])
def test_bad_secrets_are_usage_errors(item):
    with pytest.raises(UsageError):
        b.parse_secret(item, {"X": "1"})


def test_tags_must_be_lowercase():
    b.check_tags(["web:1", "localhost:5000/a/b:Tag"])
    with pytest.raises(UsageError) as e:
        b.check_tags(["Web:1"])
    assert 'for "-t, --tag" flag' in str(e.value)


def test_the_query_repeats_t_and_carries_json_maps():
    opts, _ = b.BUILD.parse(["-t", "a", "-t", "b:2", "--pull", "--platform", "linux/amd64",
                             "--target", "final", "."])
    q = b.build_query(opts, "Dockerfile", {"A": "1", "B": None}, {"l": "v"})
    assert q.startswith("t=a&t=b%3A2&dockerfile=Dockerfile&buildargs=")
    assert "buildargs=%7B%22A%22%3A%221%22%2C%22B%22%3Anull%7D" in q
    assert "&target=final&pull=1&rm=1&networkmode=default&platform=linux%2Famd64" in q
    assert "nocache" not in q and "&q=" not in q


# -- the context -----------------------------------------------------------------------------

def tar_of(ctx: c.Context) -> dict[str, tarfile.TarInfo | bytes]:
    buf = io.BytesIO()
    c.write_context(ctx, buf)
    buf.seek(0)
    out = {}
    with tarfile.open(fileobj=buf) as t:
        for m in t:
            out[m.name] = t.extractfile(m).read() if m.isreg() else m
            out[m.name + "#info"] = m
    return out


def names(tar: dict) -> list[str]:
    return sorted(k for k in tar if not k.endswith("#info"))


def make_tree(root, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_context_leaves_out_what_dockerignore_excludes_but_keeps_the_build_files(tmp_path):
    make_tree(tmp_path, {"Dockerfile": "FROM x\n", ".dockerignore": "*.log\nDockerfile\n"
                         ".dockerignore\nnode_modules\ndocs\n!docs/README.md\n",
                         "a.log": "", "src/app.py": "", "node_modules/m/i.js": "",
                         "docs/README.md": "r", "docs/other.md": ""})
    ctx = c.local_context(str(tmp_path), None)
    tar = tar_of(ctx)
    assert ctx.dockerfile == "Dockerfile"
    assert names(tar) == [".dockerignore", "Dockerfile", "docs/README.md", "src", "src/app.py"]
    info = tar["src/app.py#info"]
    assert info.uid == 0 and info.gid == 0 and info.uname == ""


def test_a_dockerfile_named_by_f_is_relative_to_the_working_directory(tmp_path, monkeypatch):
    make_tree(tmp_path, {"ctx/sub/Build.df": "FROM x\n", "ctx/f": ""})
    monkeypatch.chdir(tmp_path / "ctx")
    ctx = c.local_context(".", "sub/Build.df")
    assert ctx.dockerfile == "sub/Build.df" and not ctx.extra


def test_a_dockerfile_outside_the_context_travels_under_a_generated_name(tmp_path):
    make_tree(tmp_path, {"elsewhere/Dockerfile": "FROM outside\n", "ctx/f": "",
                         "ctx/.dockerignore": "*.tmp"})
    ctx = c.local_context(str(tmp_path / "ctx"), str(tmp_path / "elsewhere" / "Dockerfile"))
    name = ctx.dockerfile
    assert name.startswith(".dockerfile.") and len(name) == len(".dockerfile.") + 20
    tar = tar_of(ctx)
    assert tar[name] == b"FROM outside\n"
    assert tar[".dockerignore"] == f"*.tmp\n{name}\n".encode()
    assert names(tar) == sorted([".dockerignore", name, "f"])


def test_without_a_dockerignore_the_generated_one_ignores_itself_and_the_dockerfile(tmp_path):
    make_tree(tmp_path, {"Dockerfile.other": "FROM x\n", "ctx/f": ""})
    ctx = c.local_context(str(tmp_path / "ctx"), str(tmp_path / "Dockerfile.other"))
    assert tar_of(ctx)[".dockerignore"] == f".dockerignore\n{ctx.dockerfile}\n".encode()


def test_a_missing_context_or_dockerfile_is_an_error(tmp_path):
    with pytest.raises(CommandError, match=r'path ".*nope" not found'):
        c.local_context(str(tmp_path / "nope"), None)
    with pytest.raises(CommandError, match="Dockerfile path"):
        c.local_context(str(tmp_path), None)


def test_a_lower_case_dockerfile_is_found_when_dockerfile_is_not(tmp_path):
    make_tree(tmp_path, {"dockerfile": "FROM x\n"})
    assert c.local_context(str(tmp_path), None).dockerfile == "dockerfile"


def test_secrets_travel_in_their_own_directory_and_a_contexts_own_never_does(tmp_path):
    make_tree(tmp_path, {"ctx/Dockerfile": "FROM x\n", "ctx/.dockyard-secrets/planted": "no",
                         "tok": "s3cret"})
    ctx = c.local_context(str(tmp_path / "ctx"), None)
    secrets = [b.parse_secret(f"id=tok,src={tmp_path / 'tok'}", {}),
               b.parse_secret("id=env1,env=V", {})]
    c.add_secrets(ctx, {x.id: x.read({"V": "from-env"}) for x in secrets})
    tar = tar_of(ctx)
    assert names(tar) == [".dockyard-secrets", ".dockyard-secrets/env1",
                          ".dockyard-secrets/tok", "Dockerfile"]
    assert tar[".dockyard-secrets/tok"] == b"s3cret"
    assert tar[".dockyard-secrets/tok#info"].mode == 0o400
    assert tar[".dockyard-secrets#info"].mode == 0o700


def test_stdin_holding_a_dockerfile_is_a_context_of_that_dockerfile_alone():
    ctx = c.stdin_context(io.BytesIO(b"FROM busybox\nRUN true\n"), None)
    assert names(tar_of(ctx)) == ["Dockerfile"] and ctx.dockerfile == "Dockerfile"


def test_a_tar_on_stdin_is_sent_as_it_is_or_copied_when_secrets_join_it(tmp_path):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as t:
        for name, data in (("Dockerfile", b"FROM x\n"), (".dockyard-secrets/x", b"planted")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    ctx = c.stdin_context(io.BytesIO(raw.getvalue()), "Dockerfile")
    assert not c.needs_rewrite(ctx) and ctx.stdin_tar.read() == raw.getvalue()
    ctx = c.stdin_context(io.BytesIO(raw.getvalue()), None)
    c.add_secrets(ctx, {"k": b"v"})
    tar = tar_of(ctx)
    assert names(tar) == [".dockyard-secrets", ".dockyard-secrets/k", "Dockerfile"]
    assert tar[".dockyard-secrets/k"] == b"v"


def test_stdin_cannot_carry_both_the_context_and_the_dockerfile():
    with pytest.raises(CommandError, match="can't use stdin for both"):
        c.stdin_context(io.BytesIO(b""), "-")


# -- -o local --------------------------------------------------------------------------------

def rootfs_tar(entries) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for info, data in entries:
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    buf.seek(0)
    return buf


def entry(name, kind=tarfile.REGTYPE, data=None, mode=0o644, link=""):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname = kind, mode, link
    info.size = len(data) if data is not None else 0
    return info, data


def test_a_local_output_fills_read_only_directories_and_skips_devices(tmp_path):
    src = rootfs_tar([entry("ro", tarfile.DIRTYPE, mode=0o555), entry("ro/f", data=b"x"),
                      entry("bin/sh", tarfile.SYMTYPE, link="/bin/busybox"),
                      entry("dev/null", tarfile.CHRTYPE), entry(".dockerenv", data=b"")])
    b.extract_rootfs(src, str(tmp_path / "out"))
    out = tmp_path / "out"
    assert (out / "ro" / "f").read_bytes() == b"x"
    assert (out / "ro").stat().st_mode & 0o777 == 0o555
    assert os.readlink(out / "bin" / "sh") == "/bin/busybox"
    assert not (out / ".dockerenv").exists()
    if os.geteuid() != 0:
        assert not (out / "dev" / "null").exists()
    os.chmod(out / "ro", 0o755)


@pytest.mark.parametrize("bad", [entry("../evil", data=b"x"),
                                 entry("h", tarfile.LNKTYPE, link="../../etc/passwd")])
def test_a_local_output_never_writes_outside_its_directory(tmp_path, bad):
    with pytest.raises(CommandError):
        b.extract_rootfs(rootfs_tar([bad]), str(tmp_path / "out"))
    assert not (tmp_path / "evil").exists()


# -- the command against a scripted daemon -----------------------------------------------------

class ScriptedDaemon:
    """Reads each request whole (a chunked body too) and answers with the next response."""

    def __init__(self, path, answers: list[bytes]) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(str(path))
        self.sock.listen(8)
        self.answers = answers
        self.requests: list[tuple[str, dict, bytes]] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        for answer in self.answers:
            conn, _ = self.sock.accept()
            f = conn.makefile("rb")
            line = f.readline().decode().strip()
            headers = {}
            while (h := f.readline()) not in (b"\r\n", b""):
                k, _, v = h.decode().partition(":")
                headers[k.strip().lower()] = v.strip()
            body = b""
            if headers.get("transfer-encoding") == "chunked":
                while size := int(f.readline().strip(), 16):
                    body += f.read(size)
                    f.readline()
                f.readline()
            elif int(headers.get("content-length", 0)):
                body = f.read(int(headers["content-length"]))
            self.requests.append((line, headers, body))
            conn.sendall(answer)
            conn.close()


def stream_answer(messages: list[dict]) -> bytes:
    body = b"".join(json.dumps(m).encode() + b"\r\n" for m in messages)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(line) + 2, line + b"\r\n")
                      for line in body.split(b"\r\n") if line)
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n")


def json_answer(doc: dict, status: str = "200 OK") -> bytes:
    body = json.dumps(doc).encode()
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_API_VERSION", "1.51")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "cfg"))
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM busybox\n")
    return tmp_path


def run_build(env, answers, *args):
    d = ScriptedDaemon(env / "d.sock", answers)
    status = main(["-H", f"unix://{env}/d.sock", "build", *args])
    d.thread.join(5)
    return status, d.requests


def test_the_command_posts_the_context_and_writes_the_image_id(env, capsys):
    cfg = env / "cfg"
    cfg.mkdir()
    auth = base64.b64encode(b"me:pw").decode()
    (cfg / "config.json").write_text(json.dumps({"auths": {"localhost:5000": {"auth": auth}}}))
    status, reqs = run_build(env, [stream_answer(SUCCESS)], "-t", "web:1", "--iidfile",
                             str(env / "iid"), "--progress=plain", "--build-arg", "A=1",
                             str(env / "ctx"))
    out = capsys.readouterr()
    assert status == 0 and out.out == ""
    assert "#4 naming to docker.io/library/web:1 done" in out.err
    assert (env / "iid").read_text() == IMAGE
    line, headers, body = reqs[0]
    assert line.startswith("POST /v1.51/build?t=web%3A1&dockerfile=Dockerfile&buildargs=")
    assert headers["content-type"] == "application/x-tar"
    registry = json.loads(base64.urlsafe_b64decode(headers["x-registry-config"]))
    assert registry["localhost:5000"]["username"] == "me"
    with tarfile.open(fileobj=io.BytesIO(body)) as t:
        assert t.getnames() == ["Dockerfile"]


def test_quiet_prints_only_the_image_id(env, capsys):
    status, reqs = run_build(env, [stream_answer([{"aux": {"ID": IMAGE}},
                                                  s(IMAGE + "\n")])], "-q", str(env / "ctx"))
    out = capsys.readouterr()
    assert status == 0 and out.out == IMAGE + "\n" and out.err == ""
    assert "&q=1" in reqs[0][0]


def test_a_failed_build_exits_with_the_steps_status(env, capsys):
    message = "The command '/bin/sh -c exit 7' returned a non-zero code: 7"
    status, _ = run_build(env, [stream_answer([
        s("Step 1/1 : RUN exit 7\n"), s(" ---> Running in 0123456789ab\n"),
        {"errorDetail": {"code": 7, "message": message}, "error": message}])],
        "--progress=plain", str(env / "ctx"))
    err = capsys.readouterr().err
    assert status == 7 and err.endswith(f"ERROR: failed to solve: {message}\n")


def test_usage_errors_exit_125(env, capsys):
    assert main(["build", "--progress=fancy", str(env / "ctx")]) == 125
    assert main(["build", "-t", "Bad", str(env / "ctx")]) == 125
    assert main(["build", "--bogus", "."]) == 125


def test_the_aliases_reach_the_same_command(env, capsys):
    for argv in (["builder", "build", "--help"], ["image", "build", "--help"]):
        assert main(argv) == 0
        assert "Usage:  dockyard build [OPTIONS] PATH | -" in capsys.readouterr().out


def test_an_output_directory_gets_the_images_filesystem(env, capsys):
    rootfs = rootfs_tar([entry("etc", tarfile.DIRTYPE, mode=0o755),
                         entry("etc/built", data=b"yes")]).getvalue()
    export = (b"HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\n"
              b"Content-Length: %d\r\n\r\n" % len(rootfs)) + rootfs
    answers = [stream_answer(SUCCESS), json_answer({"Id": "c1"}, "201 Created"), export,
               b"HTTP/1.1 204 No Content\r\n\r\n", json_answer({"Id": IMAGE, "RepoTags": []}),
               json_answer([{"Deleted": IMAGE}])]
    status, reqs = run_build(env, answers,
                             "--progress=quiet", "-o", str(env / "out"), str(env / "ctx"))
    assert status == 0
    assert (env / "out" / "etc" / "built").read_bytes() == b"yes"
    assert [r[0].split(" HTTP")[0] for r in reqs[1:]] == [
        "POST /v1.51/containers/create", "GET /v1.51/containers/c1/export",
        "DELETE /v1.51/containers/c1?force=1&v=1", f"GET /v1.51/images/{IMAGE}/json",
        f"DELETE /v1.51/images/{IMAGE}?noprune=1"]  # nothing names it: not kept
    assert json.loads(reqs[1][2])["Image"] == IMAGE
    assert capsys.readouterr().out == IMAGE + "\n"
