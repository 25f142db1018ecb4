"""images, pull, push, tag, rmi, save, load, history, image inspect, image prune."""

from __future__ import annotations

import os
import sys

from dockyard.cli.flags import Command, CommandError, Flag
from dockyard.cli.formatting import (
    go_time,
    human_size,
    since,
    truncate_id,
    write_formatted,
)
from dockyard.cli.references import familiar_name, normalize, split, with_default_tag
from dockyard.client.api import quote

IMAGE_HEADERS = {"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
                 "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
                 "Containers": "CONTAINERS", "SharedSize": "SHARED SIZE",
                 "UniqueSize": "UNIQUE SIZE", "VirtualSize": "VIRTUAL SIZE"}


def _local_time(ts: float) -> str:
    import time

    t = time.localtime(ts)
    return time.strftime("%Y-%m-%d %H:%M:%S %z %Z", t)


class ImageRow:
    """An image as docker's image formatter presents it (one row per repository:tag)."""

    GO_TYPE = "*formatter.imageContext"

    def __init__(self, img: dict, repo: str, tag: str, digest: str, trunc: bool) -> None:
        self.img, self.repo, self.tag, self.digest, self.trunc = img, repo, tag, digest, trunc

    def ID(self) -> str:
        return truncate_id(self.img["Id"]) if self.trunc else self.img["Id"]

    def Repository(self) -> str:
        return self.repo

    def Tag(self) -> str:
        return self.tag

    def Digest(self) -> str:
        return self.digest

    def CreatedSince(self) -> str:
        created = self.img.get("Created", 0)
        return since(created) if created > 0 else "N/A"

    def CreatedAt(self) -> str:
        return _local_time(self.img.get("Created", 0))

    def Size(self) -> str:
        return human_size(self.img.get("Size", 0))

    def Containers(self) -> str:
        n = self.img.get("Containers", -1)
        return "N/A" if n == -1 else str(n)

    def VirtualSize(self) -> str:
        return human_size(self.img.get("VirtualSize", self.img.get("Size", 0)), 4)

    def SharedSize(self) -> str:
        n = self.img.get("SharedSize", -1)
        return "N/A" if n == -1 else human_size(n, 4)

    def UniqueSize(self) -> str:
        n = self.img.get("SharedSize", -1)
        return "N/A" if n == -1 else human_size(self.img.get("Size", 0) - n, 4)

    def to_json(self) -> dict:
        keys = ["Containers", "CreatedAt", "CreatedSince", "Digest", "ID", "Repository",
                "SharedSize", "Size", "Tag", "UniqueSize", "VirtualSize"]
        return {k: getattr(self, k)() for k in keys}


def image_rows(images: list[dict], trunc: bool, digests: bool) -> list[ImageRow]:
    rows: list[ImageRow] = []
    for img in images:
        tags = [t for t in img.get("RepoTags") or [] if t != "<none>:<none>"]
        dgs = [d for d in img.get("RepoDigests") or [] if d != "<none>@<none>"]
        if not tags and not dgs:
            rows.append(ImageRow(img, "<none>", "<none>", "<none>", trunc))
            continue
        repo_tags: dict[str, list[str]] = {}
        for ref in tags:
            _, _, tag, _ = split(ref)
            if tag:
                repo_tags.setdefault(familiar_name(ref), []).append(tag)
        repo_digests: dict[str, list[str]] = {}
        for ref in dgs:
            _, _, _, digest = split(ref)
            if digest:
                repo_digests.setdefault(familiar_name(ref), []).append(digest)
        for repo, repo_tag_list in repo_tags.items():
            ds = repo_digests.pop(repo, [])  # not also a row of its own
            if not digests:
                ds = []
            for tag in repo_tag_list:
                if not ds:
                    rows.append(ImageRow(img, repo, tag, "<none>", trunc))
                for d in ds:
                    rows.append(ImageRow(img, repo, tag, d, trunc))
        for repo, ds in repo_digests.items():
            if digests:
                rows += [ImageRow(img, repo, "<none>", d, trunc) for d in ds]
            else:
                rows.append(ImageRow(img, repo, "<none>", "", trunc))
    return rows


def filters_of(items: list[str]) -> dict:
    from dockyard.cli.flags import parse_filters

    return parse_filters(items) or {}


IMAGES = Command("images", "[OPTIONS] [REPOSITORY[:TAG]]", "List images",
                 [Flag("a", "all", bool), Flag(None, "digests", bool), Flag("f", "filter", list),
                  Flag(None, "format", str), Flag(None, "no-trunc", bool),
                  Flag("q", "quiet", bool), Flag(None, "tree", bool)], max_args=1)


