"""The engine's errors, each with the HTTP status the Engine API gives it. Raised anywhere in
the engine, turned into `{"message": …}` with that status once, in api/server.py.

    EngineError (500)
      ├─ InvalidParameter (400)   bad input: a malformed body, an unknown option
      ├─ Forbidden (403)
      ├─ NotFound (404)           "No such container: x", "No such image: y"
      ├─ Conflict (409)           a name in use, a running container removed without force
      ├─ NotModified (304)        start of a started container, stop of a stopped one
      ├─ NotImplemented_ (501)
      └─ Unavailable (503)        the supervisor cannot be reached
"""

from __future__ import annotations


class EngineError(Exception):
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidParameter(EngineError):
    status = 400


class Forbidden(EngineError):
    status = 403


class NotFound(EngineError):
    status = 404


class Conflict(EngineError):
    status = 409


class NotModified(EngineError):
    status = 304


class NotImplemented_(EngineError):
    status = 501


class Unavailable(EngineError):
    status = 503


def with_status(status: int, message: str) -> EngineError:
    """The engine's error for an HTTP status another layer chose (IPAM's, say)."""
    for kind in (InvalidParameter, Forbidden, NotFound, Conflict, NotImplemented_,
                 Unavailable):
        if kind.status == status:
            return kind(message)
    return EngineError(message)


def from_grpc(e: BaseException, what: str = "") -> EngineError:
    """A gRPC error from the supervisor in the engine's terms (its message kept)."""
    import grpc

    if not isinstance(e, grpc.RpcError):
        return EngineError(str(e))
    code = e.code()
    message = e.details() or str(code)
    if what:
        message = f"{what}: {message}"
    kind = {grpc.StatusCode.NOT_FOUND: NotFound,
            grpc.StatusCode.ALREADY_EXISTS: Conflict,
            grpc.StatusCode.INVALID_ARGUMENT: InvalidParameter,
            grpc.StatusCode.FAILED_PRECONDITION: Conflict,
            grpc.StatusCode.UNAVAILABLE: Unavailable,
            grpc.StatusCode.UNIMPLEMENTED: NotImplemented_,
            grpc.StatusCode.PERMISSION_DENIED: Forbidden}.get(code, EngineError)
    return kind(message)
