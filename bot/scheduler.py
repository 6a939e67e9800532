"""The clock: APScheduler 3 (`AsyncIOScheduler`) arms one on-time job per post, sweeps, and polls metrics.

The database is the one truth of what is due. Jobs live in memory only and are rebuilt from
the posts table at start; a periodic sweep catches anything a crash, a restart or a missed job
let slip. A job never decides whether a post is published: it calls `handlers.publishing.run_due`,
which reads the post and applies the rules. `misfire_grace_time=None` so a late job still runs
(APScheduler's default of 1 second silently drops late jobs).
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime, timedelta

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from sqlmodel import col, select

from handlers.cards import UNAPPROVED, trigger_time
from handlers.context import Context
from handlers.engagement import poll_metrics
from handlers.health import check_accounts
from handlers.ports import Clock
from handlers.publishing import run_due, sweep
from handlers.registry import PERIODIC
from storage.models import Post, PostState, Workspace

log = logging.getLogger("herald.scheduler")


class HeraldScheduler:
    """Implements the handlers' Scheduler port on APScheduler."""

    def __init__(self, clock: Clock, *, sweep_seconds: int = 30, poll_seconds: int = 60,
                 check_seconds: int = 900) -> None:
        self.ctx: Context | None = None
        self.clock = clock
        self._armed: dict[int, datetime] = {}
        self.sweep_seconds = sweep_seconds
        self.poll_seconds = poll_seconds
        self.check_seconds = check_seconds
        self.aps = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        )

    def arm(self, post_id: int, at: datetime) -> None:
        """Run the post at `at` on Herald's clock (translated to a wall-clock delay for APScheduler)."""
        delay = max(at - self.clock.now(), timedelta())
        self._armed[post_id] = at
        self.aps.add_job(
            self._fire, DateTrigger(run_date=datetime.now(UTC) + delay, timezone=UTC), args=[post_id],
            id=f"post:{post_id}", replace_existing=True,
        )

    def disarm(self, post_id: int) -> None:
        self._armed.pop(post_id, None)
        with contextlib.suppress(JobLookupError):
            self.aps.remove_job(f"post:{post_id}")

    def armed(self) -> dict[int, datetime]:
        """Post id → the time (on Herald's clock) each armed post job is set for."""
        return dict(self._armed)

    async def _fire(self, post_id: int) -> None:
        assert self.ctx is not None
        self._armed.pop(post_id, None)
        try:
            await run_due(self.ctx, post_id)
        except Exception:
            log.exception("post %s: on-time run failed; the sweep will pick it up", post_id)

    async def _sweep(self) -> None:
        assert self.ctx is not None
        try:
            await sweep(self.ctx)
        except Exception:
            log.exception("sweep failed")

    async def _poll(self) -> None:
        assert self.ctx is not None
        try:
            await poll_metrics(self.ctx)
        except Exception:
            log.exception("metrics poll failed")

    async def _periodic(self, name: str) -> None:
        assert self.ctx is not None
        try:
            await PERIODIC[name].task(self.ctx)
        except Exception:
            log.exception("periodic task %s failed", name)

    async def _check(self) -> None:
        assert self.ctx is not None
        try:
            await check_accounts(self.ctx)
        except Exception:
            log.exception("account check failed")

    def rebuild(self) -> int:
        """Arm a job for every post with a trigger time still ahead; returns how many."""
        assert self.ctx is not None
        now = self.ctx.clock.now()
        armed = 0
        states = [s.value for s in (*UNAPPROVED, PostState.SCHEDULED)]
        with self.ctx.db.session() as session:
            rows = session.exec(
                select(Post, Workspace).where(col(Post.workspace_id) == col(Workspace.id))
                .where(col(Post.state).in_(states)).where(col(Post.due_at).is_not(None))
                .where(col(Post.held_note).is_(None))
            ).all()
            for post, ws in rows:
                at = trigger_time(post, ws)
                if at is not None and at > now and post.id is not None:
                    self.arm(post.id, at)
                    armed += 1
        return armed

    async def start(self, ctx: Context) -> None:
        """Rebuild the jobs from the database, start the clock, and sweep once for anything missed."""
        self.ctx = ctx
        armed = self.rebuild()
        now = datetime.now(UTC)
        self.aps.add_job(self._sweep, "interval", seconds=self.sweep_seconds, id="sweep",
                         replace_existing=True, next_run_time=now + timedelta(seconds=self.sweep_seconds))
        self.aps.add_job(self._poll, "interval", seconds=self.poll_seconds, id="metrics",
                         replace_existing=True, next_run_time=now + timedelta(seconds=self.poll_seconds))
        self.aps.add_job(self._check, "interval", seconds=self.check_seconds, id="accounts",
                         replace_existing=True, next_run_time=now + timedelta(seconds=min(60, self.check_seconds)))
        for name, job in PERIODIC.items():
            seconds = job.every.total_seconds()
            self.aps.add_job(self._periodic, "interval", seconds=seconds, args=[name], id=f"periodic:{name}",
                             replace_existing=True, next_run_time=now + timedelta(seconds=min(seconds, 30)))
        self.aps.start()
        log.info("scheduler started: %d post(s) armed", armed)
        await sweep(ctx)

    def shutdown(self) -> None:
        if self.aps.running:
            self.aps.shutdown(wait=False)
