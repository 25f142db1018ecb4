"""Flags parsed as pflag parses docker's."""

from __future__ import annotations

import pytest

from dockyard.cli.flags import Command, Flag, HelpRequested, UsageError
from dockyard.cli.main import _parse_globals, _resolve
from dockyard.cli.run import CREATE, RUN, detach_sequence

RM = Command("rm", "[OPTIONS] CONTAINER [CONTAINER...]", "Remove one or more containers",
             [Flag("f", "force", bool), Flag("v", "volumes", bool), Flag("s", "signal", str),
              Flag("e", "env", list), Flag("n", "last", int, default=-1)], min_args=1)


def test_short_bools_group_and_values_attach_or_follow():
    opts, args = RM.parse(["-fv", "-sKILL", "-e", "A=1", "--env=B=2", "--last", "3", "web"])
    assert opts.force and opts.volumes and opts.signal == "KILL"
    assert opts.env == ["A=1", "B=2"] and opts.last == 3 and args == ["web"]
    assert opts.given >= {"force", "signal", "env"}


def test_bool_values_and_the_double_dash():
    opts, args = RM.parse(["--force=false", "--", "-x"])
    assert opts.force is False and args == ["-x"]


def test_flags_may_follow_arguments_except_for_run():
    _, args = RM.parse(["web", "-f"])
    assert args == ["web"]
    opts, args = RUN.parse(["--rm", "-it", "busybox", "sh", "-c", "ls -l"])
    assert opts.rm and opts.interactive and opts.tty
    assert args == ["busybox", "sh", "-c", "ls -l"]


def test_unknown_flags_are_usage_errors_with_status_125():
    with pytest.raises(UsageError) as e:
        RM.parse(["--bogus", "x"])
    assert e.value.status == 125 and str(e.value).startswith("unknown flag: --bogus\n\nUsage:")
    with pytest.raises(UsageError, match="flag needs an argument: 'e' in -e"):
        RM.parse(["x", "-e"])
    with pytest.raises(UsageError, match='invalid argument "x" for "-n, --last" flag'):
        RM.parse(["-n", "x", "y"])


def test_argument_counts_are_checked_in_dockers_words():
    with pytest.raises(UsageError) as e:
        RM.parse([])
    assert e.value.status == 1
    assert str(e.value).startswith("dockyard: 'dockyard rm' requires at least 1 argument\n")
    exact = Command("rename", "CONTAINER NEW_NAME", "Rename a container", [], 2, 2)
    with pytest.raises(UsageError, match="requires 2 arguments"):
        exact.parse(["a"])
    none = Command("version", "[OPTIONS]", "Show", [], max_args=0)
    with pytest.raises(UsageError, match="accepts no arguments"):
        none.parse(["a"])


def test_help_is_requested_with_h_or_help():
    with pytest.raises(HelpRequested):
        RM.parse(["--help"])
    assert "Usage:  dockyard rm" in RM.help_text()


def test_global_options_and_command_resolution():
    opts, rest = _parse_globals(["-H", "unix:///x.sock", "--debug", "ps", "-a"])
    assert opts == {"host": "unix:///x.sock", "debug": True} and rest == ["ps", "-a"]
    opts, rest = _parse_globals(["--host=tcp://h:1", "container", "ls"])
    assert opts["host"] == "tcp://h:1"
    assert _resolve(rest) == ("containers:ps", [], "container ls")
    assert _resolve(["images", "-q"]) == ("images:images", ["-q"], "images")
    assert _resolve(["image", "rm", "x"]) == ("images:rmi", ["x"], "image rm")


def test_create_has_no_detach_flag_and_run_does():
    assert "detach" in {f.long for f in RUN.flags}
    assert "detach" not in {f.long for f in CREATE.flags}


def test_detach_keys():
    assert detach_sequence(None) == b"\x10\x11"
    assert detach_sequence("ctrl-a,x") == b"\x01x"
