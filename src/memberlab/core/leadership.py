"""One leader among several server processes (``memberlab serve --workers N``).

Every worker runs a scheduler thread, but only the holder of a lock runs the jobs and
delivers webhooks; the others keep trying, so when the leader stops another takes over at
its next tick. The jobs are idempotent anyway: the lock saves the duplicated work and keeps
webhook deliveries from being attempted twice at once.

- PostgreSQL: a session-level advisory lock on a connection the leader keeps open. The key
  is derived from the lock's name and the current schema, so schemas sharing a database
  (tests, benchmarks) do not elect each other's leaders.
- SQLite: an exclusive ``flock`` on a file beside the database.
- An in-memory SQLite database lives in one process: that process leads.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path
from typing import IO

from sqlalchemy import Connection, Engine, text


def _advisory_key(name: str, schema: str) -> int:
    digest = hashlib.sha256(f"{name}:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Leadership:
    """``acquire()`` until it returns True; then this process leads until ``release()``."""

    def __init__(self, engine: Engine, name: str = "memberlab.scheduler") -> None:
        self.engine = engine
        self.name = name
        self._connection: Connection | None = None
        self._file: IO[bytes] | None = None
        self._in_process = False
        self._key = 0

    @property
    def held(self) -> bool:
        return self._connection is not None or self._file is not None or self._in_process

    def acquire(self) -> bool:
        """Try to become the leader (without waiting); True if this process leads."""
        if self._connection is not None and not self._still_connected():
            self._connection = None  # the server went away, and the lock with it: try again
        if self.held:
            return True
        if self.engine.dialect.name == "postgresql":
            return self._acquire_advisory()
        database = self.engine.url.database
        if self.engine.dialect.name == "sqlite" and database not in (None, "", ":memory:"):
            return self._acquire_file(Path(f"{database}.{self.name}.lock"))
        self._in_process = True
        return True

    def release(self) -> None:
        if self._connection is not None:
            # unlock explicitly: closing only returns the connection to the pool, session
            # (and lock) still open
            try:
                self._connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": self._key}
                )
                self._connection.commit()
            finally:
                self._connection.close()
                self._connection = None
        if self._file is not None:
            try:
                fcntl.flock(self._file, fcntl.LOCK_UN)
                self._file.close()
            finally:
                self._file = None
        self._in_process = False

    def _still_connected(self) -> bool:
        assert self._connection is not None
        try:
            self._connection.execute(text("SELECT 1"))
            self._connection.commit()
        except Exception:
            self._connection.invalidate()
            return False
        return True

    def _acquire_advisory(self) -> bool:
        connection = self.engine.connect()
        try:
            schema = connection.execute(text("SELECT current_schema()")).scalar() or ""
            key = _advisory_key(self.name, schema)
            got = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
            won = bool(got.scalar())
            connection.commit()  # end the implicit transaction; the lock is the session's
        except BaseException:
            connection.close()
            raise
        if not won:
            connection.close()
            return False
        self._connection = connection
        self._key = key
        return True

    def _acquire_file(self, path: Path) -> bool:
        handle = path.open("ab")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n".encode())
        handle.flush()
        self._file = handle
        return True
