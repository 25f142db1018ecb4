"""Whole Dockerfiles: directives, global ARGs, stages, FROM resolution, and which stages a
target needs."""

from __future__ import annotations

import pytest

from dockyard.build import instructions as ins
from dockyard.build.dockerfile import (
    declared_arg_names,
    needed_stages,
    parse,
    parse_directives,
    parse_trigger,
)
from dockyard.build.instructions import DockerfileError

MULTI = """\
# syntax=docker/dockerfile:1
ARG GO=1.22
ARG BASE=alpine:3.19

FROM golang:${GO} AS deps
RUN go mod download

FROM deps AS build
COPY . .
RUN go build -o /out/app

FROM alpine AS docs
RUN make docs

FROM build AS test
RUN go test ./...

FROM ${BASE}
COPY --from=build /out/app /app
RUN --mount=type=bind,from=docs,target=/docs true
"""


def names(stages):
    return [s.display_name for s in stages]


def test_stages_and_global_args():
    df = parse(MULTI)
    assert [a.args[0].name for a in df.global_args] == ["GO", "BASE"]
    assert [(s.index, s.name, s.base) for s in df.stages] == [
        (0, "deps", "golang:${GO}"), (1, "build", "deps"), (2, "docs", "alpine"),
        (3, "test", "build"), (4, "", "${BASE}")]
    assert df.stage("BUILD") is df.stages[1] and df.stage(4).display_name == "stage-4"
    assert df.directives.syntax == "docker/dockerfile:1"


def test_resolve_base_expands_global_args_with_build_arg_override():
    df = parse(MULTI)
    assert df.resolve_base(df.stages[0], {}) == "golang:1.22"
    assert df.resolve_base(df.stages[0], {"GO": "1.21"}) == "golang:1.21"
    assert df.resolve_base(df.stages[4], {}) == "alpine:3.19"
    assert df.base_stage(df.stages[3], {}) is df.stages[1]
    assert df.base_stage(df.stages[0], {}) is None


def test_blank_base_is_an_error_on_the_from_line():
    df = parse("ARG IMG\nFROM $IMG\n")
    with pytest.raises(DockerfileError) as e:
        df.resolve_base(df.stages[0], {})
    assert (e.value.message, e.value.line) == ("base name ($IMG) should not be blank", 2)


def test_needed_stages_skips_unused_ones():
    df = parse(MULTI)
    assert names(needed_stages(df)) == ["deps", "build", "docs", "stage-4"]
    assert names(needed_stages(df, "test")) == ["deps", "build", "test"]
    assert names(needed_stages(df, "docs")) == ["docs"]


def test_needed_stages_follows_copy_from_index_and_from_through_args():
    df = parse("ARG SRC=one\nFROM alpine AS one\nFROM busybox AS two\n"
               "FROM ${SRC} AS three\nCOPY --from=1 /x /x\n")
    assert names(needed_stages(df, "three")) == ["one", "two", "three"]
    assert names(needed_stages(df, "three", {"SRC": "debian"})) == ["two", "three"]


def test_copy_from_an_image_is_not_a_stage():
    df = parse("FROM alpine AS a\nFROM scratch\nCOPY --from=nginx:latest /etc/nginx /n\n")
    assert names(needed_stages(df)) == ["stage-1"]


def test_onbuild_triggers_of_a_base_stage_add_their_sources():
    df = parse("FROM alpine AS assets\nFROM alpine AS base\nONBUILD COPY --from=assets / /\n"
               "FROM base\n")
    assert names(needed_stages(df)) == ["assets", "base", "stage-2"]


def test_unknown_target_is_reported_as_buildkit_does():
    with pytest.raises(DockerfileError) as e:
        needed_stages(parse(MULTI), "release")
    assert str(e.value) == 'target stage "release" could not be found'
    with pytest.raises(DockerfileError, match=r'\(did you mean build\?\)'):
        needed_stages(parse(MULTI), "buil")


