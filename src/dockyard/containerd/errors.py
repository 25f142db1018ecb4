"""The supervisor's errors, and their translation to gRPC status codes, done once, here.

    ContainerdError
     ├── InvalidArgument       malformed request: a bad id, label, filter, topic, field path
     ├── NotFound              no such namespace, container, image, lease, blob, snapshot
     ├── AlreadyExists         an id or name that is taken
     ├── FailedPrecondition    the state does not allow it (no namespace header, a namespace
     │                         that is not empty, a digest that does not match)
     ├── Unavailable           busy: an ingest another stream is writing
     ├── OutOfRange            a write or read past where it can be
     └── Unimplemented

The image layer's errors (dockyard.image.errors) map the same way, by their class. Any other
exception with a `code` attribute naming a status ("not_found", "failed_precondition", as
the task manager raises them) is taken at its word. Anything else is a bug: it is logged
with its traceback and the client gets INTERNAL with one line, never the traceback.

Messages keep containerd's shape, the class last: `container "x": not found`; a message
that does not end with its class gets it appended, as containerd's errdefs wrapping does.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from dockyard.image import errors as image_errors

log = logging.getLogger("dockyard.containerd")


class ContainerdError(Exception):
    code = grpc.StatusCode.UNKNOWN


class InvalidArgument(ContainerdError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(ContainerdError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(ContainerdError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(ContainerdError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Unavailable(ContainerdError):
    code = grpc.StatusCode.UNAVAILABLE


class OutOfRange(ContainerdError):
    code = grpc.StatusCode.OUT_OF_RANGE


class Unimplemented(ContainerdError):
    code = grpc.StatusCode.UNIMPLEMENTED


_IMAGE_CODES: tuple[tuple[type[image_errors.ImageError], grpc.StatusCode], ...] = (
    # DigestMismatch before InvalidArgument, its base: containerd says FailedPrecondition
    # for a commit whose size or digest is not the one expected.
    (image_errors.DigestMismatch, grpc.StatusCode.FAILED_PRECONDITION),
    (image_errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (image_errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (image_errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (image_errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (image_errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
)

_SUFFIX = {
    grpc.StatusCode.INVALID_ARGUMENT: "invalid argument",
    grpc.StatusCode.NOT_FOUND: "not found",
    grpc.StatusCode.ALREADY_EXISTS: "already exists",
    grpc.StatusCode.FAILED_PRECONDITION: "failed precondition",
    grpc.StatusCode.UNAVAILABLE: "unavailable",
    grpc.StatusCode.OUT_OF_RANGE: "out of range",
    grpc.StatusCode.UNIMPLEMENTED: "not implemented",
}


def status_of(error: BaseException) -> tuple[grpc.StatusCode, str] | None:
    """The status code and message for an error we know; None for a bug."""
    code: grpc.StatusCode | None = None
    if isinstance(error, ContainerdError):
        code = error.code
    elif isinstance(error, image_errors.ImageError):
        code = next((c for kind, c in _IMAGE_CODES if isinstance(error, kind)),
                    grpc.StatusCode.UNKNOWN)
    else:
        named = getattr(error, "code", None)
        if isinstance(named, str):
            code = getattr(grpc.StatusCode, named.upper(), None)
    if code is None:
        return None
    message = str(getattr(error, "message", None) or error)
    suffix = _SUFFIX.get(code)
    if suffix and not message.endswith(suffix):
        message = f"{message}: {suffix}"
    return code, message


async def _abort(context: grpc.aio.ServicerContext, error: Exception, method: str) -> None:
    known = status_of(error)
    if known is None:
        log.error("unexpected error in %s", method, exc_info=error)
        known = (grpc.StatusCode.INTERNAL, f"{type(error).__name__}: {error}".splitlines()[0])
    await context.abort(*known)


Behavior = Callable[..., Any]


def _unary(inner: Behavior, method: str) -> Behavior:
    async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await inner(request, context)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as e:
            await _abort(context, e, method)
    return call


def _streaming(inner: Behavior, method: str) -> Behavior:
    """A response stream: the servicer either yields its responses (an async generator) or
    writes them with context.write and returns."""
    async def call(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        try:
            result = inner(request, context)
            if inspect.isasyncgen(result):
                async for response in result:
                    yield response
            else:
                await result
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as e:
            await _abort(context, e, method)
    return call


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every method of every service (ours and those registered later) so that the
    errors above become statuses in one place."""

    def __init__(self) -> None:
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
            self, continuation: Callable[[grpc.HandlerCallDetails],
                                         Awaitable[grpc.RpcMethodHandler | None]],
            details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = details.method  # type: ignore[attr-defined]
        wrapped = self._wrapped.get(method)
        if wrapped is not None:
            return wrapped
        handler = await continuation(details)
        if handler is None:
            return None
        self._wrapped[method] = wrapped = _wrap(handler, method)
        return wrapped


def _wrap(handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
    h: Any = handler  # grpc's RpcMethodHandler is a namedtuple: _replace swaps one behavior
    for name, wrap in (("unary_unary", _unary), ("stream_unary", _unary),
                       ("unary_stream", _streaming), ("stream_stream", _streaming)):
        inner = getattr(h, name)
        if inner is not None:
            return h._replace(**{name: wrap(inner, method)})  # type: ignore[no-any-return]
    return handler
