"""The shim's small machinery: Futures and the generator runner, the lock, exit statuses as
Docker reports them, the runtime's errors read from its log, durable exit records."""

from __future__ import annotations

import json
import os

import pytest

from dockyard.shim import records
from dockyard.shim.loop import Future, Lock, exit_code, first, resolved, run
from dockyard.shim.runtime import error_code


def test_run_resumes_a_generator_with_each_result_and_throws_errors_in():
    a, b = Future(), Future()
    seen: list = []

    def task():
        x = yield a
        try:
            yield b
        except KeyError as e:
            seen.append(e)
        return x + (yield resolved(1))

    out: list = []
    run(task(), lambda value, error: out.append((value, error)))
    assert out == []
    a.set_result(41)
    b.set_error(KeyError("k"))
    assert out == [(42, None)] and isinstance(seen[0], KeyError)

    def failing():
        yield resolved()
        raise ValueError("bad")

    run(failing(), lambda value, error: out.append((value, error)))
    assert isinstance(out[-1][1], ValueError)


def test_first_resolves_with_the_first_future():
    a, b = Future(), Future()
    f = first(a, b)
    b.set_result("b")
    a.set_result("a")
    assert f.value == "b"


def test_the_lock_serves_in_order():
    lock = Lock()
    assert lock.acquire().done
    second, third = lock.acquire(), lock.acquire()
    assert not second.done
    lock.release()
    assert second.done and not third.done
    lock.release()
    lock.release()
    assert not lock.held


@pytest.mark.parametrize(("script", "code"), [("exit 0", 0), ("exit 3", 3),
                                              ("kill -TERM $$", 143), ("kill -KILL $$", 137)])
def test_exit_codes_are_dockers(script, code):
    pid = os.posix_spawn("/bin/sh", ["sh", "-c", script], os.environ)
    _pid, status = os.waitpid(pid, 0)
    assert exit_code(status) == code


def test_rfc3339nano_is_gos():
    assert records.rfc3339nano(0) == "1970-01-01T00:00:00Z"
    assert records.rfc3339nano(1_700_000_000_120_000_000) == "2023-11-14T22:13:20.12Z"
    assert records.rfc3339nano(1_000_000_001) == "1970-01-01T00:00:01.000000001Z"


def test_the_exit_record_is_written_whole(tmp_path):
    assert records.read_exit(str(tmp_path)) is None
    records.write_exit(str(tmp_path), 137, "2024-01-01T00:00:00Z")
    assert records.read_exit(str(tmp_path)) == {"exit_status": 137,
                                                "exited_at": "2024-01-01T00:00:00Z"}
    assert json.loads((tmp_path / "exit.json").read_text())["exit_status"] == 137
    assert [p.name for p in tmp_path.iterdir()] == ["exit.json"]  # no temporary file left
    (tmp_path / "exit.json").write_text("{half")
    assert records.read_exit(str(tmp_path)) is None


def test_runtime_errors_map_to_protocol_codes():
    assert error_code('container "x" does not exist') == "not_found"
    assert error_code("container not running") == "failed_precondition"
    assert error_code("cannot delete container x that is not stopped: running") == \
        "failed_precondition"
    assert error_code('exec: "nope": executable file not found in $PATH') == "internal"


def test_the_runtime_error_is_the_last_error_it_logged_after_the_call(tmp_path):
    from dockyard.shim.loop import Loop
    from dockyard.shim.runtime import Runtime

    log = tmp_path / "log.json"
    log.write_text(json.dumps({"level": "error", "msg": "an old failure"}) + "\n")
    start = log.stat().st_size
    with log.open("a") as f:
        f.write(json.dumps({"level": "warning", "msg": "meh"}) + "\n")
        f.write(json.dumps({"level": "error", "msg": "first"}) + "\n")
        f.write("not json\n")
        f.write(json.dumps({"level": "error", "msg": "the reason"}) + "\n")
    loop = Loop()
    try:
        rt = Runtime(loop, ["/bin/false"], str(tmp_path), str(tmp_path), "x")
        assert rt.error(start) == "the reason"
        assert rt.error(log.stat().st_size) == ""
        os.close(rt.devnull)
    finally:
        loop.close()