def images(cli, argv: list[str], name: str = "images") -> int:
    opts, args = IMAGES.parse(argv)
    filters = filters_of(opts.filter)
    if args:
        filters.setdefault("reference", []).append(args[0])
    found = cli.client.get("/images/json", {"all": opts.all or None,
                                            "filters": filters or None})
    rows = image_rows(found, not opts.no_trunc, opts.digests)
    fmt = opts.format
    if opts.quiet:
        fmt = "{{.ID}}"
    elif not fmt:
        from dockyard.client.auth import load_config

        fmt = load_config().get("imagesFormat") or None
    default = ("table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t"
               "{{.Size}}" if opts.digests else
               "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}")
    write_formatted(cli.out, fmt, rows, default, IMAGE_HEADERS)
    return 0


images.spec = IMAGES

PULL = Command("pull", "[OPTIONS] NAME[:TAG|@DIGEST]",
               "Download an image from a registry",
               [Flag("a", "all-tags", bool), Flag(None, "disable-content-trust", bool),
                Flag(None, "platform", str), Flag("q", "quiet", bool)], min_args=1, max_args=1)


def pull_image(cli, ref: str, quiet: bool = False, platform: str | None = None,
               all_tags: bool = False, out=None) -> str:
    """Pull `ref` (showing docker's progress on `out`); the normalised reference pulled."""
    from dockyard.cli.jsonmessage import display_stream
    from dockyard.client.auth import registry_auth_header

    out = out or cli.out
    full = normalize(ref)
    domain, path, tag, digest = split(full)
    if not tag and not digest and not all_tags:
        tag = "latest"
        if not quiet:
            out.write("Using default tag: latest\n")
    query = {"fromImage": f"{domain}/{path}", "tag": digest or tag or None,
             "platform": platform}
    stream = cli.client.json_stream("POST", "/images/create", query,
                                    headers=registry_auth_header(full))
    sink = open(os.devnull, "w") if quiet else out  # noqa: SIM115 - closed below
    try:
        terminal = not quiet and hasattr(out, "isatty") and out.isatty()
        display_stream(stream, sink, terminal)
    finally:
        if quiet:
            sink.close()
    return f"{domain}/{path}" + (f"@{digest}" if digest else f":{tag}" if tag else "")


def pull(cli, argv: list[str], name: str = "pull") -> int:
    opts, args = PULL.parse(argv)
    ref = args[0]
    from dockyard.cli.references import is_valid

    if not is_valid(ref):
        raise CommandError(f"invalid reference format: repository name ({ref.split(':')[0]}) "
                           "must be lowercase")
    pulled = pull_image(cli, ref, opts.quiet, opts.platform, opts.all_tags)
    cli.out.write(pulled + "\n")
    return 0


pull.spec = PULL

PUSH = Command("push", "[OPTIONS] NAME[:TAG]", "Upload an image to a registry",
               [Flag("a", "all-tags", bool), Flag(None, "disable-content-trust", bool),
                Flag(None, "platform", str), Flag("q", "quiet", bool)], min_args=1, max_args=1)


def push(cli, argv: list[str], name: str = "push") -> int:
    opts, args = PUSH.parse(argv)
    from dockyard.cli.jsonmessage import display_stream
    from dockyard.client.auth import registry_auth_header

    full = normalize(args[0])
    domain, path, tag, _ = split(full)
    if not tag and not opts.all_tags:
        tag = "latest"
        if not opts.quiet:
            cli.out.write("Using default tag: latest\n")
    stream = cli.client.json_stream("POST", f"/images/{quote(domain + '/' + path)}/push",
                                    {"tag": tag or None, "platform": opts.platform},
                                    headers=registry_auth_header(full))
    if opts.quiet:
        with open(os.devnull, "w") as sink:
            display_stream(stream, sink, False)
        cli.out.write(f"{domain}/{path}" + (f":{tag}" if tag else "") + "\n")
    else:
        display_stream(stream, cli.out, cli.out.isatty())
    return 0


push.spec = PUSH

TAG = Command("tag", "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
              "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", [], 2, 2)


def tag(cli, argv: list[str], name: str = "tag") -> int:
    _, (source, target) = TAG.parse(argv)
    full = normalize(target)
    domain, path, t, digest = split(full)
    if digest:
        raise CommandError("refusing to create a tag with a digest reference")
    cli.client.post(f"/images/{quote(source)}/tag",
                    {"repo": f"{domain}/{path}", "tag": t or "latest"})
    return 0


tag.spec = TAG

RMI = Command("rmi", "[OPTIONS] IMAGE [IMAGE...]", "Remove one or more images",
              [Flag("f", "force", bool), Flag(None, "no-prune", bool),
               Flag(None, "platform", list)], min_args=1)


