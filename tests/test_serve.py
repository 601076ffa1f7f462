"""``memberlab serve --workers 2`` as a user starts it: two processes, each answering on a
socket of its own, so that connections opened together reach both."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from memberlab.core import listening

CONNECTIONS = 16


def worker_pids(server: subprocess.Popen) -> set[int]:
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    return {int(pid) for pid in children}


ESTABLISHED, LISTENING = "01", "0A"  # TCP states as /proc/net/tcp writes them


def sockets_on(port: int, pids: set[int], state: str) -> dict[int, int]:
    """How many sockets on local ``port`` in ``state`` each of ``pids`` holds (from /proc)."""
    inodes: dict[int, int] = {}  # socket inode -> pid
    for pid in pids:
        try:
            targets = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except FileNotFoundError:  # a descriptor or the process went meanwhile (starting up)
            continue
        for target in targets:
            if target.startswith("socket:["):
                inodes[int(target[8:-1])] = pid
    owners = dict.fromkeys(pids, 0)
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, inode = int(fields[1].split(":")[1], 16), int(fields[9])
        if local_port == port and fields[3] == state and inode in inodes:
            owners[inodes[inode]] += 1
    return owners


@pytest.mark.skipif(not listening.SPREADS_CONNECTIONS, reason="Linux: workers' own sockets")
def test_two_workers_both_answer_connections_opened_together(tmp_path: Path) -> None:
    port = listening.free_port("127.0.0.1", 0)
    environment = {
        **os.environ,
        "MEMBERLAB_DATABASE_URL": f"sqlite:///{tmp_path / 'served.db'}",
        "MEMBERLAB_LANGUAGE": "en",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "memberlab.cli", "serve", "--port", str(port), "--workers", "2"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        pids: set[int] = set()
        # both workers listening, each on a socket of its own
        while sorted(sockets_on(port, pids, LISTENING).values())[-2:] != [1, 1]:
            assert server.poll() is None, server.stdout.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "two workers do not listen on sockets of their own"
            pids = worker_pids(server)
            time.sleep(0.2)
        clients = []
        for _ in range(CONNECTIONS):  # keep-alive connections, opened together
            client = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            client.connect()
            clients.append(client)
        for client in clients:  # every one is answered, whichever worker took it
            client.request("GET", "/healthz")
            response = client.getresponse()
            assert (response.status, response.read()) == (200, b'{"status":"ok"}')
        listeners = sockets_on(port, pids, LISTENING)
        owners = sockets_on(port, {pid for pid in pids if listeners[pid]}, ESTABLISHED)
        assert sum(owners.values()) == CONNECTIONS
        # spread by a hash of each client's port: all 16 on one worker has odds of 2 in 65,536
        assert min(owners.values()) > 0, owners
        for client in clients:
            client.close()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
