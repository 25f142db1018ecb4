"""The CLI without root: flag parsing as runc's, spec/features output against the schemas."""

from __future__ import annotations

import json
import subprocess

import pytest

from dockyard.runtime import cli, jsonio
from tests.conftest import runc_binary
from tests.schemas import validate


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([*runc_binary(), *args], capture_output=True, cwd=cwd)


def test_flags_parse_in_every_go_form():
    table = cli.COMMAND_FLAGS["exec"]
    opts, args = cli.parse_flags(["-d", "--pid-file=/p", "-e", "A=1", "--env", "B=2", "-t=false",
                                  "-cwd", "/tmp", "ctr", "sh", "-c", "x"], table)
    assert opts == {"detach": True, "pid-file": "/p", "env": ["A=1", "B=2"], "tty": False,
                    "cwd": "/tmp"}
    assert args == ["ctr", "sh", "-c", "x"]
    with pytest.raises(cli.UsageError, match="flag provided but not defined: -nope"):
        cli.parse_flags(["--nope"], table)


def test_signal_names():
    assert cli.parse_signal("KILL") == 9 == cli.parse_signal("SIGKILL") == cli.parse_signal("9")
    assert cli.parse_signal("sigterm") == 15


def test_tabulate_like_go_tabwriter():
    out = cli.tabulate([["ID", "PID"], ["abc", "12"]])
    assert out == "ID          PID\nabc         12\n"


def test_spec_writes_a_valid_config(tmp_path):
    p = run("spec", "--bundle", str(tmp_path))
    assert p.returncode == 0, p.stderr
    doc = json.loads((tmp_path / "config.json").read_text())
    validate(doc, "config-schema.json")
    assert doc["process"]["args"] == ["sh"]
    p = run("spec", "-b", str(tmp_path))
    assert p.returncode == 1 and b"File config.json exists" in p.stderr


def test_spec_rootless_is_valid(tmp_path):
    assert run("spec", "--rootless", "-b", str(tmp_path)).returncode == 0
    doc = json.loads((tmp_path / "config.json").read_text())
    validate(doc, "config-schema.json")
    assert {"type": "user"} in doc["linux"]["namespaces"]


def test_features_validate_against_the_schema():
    p = run("features")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    validate(doc, "features-schema.json")
    assert "CAP_CHOWN" in doc["linux"]["capabilities"]
    assert "rbind" in doc["mountOptions"]
    assert doc["linux"]["seccomp"]["enabled"] is True


def test_unknown_command_and_version():
    p = run("frobnicate")
    assert p.returncode == 3 and b"No help topic for 'frobnicate'" in p.stderr
    p = run("--version")
    assert p.returncode == 0 and p.stdout.startswith(b"dockyard-runc version")


def test_missing_argument_is_a_usage_error(tmp_path):
    p = run("--root", str(tmp_path), "start")
    assert p.returncode == 1 and b'\\"start\\" requires exactly 1 argument(s)' in p.stderr
    assert p.stdout.startswith(b"Incorrect Usage.")


def test_jsonio_matches_json():
    doc = {"a": [1, 2.5, {"b": "é\n"}], "c": None, "d": True, "e": {}, "f": []}
    assert jsonio.loads(json.dumps(doc)) == doc
    assert jsonio.dumps(doc) == json.dumps(doc, separators=(",", ":"))
    assert jsonio.dumps_pretty(doc) == json.dumps(doc, indent=2)
    with pytest.raises(jsonio.DecodeError, match="Extra data"):
        jsonio.loads('{"a": 1} x')
    with pytest.raises(jsonio.DecodeError, match="Expecting value"):
        jsonio.loads("")
