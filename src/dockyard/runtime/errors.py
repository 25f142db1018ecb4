"""The runtime's errors. The CLI turns each into one line in runc's words and exit status 1;
nothing below the CLI prints or exits."""

from __future__ import annotations


class RuntimeError_(Exception):
    """Base of every error the runtime reports to its caller."""


class ConfigError(RuntimeError_):
    """config.json (or a --process file) is malformed or asks for something impossible."""


class NotFound(RuntimeError_):
    """No container of that id."""


class AlreadyExists(RuntimeError_):
    """A container of that id exists already."""


class FailedPrecondition(RuntimeError_):
    """The container is in the wrong state for the request (e.g. delete of a running one)."""


class StartError(RuntimeError_):
    """Setting up the container failed; the message names the step that failed."""
