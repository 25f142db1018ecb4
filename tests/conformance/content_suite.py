"""The content store's conformance suite, run against every Store (containerd's
content/testsuite). An implementation subclasses ContentStoreSuite and provides `make_store`:
a factory whose every call opens the *same* store anew, as a restarted daemon would."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest

from dockyard.image.content.store import Store
from dockyard.image.digest import of_bytes
from dockyard.image.errors import (
    AlreadyExists,
    DigestMismatch,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)

StoreFactory = Callable[[], Store]


def put(store: Store, data: bytes, labels: dict[str, str] | None = None,
        ref: str | None = None) -> str:
    with store.writer(ref or f"put-{of_bytes(data).encoded[:12]}") as w:
        w.write(data)
        return w.commit(len(data), of_bytes(data), labels)


class ContentStoreSuite:
    @pytest.fixture
    def store(self, make_store: StoreFactory) -> Store:
        return make_store()

    # -- write, commit, read ----------------------------------------------------------

    def test_written_blob_reads_back_whole_and_at_offsets(self, store: Store) -> None:
        data = bytes(range(256)) * 1000
        with store.writer("w1", total=len(data)) as w:
            for i in range(0, len(data), 7000):
                w.write(data[i:i + 7000])
            digest = w.commit(len(data), of_bytes(data))
        assert digest == of_bytes(data)
        info = store.info(digest)
        assert (info.digest, info.size) == (digest, len(data))
        reader = store.reader_at(digest)
        try:
            assert reader.size == len(data)
            assert reader.read_at(10, 1000) == data[1000:1010]
            assert reader.read_at(100, len(data) - 5) == data[-5:]
            reader.seek(200)
            buf = bytearray(50)
            assert reader.readinto(buf) == 50 and bytes(buf) == data[200:250]
        finally:
            reader.close()

    def test_commit_without_expected_digest_returns_the_computed_one(self, store: Store) -> None:
        with store.writer("w2") as w:
            w.write(b"hello")
            assert w.digest() == of_bytes(b"hello")
            assert w.commit(None) == of_bytes(b"hello")

    def test_empty_blob_commits(self, store: Store) -> None:
        with store.writer("empty") as w:
            assert w.commit(0, of_bytes(b"")) == of_bytes(b"")
        assert store.info(of_bytes(b"")).size == 0

    def test_blob_is_invisible_until_commit(self, store: Store) -> None:
        with store.writer("w3") as w:
            w.write(b"partial")
            with pytest.raises(NotFound):
                store.info(of_bytes(b"partial"))
            assert store.status("w3").offset == 7

    def test_sha512_expected_digest_picks_the_hasher(self, store: Store) -> None:
        want = of_bytes(b"long hash", "sha512")
        with store.writer("w512", expected=want) as w:
            w.write(b"long hash")
            assert w.digest() == want
            assert w.commit(9, want) == want
        assert store.info(want).size == 9
        with store.reader_at(want) as r:
            assert r.read() == b"long hash"

    def test_commit_verifies_a_digest_of_another_algorithm(self, store: Store) -> None:
        want = of_bytes(b"either", "sha512")
        with store.writer("w-alg") as w:
            w.write(b"either")
            assert w.commit(6, want) == want

    def test_status_reports_total_expected_and_times(self, store: Store) -> None:
        want = of_bytes(b"abcdef")
        with store.writer("w4", expected=want, total=6) as w:
            w.write(b"abc")
            st = w.status()
            assert (st.ref, st.offset, st.total, st.expected) == ("w4", 3, 6, want)
            assert st.started_at <= st.updated_at
            assert st.active
        listed = store.status("w4")
        assert (listed.offset, listed.total, listed.expected, listed.active) == (3, 6, want,
                                                                                 False)

    def test_list_statuses_filters_by_ref(self, store: Store) -> None:
        for ref in ("pull-a", "pull-b", "push-c"):
            with store.writer(ref) as w:
                w.write(b"x")
        assert [s.ref for s in store.list_statuses()] == ["pull-a", "pull-b", "push-c"]
        assert [s.ref for s in store.list_statuses("ref~=^pull-")] == ["pull-a", "pull-b"]
        assert [s.ref for s in store.list_statuses("ref==push-c")] == ["push-c"]

    # -- resume and abort -------------------------------------------------------------

    def test_writer_for_a_closed_ingest_resumes_at_its_offset(self, store: Store) -> None:
        with store.writer("resume", total=11) as w:
            w.write(b"hello ")
        with store.writer("resume") as w:
            assert w.status().offset == 6
            assert w.digest() == of_bytes(b"hello ")
            w.write(b"world")
            assert w.commit(11, of_bytes(b"hello world")) == of_bytes(b"hello world")

    def test_resume_survives_reopening_the_store(self, make_store: StoreFactory) -> None:
        with make_store().writer("restart") as w:
            w.write(b"before ")
        with make_store().writer("restart") as w:
            assert w.status().offset == 7
            w.write(b"after")
            w.commit(12, of_bytes(b"before after"))

    def test_resume_with_a_different_total_is_refused(self, store: Store) -> None:
        with store.writer("totals", total=10) as w:
            w.write(b"abc")
        with pytest.raises(InvalidArgument, match="total 99 differs"):
            store.writer("totals", total=99)

    def test_abort_discards_the_ingest(self, store: Store) -> None:
        with store.writer("gone") as w:
            w.write(b"abc")
        store.abort("gone")
        with pytest.raises(NotFound, match="'gone'"):
            store.status("gone")
        with store.writer("gone") as w:
            assert w.status().offset == 0

    def test_abort_of_an_unknown_ref_is_not_found(self, store: Store) -> None:
        with pytest.raises(NotFound, match="nope"):
            store.abort("nope")

    def test_abort_while_a_writer_holds_the_ref_is_unavailable(self, store: Store) -> None:
        with store.writer("busy") as w:
            w.write(b"abc")
            with pytest.raises(Unavailable, match="busy"):
                store.abort("busy")

    # -- one writer per ref -----------------------------------------------------------

    def test_second_writer_for_a_ref_is_refused(self, store: Store) -> None:
        with store.writer("locked") as w:
            with pytest.raises(Unavailable, match="'locked' locked"):
                store.writer("locked")
            w.write(b"x")
        with store.writer("locked") as w:  # free again once closed
            assert w.status().offset == 1

    def test_second_writer_from_another_store_instance_is_refused(
            self, make_store: StoreFactory) -> None:
        first, second = make_store(), make_store()
        with first.writer("shared"), pytest.raises(Unavailable):
            second.writer("shared")

    # -- verification -----------------------------------------------------------------

    def test_digest_mismatch_fails_the_commit_and_keeps_the_ingest(self, store: Store) -> None:
        wrong = of_bytes(b"something else")
        with store.writer("bad") as w:
            w.write(b"actual")
            with pytest.raises(DigestMismatch) as e:
                w.commit(6, wrong)
        assert f"expected digest {wrong}" in str(e.value)
        assert f"got {of_bytes(b'actual')}" in str(e.value)
        with pytest.raises(NotFound):
            store.info(of_bytes(b"actual"))
        with pytest.raises(NotFound):
            store.info(wrong)
        assert store.status("bad").offset == 6
        store.abort("bad")

    def test_size_mismatch_fails_the_commit(self, store: Store) -> None:
        with store.writer("short") as w:
            w.write(b"abc")
            with pytest.raises(DigestMismatch, match="expected size 4, got 3"):
                w.commit(4, of_bytes(b"abc"))
        assert isinstance(DigestMismatch("x"), InvalidArgument)
        with pytest.raises(NotFound):
            store.info(of_bytes(b"abc"))

    def test_expected_digest_given_when_opening_is_checked_at_commit(self, store: Store) -> None:
        with store.writer("announced", expected=of_bytes(b"right")) as w:
            w.write(b"wrong")
            with pytest.raises(DigestMismatch):
                w.commit(5)

    def test_writer_is_closed_after_commit(self, store: Store) -> None:
        with store.writer("once") as w:
            w.write(b"a")
            w.commit(1)
            with pytest.raises(FailedPrecondition, match="once"):
                w.write(b"b")

    def test_committing_existing_content_is_already_exists_and_harmless(
            self, store: Store) -> None:
        digest = put(store, b"dup", {"keep": "me"})
        with store.writer("dup-2") as w:
            w.write(b"dup")
            with pytest.raises(AlreadyExists, match=digest):
                w.commit(3, digest, {"other": "label"})
        assert store.info(digest).labels == {"keep": "me"}
        with store.reader_at(digest) as r:
            assert r.read() == b"dup"
        with pytest.raises(NotFound):
            store.status("dup-2")

    def test_writer_for_existing_expected_content_is_already_exists(self, store: Store) -> None:
        digest = put(store, b"there")
        with pytest.raises(AlreadyExists, match=digest):
            store.writer("again", expected=digest)

    def test_empty_ref_is_invalid(self, store: Store) -> None:
        with pytest.raises(InvalidArgument):
            store.writer("")

    # -- labels, walk, delete ---------------------------------------------------------

    def test_commit_labels_are_recorded(self, store: Store) -> None:
        digest = put(store, b"labelled", {"a": "1", "containerd.io/gc.root": "x"})
        assert store.info(digest).labels == {"a": "1", "containerd.io/gc.root": "x"}

    def test_update_replaces_labels_or_sets_named_ones(self, store: Store) -> None:
        digest = put(store, b"upd", {"a": "1", "b": "2"})
        assert store.update(digest, {"c": "3"}).labels == {"c": "3"}
        info = store.update(digest, {"d": "4"}, ["labels.d", "labels.c"])
        assert info.labels == {"d": "4"}
        assert store.update(digest, {"e": "5"}, ["labels"]).labels == {"e": "5"}
        assert store.info(digest).labels == {"e": "5"}
        assert store.info(digest).updated_at >= store.info(digest).created_at

    def test_update_of_anything_but_labels_is_invalid(self, store: Store) -> None:
        digest = put(store, b"immutable")
        with pytest.raises(InvalidArgument, match="size"):
            store.update(digest, {}, ["size"])

    def test_walk_filters_by_label_and_digest(self, store: Store) -> None:
        a = put(store, b"a", {"kind": "layer", "team": "x"})
        b = put(store, b"b", {"kind": "config"})
        c = put(store, b"c")
        assert {i.digest for i in store.walk()} == {a, b, c}
        assert [i.digest for i in store.walk("labels.kind==layer")] == [a]
        assert {i.digest for i in store.walk("labels.kind")} == {a, b}
        assert {i.digest for i in store.walk("labels.kind!=layer")} == {b, c}
        assert [i.digest for i in store.walk("labels.kind==layer,labels.team==y")] == []
        assert {i.digest for i in store.walk("labels.kind==config", "digest==" + c)} == {b, c}
        assert [i.digest for i in store.walk(f"digest~=^{a[:16]}")] == [a]
        assert [i.digest for i in store.walk('labels."kind"=="layer"')] == [a]

    def test_walk_with_a_malformed_filter_is_invalid(self, store: Store) -> None:
        with pytest.raises(InvalidArgument):
            list(store.walk("labels.a==b,,"))

    def test_delete_removes_the_blob(self, store: Store) -> None:
        digest = put(store, b"doomed", {"x": "y"})
        store.delete(digest)
        for call in (store.info, store.reader_at, store.delete):
            with pytest.raises(NotFound, match=digest):
                call(digest)
        assert list(store.walk()) == []
        assert put(store, b"doomed") == digest  # and it can come back
        assert store.info(digest).labels == {}

    def test_unknown_digest_is_not_found_naming_it(self, store: Store) -> None:
        missing = of_bytes(b"never written")
        with pytest.raises(NotFound, match=missing):
            store.info(missing)
        with pytest.raises(NotFound, match=missing):
            store.reader_at(missing)
        with pytest.raises(NotFound, match=missing):
            store.update(missing, {"a": "b"})

    def test_malformed_digest_is_invalid(self, store: Store) -> None:
        with pytest.raises(InvalidArgument):
            store.info("sha256:nothex")
        with pytest.raises(InvalidArgument):
            store.writer("r", expected="md5:abc")

    def test_reader_reads_large_blobs_through_a_buffered_wrapper(self, store: Store) -> None:
        data = b"0123456789" * 300_000
        digest = put(store, data)
        reader = store.reader_at(digest)
        with io.BufferedReader(reader) as buffered:  # type: ignore[type-var]
            assert buffered.read() == data
