"""Bad input to /containers gets Docker's status and message, never a traceback."""

from __future__ import annotations

import json
import socket

import pytest

pytestmark = pytest.mark.root


def request(engine, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(str(engine.sock))
    head = f"{method} /v1.51{path} HTTP/1.0\r\nHost: docker\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    s.sendall(head.encode() + b"\r\n" + (body or b""))
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    status = int(data.split(b" ", 2)[1])
    return status, data.partition(b"\r\n\r\n")[2]


def message(body: bytes) -> str:
    return json.loads(body)["message"]


def test_malformed_json_is_a_400(engine):
    status, body = request(engine, "POST", "/containers/create", b"{nope")
    assert status == 400 and message(body).startswith("invalid JSON")


def test_wrong_types_are_named_as_go_names_them(engine):
    status, body = request(engine, "POST", "/containers/create",
                           json.dumps({"Image": "busybox", "Env": "A=1"}).encode())
    assert status == 400
    assert message(body) == ("json: cannot unmarshal string into Go struct field "
                             "CreateRequest.Env of type []string")
    status, body = request(engine, "POST", "/containers/create", json.dumps(
        {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Memory": "lots"}}).encode())
    assert status == 400 and "CreateRequest.HostConfig.Memory of type int64" in message(body)


def test_unknown_image_and_unknown_container_are_404s(engine):
    status, body = request(engine, "POST", "/containers/create",
                           json.dumps({"Image": "nosuchimage", "Cmd": ["true"]}).encode())
    assert status == 404 and message(body) == "No such image: nosuchimage"
    for method, path in (("GET", "/containers/nosuch/json"), ("POST", "/containers/nosuch/start"),
                         ("POST", "/containers/nosuch/stop"), ("DELETE", "/containers/nosuch"),
                         ("GET", "/containers/nosuch/logs?stdout=1"),
                         ("POST", "/containers/nosuch/wait")):
        status, body = request(engine, method, path)
        assert status == 404 and message(body) == "No such container: nosuch", path


def test_bad_names_policies_and_commands(engine):
    status, body = request(engine, "POST", "/containers/create?name=a%20b",
                           json.dumps({"Image": "busybox", "Cmd": ["true"]}).encode())
    assert status == 400
    assert message(body) == ("Invalid container name (a b), only [a-zA-Z0-9][a-zA-Z0-9_.-] "
                             "are allowed")
    status, body = request(engine, "POST", "/containers/create", json.dumps(
        {"Image": "busybox", "Cmd": ["true"],
         "HostConfig": {"RestartPolicy": {"Name": "sometimes"}}}).encode())
    assert status == 400 and message(body).startswith("invalid restart policy: unknown policy")
    status, body = request(engine, "POST", "/containers/create", json.dumps(
        {"Image": "busybox", "Entrypoint": [], "Cmd": []}).encode())
    # busybox's image has Cmd ["sh"]: an empty Cmd takes the image's
    assert status == 201
    request(engine, "DELETE", f"/containers/{json.loads(body)['Id']}")


def test_state_conflicts(engine):
    status, body = request(engine, "POST", "/containers/create",
                           json.dumps({"Image": "busybox", "Cmd": ["true"]}).encode())
    cid = json.loads(body)["Id"]
    status, body = request(engine, "POST", f"/containers/{cid}/kill")
    assert status == 409
    assert message(body) == f"Cannot kill container: {cid}: Container {cid} is not running"
    status, body = request(engine, "POST", f"/containers/{cid}/pause")
    assert status == 409
    status, _ = request(engine, "POST", f"/containers/{cid}/stop")
    assert status == 304
    status, body = request(engine, "POST", f"/containers/{cid}/kill?signal=NOPE")
    assert status == 400 and message(body) == "Invalid signal: NOPE"
    status, body = request(engine, "POST", f"/containers/{cid}/wait?condition=never")
    assert status == 400
    status, _ = request(engine, "DELETE", f"/containers/{cid}")
    assert status == 204


def test_update_changes_the_restart_policy(engine):
    c = engine.sdk.containers.create("busybox", ["true"])
    c.update(restart_policy={"Name": "on-failure", "MaximumRetryCount": 3})
    c.reload()
    assert c.attrs["HostConfig"]["RestartPolicy"] == {"Name": "on-failure",
                                                      "MaximumRetryCount": 3}
    c.remove()


def test_update_of_a_running_container_sets_its_memory_limit(engine):
    c = engine.sdk.containers.run("busybox", ["sleep", "1000"], detach=True)
    try:
        c.update(mem_limit="64m")
        c.reload()
        assert c.attrs["HostConfig"]["Memory"] == 64 << 20
    finally:
        c.remove(force=True)


def test_the_sdks_everyday_calls(engine):
    out = engine.sdk.containers.run("busybox", ["sh", "-c", "echo hello; echo oops >&2"],
                                    remove=True, stderr=True)
    assert b"hello" in out
    c = engine.sdk.containers.run("busybox", ["sh", "-c", "echo a; sleep 1000"], detach=True,
                                  name="sdk1", labels={"x": "y"})
    try:
        assert [x.name for x in engine.sdk.containers.list(filters={"label": "x=y"})] == ["sdk1"]
        assert "sleep 1000" in " ".join(c.top()["Processes"][0])
        stream = c.logs(stream=True, follow=True)
        assert next(stream) == b"a\n"
        c.rename("sdk2")
        c.reload()
        assert c.name == "sdk2" and c.status == "running"
        c.restart(timeout=0)
        c.reload()
        assert c.status == "running" and c.attrs["RestartCount"] == 0
        c.kill(signal="SIGKILL")
        assert c.wait()["StatusCode"] == 137
    finally:
        c.remove(force=True)


def test_logs_since_until_and_tail(engine):
    import time

    c = engine.sdk.containers.run("busybox", ["sh", "-c", "echo one; sleep 1.2; echo two"],
                                  detach=True)
    c.wait()
    lines = c.logs(timestamps=True).decode().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["one", "two"]
    from datetime import datetime

    second = datetime.fromisoformat(lines[1].split(" ")[0][:26] + "+00:00").timestamp()
    assert c.logs(since=int(second)) == b"two\n"
    assert c.logs(until=int(second)) == b"one\n"
    assert c.logs(tail=1) == b"two\n"
    assert time.time() > second
    c.remove()


def test_published_ports_are_dropped_on_the_host_network(engine):
    # As dockerd: with the host's network, published ports are dropped with a warning.
    r = engine.sdk.api.post(engine.sdk.api._url("/containers/create"), json={
        "Image": "busybox", "Cmd": ["true"],
        "HostConfig": {"NetworkMode": "host", "PortBindings": {"80/tcp": [{"HostPort": "8080"}]}}})
    assert r.status_code == 201, r.text
    doc = r.json()
    try:
        assert doc["Warnings"] == ["Published ports are discarded when using host network mode"]
    finally:
        engine.sdk.api.remove_container(doc["Id"], force=True)
