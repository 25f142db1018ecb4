from __future__ import annotations

import pytest

from dockyard.distribution import scopes
from dockyard.distribution.errors import ChallengeError
from dockyard.distribution.scopes import Scope


@pytest.mark.parametrize(("text", "want"), [
    ("repository:library/busybox:pull", Scope("repository", "library/busybox", ("pull",))),
    ("repository:user/app:push,pull", Scope("repository", "user/app", ("pull", "push"))),
    ("repository(plugin):vieux/sshfs:pull",
     Scope("repository", "vieux/sshfs", ("pull",), "plugin")),
    ("registry:catalog:*", Scope("registry", "catalog", ("*",))),
    ("repository:a:delete,push,pull", Scope("repository", "a", ("pull", "push", "delete"))),
    ("repository:host:5000/app:pull", Scope("repository", "host:5000/app", ("pull",))),
])
def test_parse(text: str, want: Scope) -> None:
    assert scopes.parse(text) == want


@pytest.mark.parametrize(("scope", "text"), [
    (scopes.repository("library/busybox"), "repository:library/busybox:pull"),
    (scopes.repository("a/b", "push", "pull"), "repository:a/b:pull,push"),
    (scopes.repository("a", "pull", resource_class="plugin"), "repository(plugin):a:pull"),
    (scopes.catalog(), "registry:catalog:*"),
    (Scope("repository", "a", ("zeta", "pull", "alpha")), "repository:a:pull,alpha,zeta"),
])
def test_text(scope: Scope, text: str) -> None:
    assert str(scope) == text
    assert scopes.parse(text) == scope


@pytest.mark.parametrize("text", [
    "", "repository", "repository:a", "repository::pull", "repository:a:",
    ":a:pull", "Repository:a:pull", "repository(:a:pull", "repository:a:pull,,push",
    "repository:a:PULL",
])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ChallengeError, match="invalid scope"):
        scopes.parse(text)


def test_parse_all_splits_on_spaces() -> None:
    assert scopes.parse_all("repository:a:pull  repository:b:push ") == [
        scopes.repository("a"), scopes.repository("b", "push")]
    assert scopes.parse_all("") == []


def test_merge_unions_actions_per_resource_and_sorts() -> None:
    merged = scopes.merge([
        "repository:b:pull", scopes.repository("a", "push"), "repository:a:pull",
        "repository(plugin):a:pull", "registry:catalog:*", "repository:b:pull",
    ])
    assert [str(s) for s in merged] == [
        "registry:catalog:*", "repository(plugin):a:pull", "repository:a:pull,push",
        "repository:b:pull"]
    assert scopes.merge([]) == []