@pytest.mark.parametrize(("text", "message", "line"), [
    ("FROM a AS x\nCOPY --from=y / /\nFROM b AS y\n",
     'cannot copy from stage "y", it needs to be defined before current stage "x"', 2),
    ("FROM a\nCOPY --from=7 / /\n", "invalid stage index 7", 2),
    ("FROM a AS x\nCOPY --from=x / /\n", "circular dependency detected on stage: x", 2),
    ("FROM a AS x\nRUN --mount=from=y,target=/y true\nFROM b AS y\n",
     'cannot mount from stage "y" to "/y", stage needs to be defined before current command',
     2),
])
def test_bad_stage_references(text, message, line):
    with pytest.raises(DockerfileError) as e:
        needed_stages(parse(text), "x" if "AS x" in text else None)
    assert (e.value.message, e.value.line) == (message, line)


def test_escape_directive_with_backtick():
    df = parse("# escape=`\nFROM mcr.microsoft.com/windows\nRUN dir c:\\ `\n    && echo hi\n"
               "COPY `$literal c:\\dst\\\n")
    run, copy = df.stages[0].instructions
    assert df.escape == "`"
    assert run.command == ("dir c:\\     && echo hi",)
    assert (run.line, run.end_line) == (3, 4)
    assert copy.sources == ("`$literal",)


@pytest.mark.parametrize(("text", "expected"), [
    ("# syntax=docker/dockerfile:1.7\n# escape=`\n# check=skip=all\nFROM a\n",
     ("docker/dockerfile:1.7", "`", "skip=all")),
    ("#escape=`\n\n# syntax=ignored\nFROM a\n", ("", "`", "")),
    ("FROM a\n# escape=`\n", ("", "\\", "")),
    ("# foo=bar\n# escape=`\nFROM a\n", ("", "\\", "")),
])
def test_directives_only_at_the_top(text, expected):
    d = parse_directives(text)
    assert (d.syntax, d.escape, d.check) == expected


def test_directive_errors():
    with pytest.raises(DockerfileError, match="only one escape parser directive can be used"):
        parse("# escape=`\n# escape=\\\nFROM a\n")
    with pytest.raises(DockerfileError, match="invalid escape token 'x' does not match"):
        parse("# escape=x\nFROM a\n")


@pytest.mark.parametrize(("text", "message", "line"), [
    ("", "the Dockerfile cannot be empty", None),
    ("# only a comment\n", "file with no instructions", None),
    ("ARG A\n", "dockerfile contains no stages to build", None),
    ("RUN make\nFROM a\n", "no build stage in current context", 1),
    ("FROM a\nRUN true\n\nENV A\n", "ENV must have two arguments", 4),
    ("FROM a\nRUN <<EOF\ncat\n", "unterminated heredoc", 2),
    ("FROM a\nRUN <<EOF\nx\nEOF\nLABEL a=b \\\n  c\n",
     "Syntax error - can't find = in \"c\". Must be of the form: name=value", 5),
    ("FROM a b\n", "FROM requires either one or three arguments", 1),
    ("FROM a AS 9lives\n", 'invalid name for build stage: "9lives", name can\'t start with '
                           "a number or contain symbols", 1),
])
def test_parse_errors_with_lines(text, message, line):
    with pytest.raises(DockerfileError) as e:
        parse(text)
    assert (e.value.message, e.value.line) == (message, line)


def test_lowercase_instructions_are_accepted():
    df = parse("from alpine as Base\nrun echo hi\n")
    assert df.stages[0].name == "base"
    assert isinstance(df.stages[0].instructions[0], ins.Run)


def test_find_stage_by_name_or_index():
    df = parse(MULTI)
    assert df.find_stage("Docs") is df.stages[2]
    assert df.find_stage("3") is df.stages[3]
    assert df.find_stage("alpine") is None and df.find_stage("9") is None


def test_image_onbuild_triggers_parse_as_instructions():
    trigger = parse_trigger('COPY --chown=1:1 . /app', line=1)
    assert isinstance(trigger, ins.Copy) and trigger.chown == "1:1"
    with pytest.raises(DockerfileError, match="FROM isn't allowed as an ONBUILD trigger"):
        parse_trigger("FROM x")
    assert parse(MULTI).parse_trigger("RUN make").command == ("make",)


def test_declared_arg_names_cover_globals_and_given_stages():
    df = parse("ARG G\nFROM a\nARG S1 S2=x\nFROM b\nARG OTHER\n")
    assert declared_arg_names(df, df.stages[:1]) == {"G", "S1", "S2"}
