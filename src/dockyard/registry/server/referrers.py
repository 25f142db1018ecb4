"""Referrers (end-12): an OCI image index of the manifests in a repository whose `subject`
is the given digest, optionally filtered by `artifactType` (then said in
`OCI-Filters-Applied`). The repository's revisions are scanned, so the answer always
agrees with what is stored, deletes included."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from dockyard.image import mediatypes
from dockyard.image.manifest import Manifest
from dockyard.registry.routes import Match
from dockyard.registry.server.base import (
    Handlers,
    Settings,
    blocking,
    digest_of,
    json_response,
)
from dockyard.registry.server.manifests import media_type_of


async def get_referrers(request: web.Request, match: Match,
                        settings: Settings) -> web.Response:
    subject = digest_of(match.reference)
    wanted = request.query.get("artifactType")
    found = await blocking(settings.store.referrers, match.name, subject)
    descriptors: list[dict[str, Any]] = []
    for digest, data, doc in sorted(found, key=lambda f: f[0]):
        artifact_type = doc.artifact_type
        if artifact_type is None and isinstance(doc, Manifest):
            artifact_type = doc.config.media_type
        if wanted and artifact_type != wanted:
            continue
        d: dict[str, Any] = {"mediaType": media_type_of(data), "digest": digest,
                             "size": len(data)}
        if artifact_type:
            d["artifactType"] = artifact_type
        if doc.annotations:
            d["annotations"] = dict(doc.annotations)
        descriptors.append(d)
    headers = {"OCI-Filters-Applied": "artifactType"} if wanted else {}
    index = {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": descriptors}
    return json_response(index, headers=headers, content_type=mediatypes.OCI_INDEX)


HANDLERS: Handlers = {"GET": get_referrers}
