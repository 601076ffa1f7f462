"""The listening socket of ``memberlab serve --workers N``: one per worker, shared fairly.

uvicorn binds one socket in its supervisor and every worker process accepts on it. Each
worker's event loop, once woken, accepts every connection waiting, so clients that open
their connections together (a pool of keep-alive connections, a load balancer's upstream
pool, the benchmark's 16) mostly land on one worker: 15 of 16 were seen on one of two, one
core serving while the other waited. A keep-alive connection stays where it landed.

Here each worker listens on a socket of its own, bound to the same address with
``SO_REUSEPORT``, and Linux spreads new connections over them by a hash of their addresses.
The supervisor binds one such socket too (to reserve the address and learn a port chosen
by the system) but never listens on it, so no connection waits on it. uvicorn hands its
sockets to the workers by pickling them; ``ListeningSocket`` pickles as "bind a new socket
to this address", which each worker then does.

Only on Linux: elsewhere ``SO_REUSEPORT`` does not spread connections (or does not exist),
and the workers share one socket as before.
"""

from __future__ import annotations

import errno
import socket
import sys

SPREADS_CONNECTIONS = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


class AddressInUse(OSError):
    """Another program listens on the address."""


def _bound(family: int, host: str, port: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def worker_socket(family: int, host: str, port: int) -> socket.socket:
    """A worker's own socket on the shared address (what a ``ListeningSocket`` unpickles to)."""
    return _bound(family, host, port)


class ListeningSocket(socket.socket):
    """The supervisor's socket: bound to the address, never listened on; pickled (to start
    a worker) as a new socket of the worker's own on the same address."""

    def __reduce__(self):  # type: ignore[override]
        host, port = self.getsockname()[:2]
        return worker_socket, (self.family, host, port)


def listening_socket(host: str, port: int) -> ListeningSocket:
    """Reserve ``host:port`` (port 0: one the system chooses) for the workers' sockets.

    Refuses an address another program listens on, even one that set ``SO_REUSEPORT``
    itself: joining it would split the connections between two different servers."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:  # without SO_REUSEPORT this fails on any socket bound there, ours or not
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        port = probe.getsockname()[1]
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise AddressInUse(exc.errno, f"{host}:{port} is in use") from None
        raise
    finally:
        probe.close()
    bound = _bound(family, host, port)
    reserved = ListeningSocket(family, socket.SOCK_STREAM, fileno=bound.detach())
    reserved.set_inheritable(True)
    return reserved
