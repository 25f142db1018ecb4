"""Pull and push progress: plain lines off a terminal, redrawn lines on one."""

from __future__ import annotations

import io

import pytest

from dockyard.cli.flags import CommandError
from dockyard.cli.jsonmessage import display_stream, progress_string

STREAM = [
    {"status": "Pulling from library/busybox", "id": "latest"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "abc"},
    {"status": "Downloading", "progressDetail": {"current": 500, "total": 1000},
     "progress": "[==>  ]", "id": "abc"},
    {"status": "Pull complete", "progressDetail": {}, "id": "abc"},
    {"status": "Digest: sha256:1"},
    {"status": "Status: Downloaded newer image for busybox:latest"},
]


def test_off_a_terminal_only_the_plain_lines_show():
    out = io.StringIO()
    display_stream(STREAM, out, terminal=False)
    assert out.getvalue() == ("latest: Pulling from library/busybox\n"
                              "abc: Pulling fs layer\nabc: Pull complete\n"
                              "Digest: sha256:1\n"
                              "Status: Downloaded newer image for busybox:latest\n")


def test_on_a_terminal_layers_are_redrawn_in_place():
    out = io.StringIO()
    display_stream(STREAM, out, terminal=True)
    text = out.getvalue()
    assert "\x1b[1A" in text and "\x1b[2K" in text
    assert "abc: Downloading     500B/1kB" in text


def test_progress_bar_when_wide():
    bar = progress_string({"current": 500, "total": 1000}, width=120)
    assert bar.startswith("[" + "=" * 25 + ">" + " " * 25 + "] ")


def test_an_error_message_ends_the_stream():
    with pytest.raises(CommandError, match="manifest unknown"):
        display_stream([{"errorDetail": {"message": "manifest unknown"},
                         "error": "manifest unknown"}], io.StringIO(), False)
