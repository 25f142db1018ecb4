"""Docker's output: `--format` (table, json, a Go template), tab-aligned tables like Go's
text/tabwriter as docker configures it (minwidth 10, padding 3), sizes and durations as
go-units prints them."""

from __future__ import annotations

import time

from dockyard.units import bytes_size, human_duration  # noqa: F401  (the CLI's names)
from dockyard.units import human_size as _human_size


def tabwrite(lines: list[str], minwidth: int = 10, padding: int = 3) -> str:
    """Align tab-terminated cells into columns; the text after a line's last tab is not a
    cell and is not padded (Go's tabwriter with docker's settings)."""
    rows = [line.split("\t") for line in lines]
    widths: list[int] = []
    for cells in rows:
        for j, cell in enumerate(cells[:-1]):
            w = max(len(cell) + padding, minwidth)
            if j >= len(widths):
                widths.append(w)
            elif w > widths[j]:
                widths[j] = w
    out = []
    for cells in rows:
        out.append("".join(c.ljust(widths[j]) for j, c in enumerate(cells[:-1])) + cells[-1])
    return "\n".join(out) + ("\n" if out else "")


def human_size(size: float, precision: int = 3) -> str:
    """Sizes in docker's tables: three significant digits."""
    return _human_size(size, precision)


def since(created: float) -> str:
    return human_duration(time.time() - created) + " ago"


def parse_timestamp(s: str) -> float:
    """An RFC 3339 time (nanoseconds allowed) as Unix seconds; 0 when unparseable."""
    import calendar

    if not s or s.startswith("0001-01-01"):
        return 0.0
    try:
        date, _, rest = s.partition("T")
        y, mo, d = (int(x) for x in date.split("-"))
        tz = 0
        if rest.endswith("Z"):
            rest = rest[:-1]
        elif len(rest) > 6 and rest[-6] in "+-":
            sign = 1 if rest[-6] == "+" else -1
            tz = sign * (int(rest[-5:-3]) * 3600 + int(rest[-2:]) * 60)
            rest = rest[:-6]
        hms, _, frac = rest.partition(".")
        h, mi, sec = (int(x) for x in hms.split(":"))
        base = calendar.timegm((y, mo, d, h, mi, sec, 0, 0, 0))
        return base - tz + (float("0." + frac) if frac else 0.0)
    except ValueError:
        return 0.0


def go_time(ts: float) -> str:
    """time.Unix(ts).String() in UTC: 2024-01-02 15:04:05 +0000 UTC."""
    return time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(ts))


def truncate_id(id_: str) -> str:
    if ":" in id_:
        id_ = id_.split(":", 1)[1]
    return id_[:12]


def ellipsis(s: str, width: int) -> str:
    if len(s) <= width:
        return s
    return s[:width - 1] + "…" if width > 1 else s[:width]


def write_formatted(out, fmt: str | None, rows: list, default: str, headers: dict,
                    quiet_field: str | None = None) -> None:
    """Print `rows` (dicts or objects with docker's field names) as docker does for `fmt`:
    None/"table" is the default table, "json" one JSON object a line, "table …" a header
    and aligned rows, anything else a template per row."""
    from dockyard.cli.template import Template, go_json

    if fmt in (None, "", "table"):
        fmt = default
    if fmt == "json":
        for row in rows:
            out.write(go_json(row.to_json() if hasattr(row, "to_json") else row) + "\n")
        return
    if fmt.startswith("table"):
        t = Template(fmt[5:].strip(" ").replace("\\t", "\t").replace("\\n", "\n"))
        lines = [t.render(headers)]
        lines += [t.render(row) for row in rows]
        out.write(tabwrite([x for line in lines for x in line.split("\n")]))
        return
    t = Template(fmt.strip(" ").replace("\\t", "\t").replace("\\n", "\n"))
    for row in rows:
        out.write(t.render(row) + "\n")
