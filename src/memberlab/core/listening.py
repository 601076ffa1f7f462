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

What this gives up, as every server that listens this way does (nginx's ``reuseport``):
- a worker's share of new connections is fixed, busy or not, so one stuck worker leaves
  its share waiting, where idle workers used to take them;
- when a worker stops (a crash, a restart), connections still waiting in its own queue,
  not yet accepted, are reset, unless Linux moves them (``net.ipv4.tcp_migrate_req=1``).

Only on Linux: elsewhere ``SO_REUSEPORT`` does not spread connections (or does not exist),
and the workers share one socket as before.
"""

from __future__ import annotations

import errno
import logging
import socket
import sys

from uvicorn.config import STARTUP_FAILURE

SPREADS_CONNECTIONS = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")

log = logging.getLogger("memberlab.serve")


class AddressInUse(OSError):
    """Another program (or another ``memberlab serve``) has the port."""


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
    """A worker's own socket on the shared address (what a ``ListeningSocket`` unpickles to).

    It is made while the worker starts, before uvicorn runs: if the address has gone (the
    interface is down), the worker ends as a failed start-up, which stops the supervisor,
    instead of a crash it would restart for ever."""
    try:
        return _bound(family, host, port)
    except OSError as exc:
        log.error("cannot listen on %s port %s: %s", host, port, exc)
        sys.exit(STARTUP_FAILURE)


class ListeningSocket(socket.socket):
    """The supervisor's socket: bound to the address, never listened on; pickled (to start
    a worker) as a new socket of the worker's own on the same address. It also holds the
    port's lock (``_port_lock``) while it is open."""

    lock: socket.socket | None = None

    def __reduce__(self):  # type: ignore[override]
        host, port = self.getsockname()[:2]
        return worker_socket, (self.family, host, port)

    def close(self) -> None:
        if self.lock is not None:
            self.lock.close()
        super().close()


def _port_lock(port: int) -> socket.socket:
    """A lock on ``port`` for this process: a Unix socket of abstract name (freed when the
    process ends). Until its workers listen, a starting server's port looks free to
    another one starting, whose workers would then join the same group of sockets and
    split the connections between two servers."""
    lock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        lock.bind(f"\0memberlab-serve-port-{port}")
    except OSError as exc:
        lock.close()
        if exc.errno == errno.EADDRINUSE:
            raise AddressInUse(exc.errno, f"port {port} is in use") from None
        raise
    return lock


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def free_port(host: str, port: int) -> int:
    """``port`` (or, for 0, one the system chooses) if a server could listen on it at
    ``host``; ``AddressInUse`` if a program listens there, other ``OSError`` as they come.

    Also for one process serving on a socket uvicorn binds: its own error is a log line in
    English."""
    probe = socket.socket(_family(host), socket.SOCK_STREAM)
    try:  # without SO_REUSEPORT this fails on any socket listening there, ours or not
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        return probe.getsockname()[1]
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise AddressInUse(exc.errno, f"{host}:{port} is in use") from None
        raise
    finally:
        probe.close()


def listening_socket(host: str, port: int) -> ListeningSocket:
    """Reserve ``host:port`` (port 0: one the system chooses) for the workers' sockets.

    Refuses a port another program listens on, even one that set ``SO_REUSEPORT`` itself,
    or another ``memberlab serve`` has: joining them would split the connections between
    two different servers. Other errors (no such address, a port below 1024) are raised
    as they are."""
    family = _family(host)
    port = free_port(host, port)
    lock = _port_lock(port)
    try:
        bound = _bound(family, host, port)
    except BaseException:
        lock.close()
        raise
    reserved = ListeningSocket(family, socket.SOCK_STREAM, fileno=bound.detach())
    reserved.set_inheritable(True)
    reserved.lock = lock
    return reserved
