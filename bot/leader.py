"""One receiver per chat platform: with several Herald workers, only one polls Telegram and only one holds
the Discord gateway.

Two processes calling getUpdates with one bot token make Telegram answer 409 Conflict to one of them,
and two Discord gateway sessions both receive every interaction (a command would run twice). So each
front end that needs a single receiver names a lock (`leader_name`, per bot token); the process that
holds it receives, the others start their front ends send-only (they still deliver Herald's notices
through the platform's REST API) and try to take the lock over every `every` seconds. The lock dies with
its holder (a PostgreSQL session advisory lock, or a file lock beside the SQLite database: see
bot/worker_lock.py), so when the receiving worker stops or crashes another one starts receiving within
`every` seconds. A front end with no `leader_name` (Telegram in webhook mode, where a load balancer
spreads updates over every worker) receives in every process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from bot.chats.front import ChatFront
from bot.worker_lock import ProcessLock

log = logging.getLogger("herald.leader")

TAKEOVER_SECONDS = 15.0


@dataclass
class Seat:
    front: ChatFront
    lock: ProcessLock


class Leadership:
    """Starts the front ends as receiver or send-only, and keeps trying to take over the receiving."""

    def __init__(self, engine: Engine, sqlite_path: Path | None, worker_id: str, *,
                 every: float = TAKEOVER_SECONDS) -> None:
        self.engine = engine
        self.sqlite_path = sqlite_path
        self.worker_id = worker_id
        self.every = every
        self.seats: list[Seat] = []
        self._task: asyncio.Task[None] | None = None

    async def start_front(self, front: ChatFront) -> None:
        """Start a front end: receiving if it needs no single receiver or this process gets the lock."""
        name = front.leader_name
        if name is None:
            await front.start()
            return
        lock = ProcessLock(self.engine, self.sqlite_path, key=f"herald-leader:{name}", file_name=f"leader-{name}")
        receive = lock.try_acquire()
        try:
            await front.start(receive=receive)
        except BaseException:
            lock.release()
            raise
        self.seats.append(Seat(front, lock))
        if receive:
            log.info("%s: this worker (%s) receives the updates", front.platform, self.worker_id)
        else:
            log.info("%s: another Herald worker receives the updates; this one (%s) only sends, and takes over "
                     "within %g s if that one stops", front.platform, self.worker_id, self.every)

    def receiving(self, front: ChatFront) -> bool:
        """Whether this process receives the front end's updates (always, for one without a single receiver)."""
        seat = next((s for s in self.seats if s.front is front), None)
        return seat is None or seat.lock.held

    def watch(self) -> None:
        """Check the locks every `every` seconds from now on."""
        if self.seats and self._task is None:
            self._task = asyncio.create_task(self._watch(), name="herald-leadership")

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            await self.check()

    async def check(self) -> None:
        """Give up receiving where the lock was lost; take over where it is free."""
        for seat in self.seats:
            platform = seat.front.platform
            try:
                if seat.lock.held:
                    if not seat.lock.still_held():
                        log.warning("%s: this worker (%s) lost the receiver lock (its database connection "
                                    "dropped); it stops receiving and only sends", platform, self.worker_id)
                        await seat.front.stop_receiving()
                        continue
                    if seat.front.receiving:
                        continue
                    # holding the lock without receiving (the connection ended for good): start again, or
                    # let go so that another worker can try
                    log.warning("%s: this worker (%s) holds the receiver lock but doesn't receive; connecting "
                                "again", platform, self.worker_id)
                elif seat.lock.try_acquire():
                    log.info("%s: the receiving worker stopped; this worker (%s) takes over", platform,
                             self.worker_id)
                else:
                    continue
            except Exception:
                log.exception("%s: checking the receiver lock failed; trying again in %g s", platform, self.every)
                continue
            try:
                await seat.front.start_receiving()
            except Exception:
                log.exception("%s: starting to receive failed; another worker may take over", platform)
                seat.lock.release()

    async def stop(self) -> None:
        """Stop checking (the front ends are stopped next, then `release`)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def release(self) -> None:
        """Free the locks, once this process's front ends have stopped receiving."""
        for seat in self.seats:
            seat.lock.release()
        self.seats = []
