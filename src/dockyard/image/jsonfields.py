"""Reading and writing the JSON documents of the image spec, at the boundary.

Manifests, indexes and configs arrive from registries and archives we do not trust, so
decoding is bounded and strict: a size limit checked before anything is parsed, UTF-8 only,
no NaN or Infinity, and nesting deep enough to exhaust the interpreter's stack turned into a
clean error. The field readers below raise InvalidArgument naming the field by its JSON path
(`manifest: layers[1].size`), so a caller never sees a KeyError or TypeError from a document.

What we write is canonical: keys sorted, no whitespace, non-ASCII escaped (so a lone
surrogate, which JSON can carry and UTF-8 cannot, still writes). The same value always gives
the same bytes, hence the same digest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from dockyard.image.errors import InvalidArgument

INT64_MAX = 2**63 - 1

# RFC 6838 type "/" subtype, as the OCI descriptor schema writes it.
_MEDIA_TYPE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}")
# RFC 3339 date-time (what Go's time.Time reads and writes).
_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def bounded(data: bytes, what: str, limit: int) -> bytes:
    """`data` as bytes, refused before anything else is done with it if beyond `limit`."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidArgument(f"{what}: want bytes, got {type(data).__name__}")
    if len(data) > limit:
        raise InvalidArgument(f"{what}: {len(data)} bytes exceeds the limit of {limit} bytes")
    return bytes(data)


def load(data: bytes, what: str, limit: int) -> dict[str, Any]:
    """Decode one JSON object of at most `limit` bytes; `what` names it in errors."""
    data = bounded(data, what, limit)
    try:
        text = data.decode("utf-8")
        obj = json.loads(text, parse_constant=_reject_constant)
    except UnicodeDecodeError as e:
        raise InvalidArgument(f"{what}: not UTF-8: {e.reason} at byte {e.start}") from None
    except RecursionError:
        raise InvalidArgument(f"{what}: invalid JSON: nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, and Python's limit on digits in an int
        raise InvalidArgument(f"{what}: invalid JSON: {e}") from None
    return expect_object(obj, what)


def dump(obj: Mapping[str, Any]) -> bytes:
    """Canonical bytes: sorted keys, compact, ASCII."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode("ascii")


def kind(value: object) -> str:
    """A JSON name for a decoded value's type, for messages."""
    match value:
        case None:
            return "null"
        case bool():
            return "boolean"
        case int() | float():
            return "number"
        case str():
            return "string"
        case list() | tuple():
            return "array"
        case dict():
            return "object"
    return type(value).__name__


def expect_object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidArgument(f"{where}: want a JSON object, got {kind(value)}")
    return value


def field_name(where: str, key: str) -> str:
    """`manifest` + `config` -> `manifest: config`; deeper levels are joined with dots, so a
    message reads `manifest: layers[1].size: must be >= 0`."""
    return f"{where}.{key}" if ": " in where else f"{where}: {key}"


def get_str(obj: Mapping[str, Any], key: str, where: str, *,
            required: bool = False, nonempty: bool = False) -> str | None:
    """A string field; an absent or null field is None (unless required)."""
    value = obj.get(key)
    name = field_name(where, key)
    if value is None:
        if required:
            raise InvalidArgument(f"{name}: required field missing")
        return None
    if not isinstance(value, str):
        raise InvalidArgument(f"{name}: want a string, got {kind(value)}")
    if nonempty and not value:
        raise InvalidArgument(f"{name}: must not be empty")
    return value


def require_str(obj: Mapping[str, Any], key: str, where: str, *,
                nonempty: bool = False) -> str:
    value = get_str(obj, key, where, required=True, nonempty=nonempty)
    assert value is not None
    return value


def get_int(obj: Mapping[str, Any], key: str, where: str, *, required: bool = False,
            minimum: int | None = None, maximum: int = INT64_MAX) -> int | None:
    """An integer field. JSON true is not 1 and 2.0 is not 2: Go refuses both, so do we."""
    value = obj.get(key)
    name = field_name(where, key)
    if value is None:
        if required:
            raise InvalidArgument(f"{name}: required field missing")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{name}: want an integer, got {kind(value)} {value!r}")
    if minimum is not None and value < minimum:
        raise InvalidArgument(f"{name}: must be >= {minimum}, got {value}")
    if value > maximum:
        raise InvalidArgument(f"{name}: must be <= {maximum}, got {value}")
    return value


def get_bool(obj: Mapping[str, Any], key: str, where: str) -> bool | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise InvalidArgument(f"{field_name(where, key)}: want a boolean, got {kind(value)}")
    return value


def get_list(obj: Mapping[str, Any], key: str, where: str, *,
             required: bool = False) -> list[Any]:
    """An array field; absent or null is empty unless required."""
    value = obj.get(key)
    name = field_name(where, key)
    if value is None:
        if required:
            raise InvalidArgument(f"{name}: required field missing")
        return []
    if not isinstance(value, list):
        raise InvalidArgument(f"{name}: want an array, got {kind(value)}")
    return value


def get_object(obj: Mapping[str, Any], key: str, where: str, *,
               required: bool = False) -> dict[str, Any] | None:
    value = obj.get(key)
    name = field_name(where, key)
    if value is None:
        if required:
            raise InvalidArgument(f"{name}: required field missing")
        return None
    return expect_object(value, name)


def get_str_list(obj: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    items = get_list(obj, key, where)
    name = field_name(where, key)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise InvalidArgument(f"{name}[{i}]: want a string, got {kind(item)}")
    return tuple(items)


def get_str_map(obj: Mapping[str, Any], key: str, where: str) -> dict[str, str]:
    """A string-to-string map such as annotations or labels; absent or null is empty."""
    value = get_object(obj, key, where)
    if value is None:
        return {}
    name = field_name(where, key)
    for k, v in value.items():
        if not isinstance(v, str):
            raise InvalidArgument(f"{name}[{k!r}]: want a string, got {kind(v)}")
    return dict(value)


def is_media_type(text: object) -> bool:
    return isinstance(text, str) and _MEDIA_TYPE.fullmatch(text) is not None


def get_media_type(obj: Mapping[str, Any], key: str, where: str, *,
                   required: bool = False) -> str | None:
    value = get_str(obj, key, where, required=required)
    if value is not None and not is_media_type(value):
        raise InvalidArgument(f"{field_name(where, key)}: invalid media type {value!r}: "
                              "want type/subtype as RFC 6838 writes it")
    return value


def get_date_time(obj: Mapping[str, Any], key: str, where: str) -> str | None:
    """An RFC 3339 timestamp, kept as the text it was so a rewrite changes nothing."""
    value = get_str(obj, key, where)
    if value is not None and not _DATE_TIME.fullmatch(value):
        raise InvalidArgument(f"{field_name(where, key)}: invalid RFC 3339 date-time "
                              f"{value!r}")
    return value
