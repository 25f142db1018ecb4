"""ARG/ENV scoping: what each instruction of a stage sees, as docker build decides it."""

from __future__ import annotations

import pytest

from dockyard.build import instructions as ins
from dockyard.build.dockerfile import parse
from dockyard.build.instructions import DockerfileError
from dockyard.build.scope import StageEnv, unused_build_args


def walk(text: str, build_args=None, image_env=(), stage: int = -1):
    """Apply every instruction of a stage; the env and the expanded instructions."""
    df = parse(text)
    env = StageEnv(df, build_args or {}, image_env)
    return env, [env.apply(i) for i in df.stages[stage].instructions]


def test_global_arg_is_invisible_in_a_stage_until_redeclared():
    env, (before, _, after) = walk("ARG VERSION=1.0\nFROM alpine:$VERSION\n"
                                   "LABEL before=v$VERSION\nARG VERSION\nLABEL after=v$VERSION\n")
    assert before.pairs[0].value == "v"
    assert after.pairs[0].value == "v1.0"
    assert env.get("VERSION") == "1.0"


def test_build_arg_overrides_default_and_global():
    text = "ARG V=global\nFROM a\nARG V\nARG W=default\nWORKDIR /$V/$W\n"
    _, steps = walk(text, {"V": "cli", "W": "cli-w"})
    assert steps[-1].path == "/cli/cli-w"
    _, steps = walk(text)
    assert steps[-1].path == "/global/default"


def test_arg_defaults_see_earlier_args_and_env():
    _, (_, _, _, label) = walk("FROM a\nENV E=env\nARG A=$E-a\nARG B=${A}-b\nLABEL b=$B\n")
    assert label.pairs[0].value == "env-a-b"


def test_env_wins_over_arg_and_persists_while_arg_does_not():
    env, (_, _, user) = walk("FROM a\nARG NAME=arg\nENV NAME=env\nUSER $NAME\n",
                             {"NAME": "cli"}, ["PATH=/usr/bin"])
    assert user.user == "env"
    assert env.config_env() == ["PATH=/usr/bin", "NAME=env"]
    assert env.history_args() == []


def test_image_env_is_visible_and_can_be_overridden():
    env, (wd, _, run_dir) = walk("FROM a\nWORKDIR $HOME/src\nENV HOME=/root\nWORKDIR $HOME\n",
                                 image_env=["HOME=/home/app", "PATH=/bin"])
    assert (wd.path, run_dir.path) == ("/home/app/src", "/root")
    assert env.config_env() == ["HOME=/root", "PATH=/bin"]


def test_env_pairs_on_one_line_see_the_state_before_it():
    env, (_, second) = walk("FROM a\nENV abc=hello\nENV abc=bye def=$abc\n")
    assert [(p.key, p.value) for p in second.pairs] == [("abc", "bye"), ("def", "hello")]
    assert env.env["def"] == "hello"


def test_default_and_alternate_value_forms():
    _, (_, label) = walk("FROM a\nARG SET=x EMPTY=\n"
                         "LABEL a=${UNSET:-dflt} b=${EMPTY:-dflt} c=${EMPTY-dflt} "
                         "d=${SET:+alt} e=${EMPTY:+alt} f=${EMPTY+alt}\n")
    assert {p.key: p.value for p in label.pairs} == {
        "a": "dflt", "b": "dflt", "c": "", "d": "alt", "e": "", "f": "alt"}


def test_required_variable_error_names_the_line():
    with pytest.raises(DockerfileError) as e:
        walk("FROM a\n\nWORKDIR ${DIR:?must be set}\n")
    assert e.value.line == 3
    assert e.value.message == 'failed to process "${DIR:?must be set}": DIR: must be set'


def test_proxy_build_args_need_no_declaration_and_stay_out_of_history():
    env, _ = walk("FROM a\nRUN curl $HTTP_PROXY\n",
                  {"HTTP_PROXY": "http://proxy:3128", "OTHER": "x"})
    assert env.run_env()["HTTP_PROXY"] == "http://proxy:3128"
    assert "OTHER" not in env.run_env()
    assert env.history_args() == []
    assert unused_build_args({"HTTP_PROXY": "", "OTHER": ""}, env.used) == ["OTHER"]


def test_history_args_are_sorted_declared_args():
    env, _ = walk("FROM a\nARG B=2 A=1\nARG UNSET\n")
    assert env.history_args() == ["A=1", "B=2"]
    assert env.run_env() == {"A": "1", "B": "2"}


def test_copy_words_split_on_whitespace_so_quotes_do_not_group():
    with pytest.raises(DockerfileError, match="matching double-quote"):
        walk('FROM a\nCOPY "src dir/" /dst/\n')


def test_copy_expansion_covers_paths_flags_and_expanding_heredocs():
    _, (_, cp, heredoc) = walk("FROM a\nARG APP=/srv U=1000\n"
                               'COPY --chown=$U:$U --chmod=0644 ["src dir/", "${APP}/"]\n'
                               "COPY <<EOF <<'RAW' $APP/\nhome=$APP\nEOF\nraw=$APP\nRAW\n")
    assert (cp.sources, cp.dest, cp.chown) == (("src dir/",), "/srv/", "1000:1000")
    assert [h.data for h in heredoc.inline] == ["home=/srv\n", "raw=$APP\n"]


def test_expose_splits_words_after_expansion():
    _, (_, expose) = walk('FROM a\nARG PORTS="80 443/udp"\nEXPOSE $PORTS 8080\n')
    assert sorted(expose.ports) == ["443/udp", "80", "8080"]


def test_run_mounts_are_reparsed_with_the_stage_env():
    _, (_, run) = walk("FROM a\nARG CACHE=/root/.cache\n"
                       "RUN --mount=type=cache,target=$CACHE,id=${CACHE}-x make\n")
    (mount,) = run.mounts
    assert (mount.type, mount.target, mount.id, mount.readonly) == (
        "cache", "/root/.cache", "/root/.cache-x", False)


def test_run_and_cmd_lines_are_left_to_the_shell():
    _, (_, run, cmd) = walk("FROM a\nARG X=1\nRUN echo $X\nCMD echo $X\n")
    assert run.command == ("echo $X",) and cmd.command == ("echo $X",)


def test_arg_instruction_comes_back_with_the_values_taken():
    _, (arg,) = walk("ARG G=glob\nFROM a\nARG G A=$G B\n", {"B": "cli"})
    assert arg.args == (ins.ArgDef(name="G", default="glob"), ins.ArgDef(name="A", default="glob"),
                        ins.ArgDef(name="B", default="cli"))


def test_expand_from_sees_only_global_args():
    df = parse("ARG TAG=3.19\nFROM alpine:$TAG\nARG TAG=other\n")
    env = StageEnv(df, {})
    assert env.expand_from("alpine:$TAG") == "alpine:3.19"
    env.apply(df.stages[0].instructions[0])
    assert env.expand_from("alpine:$TAG") == "alpine:3.19"
    assert env.expand("$TAG") == "other"


def test_word_by_word_api():
    env = StageEnv({"G": "g"}, {"B": "cli"}, ["PATH=/bin"])
    assert env.declare("G") == "g"
    assert env.declare("B", "default") == "cli"
    assert env.declare("N") is None
    env.set_env("E", "e")
    assert env.expand("$G-$B-$E-${N:-n}") == "g-cli-e-n"
    assert env.expand_words("$B x") == ["cli", "x"]