def rmi(cli, argv: list[str], name: str = "rmi") -> int:
    opts, args = RMI.parse(argv)
    from dockyard.client.api import APIError

    status = 0
    for ref in args:
        try:
            deleted = cli.client.delete(f"/images/{quote(ref)}",
                                        {"force": opts.force or None,
                                         "noprune": opts.no_prune or None}) or []
        except APIError as e:
            cli.err.write(f"Error response from daemon: {e.message}\n")
            status = 1
            continue
        for item in deleted:
            if item.get("Untagged"):
                cli.out.write(f"Untagged: {item['Untagged']}\n")
            if item.get("Deleted"):
                cli.out.write(f"Deleted: {item['Deleted']}\n")
    return status


rmi.spec = RMI

SAVE = Command("save", "[OPTIONS] IMAGE [IMAGE...]",
               "Save one or more images to a tar archive (streamed to STDOUT by default)",
               [Flag("o", "output", str), Flag(None, "platform", list)], min_args=1)


def save(cli, argv: list[str], name: str = "save") -> int:
    opts, args = SAVE.parse(argv)
    if not opts.output and sys.stdout.isatty():
        raise CommandError("cowardly refusing to save to a terminal. Use the -o flag or "
                           "redirect")
    query = "&".join(f"names={quote(a)}" for a in args)
    from dockyard.cli.files import save_response

    save_response(cli.client.request("GET", "/images/get?" + query), opts.output)
    return 0


save.spec = SAVE

LOAD = Command("load", "[OPTIONS]", "Load an image from a tar archive or STDIN",
               [Flag("i", "input", str), Flag("q", "quiet", bool),
                Flag(None, "platform", list)], max_args=0)


def load(cli, argv: list[str], name: str = "load") -> int:
    opts, _ = LOAD.parse(argv)
    from dockyard.cli.jsonmessage import display_stream

    if opts.input:
        source = open(opts.input, "rb")  # noqa: SIM115 - closed below
    else:
        if sys.stdin.isatty():
            raise CommandError("requested load from stdin, but stdin is empty")
        source = sys.stdin.buffer
    try:
        stream = cli.client.json_stream("POST", "/images/load", {"quiet": opts.quiet or None},
                                        headers={"Content-Type": "application/x-tar"},
                                        source=source)
        display_stream(stream, cli.out, not opts.quiet and cli.out.isatty())
    finally:
        if opts.input:
            source.close()
    return 0


load.spec = LOAD

HISTORY = Command("history", "[OPTIONS] IMAGE", "Show the history of an image",
                  [Flag(None, "format", str), Flag("H", "human", bool, default=True),
                   Flag(None, "no-trunc", bool), Flag("q", "quiet", bool),
                   Flag(None, "platform", str)], 1, 1)


class HistoryRow:
    def __init__(self, h: dict, trunc: bool, human: bool) -> None:
        self.h, self.trunc, self.human = h, trunc, human

    def ID(self) -> str:
        i = self.h.get("Id", "")
        if i == "<missing>":
            return i
        return truncate_id(i) if self.trunc else i

    def CreatedSince(self) -> str:
        c = self.h.get("Created", 0)
        if not self.human:
            return go_time(c)
        return since(c) if c > 0 else "N/A"

    def CreatedAt(self) -> str:
        return _local_time(self.h.get("Created", 0))

    def CreatedBy(self) -> str:
        from dockyard.cli.formatting import ellipsis

        by = self.h.get("CreatedBy", "").replace("\t", " ")
        return ellipsis(by, 45) if self.trunc else by

    def Size(self) -> str:
        s = self.h.get("Size", 0)
        return human_size(s) if self.human else str(s)

    def Comment(self) -> str:
        return self.h.get("Comment", "")

    def to_json(self) -> dict:
        return {k: getattr(self, k)() for k in ("Comment", "CreatedAt", "CreatedBy",
                                                 "CreatedSince", "ID", "Size")}


def history(cli, argv: list[str], name: str = "history") -> int:
    opts, (ref,) = HISTORY.parse(argv)
    items = cli.client.get(f"/images/{quote(ref)}/history")
    rows = [HistoryRow(h, not opts.no_trunc, opts.human) for h in items]
    fmt = "{{.ID}}" if opts.quiet else opts.format
    write_formatted(cli.out, fmt, rows,
                    "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
                    {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                     "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"})
    return 0


history.spec = HISTORY

INSPECT_IMAGE = Command("image inspect", "[OPTIONS] IMAGE [IMAGE...]",
                        "Display detailed information on one or more images",
                        [Flag("f", "format", str), Flag(None, "platform", str)], min_args=1)


def inspect_image(cli, argv: list[str], name: str = "image inspect") -> int:
    opts, args = INSPECT_IMAGE.parse(argv)
    from dockyard.cli.inspection import print_inspected

    def get(ref: str):
        return cli.client.get(f"/images/{quote(ref)}/json")

    return print_inspected(cli, args, [get], opts.format, None)


