"""Event filters: containerd's syntax over an envelope's topic, namespace and event fields."""

from __future__ import annotations

import pytest
from google.protobuf import any_pb2, struct_pb2

from dockyard.api.events import image_pb2, task_pb2
from dockyard.containerd.errors import InvalidArgument
from dockyard.containerd.events import (
    envelope,
    matches,
    message_field,
    to_message,
    unpack,
    validate_topic,
)
from dockyard.image.content.filters import parse_all
from dockyard.image.errors import InvalidArgument as FilterError

EXIT = envelope("moby", "/tasks/exit", task_pb2.TaskExit(container_id="c1", exit_status=0,
                                                         pid=42))
CREATE = envelope("k8s.io", "/images/create", image_pb2.ImageCreate(
    name="docker.io/library/busybox:latest", labels={"io.cri-containerd.image": "managed"}))


def match(env: object, *filters: str) -> bool:
    return matches(parse_all(filters), env)  # type: ignore[arg-type]


@pytest.mark.parametrize(("filters", "exit_", "create"), [
    ((), True, True),
    (('topic=="/tasks/exit"',), True, False),
    (("topic==/tasks/exit",), True, False),
    (("topic!=/tasks/exit",), False, True),
    (('topic~="^/tasks/"',), True, False),
    (('topic~="/images/"',), False, True),
    (("namespace==moby",), True, False),
    (("namespace==moby,topic==/images/create",), False, False),  # "," joins: both must hold
    (("namespace==moby", "topic==/images/create"), True, True),   # several filters: any one
    (("event.container_id==c1",), True, False),
    (("event.container_id==c2",), False, False),
    (("event.pid==42",), True, False),
    (("event.exit_status==0",), True, False),
    (("event.name~=busybox",), False, True),
    (('event.labels."io.cri-containerd.image"==managed',), False, True),
    (("event.labels.io.cri-containerd.image",), False, True),
    (("event.labels",), False, True),
    (("event.nothing",), False, False),
    (("topic",), True, True),
    (("event.container_id",), True, False),
])
def test_filters_match_envelopes(filters: tuple[str, ...], exit_: bool, create: bool) -> None:
    assert match(EXIT, *filters) is exit_
    assert match(CREATE, *filters) is create


def test_bad_filters_are_invalid_arguments() -> None:
    for bad in ('topic~="("', "==x", 'topic=="open', "topic==a b,"):
        with pytest.raises(FilterError):
            parse_all([bad])


def test_absent_and_empty_fields() -> None:
    msg = task_pb2.TaskCreate(container_id="c", io=task_pb2.TaskIO(terminal=True))
    assert message_field(msg, ("bundle",)) is None  # an empty string is absent
    assert message_field(msg, ("io", "terminal")) == "true"
    assert message_field(msg, ("io", "stdin")) == "false"
    assert message_field(task_pb2.TaskCreate(), ("io", "terminal")) is None  # unset message
    assert message_field(msg, ("rootfs",)) is None  # repeated: not filterable
    assert message_field(msg, ("container_id", "more")) is None


def test_events_from_dicts_become_their_topics_messages() -> None:
    msg = to_message("/tasks/exit", {"container_id": "c1", "exec_id": "", "pid": 7,
                                     "exit_status": 137,
                                     "exited_at": "2024-05-01T10:00:00.123456+00:00"})
    assert isinstance(msg, task_pb2.TaskExit)
    assert (msg.container_id, msg.pid, msg.exit_status) == ("c1", 7, 137)
    assert msg.exited_at.ToJsonString() == "2024-05-01T10:00:00.123456Z"
    odd = to_message("/tasks/exit", {"container_id": "c1", "exited_at": "yesterday",
                                     "pid": None})
    assert isinstance(odd, task_pb2.TaskExit) and odd.container_id == "c1"  # the rest kept
    other = to_message("/custom/thing", {"a": 1, "b": ["x"]})
    assert isinstance(other, struct_pb2.Struct) and other["a"] == 1


def test_envelopes_unpack_to_the_event() -> None:
    assert unpack(EXIT.event) == task_pb2.TaskExit(container_id="c1", pid=42)
    assert unpack(any_pb2.Any(type_url="type.googleapis.com/no.Such", value=b"")) is None
    packed = any_pb2.Any()
    packed.Pack(task_pb2.TaskOOM(container_id="c9"))
    assert envelope("ns", "/tasks/oom", packed).event == packed  # not packed twice


@pytest.mark.parametrize("topic", ["/tasks/exit", "/a", "/x.y/z-1"])
def test_good_topics(topic: str) -> None:
    assert validate_topic(topic) == topic


@pytest.mark.parametrize("topic", ["", "tasks/exit", "/", "/tasks//exit", "/tasks/ex it",
                                   "/../x"])
def test_bad_topics(topic: str) -> None:
    with pytest.raises(InvalidArgument):
        validate_topic(topic)
