"""One live process per worker id: a PostgreSQL advisory lock, or a file lock beside the SQLite database.

At start a worker settles the sends *it* left in flight (they can't still be running: it holds the
lock). That is only safe if no other live process uses the same HERALD_WORKER_ID, so a second one
is refused at start with one clear line.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path
from typing import IO

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from bot.settings import SettingsError


class WorkerLock:
    def __init__(self, engine: Engine, worker_id: str, sqlite_path: Path | None) -> None:
        self.engine = engine
        self.worker_id = worker_id
        self.sqlite_path = sqlite_path
        self._file: IO[str] | None = None
        self._connection: Connection | None = None

    def _refuse(self) -> SettingsError:
        return SettingsError(
            f"Bad setting HERALD_WORKER_ID: '{self.worker_id}' is already used by another running Herald on this "
            "database; give each worker its own."
        )

    def acquire(self) -> None:
        if self.engine.dialect.name == "postgresql":
            key = int.from_bytes(hashlib.sha256(f"herald-worker:{self.worker_id}".encode()).digest()[:8], "big",
                                 signed=True)
            connection = self.engine.connect()
            if not connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar():
                connection.close()
                raise self._refuse()
            connection.commit()
            self._connection = connection
        elif self.sqlite_path is not None:
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.worker_id)
            path = self.sqlite_path.resolve().with_name(f"{self.sqlite_path.name}.{safe}.lock")
            handle = open(path, "a+")  # noqa: SIM115 - held open for the life of the process
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                raise self._refuse() from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            self._file = handle

    def release(self) -> None:
        if self._connection is not None:
            self._connection.close()  # ends the session: PostgreSQL drops its advisory locks
            self._connection = None
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
