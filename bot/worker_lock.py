"""Locks held by one live process, which die with it: a PostgreSQL session advisory lock, or a file lock
beside the SQLite database (SQLite is only ever shared by processes of one host).

- `WorkerLock`: one live process per worker id. At start a worker settles the sends *it* left in
  flight (they can't still be running: it holds the lock). That is only safe if no other live process
  uses the same HERALD_WORKER_ID, so a second one is refused at start with one clear line. A running
  worker checks its lock every HERALD_LOCK_CHECK_SECONDS (`keep`): lost with a dropped connection, it
  is taken again; taken by another process meanwhile, the worker stops.
- `ProcessLock`: the building block, also used by bot/leader.py for "only one process polls Telegram".
- `migration_lock`: workers starting together on one database run the migrations one after another.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from bot.settings import SettingsError

log = logging.getLogger("herald.worker_lock")


def advisory_key(name: str) -> int:
    """A PostgreSQL advisory lock key (signed 64-bit) for a lock name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def lock_file(sqlite_path: Path, name: str) -> Path:
    """The lock file for `name` beside the SQLite database file."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return sqlite_path.resolve().with_name(f"{sqlite_path.name}.{safe}.lock")


class ProcessLock:
    """A named lock that one live process holds at a time and that is released when the process dies.

    PostgreSQL: a session advisory lock on a connection of its own (discarding the connection, or the
    process dying, ends the session and frees it). SQLite: `flock` on a file beside the database (the
    kernel frees it when the process dies). An in-memory SQLite database is private to its process,
    so the lock is always granted there.
    """

    def __init__(self, engine: Engine, sqlite_path: Path | None, *, key: str, file_name: str) -> None:
        self.engine = engine
        self.sqlite_path = sqlite_path
        self.key = key  # advisory lock name (PostgreSQL)
        self.file_name = file_name  # lock file name part (SQLite)
        self._file: IO[str] | None = None
        self._connection: Connection | None = None
        self._held = False

    @property
    def held(self) -> bool:
        return self._held

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; True if this process holds it now."""
        if self._held:
            return True
        if self.engine.dialect.name == "postgresql":
            connection = self.engine.connect()
            try:
                got = bool(connection.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                              {"key": advisory_key(self.key)}).scalar())
                connection.commit()
            except BaseException:
                end_session(connection)
                raise
            if not got:
                end_session(connection)
                return False
            self._connection = connection
        elif self.sqlite_path is not None:
            handle = open(lock_file(self.sqlite_path, self.file_name), "a+")  # noqa: SIM115 - held while locked
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return False
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            self._file = handle
        self._held = True
        return True

    def still_held(self) -> bool:
        """Whether the lock is still ours. On PostgreSQL a dropped connection (a server restart, a network
        cut, an idle-session timeout) ends the session and with it the lock: then it is given up here too."""
        if not self._held:
            return False
        if self._connection is None:
            return True  # a file lock can't be taken from a live process
        try:
            count = self._connection.execute(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                     "AND granted AND ((classid::bigint << 32) | objid::bigint) = :key"),
                {"key": advisory_key(self.key)},
            ).scalar()
            self._connection.commit()
        except Exception:
            self.release()
            return False
        if not count:
            self.release()
            return False
        return True

    def release(self) -> None:
        self._held = False
        if self._connection is not None:
            connection, self._connection = self._connection, None
            end_session(connection)  # PostgreSQL drops the session's advisory locks
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class WorkerLock:
    """One live process per HERALD_WORKER_ID on a database."""

    def __init__(self, engine: Engine, worker_id: str, sqlite_path: Path | None) -> None:
        self.worker_id = worker_id
        self._lock = ProcessLock(engine, sqlite_path, key=f"herald-worker:{worker_id}", file_name=worker_id)

    def _refuse(self) -> SettingsError:
        return SettingsError(
            f"Bad setting HERALD_WORKER_ID: '{self.worker_id}' is already used by another running Herald on this "
            "database; give each worker its own."
        )

    def acquire(self) -> None:
        if not self._lock.try_acquire():
            raise self._refuse()

    def keep(self) -> bool:
        """Whether this process still holds its worker id. A lock lost with a dropped database connection
        (a server restart, a network cut, an idle-session timeout) is taken again at once; False when
        another live process took the id meanwhile: then this one must stop."""
        if self._lock.still_held():
            return True
        if self._lock.try_acquire():
            log.warning("the lock on HERALD_WORKER_ID '%s' was lost with a dropped database connection; "
                        "it is taken again", self.worker_id)
            return True
        return False

    def lost_line(self) -> str:
        """What to tell the operator when `keep` failed."""
        return (f"this worker lost the lock on HERALD_WORKER_ID '{self.worker_id}' with a dropped database "
                "connection, and another running Herald took that id meanwhile; this one stops so that only "
                "one process works under it. Give each worker its own HERALD_WORKER_ID.")

    def release(self) -> None:
        self._lock.release()


def end_session(connection: Connection) -> None:
    """Close the database session for good. A plain close() would hand the connection back to the pool
    with its session, and a session advisory lock, still alive."""
    try:
        connection.invalidate()  # the DBAPI connection is closed, not pooled
    finally:
        connection.close()


@contextmanager
def migration_lock(engine: Engine, sqlite_path: Path | None) -> Iterator[None]:
    """Held while this process migrates: workers starting at once (a deploy) migrate one after another,
    and the later ones find the schema already up to date."""
    if engine.dialect.name == "postgresql":
        connection = engine.connect()
        try:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": advisory_key("herald-migrations")})
            connection.commit()
            yield
        finally:
            end_session(connection)  # and the lock with it
    elif sqlite_path is not None:
        with open(lock_file(sqlite_path, "migrations"), "a+") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # waits for the worker migrating now
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    else:
        yield
