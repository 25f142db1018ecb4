"""The image layer's errors. Callers at the edge (gRPC, HTTP, CLI) map them once:

    ImageError
     ├── InvalidArgument       malformed input: a bad digest, manifest, media type, path
     │    └── DigestMismatch   content whose digest or size is not the one announced
     ├── NotFound              no such blob, snapshot, image, lease
     ├── AlreadyExists         a blob, snapshot key or name that is taken
     ├── FailedPrecondition    the state does not allow it (snapshot in use, wrong kind)
     └── Unavailable           a resource that is busy (an ingest being written)
"""

from __future__ import annotations


class ImageError(Exception):
    pass


class InvalidArgument(ImageError):
    pass


class DigestMismatch(InvalidArgument):
    pass


class NotFound(ImageError):
    pass


class AlreadyExists(ImageError):
    pass


class FailedPrecondition(ImageError):
    pass


class Unavailable(ImageError):
    pass
