"""Typed instructions from real Dockerfile snippets: forms, flags, heredocs, mounts, and
BuildKit's messages for what it rejects."""

from __future__ import annotations

import pytest

from dockyard.build import instructions as ins
from dockyard.build.dockerfile import parse
from dockyard.build.instructions import DockerfileError
from dockyard.build.mounts import Mount, MountError, parse_mount, ram_in_bytes


def one(body: str) -> ins.Instruction:
    """The single instruction after ``FROM scratch``."""
    (inst,) = parse("FROM scratch\n" + body).stages[0].instructions
    return inst


def error(body: str) -> DockerfileError:
    with pytest.raises(DockerfileError) as e:
        parse("FROM scratch\n" + body)
    return e.value


def test_from_keeps_base_as_written_and_lowercases_the_name():
    df = parse("FROM --platform=$BUILDPLATFORM golang:1.22 AS Builder\n")
    f = df.stages[0].from_
    assert (f.image, f.name, f.platform, f.line) == ("golang:1.22", "builder",
                                                    "$BUILDPLATFORM", 1)


def test_run_shell_and_exec_forms():
    shell = one("RUN apt-get update && \\\n    apt-get install -y curl\n")
    assert isinstance(shell, ins.Run)
    assert shell.command == ("apt-get update &&     apt-get install -y curl",)
    assert (shell.json, shell.line, shell.end_line) == (False, 2, 3)
    exec_form = one('RUN ["/bin/echo", "hi there"]\n')
    assert exec_form.command == ("/bin/echo", "hi there") and exec_form.json


def test_run_heredoc_keeps_chomp_and_expand():
    run = one("RUN <<-'EOT' bash\n\techo $HOME\n\tEOT\n")
    assert run.command == ("<<-'EOT' bash",)
    (doc,) = run.heredocs
    assert (doc.name, doc.chomp, doc.expand, doc.data) == ("EOT", True, False, "\techo $HOME\n")
    assert doc.content == "echo $HOME\n"


def test_run_heredoc_with_file_descriptor():
    run = one("RUN 3<<EOF cat /dev/fd/3\nhello\nEOF\n")
    assert run.heredocs == (ins.Heredoc(name="EOF", data="hello\n", fd=3),)


def test_run_mounts_with_buildkit_defaults():
    run = one("RUN --mount=type=cache,target=/root/.cache,sharing=locked,mode=0700 "
              "--mount=type=secret,id=tok,required "
              "--mount=type=bind,from=build,source=/out,target=/in,rw --network=none make\n")
    cache, secret, bind = run.mounts
    assert cache == Mount(type="cache", target="/root/.cache", sharing="locked", mode=0o700,
                          readonly=False)
    assert cache.cache_id() == "/root/.cache"
    assert secret.required and secret.readonly
    assert (secret.secret_id(), secret.secret_target()) == ("tok", "/run/secrets/tok")
    assert (bind.from_, bind.source, bind.target, bind.readonly) == ("build", "/out", "/in",
                                                                     False)
    assert run.network == "none"


def test_mount_with_variables_waits_for_expansion():
    run = one("RUN --mount=type=cache,target=$DIR,from=base true\n")
    assert run.mounts == (Mount(from_="base"),)
    assert run.mount_specs == ("type=cache,target=$DIR,from=base",)


@pytest.mark.parametrize(("spec", "message"), [
    ("type=nfs", 'unsupported mount type "nfs"'),
    ("type=secret", "invalid secret mount. one of source, target required"),
    ("type=bind,uid=1", 'uid not allowed for "bind" type mounts'),
    ("type=bind,sharing=locked", "invalid cache sharing set for bind mount"),
    ("type=cache,sharing=maybe", 'unsupported sharing value "maybe"'),
    ("type=cache,required", "unexpected key 'required' for mount type 'cache'"),
    ("type=cache,size=1m", "unexpected key 'size' for mount type 'cache'"),
    ("target=/x,bogus=1", "unexpected key 'bogus' in 'bogus=1'"),
    ("target", "invalid field 'target' must be a key=value pair"),
    ("type=cache,mode=999", "invalid value 999 for mode"),
    ("type=cache,ro=maybe", "invalid value for ro: maybe"),
    ("from=$STAGE", "'from' doesn't support variable expansion, define alias stage instead"),
])
def test_bad_mounts_get_buildkit_messages(spec, message):
    with pytest.raises(MountError, match="^" + message.replace("(", r"\(").replace(")", r"\)")
                       .replace("$", r"\$") + "$"):
        parse_mount(spec)


