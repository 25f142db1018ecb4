"""The distribution client's errors, one tree, mapped from registry responses in one place.

    ImageError                       (dockyard.image.errors)
     └── DistributionError
          ├── ChallengeError         a WWW-Authenticate header or token response we cannot use
          ├── CredentialsError       a bad config.json, a credential helper that failed
          ├── HostsError             a bad registry host configuration (mirror, CIDR, redirect)
          └── RegistryError          a registry answered with an error; `.errors` holds the
               │                     OCI distribution spec's {"errors": [{code, message,
               │                     detail}]} list, `.status` and `.url` the response's
               ├── Unauthorized      401 / UNAUTHORIZED: authentication required
               ├── Denied            403 / DENIED: access to the resource is denied
               ├── NotFound          404 / MANIFEST_UNKNOWN, BLOB_UNKNOWN, NAME_UNKNOWN,
               │                     BLOB_UPLOAD_UNKNOWN (also an image.errors.NotFound)
               ├── Invalid           400 / *_INVALID, MANIFEST_BLOB_UNKNOWN
               │                     (also an image.errors.InvalidArgument)
               ├── Unsupported       405 / UNSUPPORTED
               └── TooManyRequests   429 / TOOMANYREQUESTS (also an image.errors.Unavailable)

`str(error)` reads as Docker prints the registry's error (`manifest unknown: manifest
unknown`); `for_pull(error, ref)` adds the words `docker pull` puts in front of it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from dockyard.image import errors as image_errors
from dockyard.image.reference import Reference


class DistributionError(image_errors.ImageError):
    pass


class ChallengeError(DistributionError, image_errors.InvalidArgument):
    pass


class CredentialsError(DistributionError):
    pass


class HostsError(DistributionError, image_errors.InvalidArgument):
    pass


@dataclass(frozen=True)
class ErrorDetail:
    """One entry of the spec's error list."""

    code: str
    message: str = ""
    detail: Any = None

    def __str__(self) -> str:
        # distribution's errcode.Error: the code's lowercase words, then the message.
        words = self.code.lower().replace("_", " ") if self.code else "unknown"
        return f"{words}: {self.message}" if self.message else words


class RegistryError(DistributionError):
    """A registry's error response: the status, the URL and the parsed error list."""

    def __init__(self, message: str, *, status: int = 0, url: str = "",
                 errors: tuple[ErrorDetail, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.url = url
        self.errors = errors

    @property
    def code(self) -> str:
        """The first error's code ('' when the body had none)."""
        return self.errors[0].code if self.errors else ""


class Unauthorized(RegistryError):
    pass


class Denied(RegistryError):
    pass


class NotFound(RegistryError, image_errors.NotFound):
    pass


class Invalid(RegistryError, image_errors.InvalidArgument):
    pass


class Unsupported(RegistryError):
    pass


class TooManyRequests(RegistryError, image_errors.Unavailable):
    pass


# The spec's codes (and distribution's extensions), each with the class it becomes.
CODES: dict[str, type[RegistryError]] = {
    "BLOB_UNKNOWN": NotFound,
    "BLOB_UPLOAD_INVALID": Invalid,
    "BLOB_UPLOAD_UNKNOWN": NotFound,
    "DIGEST_INVALID": Invalid,
    "MANIFEST_BLOB_UNKNOWN": Invalid,
    "MANIFEST_INVALID": Invalid,
    "MANIFEST_UNKNOWN": NotFound,
    "MANIFEST_UNVERIFIED": Invalid,
    "NAME_INVALID": Invalid,
    "NAME_UNKNOWN": NotFound,
    "SIZE_INVALID": Invalid,
    "TAG_INVALID": Invalid,
    "UNAUTHORIZED": Unauthorized,
    "DENIED": Denied,
    "UNSUPPORTED": Unsupported,
    "TOOMANYREQUESTS": TooManyRequests,
}

# When the body says nothing we understand, the status decides.
STATUSES: dict[int, type[RegistryError]] = {
    400: Invalid,
    401: Unauthorized,
    403: Denied,
    404: NotFound,
    405: Unsupported,
    429: TooManyRequests,
}

_BODY_EXCERPT = 200


def parse_error_body(body: bytes) -> tuple[ErrorDetail, ...]:
    """The spec's error list from a response body; () when the body is not one."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ()
    entries = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        return ()
    out = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        code = entry.get("code")
        message = entry.get("message")
        out.append(ErrorDetail(code.upper() if isinstance(code, str) else "",
                               message if isinstance(message, str) else "",
                               entry.get("detail")))
    return tuple(out)


def from_response(status: int, body: bytes, url: str) -> RegistryError:
    """The one mapping from an HTTP error response to our tree.

    The first error code we know picks the class (as Docker acts on the first); an
    unknown or missing code falls back to the status. The message is distribution's
    errcode.Errors text, or the status and a body excerpt when there is no error list.
    """
    errors = parse_error_body(body)
    cls: type[RegistryError] | None = None
    for error in errors:
        cls = CODES.get(error.code)
        if cls is not None:
            break
    if cls is None:
        cls = STATUSES.get(status, RegistryError)
    if len(errors) == 1:
        message = str(errors[0])
    elif errors:
        message = "errors:\n" + "".join(f"{error}\n" for error in errors)
    else:
        excerpt = body[:_BODY_EXCERPT].decode("utf-8", "replace").strip()
        message = f"unexpected status from {url}: {status}"
        if excerpt:
            message += f": {excerpt}"
    return cls(message, status=status, url=url, errors=errors)


def for_pull(error: RegistryError, ref: Reference) -> RegistryError:
    """The error `docker pull` reports: Docker's words in front of the registry's."""
    code = error.code
    if code == "DENIED" or (isinstance(error, Unauthorized) and not code):
        prefix = (f"pull access denied for {ref.familiar_name()}, repository does not exist "
                  "or may require 'docker login'")
    elif code == "MANIFEST_UNKNOWN":
        prefix = f"manifest for {ref.familiar()} not found"
    elif code == "NAME_UNKNOWN":
        prefix = f"repository {ref.familiar_name()} not found"
    else:
        return error
    return type(error)(f"{prefix}: {error}", status=error.status, url=error.url,
                       errors=error.errors)
