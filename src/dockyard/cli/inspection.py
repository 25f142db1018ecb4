"""inspect, container inspect: docker's JSON list (four-space indentation) or a template
executed with missingkey=error, then the misses."""

from __future__ import annotations

from dockyard.cli.flags import Command, CommandError, Flag
from dockyard.client.api import APIError, quote

INSPECT = Command("inspect", "[OPTIONS] NAME|ID [NAME|ID...]",
                  "Return low-level information on Docker objects",
                  [Flag("f", "format", str), Flag("s", "size", bool), Flag(None, "type", str)],
                  min_args=1)


def print_inspected(cli, refs: list[str], getters: list, fmt: str | None,
                    missing: str | None) -> int:
    """docker inspect's output: a JSON list (or `fmt` per object), then the misses (in the
    daemon's words when `missing` is None)."""
    from dockyard.cli.template import Template, TemplateError

    t = None
    if fmt:
        try:
            t = Template(fmt.replace("\\t", "\t").replace("\\n", "\n"), strict=True)
        except TemplateError as e:
            raise CommandError(f"template parsing error: {e}", 64) from None
    found, errors = [], []
    for ref in refs:
        for get in getters:
            try:
                found.append(get(ref))
                break
            except APIError as e:
                if e.status != 404 or missing is None:
                    errors.append(f"Error response from daemon: {e.message}")
                    break
        else:
            errors.append(f"Error: {missing}: {ref}")
    if t is not None:
        for obj in found:
            try:
                cli.out.write(t.render(obj) + "\n")
            except TemplateError as e:
                cli.out.write("\n")
                raise CommandError(f"template parsing error: {e}") from None
    else:
        from dockyard.cli.jsonout import indent

        cli.out.write(indent(found) + "\n")
    for e in errors:
        cli.err.write(e + "\n")
    return 1 if errors else 0


def inspect(cli, argv: list[str], name: str = "inspect") -> int:
    opts, args = INSPECT.parse(argv)
    c = cli.client
    kinds = {
        "container": lambda r: c.get(f"/containers/{quote(r)}/json",
                                     {"size": opts.size or None}),
        "image": lambda r: c.get(f"/images/{quote(r)}/json"),
        "volume": lambda r: c.get(f"/volumes/{quote(r)}"),
        "network": lambda r: c.get(f"/networks/{quote(r)}"),
    }
    if opts.type:
        if opts.type not in kinds:
            raise CommandError(f'"{opts.type}" is not a valid value for --type')
        getters = [kinds[opts.type]]
    else:
        getters = list(kinds.values())
    return print_inspected(cli, args, getters, opts.format, "No such object")


inspect.spec = INSPECT

INSPECT_CONTAINER = Command("container inspect", "[OPTIONS] CONTAINER [CONTAINER...]",
                            "Display detailed information on one or more containers",
                            [Flag("f", "format", str), Flag("s", "size", bool)], min_args=1)


def inspect_container(cli, argv: list[str], name: str = "container inspect") -> int:
    opts, args = INSPECT_CONTAINER.parse(argv)
    return print_inspected(cli, args, [lambda r: cli.client.get(
        f"/containers/{quote(r)}/json", {"size": opts.size or None})], opts.format,
        None)


inspect_container.spec = INSPECT_CONTAINER
