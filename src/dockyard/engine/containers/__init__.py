"""Containers in dockyardd: model and store (on disk), configs (the create body), names,
runtime (calls to the supervisor), runspec (what the spec needs; spec.py makes it), mounts
(binds and volumes through the volumes service), lifecycle (start, stop, exits, restart
policies), recovery (reconciling with the supervisor after a start), health (healthchecks),
service (lookup, create, remove, rename, update), views (inspect, list, top) and logs."""