inspect_image.spec = INSPECT_IMAGE

PRUNE = Command("image prune", "[OPTIONS]", "Remove unused images",
                [Flag("a", "all", bool), Flag(None, "filter", list), Flag("f", "force", bool)],
                max_args=0)


def prune(cli, argv: list[str], name: str = "image prune") -> int:
    opts, _ = PRUNE.parse(argv)
    if not opts.force:
        cli.out.write("WARNING! This will remove all " + (
            "images without at least one container associated to them" if opts.all
            else "dangling images") + ".\nAre you sure you want to continue? [y/N] ")
        cli.out.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    filters = filters_of(opts.filter)
    filters["dangling"] = ["false" if opts.all else "true"]
    r = cli.client.post("/images/prune", {"filters": filters}) or {}
    print_deleted_images(cli, r)
    cli.out.write(f"Total reclaimed space: {human_size(r.get('SpaceReclaimed', 0) or 0)}\n")
    return 0


def print_deleted_images(cli, answer: dict) -> None:
    """The "Deleted Images:" block of image prune and system prune."""
    if answer.get("ImagesDeleted"):
        cli.out.write("Deleted Images:\n")
        for d in answer["ImagesDeleted"]:
            for k, v in d.items():
                cli.out.write(f"{k.lower()}: {v}\n")
        cli.out.write("\n")


prune.spec = PRUNE


def with_tag(ref: str) -> str:
    return with_default_tag(ref)[0]

IMPORT = Command("import", "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
                 "Import the contents from a tarball to create a filesystem image",
                 [Flag("c", "change", list), Flag("m", "message", str),
                  Flag(None, "platform", str)], 1, 2)


def import_(cli, argv: list[str], name: str = "import") -> int:
    opts, args = IMPORT.parse(argv)
    from dockyard.cli.jsonmessage import display_stream

    source, ref = args[0], (args[1] if len(args) > 1 else "")
    query: dict = {"fromSrc": "-", "message": opts.message or None,
                   "platform": opts.platform}
    if "://" in source:
        query["fromSrc"] = source
    if ref:
        domain, path, tag, _ = split(normalize(ref))
        query.update(repo=f"{domain}/{path}", tag=tag or None)
    target = "/images/create?" + "&".join(
        f"{k}={quote(str(v))}" for k, v in query.items() if v is not None)
    target += "".join(f"&changes={quote(c)}" for c in opts.change)
    if "://" in source:
        stream = cli.client.json_stream("POST", target)
        display_stream(stream, cli.out, False)
        return 0
    f = sys.stdin.buffer if source == "-" else open(source, "rb")  # noqa: SIM115
    try:
        stream = cli.client.json_stream("POST", target, source=f,
                                        headers={"Content-Type": "application/x-tar"})
        display_stream(stream, cli.out, False)
    finally:
        if f is not sys.stdin.buffer:
            f.close()
    return 0


import_.spec = IMPORT

SEARCH = Command("search", "[OPTIONS] TERM", "Search Docker Hub for images",
                 [Flag("f", "filter", list), Flag(None, "format", str),
                  Flag(None, "limit", int), Flag(None, "no-trunc", bool)], 1, 1)


class SearchRow:
    GO_TYPE = "*formatter.searchContext"

    def __init__(self, r: dict, trunc: bool) -> None:
        self.r, self.trunc = r, trunc

    def Name(self) -> str:
        return self.r.get("name", "")

    def Description(self) -> str:
        from dockyard.cli.formatting import ellipsis

        d = self.r.get("description", "").replace("\n", " ").replace("\r", " ")
        return ellipsis(d, 45) if self.trunc else d

    def StarCount(self) -> str:
        return str(self.r.get("star_count", 0))

    def IsOfficial(self) -> str:
        return "[OK]" if self.r.get("is_official") else ""

    def IsAutomated(self) -> str:
        return "[OK]" if self.r.get("is_automated") else ""

    def to_json(self) -> dict:
        return {k: getattr(self, k)() for k in ("Description", "IsAutomated", "IsOfficial",
                                                 "Name", "StarCount")}


def search(cli, argv: list[str], name: str = "search") -> int:
    opts, (term,) = SEARCH.parse(argv)
    from dockyard.client.auth import registry_auth_header

    results = cli.client.get("/images/search", {
        "term": term, "limit": opts.limit, "filters": filters_of(opts.filter) or None},
        headers=registry_auth_header(term)) or []
    write_formatted(cli.out, opts.format, [SearchRow(r, not opts.no_trunc) for r in results],
                    "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}",
                    {"Name": "NAME", "Description": "DESCRIPTION", "StarCount": "STARS",
                     "IsOfficial": "OFFICIAL", "IsAutomated": "AUTOMATED"})
    return 0


search.spec = SEARCH
