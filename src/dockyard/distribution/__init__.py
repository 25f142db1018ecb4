"""The distribution client: pull from and push to registries (OCI distribution spec).

Pure layers first, each its own module and unit-tested without a network:

    errors       the error tree and the one mapping from a registry's error response
    scopes       token scopes (repository:<name>:<actions>, registry:catalog:*)
    challenge    WWW-Authenticate parsing, the Bearer token request, tokens and their cache
    credentials  Docker's config.json and credential helpers (docker login/logout's store)
    hosts        mirrors, insecure registries, CA files and redirects -> endpoints to try
"""
