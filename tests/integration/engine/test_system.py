"""dockyardd's system endpoints as Docker's own clients see them."""

from __future__ import annotations

import json
import socket

import pytest

pytestmark = pytest.mark.root


def raw(engine, request: bytes) -> bytes:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(str(engine.sock))
    s.sendall(request)
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    return data


def test_docker_version_shows_our_engine(engine):
    out = json.loads(engine.docker("version", "--format", "{{json .Server}}").stdout)
    assert out["ApiVersion"] == "1.51" and out["MinAPIVersion"] == "1.24"
    assert out["Os"] == "linux"


def test_ping_answers_ok_with_the_api_version(engine):
    answer = raw(engine, b"GET /_ping HTTP/1.0\r\n\r\n")
    assert b" 200 OK" in answer.split(b"\r\n")[0] and answer.endswith(b"OK")
    assert b"Api-Version: 1.51" in answer


def test_versions_outside_the_range_are_refused_in_dockers_words(engine):
    old = raw(engine, b"GET /v1.12/version HTTP/1.0\r\n\r\n")
    assert b" 400 " in old.split(b"\r\n")[0]
    assert b"client version 1.12 is too old. Minimum supported API version is 1.24" in old
    new = raw(engine, b"GET /v1.99/version HTTP/1.0\r\n\r\n")
    assert b"client version 1.99 is too new. Maximum supported API version is 1.51" in new
    assert b" 200 " in raw(engine, b"GET /v1.24/version HTTP/1.0\r\n\r\n").split(b"\r\n")[0]


def test_an_unknown_path_is_a_404_with_a_message(engine):
    answer = raw(engine, b"GET /v1.51/no/such/thing HTTP/1.0\r\n\r\n")
    assert b" 404 " in answer.split(b"\r\n")[0]
    assert json.loads(answer.partition(b"\r\n\r\n")[2]) == {"message": "page not found"}


def test_info_through_the_sdk(engine):
    info = engine.sdk.info()
    assert info["OSType"] == "linux" and info["DockerRootDir"] == str(engine.data_root)
    assert info["Images"] >= 1  # busybox


def test_the_socket_is_root_dockyard_0660(engine):
    import grp
    import os
    import stat

    st = os.stat(engine.sock)
    assert stat.S_IMODE(st.st_mode) == 0o660 and st.st_uid == 0
    try:  # scripts/install.sh makes the group
        assert st.st_gid == grp.getgrnam("dockyard").gr_gid
    except KeyError:
        assert st.st_gid == 0
