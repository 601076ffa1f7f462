"""A worker process of ``tests/core/test_listening.py``, in a module of its own: a spawned
process imports its target by module name, and ``tests/`` is on the path (pytest's
``pythonpath``) where the test modules' own names are not."""

from __future__ import annotations

import os
import socket
from multiprocessing.connection import Connection


def accept_until_told(sock: socket.socket, ready: Connection, stop: Connection) -> None:
    """What a uvicorn worker does with the socket it is handed: listen, accept, count."""
    sock.listen(64)
    ready.send((sock.getsockname()[1], os.fstat(sock.fileno()).st_ino))
    accepted = []
    stop.recv()  # the clients are connected: what they opened waits to be accepted
    sock.settimeout(0.5)
    while True:
        try:
            accepted.append(sock.accept()[0])
        except TimeoutError:
            break
    stop.send(len(accepted))
