"""Validation against the OCI JSON schemas kept in ../shared/specs (no network)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from referencing import Registry
from referencing.jsonschema import DRAFT4

_HERE = Path(__file__).resolve().parent
# ../shared/specs beside the checkout when it is there; else the copies kept in tests/data.
SPECS = next((p for p in (_HERE.parent.parent / "shared" / "specs", _HERE / "data" / "specs")
              if (p / "oci-runtime-schema").is_dir()), _HERE / "data" / "specs")


def _registry(folder: Path) -> Registry:
    """Each schema by its file name; a `$ref` to a URL (the image schemas' ids are URLs under
    opencontainers.org) is served from the file of the same name, never fetched."""
    def retrieve(uri: str):  # type: ignore[no-untyped-def]
        return DRAFT4.create_resource(json.loads((folder / uri.rsplit("/", 1)[-1]).read_text()))
    return Registry(retrieve=retrieve).with_resources(
        (f.name, DRAFT4.create_resource(json.loads(f.read_text())))
        for f in folder.glob("*.json"))


def validate(doc: object, schema_file: str, folder: str = "oci-runtime-schema") -> None:
    d = SPECS / folder
    schema = json.loads((d / schema_file).read_text())
    validator = jsonschema.Draft4Validator(schema, registry=_registry(d))
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    if errors:
        raise AssertionError("; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5]))