def test_tmpfs_size_uses_binary_units():
    assert parse_mount("type=tmpfs,target=/t,size=64m").size == 64 * 1024 * 1024
    assert ram_in_bytes("1.5GiB") == 1536 * 1024 * 1024


@pytest.mark.parametrize(("body", "kind", "command"), [
    ("CMD echo hi\n", ins.Cmd, ("echo hi",)),
    ('CMD ["nginx", "-g", "daemon off;"]\n', ins.Cmd, ("nginx", "-g", "daemon off;")),
    ("ENTRYPOINT []\n", ins.Entrypoint, ()),
    ('CMD ["a", bad\n', ins.Cmd, ('["a", bad',)),
])
def test_cmd_and_entrypoint_forms(body, kind, command):
    inst = one(body)
    assert isinstance(inst, kind) and inst.command == command


def test_env_and_label_pairs_keep_quotes_for_expansion():
    env = one('ENV A=1 B="two words" C=\'$X\'\n')
    assert [(p.key, p.value, p.legacy) for p in env.pairs] == [
        ("A", "1", False), ("B", '"two words"', False), ("C", "'$X'", False)]
    legacy = one("ENV PATH /usr/local/bin:$PATH\n")
    assert legacy.pairs == (ins.KeyValue(key="PATH", value="/usr/local/bin:$PATH",
                                         legacy=True),)
    label = one('LABEL org.opencontainers.image.title="My App" version=1\n')
    assert [p.key for p in label.pairs] == ["org.opencontainers.image.title", "version"]


def test_arg_several_per_line():
    arg = one("ARG A B=2 C=\n")
    assert arg.args == (ins.ArgDef(name="A"), ins.ArgDef(name="B", default="2"),
                        ins.ArgDef(name="C", default=""))


def test_expose_volume_user_workdir_stopsignal_maintainer():
    df = parse("FROM scratch\nEXPOSE 8080 53/udp\nVOLUME /data /logs\nVOLUME [\"/a b\"]\n"
               "USER app:app\nWORKDIR /srv/my app\nSTOPSIGNAL SIGQUIT\nMAINTAINER me\n")
    expose, vol, vol_json, user, wd, sig, maint = df.stages[0].instructions
    assert expose.ports == ("53/udp", "8080")
    assert (vol.paths, vol.json, vol_json.paths, vol_json.json) == (
        ("/data", "/logs"), False, ("/a b",), True)
    assert (user.user, wd.path, sig.signal, maint.maintainer) == (
        "app:app", "/srv/my app", "SIGQUIT", "me")


def test_healthcheck_durations_as_docker_parses_them():
    hc = one("HEALTHCHECK --interval=1m30s --timeout=500ms --start-period=1.5s "
             "--start-interval=2s --retries=3 CMD curl -f http://localhost/\n")
    assert hc.test == ("CMD-SHELL", "curl -f http://localhost/")
    assert (hc.interval, hc.timeout, hc.start_period, hc.start_interval, hc.retries) == (
        90_000_000_000, 500_000_000, 1_500_000_000, 2_000_000_000, 3)
    assert one('HEALTHCHECK CMD ["/check", "-q"]\n').test == ("CMD", "/check", "-q")
    assert one("HEALTHCHECK NONE\n").test == ("NONE",)
    assert one("HEALTHCHECK --interval=0s CMD true\n").interval == 0


def test_onbuild_parses_its_trigger():
    ob = one("ONBUILD RUN --mount=type=cache,target=/c make\n")
    assert ob.expression == "RUN --mount=type=cache,target=/c make"
    assert isinstance(ob.trigger, ins.Run) and ob.trigger.line == 2
    assert ob.trigger.mounts[0].type == "cache"
    heredoc = one("ONBUILD COPY <<EOF /motd\nwelcome\nEOF\n")
    assert heredoc.expression == "COPY <<EOF /motd\nwelcome\nEOF"
    assert heredoc.trigger.inline[0].data == "welcome\n"


