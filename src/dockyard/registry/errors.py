"""The Distribution Spec's error codes, with the HTTP status and message the reference
registry sends for each, and the JSON body every error response carries:

    {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown", "detail": …}]}

Handlers raise RegistryError(code, detail); one middleware turns it into the response.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# code -> (HTTP status, message), as distribution's registry/api/errcode and v2 register them
CODES: dict[str, tuple[int, str]] = {
    "BLOB_UNKNOWN": (404, "blob unknown to registry"),
    "BLOB_UPLOAD_INVALID": (400, "blob upload invalid"),
    "BLOB_UPLOAD_UNKNOWN": (404, "blob upload unknown to registry"),
    "DIGEST_INVALID": (400, "provided digest did not match uploaded content"),
    "MANIFEST_BLOB_UNKNOWN": (400, "manifest references a manifest or blob unknown to "
                                   "registry"),
    "MANIFEST_INVALID": (400, "manifest invalid"),
    "MANIFEST_UNKNOWN": (404, "manifest unknown"),
    "NAME_INVALID": (400, "invalid repository name"),
    "NAME_UNKNOWN": (404, "repository name not known to registry"),
    "SIZE_INVALID": (400, "provided length did not match content length"),
    "TAG_INVALID": (400, "manifest tag did not match URI"),
    "RANGE_INVALID": (416, "invalid content range"),
    "PAGINATION_NUMBER_INVALID": (400, "invalid number of results requested"),
    "UNAUTHORIZED": (401, "authentication required"),
    "DENIED": (403, "requested access to the resource is denied"),
    "UNSUPPORTED": (405, "The operation is unsupported."),
    "TOOMANYREQUESTS": (429, "too many requests"),
    "UNKNOWN": (500, "unknown error"),
}


@dataclass
class RegistryError(Exception):
    code: str
    detail: Any = None
    message: str | None = None

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"unknown registry error code {self.code!r}")
        super().__init__(self.code, self.detail)

    @property
    def status(self) -> int:
        return CODES[self.code][0]

    def entry(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code,
                               "message": self.message or CODES[self.code][1]}
        if self.detail is not None:
            out["detail"] = self.detail
        return out

    def body(self) -> bytes:
        return json.dumps({"errors": [self.entry()]}).encode()
