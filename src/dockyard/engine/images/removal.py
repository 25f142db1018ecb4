"""DELETE /images/{name} and POST /images/prune, with dockerd's rules and words.

    rmi <name>        untag that name; the image goes with its last tag (and its digest
                      names), unless a container uses it (409 without force)
    rmi <id>          every name and the image; 409 when it has several repositories and
                      no force, or a container uses it
    prune             dangling images (no tag) by default; dangling=false: every image
                      no container uses

Answers: [{"Untagged": "busybox:latest"}, …, {"Deleted": "sha256:…"}].
"""

from __future__ import annotations

from typing import Any

from dockyard.engine.errors import Conflict
from dockyard.engine.images import filters as filters_mod
from dockyard.engine.images import views
from dockyard.engine.images.service import parse_name
from dockyard.image import reference
from dockyard.image.errors import ImageError


def short(image_id: str) -> str:
    return image_id.partition(":")[2][:12]


async def users(daemon: Any, image_id: str) -> list[str]:
    """IDs of the containers using the image (none when containers cannot say)."""
    ask = getattr(daemon.containers, "image_users", None)
    if ask is None:
        return []
    found = ask(image_id)
    if hasattr(found, "__await__"):
        found = await found
    return [c if isinstance(c, str) else str(getattr(c, "id", c)) for c in found or []]


def _familiar(name: str) -> str:
    ref = parse_name(name)
    return ref.familiar() if ref is not None else name


def _names_by_request(image: Any, asked: str) -> list[str] | None:
    """The image's names that `asked` spells (None: it was an ID or ID prefix)."""
    try:
        ref = reference.parse(asked)
    except ImageError:
        return None
    full = str(ref if (ref.tag or ref.digest) else ref.with_default_tag())
    same = [n for n in image.names if n == full]
    if same:
        return same
    if ref.digest:  # repo@digest of the target: the names of that repository
        return [n for n in image.names
                if (r := parse_name(n)) is not None and r.name == ref.name] or None
    return None


async def remove(service: Any, asked: str, *, force: bool = False,
                 noprune: bool = False) -> list[dict[str, str]]:
    daemon = service.daemon
    image = await service.with_all_names(await service.get(asked))
    names = _names_by_request(image, asked)
    tags = [n for n in image.names if _is_tag(n)]
    out: list[dict[str, str]] = []
    if names is not None:
        rest_tags = [n for n in tags if n not in names]
        if rest_tags:  # only a name goes
            for n in names:
                await service.delete_name(n)
                out.append({"Untagged": _familiar(n)})
                daemon.events.publish("image", "untag", image.id, {"name": image.id})
            return out
        in_use = await users(daemon, image.id)
        if in_use and not force:
            raise Conflict(f'conflict: unable to remove repository reference "{asked}" (must '
                           f"force) - container {in_use[0][:12]} is using its referenced "
                           f"image {short(image.id)}")
    else:
        repos = {reference.parse(n).name for n in tags}
        if len(repos) > 1 and not force:
            raise Conflict(f"conflict: unable to delete {short(image.id)} (must be forced) - "
                           "image is referenced in multiple repositories")
        in_use = await users(daemon, image.id)
        if in_use and not force:
            raise Conflict(f"conflict: unable to delete {short(image.id)} (must be forced) - "
                           f"image is being used by stopped container {in_use[0][:12]}")
    return await delete_image(service, image, out)


async def delete_image(service: Any, image: Any,
                       out: list[dict[str, str]]) -> list[dict[str, str]]:
    daemon = service.daemon
    ordered = sorted(image.names, key=lambda n: (not _is_tag(n), n))
    for i, n in enumerate(ordered):
        await service.delete_name(n, sync=i == len(ordered) - 1)
        if parse_name(n) is not None:
            out.append({"Untagged": _familiar(n)})
            daemon.events.publish("image", "untag", image.id, {"name": image.id})
    for digest_name in views.repo_digests(image):
        entry = {"Untagged": digest_name}
        if entry not in out:
            out.append(entry)
    out.append({"Deleted": image.id})
    daemon.events.publish("image", "delete", image.id, {"name": image.id})
    return out


def _is_tag(name: str) -> bool:
    ref = parse_name(name)
    return ref is not None and bool(ref.tag) and not ref.digest


async def prune(service: Any, filters: dict[str, list[str]]) -> dict[str, Any]:
    daemon = service.daemon
    dangling = filters_mod.dangling_value(filters.get("dangling", []))
    dangling = True if dangling is None else dangling
    deleted: list[dict[str, str]] = []
    reclaimed = 0
    from dockyard.build.executor import cache_of

    intermediates = cache_of(daemon).intermediates() if dangling else set()
    for image in await service.list():
        if dangling and (not filters_mod.is_dangling_image(image) or
                         image.id in intermediates):  # they have children: not dangling
            continue
        rest = {k: v for k, v in filters.items() if k != "dangling"}
        if not filters_mod.matches(image, rest):
            continue
        if await users(daemon, image.id):
            continue
        sizes = await service.layer_sizes(image)
        deleted = await delete_image(service, image, deleted)
        reclaimed += views.size(image, sizes)
    daemon.events.publish("image", "prune", "", {"reclaimed": str(reclaimed)})
    return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}
