"""Containers in dockyardd: model and store (on disk), configs (the create body), names,
runtime (calls to the supervisor), runspec (what the spec needs), lifecycle (start, stop,
exits, restart policies), service (lookup, create, remove, rename, update), views (inspect,
list, top) and logs."""
