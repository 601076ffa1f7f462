"""``memberlab serve --workers N``: each worker listens on its own socket, so connections
opened together are spread over the workers instead of landing on whichever woke first."""

from __future__ import annotations

import multiprocessing
import os
import socket

import pytest
from uvicorn.config import STARTUP_FAILURE

from listening_worker import accept_until_told
from memberlab.core import listening

pytestmark = pytest.mark.skipif(
    not listening.SPREADS_CONNECTIONS, reason="Linux spreads connections over SO_REUSEPORT sockets"
)

CONNECTIONS = 32


def test_workers_handed_the_socket_share_the_connections_opened_together() -> None:
    reserved = listening.listening_socket("127.0.0.1", 0)
    port = reserved.getsockname()[1]
    spawn = multiprocessing.get_context("spawn")  # as uvicorn starts its workers
    workers = []
    for _ in range(2):
        ready_here, ready_there = spawn.Pipe()
        stop_here, stop_there = spawn.Pipe()
        process = spawn.Process(target=accept_until_told, args=(reserved, ready_there, stop_there))
        process.start()
        workers.append((process, ready_here, stop_here))
    try:
        # each worker listens on a socket of its own (not a copy of the reserved one, as
        # uvicorn's workers share theirs), on the reserved port
        (port_1, socket_1), (port_2, socket_2) = [ready.recv() for _, ready, _ in workers]
        assert port_1 == port_2 == port
        assert len({socket_1, socket_2, os.fstat(reserved.fileno()).st_ino}) == 3
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(CONNECTIONS)]
        for _, _, stop in workers:
            stop.send("accept")
        counts = [stop.recv() for _, _, stop in workers]
        for client in clients:
            client.close()
    finally:
        for process, _, _ in workers:
            process.join(10)
        reserved.close()
    assert sum(counts) == CONNECTIONS
    # spread by a hash of the client's port: all 32 on one worker has odds of 2 in 2**32
    assert min(counts) > 0, counts


def test_the_reserved_socket_takes_no_connection_itself() -> None:
    with listening.listening_socket("127.0.0.1", 0) as reserved:
        port = reserved.getsockname()[1]
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2)


def test_an_address_another_program_listens_on_is_refused() -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        with pytest.raises(listening.AddressInUse):
            listening.listening_socket("127.0.0.1", other.getsockname()[1])


def test_even_when_that_program_shares_its_port() -> None:
    """Joining it would split the connections between two different servers."""
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        with pytest.raises(listening.AddressInUse):
            listening.listening_socket("127.0.0.1", other.getsockname()[1])


def test_a_second_server_starting_on_the_same_port_is_refused_before_it_listens() -> None:
    """Until the first server's workers listen, its port looks free to a probe."""
    with listening.listening_socket("127.0.0.1", 0) as first:
        port = first.getsockname()[1]
        with pytest.raises(listening.AddressInUse):
            listening.listening_socket("127.0.0.1", port)
        with pytest.raises(listening.AddressInUse):
            listening.listening_socket("0.0.0.0", port)
    # closed: the port is free again
    listening.listening_socket("127.0.0.1", port).close()


def test_a_worker_that_cannot_bind_ends_as_a_failed_start_up() -> None:
    """uvicorn's supervisor stops on that exit code, rather than restarting it for ever."""
    with pytest.raises(SystemExit) as ended:
        listening.worker_socket(socket.AF_INET, "192.0.2.1", 8000)  # an address not ours
    assert ended.value.code == STARTUP_FAILURE
