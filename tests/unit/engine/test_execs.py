"""The pure parts of execs (containers/execs.py): the create body, the inspect document,
the environment merge and the exit code of a start that failed."""

from __future__ import annotations

import pytest

from dockyard.engine.containers.execs import Exec, merge_env, start_exit_code
from dockyard.engine.errors import InvalidParameter


def test_a_create_body_becomes_an_exec_with_dockers_inspect_fields():
    ex = Exec.from_body("c" * 64, {"Cmd": ["sh", "-c", "true"], "AttachStdout": True,
                                   "Tty": True, "User": "nobody", "DetachKeys": "ctrl-x"})
    doc = ex.to_json()
    assert doc["ProcessConfig"] == {"tty": True, "entrypoint": "sh", "arguments": ["-c", "true"],
                                    "privileged": False, "user": "nobody"}
    assert doc["Running"] is False and doc["ExitCode"] is None and doc["Pid"] == 0
    assert doc["OpenStdout"] and not doc["OpenStdin"] and not doc["OpenStderr"]
    assert doc["ContainerID"] == "c" * 64 and doc["DetachKeys"] == "ctrl-x"
    assert len(doc["ID"]) == 64 and doc["CanRemove"] is False


def test_an_exec_without_a_command_is_refused_in_dockers_words():
    for body in ({}, {"Cmd": []}, {"Cmd": None}):
        with pytest.raises(InvalidParameter, match="No exec command specified"):
            Exec.from_body("c", body)


def test_the_user_is_left_out_of_the_process_config_when_empty():
    assert "user" not in Exec.from_body("c", {"Cmd": ["true"]}).to_json()["ProcessConfig"]


def test_exec_env_replaces_appends_and_removes_as_docker_does():
    base = ["PATH=/bin", "HOME=/root", "A=1"]
    assert merge_env(base, ["A=2", "B=3", "HOME"]) == ["PATH=/bin", "A=2", "B=3"]


@pytest.mark.parametrize(("message", "code"), [
    ('OCI runtime exec failed: exec: "nosuch": executable file not found in $PATH', 127),
    ("OCI runtime exec failed: exec nosuch: no such file or directory", 127),
    ("OCI runtime exec failed: exec /etc/passwd: Permission denied", 126),
    ("something else went wrong", 126),
])
def test_a_failed_start_gets_dockers_exit_code(message, code):
    entry = "/etc/passwd" if "passwd" in message else "nosuch"
    assert start_exit_code(message, entry) == code
