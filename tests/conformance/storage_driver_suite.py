"""The storage driver's conformance suite, run against every StorageDriver (distribution's
storage/driver/testsuites). An implementation subclasses StorageDriverSuite and provides a
`driver` fixture: an empty driver."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from dockyard.registry.storage.driver import (
    FileInfo,
    InvalidOffset,
    InvalidPath,
    PathNotFound,
    SkipDir,
    StorageDriver,
    WriterClosed,
)

INVALID_PATHS = ["", "relative/path", "/", "/a//b", "/a/", "/a/../b", "/..", "/a/./b",
                 "/a\x00b", "/a b", "/a/b\\c", "/é", "//a"]


class StorageDriverSuite:
    # -- put / get --------------------------------------------------------------------

    def test_put_content_reads_back(self, driver: StorageDriver) -> None:
        driver.put_content("/a/b/c", b"hello")
        assert driver.get_content("/a/b/c") == b"hello"

    def test_put_content_replaces_and_leaves_no_temporary(self, driver: StorageDriver) -> None:
        driver.put_content("/d/link", b"first, longer content")
        driver.put_content("/d/link", b"second")
        assert driver.get_content("/d/link") == b"second"
        assert driver.list("/d") == ["/d/link"]

    def test_empty_content_is_content(self, driver: StorageDriver) -> None:
        driver.put_content("/empty", b"")
        assert driver.get_content("/empty") == b""
        assert driver.stat("/empty").size == 0

    def test_get_of_missing_or_directory_is_path_not_found(self, driver: StorageDriver) -> None:
        with pytest.raises(PathNotFound):
            driver.get_content("/missing")
        driver.put_content("/dir/file", b"x")
        with pytest.raises(PathNotFound):
            driver.get_content("/dir")
        with pytest.raises(PathNotFound):
            driver.get_content("/dir/file/below")

    # -- reader -----------------------------------------------------------------------

    def test_reader_starts_at_offset(self, driver: StorageDriver) -> None:
        data = bytes(range(256)) * 100
        driver.put_content("/big", data)
        for offset in (0, 1, 255, 12_345, len(data) - 1, len(data)):
            with driver.reader("/big", offset) as f:
                assert f.read() == data[offset:]

    def test_reader_past_end_reads_nothing_and_negative_offset_is_refused(
            self, driver: StorageDriver) -> None:
        driver.put_content("/small", b"abc")
        with driver.reader("/small", 10) as f:
            assert f.read() == b""
        with pytest.raises(InvalidOffset):
            driver.reader("/small", -1)
        with pytest.raises(PathNotFound):
            driver.reader("/missing", 0)

    # -- writer -----------------------------------------------------------------------

    def test_writer_commit_makes_content_readable(self, driver: StorageDriver) -> None:
        w = driver.writer("/up/data")
        for chunk in (b"one ", b"two ", b"three"):
            assert w.write(chunk) == len(chunk)
        assert w.size == len(b"one two three")
        w.commit()
        w.close()
        assert driver.get_content("/up/data") == b"one two three"

    def test_writer_append_resumes_where_the_last_one_stopped(
            self, driver: StorageDriver) -> None:
        w = driver.writer("/up/data")
        w.write(b"first half, ")
        w.close()  # an upload paused, not committed: the data stays
        w = driver.writer("/up/data", append=True)
        assert w.size == len(b"first half, ")
        w.write(b"second half")
        assert w.size == len(b"first half, second half")
        w.commit()
        w.close()
        assert driver.get_content("/up/data") == b"first half, second half"

    def test_writer_without_append_truncates(self, driver: StorageDriver) -> None:
        driver.put_content("/up/data", b"old content")
        w = driver.writer("/up/data")
        assert w.size == 0
        w.write(b"new")
        w.commit()
        w.close()
        assert driver.get_content("/up/data") == b"new"

    def test_writer_cancel_removes_the_object(self, driver: StorageDriver) -> None:
        w = driver.writer("/up/data")
        w.write(b"abandoned")
        w.cancel()
        with pytest.raises(PathNotFound):
            driver.stat("/up/data")

    def test_finished_writer_refuses_more(self, driver: StorageDriver) -> None:
        w = driver.writer("/w1")
        w.commit()
        with pytest.raises(WriterClosed):
            w.write(b"late")
        with pytest.raises(WriterClosed):
            w.commit()
        w.close()
        w.close()  # closing twice is harmless
        with pytest.raises(WriterClosed):
            w.cancel()

    def test_concurrent_writers_to_different_paths(self, driver: StorageDriver) -> None:
        errors: list[BaseException] = []

        def upload(i: int) -> None:
            try:
                w = driver.writer(f"/uploads/u{i}/data")
                for _ in range(50):
                    w.write(bytes([i]) * 1000)
                w.commit()
                w.close()
            except BaseException as e:  # reported below, in the test's thread
                errors.append(e)

        threads = [threading.Thread(target=upload, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        for i in range(8):
            assert driver.get_content(f"/uploads/u{i}/data") == bytes([i]) * 50_000

    # -- stat / list ------------------------------------------------------------------

    def test_stat_of_file_and_directory(self, driver: StorageDriver) -> None:
        before = datetime.now(UTC) - timedelta(seconds=5)
        driver.put_content("/s/file", b"12345")
        f = driver.stat("/s/file")
        assert (f.path, f.size, f.is_dir) == ("/s/file", 5, False)
        assert before <= f.mod_time <= datetime.now(UTC) + timedelta(seconds=5)
        d = driver.stat("/s")
        assert (d.path, d.size, d.is_dir) == ("/s", 0, True)
        with pytest.raises(PathNotFound):
            driver.stat("/s/missing")

    def test_list_gives_direct_children_as_full_paths(self, driver: StorageDriver) -> None:
        for p in ("/l/b", "/l/a/deep/file", "/l/c/x", "/other"):
            driver.put_content(p, b"x")
        assert driver.list("/l") == ["/l/a", "/l/b", "/l/c"]
        assert driver.list("/") == ["/l", "/other"]
        with pytest.raises(PathNotFound):
            driver.list("/missing")
        with pytest.raises(PathNotFound):
            driver.list("/l/b")

    # -- move / delete ----------------------------------------------------------------

    def test_move_creates_parents_and_removes_the_source(self, driver: StorageDriver) -> None:
        driver.put_content("/uploads/1/data", b"blob")
        driver.move("/uploads/1/data", "/blobs/sha256/ab/abcd/data")
        assert driver.get_content("/blobs/sha256/ab/abcd/data") == b"blob"
        with pytest.raises(PathNotFound):
            driver.stat("/uploads/1/data")

    def test_move_over_existing_replaces_it(self, driver: StorageDriver) -> None:
        driver.put_content("/src", b"new")
        driver.put_content("/dst", b"old, longer")
        driver.move("/src", "/dst")
        assert driver.get_content("/dst") == b"new"
        assert driver.list("/") == ["/dst"]

    def test_move_is_atomic_for_readers(self, driver: StorageDriver) -> None:
        data_a, data_b = b"a" * 200_000, b"b" * 200_000
        driver.put_content("/target", data_a)
        seen: set[bytes] = set()
        stop = threading.Event()

        def read() -> None:
            while not stop.is_set():
                seen.add(driver.get_content("/target"))

        t = threading.Thread(target=read)
        t.start()
        try:
            for i in range(20):
                driver.put_content(f"/stage/{i}", data_b if i % 2 == 0 else data_a)
                driver.move(f"/stage/{i}", "/target")
        finally:
            stop.set()
            t.join()
        assert seen <= {data_a, data_b}

    def test_move_of_missing_source_is_path_not_found(self, driver: StorageDriver) -> None:
        with pytest.raises(PathNotFound):
            driver.move("/missing", "/dst")

    def test_delete_is_recursive(self, driver: StorageDriver) -> None:
        for p in ("/r/a/1", "/r/a/b/2", "/r/keep"):
            driver.put_content(p, b"x")
        driver.delete("/r/a")
        assert driver.list("/r") == ["/r/keep"]
        driver.delete("/r/keep")
        assert driver.list("/r") == []
        with pytest.raises(PathNotFound):
            driver.delete("/r/a")

    # -- walk -------------------------------------------------------------------------

    def test_walk_visits_everything_depth_first_in_order(self, driver: StorageDriver) -> None:
        for p in ("/w/b/2", "/w/a/1", "/w/a/z/3", "/w/c"):
            driver.put_content(p, b"x")
        seen: list[FileInfo] = []
        driver.walk("/w", seen.append)
        assert [(i.path, i.is_dir) for i in seen] == [
            ("/w/a", True), ("/w/a/1", False), ("/w/a/z", True), ("/w/a/z/3", False),
            ("/w/b", True), ("/w/b/2", False), ("/w/c", False)]

    def test_walk_skip_dir_prunes(self, driver: StorageDriver) -> None:
        for p in ("/w/a/1", "/w/b/1", "/w/b/2", "/w/b/3", "/w/c"):
            driver.put_content(p, b"x")
        seen: list[str] = []

        def fn(info: FileInfo) -> None:
            seen.append(info.path)
            if info.path in ("/w/a", "/w/b/2"):
                raise SkipDir

        driver.walk("/w", fn)
        assert seen == ["/w/a", "/w/b", "/w/b/1", "/w/b/2", "/w/c"]

    def test_walk_of_missing_path_is_path_not_found(self, driver: StorageDriver) -> None:
        with pytest.raises(PathNotFound):
            driver.walk("/missing", lambda info: None)

    # -- paths ------------------------------------------------------------------------

    @pytest.mark.parametrize("path", INVALID_PATHS)
    def test_invalid_paths_are_refused_everywhere(self, driver: StorageDriver,
                                                  path: str) -> None:
        calls = [lambda: driver.get_content(path), lambda: driver.put_content(path, b"x"),
                 lambda: driver.reader(path), lambda: driver.writer(path),
                 lambda: driver.delete(path), lambda: driver.move(path, "/ok"),
                 lambda: driver.move("/ok", path)]
        if path != "/":
            calls += [lambda: driver.stat(path), lambda: driver.list(path)]
        driver.put_content("/ok", b"x")
        for call in calls:
            with pytest.raises(InvalidPath):
                call()
        assert driver.get_content("/ok") == b"x"
