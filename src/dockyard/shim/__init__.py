"""`dockyard-shim`: one process per container that holds its stdio, writes its log, reaps it
and records its exit, and outlives restarts of everything above it.

    spawn.py     start_shim, socket_path (the supervisor's side)
    client.py    ShimClient; aioclient.py AsyncShimClient; protocol.py the frames both speak
    cleanup.py   cleanup_dead: after a shim was killed
    main.py      the shim process: loop.py (epoll, reaper), server.py (connections),
                 service.py (the methods), process.py and stdio.py (processes and their
                 stdio), runtime.py (the OCI runtime's CLI), rootfs.py, oom.py, records.py
    jsonlog.py   Docker's json-file log writer
"""
