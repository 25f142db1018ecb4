"""The shim's frames: 4-byte big-endian length + UTF-8 JSON, refused past MAX_FRAME, and
whole frames only (a stream cut in the middle of one is an error, never a half request)."""

from __future__ import annotations

import socket
import threading

import pytest

from dockyard.shim import protocol
from dockyard.shim.client import read_frame
from dockyard.shim.protocol import (
    MAX_FRAME,
    Decoder,
    FrameError,
    ShimError,
    encode,
    result_of,
    stream_header,
)


def test_a_frame_is_a_big_endian_length_and_json():
    frame = encode({"id": 1, "method": "state", "params": {}})
    assert frame[:4] == len(frame[4:]).to_bytes(4, "big")
    assert Decoder().feed(frame) is None
    d = Decoder()
    d.feed(frame)
    assert d.next() == {"id": 1, "method": "state", "params": {}}
    assert d.next() is None


def test_the_decoder_takes_frames_in_any_pieces():
    frames = encode({"id": 1, "x": "é" * 100}) + encode({"id": 2}) + encode({"id": 3})
    d = Decoder()
    got = []
    for i in range(len(frames)):
        d.feed(frames[i:i + 1])
        while (f := d.next()) is not None:
            got.append(f["id"])
    assert got == [1, 2, 3]
    assert d.take_rest() == b""


def test_bytes_after_a_frame_are_left_for_the_stream():
    d = Decoder()
    d.feed(encode({"id": 7, "method": "attach"}) + b"raw stdin")
    assert d.next()["id"] == 7
    assert d.take_rest() == b"raw stdin"


def test_an_oversized_frame_is_refused_from_its_header():
    d = Decoder()
    with pytest.raises(FrameError, match="longer than"):
        d.feed((MAX_FRAME + 1).to_bytes(4, "big"))
    with pytest.raises(FrameError):
        encode({"blob": "x" * (MAX_FRAME + 1)})


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"\xff\xfe", b'{"id": 1'])
def test_a_frame_that_is_not_a_json_object_is_refused(body):
    d = Decoder()
    d.feed(len(body).to_bytes(4, "big") + body)
    with pytest.raises(FrameError) as e:
        d.next()
    assert e.value.code == "invalid_argument"


def test_error_replies_raise_shimerror_with_their_code():
    assert result_of({"id": 1, "result": {"pid": 3}}) == {"pid": 3}
    with pytest.raises(ShimError) as e:
        result_of({"id": 1, "error": {"code": "not_found", "message": "no such process"}})
    assert (e.value.code, e.value.message) == ("not_found", "no such process")
    with pytest.raises(ShimError) as e:
        result_of({"id": 1, "error": {"code": "bogus", "message": "?"}})
    assert e.value.code == "internal"
    assert ShimError("unavailable", "gone").to_json() == {"code": "unavailable",
                                                            "message": "gone"}


def test_stream_header_is_dockers_stdcopy_header():
    assert stream_header(1, 5) == b"\x01\x00\x00\x00\x00\x00\x00\x05"
    assert stream_header(2, 65536) == b"\x02\x00\x00\x00\x00\x01\x00\x00"


def test_unix_path_accepts_addresses_and_paths():
    assert protocol.unix_path("unix:///run/x/s/ab") == "/run/x/s/ab"
    assert protocol.unix_path("/run/x/s/ab") == "/run/x/s/ab"


def _pair(payload: bytes) -> socket.socket:
    a, b = socket.socketpair()

    def send() -> None:
        a.sendall(payload)
        a.close()

    threading.Thread(target=send).start()
    return b


def test_the_client_reads_a_whole_frame_or_reports_the_cut():
    sock = _pair(encode({"id": 1, "result": None}))
    assert read_frame(sock) == {"id": 1, "result": None}
    assert read_frame(sock, eof_ok=True) is None
    sock.close()
    frame = encode({"id": 2, "result": "x" * 100})
    for cut in (2, 4, 50):
        sock = _pair(frame[:cut])
        with pytest.raises(ShimError) as e:
            read_frame(sock, eof_ok=True)
        assert e.value.code == "unavailable"
        sock.close()
    sock = _pair((MAX_FRAME + 1).to_bytes(4, "big"))
    with pytest.raises(FrameError):
        read_frame(sock)
    sock.close()
