"""The Go-template subset of `--format`."""

from __future__ import annotations

import pytest

from dockyard.cli.template import Template, TemplateError, go_json, go_str, render

DOC = {"Name": "/web", "State": {"Pid": 42, "Running": True, "Status": "running"},
       "Config": {"Env": ["A=1", "B=2"], "Labels": {"a": "x", "b": "y<z"}, "Cmd": None},
       "Mounts": [{"Source": "/a"}, {"Source": "/b"}], "Size": 1.5e21}


@pytest.mark.parametrize(("src", "want"), [
    ("{{.Name}}", "/web"),
    ("{{.State.Pid}} {{.State.Running}}", "42 true"),
    ("{{json .Config.Env}}", '["A=1","B=2"]'),
    ("{{json .Config.Labels}}", '{"a":"x","b":"y\\u003cz"}'),
    ("{{range .Mounts}}{{.Source}},{{end}}", "/a,/b,"),
    ("{{range $i, $m := .Mounts}}{{$i}}={{$m.Source}} {{end}}", "0=/a 1=/b "),
    ("{{range $k, $v := .Config.Labels}}{{$k}}:{{$v}};{{end}}", "a:x;b:y<z;"),
    ('{{index .Config.Labels "b"}}', "y<z"),
    ('{{join .Config.Env ","}}', "A=1,B=2"),
    ("{{upper .State.Status}} {{lower .Name}}", "RUNNING /web"),
    ("{{println .Name}}", "/web\n"),
    ("{{.State.Status | upper}}", "RUNNING"),
    ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
    ("{{if not .State.Running}}up{{else if .Name}}named{{end}}", "named"),
    ("{{with .State}}{{.Pid}}{{end}}", "42"),
    ("{{range .Nothing}}x{{else}}empty{{end}}", "empty"),
    ("{{.Missing}}", "<no value>"),
    ("{{.Config.Cmd}}", "<nil>"),
    ("{{.Config.Env}}", "[A=1 B=2]"),
    ("{{.Config.Labels}}", "map[a:x b:y<z]"),
    ("{{.Size}}", "1.5e+21"),
    ('{{printf "%s-%d" .Name .State.Pid}}', "/web-42"),
    ("{{len .Mounts}}", "2"),
    ('{{eq .State.Status "running"}}', "true"),
    ("a {{- .Name -}} b", "a/webb"),
    ("{{(index .Mounts 1).Source}}", "/b"),
    ('{{$x := .Name}}{{$x}}', "/web"),
    ('{{split "a:b" ":"}}', "[a b]"),
    ('{{title "hello world"}}', "Hello World"),
    ("{{json .}}", go_json(DOC)),
])
def test_renders_what_go_templates_render(src, want):
    assert render(src, DOC) == want


def test_fields_of_objects_call_their_methods():
    class Row:
        def ID(self):
            return "abc"

    assert render("{{.ID}}", Row()) == "abc"
    with pytest.raises(TemplateError, match="can't evaluate field Nope"):
        render("{{.Nope}}", Row())


def test_strict_templates_refuse_a_missing_key_as_docker_inspect_does():
    with pytest.raises(TemplateError) as e:
        Template("{{.Nope}}", strict=True).render(DOC)
    assert str(e.value) == ('template: :1:2: executing "" at <.Nope>: map has no entry for '
                            'key "Nope"')


@pytest.mark.parametrize("src", ["{{.Name", "{{end}}", "{{if .A}}x", '{{nosuchfunc .A}}'])
def test_malformed_templates_are_errors(src):
    with pytest.raises(TemplateError):
        render(src, DOC)


def test_go_values_print_as_fmt_does():
    assert go_str(True) == "true" and go_str(None) == "<nil>" and go_str(3.0) == "3"
    assert go_str([1, "a"]) == "[1 a]" and go_str({"b": 1, "a": 2}) == "map[a:2 b:1]"
    assert go_json({"s": "é&"}) == '{"s":"é\\u0026"}'


def test_methods_take_arguments():
    class Row:
        def Label(self, name):  # docker's ContainerContext.Label
            return {"a": "x"}.get(name, "")

    assert render('{{.Label "a"}}|{{.Label "b"}}', Row()) == "x|"
