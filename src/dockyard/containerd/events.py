"""The event bus: services publish, subscribers receive what matches their filters.

    publish(namespace, topic, event)  ──►  Envelope{timestamp, namespace, topic, Any(event)}
                                           ──► each subscriber whose filters match: its queue
    subscribe(filters)                ──►  async iterator over its queue

In memory, like containerd's exchange: nothing is stored, a subscriber sees what is published
while it is subscribed. A subscriber that falls `QUEUE` events behind is dropped (its stream
ends with Unavailable) rather than letting the supervisor's memory grow without bound.

Filters are containerd's (dockyard.image.content.filters: `,` joins clauses that must all
hold, several filters match if any one does) over the envelope's fields:

    topic, namespace          `topic=="/tasks/exit"`, `namespace==moby`, `topic~="^/images/"`
    event.<field>...          the event's own fields by proto name: `event.container_id==c1`,
                              `event.labels.app==web`; empty strings and unset messages are
                              absent, as containerd's generated field adaptors have them

`publish` takes the event as a message of dockyard.events or as a dict of its fields (how the
task manager hands over what its shims report); a dict becomes the message of its topic
(`TOPICS`), or a google.protobuf.Struct for a topic we have no message for. It may be called
from any thread: delivery happens on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from google.protobuf import (
    any_pb2,
    descriptor_pool,
    json_format,
    message,
    message_factory,
    struct_pb2,
    timestamp_pb2,
)

from dockyard.api.events import (
    container_pb2,
    content_pb2,
    image_pb2,
    namespace_pb2,
    snapshot_pb2,
    task_pb2,
)
from dockyard.api.types.event_pb2 import Envelope
from dockyard.containerd import identifiers
from dockyard.containerd.errors import InvalidArgument, Unavailable
from dockyard.image.content.filters import Filter, label_lookup, match, parse_all

log = logging.getLogger("dockyard.containerd")

QUEUE = 4096

TOPICS: dict[str, type[message.Message]] = {
    "/containers/create": container_pb2.ContainerCreate,
    "/containers/update": container_pb2.ContainerUpdate,
    "/containers/delete": container_pb2.ContainerDelete,
    "/content/create": content_pb2.ContentCreate,
    "/content/delete": content_pb2.ContentDelete,
    "/images/create": image_pb2.ImageCreate,
    "/images/update": image_pb2.ImageUpdate,
    "/images/delete": image_pb2.ImageDelete,
    "/namespaces/create": namespace_pb2.NamespaceCreate,
    "/namespaces/update": namespace_pb2.NamespaceUpdate,
    "/namespaces/delete": namespace_pb2.NamespaceDelete,
    "/snapshot/prepare": snapshot_pb2.SnapshotPrepare,
    "/snapshot/commit": snapshot_pb2.SnapshotCommit,
    "/snapshot/remove": snapshot_pb2.SnapshotRemove,
    "/tasks/create": task_pb2.TaskCreate,
    "/tasks/start": task_pb2.TaskStart,
    "/tasks/delete": task_pb2.TaskDelete,
    "/tasks/exit": task_pb2.TaskExit,
    "/tasks/oom": task_pb2.TaskOOM,
    "/tasks/exec-added": task_pb2.TaskExecAdded,
    "/tasks/exec-started": task_pb2.TaskExecStarted,
    "/tasks/paused": task_pb2.TaskPaused,
    "/tasks/resumed": task_pb2.TaskResumed,
    "/tasks/checkpointed": task_pb2.TaskCheckpointed,
}

Event = message.Message | Mapping[str, Any]


def validate_topic(topic: str) -> str:
    """containerd's rule: "/" then "/"-separated identifiers."""
    if not topic:
        raise InvalidArgument("must not be empty")
    if not topic.startswith("/"):
        raise InvalidArgument(f"envelope topic {identifiers.quote(topic)}: must start with '/'")
    if len(topic) == 1:
        raise InvalidArgument(f"envelope topic {identifiers.quote(topic)}: must have at least "
                              "one component")
    for part in topic[1:].split("/"):
        try:
            identifiers.validate(part)
        except InvalidArgument as e:
            raise InvalidArgument(f"envelope topic {identifiers.quote(topic)}: {e}") from None
    return topic


def to_message(topic: str, event: Event) -> message.Message:
    """The event as a protobuf message: as given, or built from a dict of its fields. Fields
    the message lacks are dropped; a value that does not fit its field is dropped with a
    warning, so one odd field from a shim never loses the whole event."""
    if isinstance(event, message.Message):
        return event
    kind = TOPICS.get(topic)
    if kind is None:
        out = struct_pb2.Struct()
        out.update(_jsonable(event))
        return out
    msg = kind()
    for key, value in event.items():
        if value is None or key not in kind.DESCRIPTOR.fields_by_name:
            continue
        try:
            json_format.ParseDict({key: value}, msg, ignore_unknown_fields=True)
        except (json_format.ParseError, TypeError, ValueError) as e:
            log.warning("event %s: field %s=%r dropped: %s", topic, key, value, e)
    return msg


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | bool | int | float):
        return value
    return str(value)


