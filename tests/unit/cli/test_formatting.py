"""Tables, sizes and durations as docker prints them."""

from __future__ import annotations

import io

from dockyard.cli.containers import ContainerRow, displayable_ports
from dockyard.cli.formatting import (
    bytes_size,
    human_duration,
    human_size,
    parse_timestamp,
    tabwrite,
    write_formatted,
)
from dockyard.cli.images import image_rows


def test_tabwrite_pads_cells_to_the_widest_plus_three_and_at_least_ten():
    out = tabwrite(["CONTAINER ID\tIMAGE\tNAMES", "abc\tbusybox:latest\tweb"])
    assert out == ("CONTAINER ID   IMAGE            NAMES\n"
                   "abc            busybox:latest   web\n")


def test_the_last_cell_is_not_padded():
    assert tabwrite(["a\tb", "c\td"]) == "a         b\nc         d\n"


def test_sizes_and_durations_as_go_units():
    assert human_size(1156000) == "1.16MB" and human_size(1156000, 4) == "1.156MB"
    assert human_size(0) == "0B" and human_size(999) == "999B" and human_size(4096) == "4.1kB"
    assert bytes_size(23.54 * 1024**3) == "23.54GiB"
    assert human_duration(0.5) == "Less than a second"
    assert human_duration(1) == "1 second" and human_duration(59) == "59 seconds"
    assert human_duration(60) == "About a minute" and human_duration(300) == "5 minutes"
    assert human_duration(3600) == "About an hour" and human_duration(7200) == "2 hours"
    assert human_duration(3 * 86400) == "3 days" and human_duration(20 * 86400) == "2 weeks"
    assert human_duration(200 * 86400) == "6 months"
    assert human_duration(800 * 86400) == "2 years"


def test_rfc3339_times_parse_with_nanoseconds_and_offsets():
    assert parse_timestamp("1970-01-01T00:01:00Z") == 60
    assert parse_timestamp("1970-01-01T01:00:00.5+01:00") == 0.5
    assert parse_timestamp("0001-01-01T00:00:00Z") == 0


def test_ports_are_grouped_as_docker_groups_them():
    ports = [{"PrivatePort": 80, "Type": "tcp"}, {"PrivatePort": 81, "Type": "tcp"},
             {"PrivatePort": 53, "Type": "udp"},
             {"IP": "0.0.0.0", "PrivatePort": 8080, "PublicPort": 8080, "Type": "tcp"},
             {"IP": "::", "PrivatePort": 443, "PublicPort": 8443, "Type": "tcp"}]
    assert displayable_ports(ports) == ("53/udp, 80-81/tcp, 0.0.0.0:8080->8080/tcp, "
                                        "[::]:8443->443/tcp")


def test_container_rows_truncate_like_docker():
    row = ContainerRow({"Id": "a" * 64, "Names": ["/web", "/other/link"],
                        "Image": "docker.io/library/busybox:latest@sha256:" + "b" * 64,
                        "ImageID": "sha256:" + "c" * 64, "Command": "sleep 1000000000000000000",
                        "Created": 0}, trunc=True)
    assert row.ID() == "a" * 12 and row.Names() == "web"
    assert row.Image() == "busybox:latest"
    assert row.Command() == '"sleep 1000000000000…"'


def test_image_rows_one_per_tag_and_none_for_dangling():
    imgs = [{"Id": "sha256:" + "1" * 64, "RepoTags": ["busybox:latest", "busybox:1"],
             "RepoDigests": ["busybox@sha256:" + "d" * 64], "Created": 0, "Size": 1},
            {"Id": "sha256:" + "2" * 64, "RepoTags": [], "RepoDigests": [], "Created": 0,
             "Size": 1}]
    rows = image_rows(imgs, trunc=True, digests=False)
    assert [(r.Repository(), r.Tag(), r.ID()) for r in rows] == [
        ("busybox", "latest", "1" * 12), ("busybox", "1", "1" * 12),
        ("<none>", "<none>", "2" * 12)]
    digested = image_rows(imgs[:1], trunc=False, digests=True)
    assert digested[0].Digest() == "sha256:" + "d" * 64


def test_write_formatted_table_json_and_templates():
    rows = [{"A": "x", "B": "yy"}]
    out = io.StringIO()
    write_formatted(out, None, rows, "table {{.A}}\t{{.B}}", {"A": "AH", "B": "BH"})
    assert out.getvalue() == "AH        BH\nx         yy\n"
    out = io.StringIO()
    write_formatted(out, "json", rows, "", {})
    assert out.getvalue() == '{"A":"x","B":"yy"}\n'
    out = io.StringIO()
    write_formatted(out, "{{.A}}\\t{{.B}}", rows, "", {})
    assert out.getvalue() == "x\tyy\n"
    out = io.StringIO()
    write_formatted(out, "table {{.B}}", rows, "", {"A": "AH", "B": "BH"})
    assert out.getvalue() == "BH\nyy\n"
