"""gcloud-tasks-emulator, listening on loopback only (run with the emulator's own Python).

The emulator binds every interface whatever host it is given; this wrapper binds 127.0.0.1.
Usage: python tests/tasks_emulator.py start --port=9022 -q -r 4 -d projects/P/locations/L/queues/Q
"""

import sys

import grpc

_server = grpc.server


def _loopback_server(*args, **kwargs):  # type: ignore[no-untyped-def]
    server = _server(*args, **kwargs)
    add = server.add_insecure_port
    server.add_insecure_port = lambda address: add(address.replace("[::]", "127.0.0.1"))
    return server


grpc.server = _loopback_server

from gcloud_tasks_emulator.__main__ import main  # noqa: E402

sys.argv = ["gcloud-tasks-emulator", *sys.argv[1:]]
main()
