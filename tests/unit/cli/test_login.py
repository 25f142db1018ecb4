"""login/logout against a scripted daemon: credentials land where pull and push read them."""

from __future__ import annotations

import io
import json

from dockyard.cli.main import main
from dockyard.client import auth
from tests.unit.client.test_api import FakeDaemon, ok


def test_login_stores_credentials_and_logout_removes_them(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "cfg"))
    monkeypatch.setenv("DOCKER_API_VERSION", "1.51")
    monkeypatch.setattr("sys.stdin", io.StringIO("secret\n"))
    d = FakeDaemon(tmp_path / "d.sock", [ok(b'{"Status":"Login Succeeded"}')])
    status = main(["-H", f"unix://{tmp_path}/d.sock", "login", "-u", "me",
                   "--password-stdin", "localhost:5000"])
    out = capsys.readouterr()
    assert status == 0 and out.out == "Login Succeeded\n"
    d.thread.join(5)
    head = d.requests[0].partition(b"\r\n\r\n")[0]
    assert head.startswith(b"POST /v1.51/auth ")
    assert auth.credentials("localhost:5000")["password"] == "secret"
    assert main(["logout", "localhost:5000"]) == 0
    assert capsys.readouterr().out == "Removing login credentials for localhost:5000\n"
    assert json.loads((tmp_path / "cfg" / "config.json").read_text())["auths"] == {}
    assert main(["logout", "localhost:5000"]) == 0
    assert capsys.readouterr().out == "Not logged in to localhost:5000\n"
