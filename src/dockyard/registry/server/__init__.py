"""The registry's HTTP server: the OCI Distribution Spec v1.1 over a RegistryStore.

    app.py          make_app: dispatch on routes.match(), access checks, errors, logging
    base.py         shared helpers and `/v2/` (end-1)
    blobs.py        GET HEAD DELETE /v2/<name>/blobs/<digest> (end-2, end-10)
    uploads.py      POST /blobs/uploads/, GET PATCH PUT DELETE /blobs/uploads/<id>
                    (end-4, 5, 6, 11, 13)
    manifests.py    GET HEAD PUT DELETE /v2/<name>/manifests/<reference> (end-3, 7, 9)
    tags.py         /v2/<name>/tags/list and /v2/_catalog (end-8)
    referrers.py    GET /v2/<name>/referrers/<digest> (end-12)
"""

from dockyard.registry.server.app import make_app

__all__ = ["make_app"]