def test_copy_flags_and_heredoc_sources():
    cp = one("COPY --from=build --chown=1000:1000 --chmod=0755 --link --parents "
             "--exclude=*.md --exclude=tests/ src/ lib/ /app/\n")
    assert (cp.sources, cp.dest, cp.from_, cp.chown, cp.chmod) == (
        ("src/", "lib/"), "/app/", "build", "1000:1000", "0755")
    assert cp.link and cp.parents and cp.excludes == ("*.md", "tests/")
    inline = one('COPY <<EOF <<"RAW" /etc/\nhello $USER\nEOF\n$HOME\nRAW\n')
    assert inline.sources == ()
    assert [(h.name, h.data, h.expand) for h in inline.inline] == [
        ("EOF", "hello $USER\n", True), ("RAW", "$HOME\n", False)]


def test_add_flags():
    add = one("ADD --checksum=sha256:abc --keep-git-dir --unpack=false "
              "https://example.com/a.tar.gz /opt/\n")
    assert (add.checksum, add.keep_git_dir, add.unpack) == ("sha256:abc", True, False)
    assert one("ADD a.tar /\n").unpack is None


@pytest.mark.parametrize(("body", "message"), [
    ("FOO bar\n", "unknown instruction: FOO"),
    ("RUNN make\n", "unknown instruction: RUNN (did you mean RUN?)"),
    ("COPY onlyone\n", "COPY requires at least two arguments, but only one was provided. "
                       "Destination could not be determined"),
    ("ADD --foo a b\n", "unknown flag: --foo"),
    ("COPY --form=x a b\n", "unknown flag: --form (did you mean from?)"),
    ("COPY --link=maybe a b\n", "expecting boolean value for flag --link, not: maybe"),
    ("COPY --chown a b\n", "missing a value on flag: --chown"),
    ("COPY --from=a --from=b a b\n", "duplicate flag specified: --from"),
    ("COPY --from=$X a b\n", "variable expansion is not supported for --from, define a new "
                             "stage with FROM using ARG from global scope as a workaround"),
    ("COPY a <<EOF\nx\nEOF\n", "COPY cannot accept a heredoc as a destination"),
    ("CMD --foo x\n", "unknown flag: --foo"),
    ("RUN --network=bridge x\n", 'invalid network mode "bridge"'),
    ("SHELL /bin/sh -c\n", "SHELL requires the arguments to be in JSON form"),
    ("LABEL\n", "LABEL requires at least one argument"),
    ("USER\n", "USER requires exactly one argument"),
    ("ARG =x\n", "ARG names can not be blank"),
    ("VOLUME []\n", "VOLUME requires at least one argument"),
    ("HEALTHCHECK FOO\n", 'Unknown type "FOO" in HEALTHCHECK (try CMD)'),
    ("HEALTHCHECK CMD\n", "Missing command after HEALTHCHECK CMD"),
    ("HEALTHCHECK NONE x\n", "HEALTHCHECK NONE takes no arguments"),
    ("HEALTHCHECK --interval=10 CMD x\n", 'time: missing unit in duration "10"'),
    ("HEALTHCHECK --timeout=1x CMD x\n", 'time: unknown unit "x" in duration "1x"'),
    ("HEALTHCHECK --interval=100us CMD x\n", 'Interval "interval" cannot be less than 1ms'),
    ("HEALTHCHECK --retries=-1 CMD x\n", "--retries cannot be negative (-1)"),
    ("ONBUILD ONBUILD RUN x\n", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("ONBUILD FROM alpine\n", "FROM isn't allowed as an ONBUILD trigger"),
    ("RUN --mount=type=cache,uid=x,target=/c x\n", "invalid value x for uid"),
])
def test_errors_carry_buildkit_message_and_line(body, message):
    e = error("\n" + body)
    assert (e.message, e.line) == (message, 3)
    assert str(e) == f"dockerfile parse error on line 3: {message}"


def test_run_shell_line_folds_heredocs_as_buildkit():
    assert one("RUN echo hi\n").shell_line() == ("echo hi", None)
    assert one("RUN <<-EOF\n\techo a\n\techo b\nEOF\n").shell_line() == ("echo a\necho b\n",
                                                                         None)
    script = one("RUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\n")
    line, file = script.shell_line()
    assert line == "/dev/pipes/EOF" and file.content.startswith("#!")
    two = one("RUN cat <<A > /a && cat <<B > /b\none\nA\ntwo\nB\n")
    assert two.shell_line() == ("cat <<A > /a && cat <<B > /b\none\nA\ntwo\nB", None)
