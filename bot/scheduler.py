"""The clock: APScheduler 3 (`AsyncIOScheduler`) runs posts on time, sweeps, and polls metrics.

The database is the one truth of what is due. Timers live in memory only and are rebuilt from
the posts table at start; a periodic sweep catches anything a crash, a restart or a missed timer
let slip. A timer never decides whether a post is published: it calls `handlers.posts.publishing.due.run_due`,
which reads the post and applies the rules. `misfire_grace_time=None` so a late job still runs
(APScheduler's default of 1 second silently drops late jobs).

Measured with bench/startup.py (one APScheduler job per scheduled post, all of them armed at start, made a
start with 100,000 scheduled posts take 8–11 s and 440 MB), hence:

- one APScheduler job per *time*, not per post: posts due at the same moment (teams schedule on the hour)
  share one job, which runs them all;
- only posts due within `horizon` (a day) hold a timer. A window job every `window_seconds` reads from the
  database the posts whose time comes within the horizon and arms them (also those another worker
  scheduled); a post armed further ahead in this process is remembered and gets its timer then.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from datetime import UTC, datetime, timedelta

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from sqlalchemy import and_, func, or_
from sqlmodel import col, select

from handlers.core.commands import PERIODIC
from handlers.core.context import Context
from handlers.core.ports import Clock
from handlers.engagement.metrics import poll_metrics
from handlers.posts.publishing.due import run_due, sweep
from handlers.posts.rules import UNAPPROVED
from handlers.workspace.health import check_accounts
from storage.models import Delivery, DeliveryState, Post, PostState, Workspace

log = logging.getLogger("herald.scheduler")

HORIZON = timedelta(days=1)  # posts due within this hold a timer
WINDOW_SECONDS = 600  # how often the next window is armed
UNAPPROVED_STATES = [s.value for s in UNAPPROVED]


class HeraldScheduler:
    """Implements the handlers' Scheduler port on APScheduler."""

    def __init__(self, clock: Clock, *, sweep_seconds: int = 30, poll_seconds: int = 60,
                 check_seconds: int = 900, horizon: timedelta = HORIZON, window_seconds: int = WINDOW_SECONDS) -> None:
        if timedelta(seconds=window_seconds) >= horizon:
            raise ValueError("the window job must run more often than the horizon it arms")
        self.ctx: Context | None = None
        self.clock = clock
        self._armed: dict[int, datetime] = {}  # every post this process will run, and when
        self._timed: dict[int, datetime] = {}  # those holding a timer (due within the horizon)
        self._moments: dict[datetime, set[int]] = {}  # a timer's time → its posts
        self._jobs: dict[datetime, str] = {}  # a timer's time → its APScheduler job id
        # a new id for every job: a post re-armed for a time whose job is running now (a rate-limited retry)
        # gets a job of its own rather than one APScheduler skips as "maximum number of running instances"
        self._serial = itertools.count(1)
        self.horizon = horizon
        self.window_seconds = window_seconds
        self.sweep_seconds = sweep_seconds
        self.poll_seconds = poll_seconds
        self.check_seconds = check_seconds
        self.aps = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        )

    def arm(self, post_id: int, at: datetime) -> None:
        """Run the post at `at` on Herald's clock (translated to a wall-clock delay for APScheduler).

        Further ahead than the horizon it is only remembered: the window job gives it its timer later."""
        self._armed[post_id] = at
        now = self.clock.now()
        if at - now > self.horizon:
            self._untime(post_id)
            return
        if self._timed.get(post_id) == at:
            return  # already set for that time
        self._untime(post_id)
        posts = self._moments.get(at)
        if posts is None:
            posts = self._moments[at] = set()
            job_id = f"due:{next(self._serial)}"
            self._jobs[at] = job_id
            delay = max(at - now, timedelta())
            self.aps.add_job(self._fire, DateTrigger(run_date=datetime.now(UTC) + delay, timezone=UTC),
                             args=[at], id=job_id)
        posts.add(post_id)
        self._timed[post_id] = at

    def disarm(self, post_id: int) -> None:
        self._armed.pop(post_id, None)
        self._untime(post_id)

    def _untime(self, post_id: int) -> None:
        at = self._timed.pop(post_id, None)
        posts = self._moments.get(at) if at is not None else None
        if at is None or posts is None:
            return
        posts.discard(post_id)
        if not posts:  # the last post of that moment: its job goes too
            del self._moments[at]
            with contextlib.suppress(JobLookupError):
                self.aps.remove_job(self._jobs.pop(at))

    def armed(self) -> dict[int, datetime]:
        """Post id → the time (on Herald's clock) each armed post is set to run at."""
        return dict(self._armed)

    def timed(self) -> dict[int, datetime]:
        """The armed posts that hold a timer now (due within the horizon)."""
        return dict(self._timed)

    async def _fire(self, at: datetime) -> None:
        """A moment came: run each of its posts, at once and side by side."""
        posts = self._moments.pop(at, set())
        self._jobs.pop(at, None)
        for post_id in posts:
            self._timed.pop(post_id, None)
            if self._armed.get(post_id) == at:
                del self._armed[post_id]
        await asyncio.gather(*(self._run(post_id) for post_id in sorted(posts)))

    async def _run(self, post_id: int) -> None:
        assert self.ctx is not None
        try:
            await run_due(self.ctx, post_id)
        except Exception:
            log.exception("post %s: on-time run failed; the sweep will pick it up", post_id)

    async def _sweep(self) -> None:
        assert self.ctx is not None
        try:
            await sweep(self.ctx)
        except asyncio.CancelledError:
            log.debug("sweep stopped with Herald")  # cancelled at shutdown: not a failure
        except Exception:
            log.exception("sweep failed")

    async def _poll(self) -> None:
        assert self.ctx is not None
        try:
            await poll_metrics(self.ctx)
        except asyncio.CancelledError:
            log.debug("metrics poll stopped with Herald")
        except Exception:
            log.exception("metrics poll failed")

    async def _periodic(self, name: str) -> None:
        assert self.ctx is not None
        try:
            await PERIODIC[name].task(self.ctx)
        except asyncio.CancelledError:
            log.debug("periodic task %s stopped with Herald", name)
        except Exception:
            log.exception("periodic task %s failed", name)

    async def _check(self) -> None:
        assert self.ctx is not None
        try:
            await check_accounts(self.ctx)
        except asyncio.CancelledError:
            log.debug("account check stopped with Herald")
        except Exception:
            log.exception("account check failed")

    def rebuild(self) -> int:
        """Arm every post whose trigger time comes within the horizon; returns how many.

        Reads only ids, states and times (no ORM objects) through ix_post_state_due."""
        assert self.ctx is not None
        now = self.ctx.clock.now()
        until = now + self.horizon
        armed = 0
        with self.ctx.db.session() as session:
            longest = session.exec(select(func.max(Workspace.approval_deadline_minutes))).one() or 0
            rows = session.exec(
                select(Post.id, Post.state, Post.due_at, Workspace.approval_deadline_minutes)
                .where(col(Post.workspace_id) == col(Workspace.id))
                .where(col(Post.held_note).is_(None))
                .where(col(Post.due_at) > now)
                .where(or_(
                    and_(col(Post.state) == PostState.SCHEDULED.value, col(Post.due_at) <= until),
                    and_(col(Post.state).in_(UNAPPROVED_STATES), col(Post.due_at) <= until + timedelta(minutes=longest)),
                ))
            ).all()
            # a post publishing at each audience's own time (or retrying): its next pending delivery's time
            waiting = session.exec(
                select(Delivery.post_id, func.min(Delivery.not_before))
                .where(col(Delivery.post_id) == col(Post.id))
                .where(col(Post.state) == PostState.PUBLISHING.value)
                .where(col(Delivery.state) == DeliveryState.PENDING.value)
                .where(col(Delivery.not_before) > now)
                .group_by(col(Delivery.post_id))
            ).all()
        seen = set()
        for waiting_id, at in waiting:
            if at is not None and at <= until:
                self.arm(waiting_id, at)
                seen.add(waiting_id)
                armed += 1
        for post_id, state, due_at, deadline in rows:
            if post_id is None or due_at is None:
                continue
            # the trigger time of handlers.posts.rules.trigger_time, from columns instead of loaded objects
            at = due_at if state == PostState.SCHEDULED.value else due_at - timedelta(minutes=deadline)
            if now < at <= until:
                self.arm(post_id, at)
                seen.add(post_id)
                armed += 1
        # remembered posts whose time is now inside the window but the database no longer runs then
        # (published, cancelled or moved by another worker): forget them
        for post_id, at in list(self._armed.items()):
            if at <= until and post_id not in seen and post_id not in self._timed:
                del self._armed[post_id]
        return armed

    async def _window(self) -> None:
        try:
            self.rebuild()
        except Exception:
            log.exception("arming the next window failed; the sweep still catches what is due")

    async def start(self, ctx: Context) -> None:
        """Rebuild the jobs from the database, start the clock, and sweep once for anything missed."""
        self.ctx = ctx
        armed = self.rebuild()
        now = datetime.now(UTC)
        self.aps.add_job(self._window, "interval", seconds=self.window_seconds, id="window", replace_existing=True,
                         next_run_time=now + timedelta(seconds=self.window_seconds))
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
        log.info("scheduler started: %d post(s) due within %s armed", armed, self.horizon)
        await sweep(ctx)

    def shutdown(self) -> None:
        if self.aps.running:
            self.aps.shutdown(wait=False)