def envelope(namespace: str, topic: str, event: Event,
             at: datetime | None = None) -> Envelope:
    packed = any_pb2.Any()
    if isinstance(event, any_pb2.Any):  # packed already (a client's Publish)
        packed.CopyFrom(event)
    else:
        packed.Pack(to_message(topic, event))
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(at or datetime.now(UTC))
    return Envelope(timestamp=stamp, namespace=namespace, topic=topic, event=packed)


# -- filters ---------------------------------------------------------------------------------

def unpack(packed: any_pb2.Any) -> message.Message | None:
    """The message inside an Any, if its type is one this process knows."""
    name = packed.type_url.rpartition("/")[2]
    try:
        descriptor = descriptor_pool.Default().FindMessageTypeByName(name)
    except KeyError:
        return None
    msg = message_factory.GetMessageClass(descriptor)()
    try:
        packed.Unpack(msg)
    except message.DecodeError:
        return None
    return msg


def message_field(msg: message.Message, path: Sequence[str]) -> str | None:
    """A field of `msg` by proto field names, as a filter sees it: scalars as text (numbers
    in decimal, booleans "true"/"false"), maps of strings as labels; repeated fields, empty
    strings and unset messages are absent."""
    for i, name in enumerate(path):
        fd = msg.DESCRIPTOR.fields_by_name.get(name)
        if fd is None:
            return None
        value = getattr(msg, name)
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            if isinstance(value, Mapping) and all(isinstance(v, str) for v in value.values()):
                return label_lookup(dict(value), tuple(path[i + 1:]))
            return None
        if fd.is_repeated:
            return None
        if fd.message_type is not None:
            if not msg.HasField(name):
                return None
            msg = value
            continue
        if i != len(path) - 1:
            return None
        if isinstance(value, str):
            return value or None
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)
    return None


class _Fields:
    """An envelope's fields for the filters; the event is decoded once, when first needed."""

    def __init__(self, env: Envelope) -> None:
        self.env = env
        self._event: message.Message | None = None
        self._decoded = False

    def __call__(self, path: tuple[str, ...]) -> str | None:
        head, rest = path[0], path[1:]
        if head == "topic" and not rest:
            return self.env.topic or None
        if head == "namespace" and not rest:
            return self.env.namespace or None
        if head == "event" and rest:
            if not self._decoded:
                self._event, self._decoded = unpack(self.env.event), True
            return message_field(self._event, rest) if self._event is not None else None
        return None


def matches(filters: list[Filter], env: Envelope) -> bool:
    return match(filters, _Fields(env))


# -- the bus ---------------------------------------------------------------------------------

_OVERFLOW, _CLOSED = "overflow", "closed"


class Subscription:
    """One subscriber's queue; iterate it for envelopes. The iteration ends when the bus
    closes, and raises Unavailable if the subscriber fell `QUEUE` events behind."""

    def __init__(self, bus: EventBus, filters: list[Filter]) -> None:
        self._bus, self.filters = bus, filters
        self._queue: asyncio.Queue[Envelope | str] = asyncio.Queue(QUEUE)
        self._ended = False

    def offer(self, env: Envelope) -> None:
        if self._ended:
            return
        try:
            self._queue.put_nowait(env)
        except asyncio.QueueFull:
            self._end(_OVERFLOW)

    def _end(self, why: str) -> None:
        if self._ended:
            return
        self._ended = True
        if self._queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()  # room for the end marker
        self._queue.put_nowait(why)

    def __aiter__(self) -> AsyncIterator[Envelope]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Envelope]:
        while True:
            env = await self._queue.get()
            if isinstance(env, str):  # an end marker
                if env == _OVERFLOW:
                    raise Unavailable(f"events subscriber fell {QUEUE} events behind: "
                                      "dropped")
                return
            yield env

    def close(self) -> None:
        self._bus._subscribers.discard(self)


class EventBus:
    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop that delivers; publishers on other threads hand their events to it."""
        self._loop, self._loop_thread = loop, threading.get_ident()

    def publish(self, namespace: str, topic: str, event: Event) -> None:
        """Publish in `namespace`; never blocks and never fails the caller's operation."""
        self.forward(envelope(namespace, validate_topic(topic), event))

    def forward(self, env: Envelope) -> None:
        if self._loop is not None and threading.get_ident() != self._loop_thread:
            self._loop.call_soon_threadsafe(self._deliver, env)
        else:
            self._deliver(env)

    def _deliver(self, env: Envelope) -> None:
        fields = _Fields(env)
        for sub in list(self._subscribers):
            if match(sub.filters, fields):
                sub.offer(env)

    def close(self) -> None:
        """End every subscription (the supervisor is stopping): streams finish cleanly."""
        for sub in list(self._subscribers):
            sub._end(_CLOSED)

    @contextlib.contextmanager
    def subscribe(self, filters: Iterable[str] = ()) -> Iterator[Subscription]:
        """`with bus.subscribe(filters) as sub: async for env in sub: ...`; a bad filter is
        InvalidArgument here, before anything is delivered."""
        sub = Subscription(self, parse_all([f for f in filters if f]))
        self._subscribers.add(sub)
        try:
            yield sub
        finally:
            sub.close()

