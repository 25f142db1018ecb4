"""dockyard-containerd: the supervisor between the engine (and CRI clients) and the shims.

    main.py         the command: flags, config file, logging
    config.py       defaults < TOML file < flags
    server.py       the gRPC server: its services (an explicit list), socket, start and stop
    supervisor.py   what services share: metadata, event bus, one image library per namespace
    metadata.py     namespaces and containers in SQLite
    events.py       the event bus and its filters
    errors.py       errors, and their translation to gRPC statuses (one interceptor)
    requestmeta.py  the namespace and lease headers of a call
    identifiers.py  the names namespaces, containers and topics may have
    protoconv.py    conversions shared by services
    service.py      what a service module gives the server
    services/       one module per gRPC service
"""
