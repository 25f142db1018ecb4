"""Identifiers: the names of namespaces, containers, leases and topic components, checked as
containerd's pkg/identifiers checks them, with its messages.

    identifier := [A-Za-z0-9]+ ([._-] [A-Za-z0-9]+)*        at most 76 characters

So an identifier can go into a path, a cgroup name or a socket name as it is: no "/", no
"..", no leading dot or dash.
"""

from __future__ import annotations

import re

from dockyard.containerd.errors import InvalidArgument

MAX_LENGTH = 76
PATTERN = r"^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$"
_IDENTIFIER = re.compile(PATTERN)


def validate(text: str) -> str:
    """`text` if it is an identifier, else InvalidArgument saying why."""
    if not text:
        raise InvalidArgument("identifier must not be empty")
    if len(text) > MAX_LENGTH:
        raise InvalidArgument(f"identifier {quote(text)} greater than maximum length "
                              f"({MAX_LENGTH} characters)")
    if not _IDENTIFIER.match(text):
        raise InvalidArgument(f"identifier {quote(text)} must match {PATTERN}")
    return text


def quote(text: str) -> str:
    """Go's %q, near enough: double quotes, escapes for quotes and backslashes."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

