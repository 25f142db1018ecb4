"""The gRPC services of dockyard-containerd: one module each, a thin adapter over the stores
(parse the request, call the store on a worker thread, publish the event, convert the answer).
Errors are translated to statuses once, by errors.ErrorInterceptor.
"""
