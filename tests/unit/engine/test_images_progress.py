"""Docker's pull/push progress messages from the transfer service's events."""

from __future__ import annotations

from dockyard.engine.images.progress import (
    PullProgress,
    PushProgress,
    error,
    human_size,
    progress_bar,
)

LAYER = "sha256:" + "a" * 64
CONFIG = "sha256:" + "c" * 64


def test_human_size_is_go_units_decimal():
    assert human_size(512) == "512B"
    assert human_size(1_234_567) == "1.235MB"
    assert human_size(2_000) == "2kB"


def test_progress_bar_as_dockerd_draws_it():
    bar = progress_bar(50, 100)
    assert bar.startswith("[" + "=" * 25 + ">") and bar.endswith("50B/100B")
    assert progress_bar(0, 0) == ""


def test_a_layer_downloading_in_steps_is_shown_live():
    p = PullProgress("library/busybox", "latest")
    assert p.start() == {"status": "Pulling from library/busybox", "id": "latest"}
    first = p.feed("downloading", LAYER, 10, 100)
    assert [m["status"] for m in first] == ["Pulling fs layer", "Downloading"]
    assert first[1]["progressDetail"] == {"current": 10, "total": 100}
    assert first[1]["id"] == "a" * 12
    last = p.feed("downloading", LAYER, 100, 100)
    assert [m["status"] for m in last] == ["Downloading", "Verifying Checksum",
                                           "Download complete"]
    end = p.finish([(LAYER, 100)], "sha256:" + "d" * 64, "busybox:latest", False)
    assert [m["status"] for m in end] == [
        "Extracting", "Pull complete", "Digest: sha256:" + "d" * 64,
        "Status: Downloaded newer image for busybox:latest"]


def test_a_blob_arriving_whole_is_shown_only_if_it_is_a_layer():
    p = PullProgress("library/busybox", "latest")
    assert p.feed("downloading", CONFIG, 5, 5) == []
    assert p.feed("downloading", LAYER, 7, 7) == []
    end = p.finish([(LAYER, 7)], "sha256:" + "d" * 64, "busybox:latest", False)
    ids = {m.get("id") for m in end}
    assert "c" * 12 not in ids and "a" * 12 in ids
    assert [m["status"] for m in end][:2] == ["Pulling fs layer", "Downloading"]


def test_nothing_downloaded_is_up_to_date():
    p = PullProgress("library/busybox", "latest")
    end = p.finish([(LAYER, 7)], "sha256:" + "d" * 64, "busybox:latest", True)
    assert [m["status"] for m in end] == ["Digest: sha256:" + "d" * 64,
                                          "Status: Image is up to date for busybox:latest"]


def test_layers_present_before_a_new_image_already_exist():
    p = PullProgress("library/busybox", "latest")
    end = p.finish([(LAYER, 7)], "sha256:" + "d" * 64, "busybox:latest", False)
    assert end[0] == {"status": "Already exists", "progressDetail": {}, "id": "a" * 12}


def test_push_shows_layers_only_and_reports_pushed_and_existing_ones():
    other = "sha256:" + "b" * 64
    p = PushProgress([(other, 3), (LAYER, 7)])
    assert [m["id"] for m in p.prepare()] == ["a" * 12, "b" * 12]
    assert p.feed("uploading", CONFIG, 5, 5) == []
    assert [m["status"] for m in p.feed("uploading", LAYER, 7, 7)] == ["Pushing"]
    end = p.finish("v1", "sha256:" + "d" * 64, 500)
    assert [m.get("status") for m in end] == ["Pushed", "Layer already exists",
                                              f"v1: digest: sha256:{'d' * 64} size: 500",
                                              None]
    assert end[-1]["aux"] == {"Tag": "v1", "Digest": "sha256:" + "d" * 64, "Size": 500}


def test_error_message_shape():
    assert error("boom") == {"errorDetail": {"message": "boom"}, "error": "boom"}
