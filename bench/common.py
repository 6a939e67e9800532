"""What the benchmarks share: a scratch database, bulk seeding of realistic rows, percentiles, fake networks.

Seeding goes around Herald on purpose (Core INSERTs in big batches, explicit ids): 100,000 posts typed
through /draft would take an hour. The rows are the ones Herald itself writes — posts in every state
with their deliveries, approvals, audit events and metric snapshots, over several workspaces — and the
benchmarks then measure Herald's real code against them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import random
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import Engine

from storage.db import Database
from storage.models import (
    Account,
    Approval,
    AuditEvent,
    ChatLink,
    Delivery,
    Member,
    MetricSnapshot,
    Post,
    Workspace,
)

KEY = "Zm9yLXRlc3RzLW9ubHktbm90LWEtcmVhbC1rZXktLS0="  # a throwaway Fernet key, for benchmark databases only
BATCH = 5_000


# -- the database ------------------------------------------------------------------------------------------


def scratch_url(database_url: str | None, folder: str | Path) -> str:
    """The URL to benchmark on: a new SQLite file in `folder`, or the given URL with its public schema emptied
    (point it at a scratch PostgreSQL database: everything in it is dropped)."""
    if not database_url:
        return f"sqlite:///{Path(folder) / 'bench.db'}"
    if not database_url.startswith("sqlite"):
        engine = create_engine(database_url)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    return database_url


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by the nearest-rank method."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


# -- bulk seeding --------------------------------------------------------------------------------------------

# what 100 posts of a team that has used Herald for a while look like
DEFAULT_MIX: dict[str, int] = {
    "published": 45, "partially_published": 3, "failed": 2, "scheduled": 20, "approved": 5, "in_review": 6,
    "changes_requested": 2, "draft": 10, "cancelled": 4, "rejected": 1, "expired": 2,
}
WORDS = ("spring", "sale", "launch", "today", "team", "webinar", "new", "collection", "offer", "thanks",
         "join", "live", "update", "release", "event", "week", "story", "guide", "tips", "free")
AUDIT_TRAIL = {
    "in_review": ("draft", "submit"), "changes_requested": ("draft", "submit", "changes"),
    "rejected": ("draft", "submit", "reject"), "approved": ("draft", "submit", "approve"),
    "scheduled": ("draft", "submit", "approve", "schedule"), "cancelled": ("draft", "cancel"),
    "expired": ("draft", "submit", "expire"), "published": ("draft", "submit", "approve", "schedule", "publishing"),
    "partially_published": ("draft", "submit", "approve", "schedule", "publishing"),
    "failed": ("draft", "submit", "approve", "schedule", "publishing"),
}
ZONES = ("Europe/Paris", "America/New_York", "UTC", "Asia/Tokyo", "Europe/London")


@dataclass
class Seeded:
    posts: int = 0
    deliveries: int = 0
    approvals: int = 0
    audit: int = 0
    snapshots: int = 0
    workspaces: int = 0
    accounts: int = 0
    scheduled_ids: list[int] = field(default_factory=list)

    def line(self) -> str:
        return (f"{self.posts:,} posts, {self.deliveries:,} deliveries, {self.approvals:,} approvals, "
                f"{self.audit:,} audit events, {self.snapshots:,} metric snapshots in {self.workspaces} "
                f"workspaces / {self.accounts} accounts")


def _next_id(engine: Engine, table: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()) + 1


def _insert(engine: Engine, table: Any, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as connection:
        for start in range(0, len(rows), BATCH):
            connection.execute(insert(table), rows[start:start + BATCH])


def _fix_sequences(engine: Engine, tables: Iterable[Any]) -> None:
    """After inserting explicit ids, PostgreSQL's serial sequences must be moved past them."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as connection:
        for table in tables:
            connection.execute(text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                f"(SELECT COALESCE(MAX(id), 1) FROM {table.name}))"))
        connection.execute(text("ANALYZE"))


def seed(
    url: str,
    posts: int,
    *,
    now: datetime,
    workspaces: int = 8,
    accounts_per_workspace: int = 3,
    mix: dict[str, int] | None = None,
    into_workspace: int | None = None,
    spread: timedelta = timedelta(days=60),
    rng_seed: int = 5,
) -> Seeded:
    """Insert `posts` posts in the proportions of `mix` (state → weight) across `workspaces` new workspaces
    (plus `into_workspace`, an existing one with accounts, if given), each with a team chat, members and
    sandbox accounts. Published posts get sent deliveries, approvals, audit events and metric snapshots;
    scheduled ones are due over the next `spread`; drafts have pending deliveries and no time."""
    rng = random.Random(rng_seed)
    db = Database(url)
    db.migrate()
    engine = db.engine
    models: tuple[Any, ...] = (Workspace, ChatLink, Member, Account, Post, Delivery, Approval, AuditEvent,
                               MetricSnapshot)
    tables = {m: m.__table__ for m in models}
    out = Seeded()
    ws_id, acc_id = _next_id(engine, tables[Workspace]), _next_id(engine, tables[Account])
    ws_rows, link_rows, member_rows, account_rows = [], [], [], []
    targets: dict[int, list[int]] = {}  # workspace → account ids
    for n in range(workspaces):
        wid = ws_id + n
        ws_rows.append({"id": wid, "name": f"Team {wid}", "timezone": ZONES[n % len(ZONES)], "approvals_needed": 1,
                        "approver_roles": "admin,approver", "self_approval": False, "unapproved_action": "hold",
                        "approval_deadline_minutes": (0, 0, 60, 120)[n % 4], "paused": False,
                        "digest_cadence": "off", "digest_at": "09:00", "digest_weekday": 0, "post_reports": "1h,24h,7d",
                        "watch_words": "", "alert_factor": 3.0, "utm": True, "created_at": now - timedelta(days=400)})
        link_rows.append({"workspace_id": wid, "platform": "telegram", "chat_id": f"-100{wid:08d}", "space": "",
                          "title": f"Team {wid}", "purposes": "team,approvals,reports", "created_at": now})
        for who, role in (("ann", "admin"), ("ed", "editor"), ("al", "approver"), ("vi", "viewer")):
            member_rows.append({"workspace_id": wid, "platform": "telegram", "user_id": f"{who}{wid}",
                                "name": f"{who}{wid}", "role": role, "created_at": now})
        ids = []
        for k in range(accounts_per_workspace):
            like = ("x", "bluesky", "mastodon", "threads")[k % 4]
            account_rows.append({"id": acc_id, "workspace_id": wid, "network": "sandbox", "name": f"t{wid}-{like}",
                                 "base_url": None, "credentials": None, "settings": {"like": like}, "health": "ok",
                                 "slots": "", "timezone": None, "created_at": now})
            ids.append(acc_id)
            acc_id += 1
        targets[wid] = ids
    _insert(engine, tables[Workspace], ws_rows)
    _insert(engine, tables[ChatLink], link_rows)
    _insert(engine, tables[Member], member_rows)
    _insert(engine, tables[Account], account_rows)
    if into_workspace is not None:
        with engine.connect() as connection:
            targets[into_workspace] = [int(i) for i in connection.execute(
                select(tables[Account].c.id).where(tables[Account].c.workspace_id == into_workspace)).scalars()]
    out.workspaces, out.accounts = len(targets), sum(len(v) for v in targets.values())

    mix = mix or DEFAULT_MIX
    states = list(mix)
    weights = [mix[s] for s in states]
    post_id = _next_id(engine, tables[Post])
    delivery_id = _next_id(engine, tables[Delivery])
    ws_ids = list(targets)
    post_rows: list[dict[str, Any]] = []
    delivery_rows: list[dict[str, Any]] = []
    approval_rows: list[dict[str, Any]] = []
    audit_rows: list[dict[str, Any]] = []
    snapshot_rows: list[dict[str, Any]] = []

    def flush() -> None:
        _insert(engine, tables[Post], post_rows)
        _insert(engine, tables[Delivery], delivery_rows)
        _insert(engine, tables[Approval], approval_rows)
        _insert(engine, tables[AuditEvent], audit_rows)
        _insert(engine, tables[MetricSnapshot], snapshot_rows)
        out.posts += len(post_rows)
        out.deliveries += len(delivery_rows)
        out.approvals += len(approval_rows)
        out.audit += len(audit_rows)
        out.snapshots += len(snapshot_rows)
        for rows in (post_rows, delivery_rows, approval_rows, audit_rows, snapshot_rows):
            rows.clear()

    for n in range(posts):
        pid = post_id + n
        wid = ws_ids[n % len(ws_ids)]
        state = rng.choices(states, weights)[0]
        author = f"ed{wid}"
        created = now - timedelta(days=rng.uniform(1, 365))
        due: datetime | None = None
        published_at = None
        if state == "scheduled":
            due = now + timedelta(seconds=rng.uniform(120, spread.total_seconds()))
            due = due.replace(second=0, microsecond=0)
        elif state in ("published", "partially_published", "failed"):
            due = created + timedelta(days=rng.uniform(0, 3))
            published_at = due + timedelta(seconds=rng.uniform(0, 3)) if state != "failed" else None
        elif state in ("in_review", "approved") and rng.random() < 0.5:
            due = now + timedelta(days=rng.uniform(1, 30))
        text_body = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 30)))
        campaign = rng.choice((None, "spring", "launch", "black-friday", "webinar"))
        post_rows.append({
            "id": pid, "version": 1, "workspace_id": wid, "author_platform": "telegram", "author_user_id": author,
            "author_name": author, "text": f"#{n} {text_body}", "link": rng.choice((None, f"https://shop.example/{n}")),
            "campaign": campaign, "media": [], "variants": {}, "revision": 1,
            "sent_revision": 1 if published_at or state == "failed" else None, "state": state, "due_at": due,
            "due_tz": ZONES[wid % len(ZONES)] if due else None, "held_note": None, "published_at": published_at,
            "created_at": created, "updated_at": created,
        })
        if state == "scheduled":
            out.scheduled_ids.append(pid)
        accounts = targets[wid][: rng.randint(1, len(targets[wid]))]
        for k, account_id in enumerate(accounts):
            d_state, remote, sent_at, error = "pending", None, None, None
            if state == "published" or (state == "partially_published" and k == 0):
                d_state, remote, sent_at = "sent", str(delivery_id), published_at
            elif state in ("partially_published", "failed"):
                d_state, error = "failed", "Sandbox refused it: the text is too long"
            delivery_rows.append({
                "id": delivery_id, "post_id": pid, "account_id": account_id, "state": d_state,
                "idempotency_key": f"seed-{pid}-{account_id}", "text": None, "remote_id": remote,
                "remote_url": f"https://sandbox.herald.invalid/{remote}" if remote else None,
                "attempts": 1 if sent_at or error else 0, "auto_attempts": 1 if sent_at or error else 0,
                "error_kind": "rejected" if error else None, "last_error": error, "not_before": None,
                "claimed_at": sent_at, "claimed_by": "seed" if sent_at else None, "sent_at": sent_at,
                "metrics_due_at": None, "updated_at": sent_at or created, "resume": {},
            })
            if sent_at is not None:
                for hours in (1, 24):
                    snapshot_rows.append({
                        "delivery_id": delivery_id, "taken_at": sent_at + timedelta(hours=hours),
                        "likes": rng.randint(0, 500), "comments": rng.randint(0, 50), "shares": rng.randint(0, 80),
                        "quotes": rng.randint(0, 10), "impressions": rng.randint(100, 20_000),
                        "clicks": rng.randint(0, 300), "saves": None,
                    })
            delivery_id += 1
        if state in ("published", "partially_published", "failed", "scheduled", "approved"):
            approval_rows.append({"post_id": pid, "revision": 1, "platform": "telegram", "user_id": f"al{wid}",
                                  "name": f"al{wid}", "decision": "approve", "note": None,
                                  "created_at": created + timedelta(hours=1)})
        elif state in ("changes_requested", "rejected"):
            approval_rows.append({"post_id": pid, "revision": 1, "platform": "telegram", "user_id": f"al{wid}",
                                  "name": f"al{wid}", "decision": "changes" if state == "changes_requested" else "reject",
                                  "note": "tone it down", "created_at": created + timedelta(hours=1)})
        for action in AUDIT_TRAIL.get(state, ("draft",)):
            audit_rows.append({"workspace_id": wid, "post_id": pid, "actor": author, "action": action, "detail": "",
                               "created_at": created})
        if len(post_rows) >= BATCH:
            flush()
    flush()
    _fix_sequences(engine, tables.values())
    db.dispose()
    return out


# -- fake networks -------------------------------------------------------------------------------------------


def fake_jwt(expires: datetime) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    claims = {"scope": "com.atproto.appPass", "sub": "did:plc:bench", "exp": int(expires.timestamp())}
    return f"{part({'typ': 'at+jwt', 'alg': 'ES256K'})}.{part(claims)}.c2lnbmF0dXJl"


class FakeNetwork:
    """A loopback server (aiohttp, 127.0.0.1) speaking just enough Mastodon, Bluesky and X to connect an
    account and create posts. Every create waits `latency` seconds before answering, like a network far
    away, and its arrival time (wall clock, before the wait) is recorded with the post's text."""

    def __init__(self, latency: float = 0.05) -> None:
        self.latency = latency
        self.created: list[tuple[str, float, str]] = []  # (network, arrival time.time(), text)
        self._n = 0
        self._runner: web.AppRunner | None = None
        self.port = 0
        app = web.Application()
        app.router.add_get("/api/v1/accounts/verify_credentials", self._mastodon_me)
        app.router.add_get("/api/v2/instance", self._mastodon_instance)
        app.router.add_post("/api/v1/statuses", self._mastodon_status)
        app.router.add_post("/xrpc/com.atproto.server.createSession", self._bsky_session)
        app.router.add_get("/xrpc/com.atproto.server.getSession", self._bsky_get_session)
        app.router.add_post("/xrpc/com.atproto.repo.createRecord", self._bsky_record)
        app.router.add_get("/2/users/me", self._x_me)
        app.router.add_post("/2/tweets", self._x_tweet)
        app.router.add_get("/_created", self._list_created)
        self.app = app

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _created(self, network: str, body_text: str) -> int:
        self.created.append((network, time.time(), body_text))
        self._n += 1
        n = self._n
        await asyncio.sleep(self.latency)
        return n

    async def _list_created(self, _request: web.Request) -> web.Response:
        return web.json_response(self.created)

    async def _mastodon_me(self, _request: web.Request) -> web.Response:
        return web.json_response({"id": "1", "username": "bench", "url": f"{self.url}/@bench"})

    async def _mastodon_instance(self, _request: web.Request) -> web.Response:
        return web.json_response({"configuration": {"statuses": {"max_characters": 500, "max_media_attachments": 4,
                                                                 "characters_reserved_per_url": 23}}})

    async def _mastodon_status(self, request: web.Request) -> web.Response:
        body = await request.json()
        n = await self._created("mastodon", body["status"])
        return web.json_response({"id": str(n), "url": f"{self.url}/@bench/{n}"})

    async def _bsky_session(self, _request: web.Request) -> web.Response:
        expires = datetime.now(UTC) + timedelta(hours=2)
        return web.json_response({"accessJwt": fake_jwt(expires), "refreshJwt": fake_jwt(expires + timedelta(days=60)),
                                  "did": "did:plc:bench", "handle": "bench.test", "active": True})

    async def _bsky_get_session(self, _request: web.Request) -> web.Response:
        return web.json_response({"did": "did:plc:bench", "handle": "bench.test", "active": True})

    async def _bsky_record(self, request: web.Request) -> web.Response:
        body = await request.json()
        await self._created("bluesky", body["record"]["text"])
        return web.json_response({"uri": f"at://did:plc:bench/app.bsky.feed.post/{body['rkey']}", "cid": "bafy"})

    async def _x_me(self, _request: web.Request) -> web.Response:
        return web.json_response({"data": {"id": "1", "username": "bench"}})

    async def _x_tweet(self, request: web.Request) -> web.Response:
        body = await request.json()
        n = await self._created("x", body["text"])
        return web.json_response({"data": {"id": str(n), "text": body["text"]}})


def seed_due(url: str, workspace_id: int, account_ids: Sequence[int], due: Sequence[datetime], *, now: datetime,
             text: str = "Benchmark post") -> list[int]:
    """Scheduled, approved posts of one workspace due at the given times, each with a pending delivery to every
    account: what /draft, /approve and /schedule leave behind. Returns their ids; post n's text starts '#n '."""
    db = Database(url)
    engine = db.engine
    posts, deliveries, approvals = Post.__table__, Delivery.__table__, Approval.__table__  # type: ignore[attr-defined]
    first = _next_id(engine, posts)
    post_rows, delivery_rows, approval_rows = [], [], []
    for n, at in enumerate(due):
        pid = first + n
        post_rows.append({
            "id": pid, "version": 1, "workspace_id": workspace_id, "author_platform": "console",
            "author_user_id": "alice", "author_name": "alice", "text": f"#{n} {text} {n} #bench", "link": None,
            "campaign": None, "media": [], "variants": {}, "revision": 1, "sent_revision": None, "state": "scheduled",
            "due_at": at, "due_tz": "UTC", "held_note": None, "published_at": None, "created_at": now, "updated_at": now,
        })
        approval_rows.append({"post_id": pid, "revision": 1, "platform": "console", "user_id": "bob", "name": "bob",
                              "decision": "approve", "note": None, "created_at": now})
        for account_id in account_ids:
            delivery_rows.append({
                "post_id": pid, "account_id": account_id, "state": "pending",
                "idempotency_key": f"bench-{pid}-{account_id}", "attempts": 0, "auto_attempts": 0, "resume": {},
            })
    _insert(engine, posts, post_rows)
    _insert(engine, deliveries, delivery_rows)
    _insert(engine, approvals, approval_rows)
    _fix_sequences(engine, (posts,))
    db.dispose()
    return [first + n for n in range(len(due))]


class FakeNetworkProcess:
    """A FakeNetwork in a process of its own, so answering thousands of requests doesn't take the CPU time of
    the Herald being measured (one event loop each, and on a 2-core machine one core each)."""

    def __init__(self, latency: float = 0.05) -> None:
        self.latency = latency
        self.url = ""
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        root = str(Path(__file__).resolve().parent.parent)
        code = (f"import sys, asyncio; sys.path.insert(0, {root!r}); from bench.common import serve_fake; "
                f"asyncio.run(serve_fake({self.latency!r}))")
        self._process = await asyncio.create_subprocess_exec(sys.executable, "-c", code,
                                                             stdout=asyncio.subprocess.PIPE)
        assert self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), timeout=30)
        self.url = line.decode().strip()

    async def created(self) -> list[tuple[str, float, str]]:
        """Every create the server received: (network, arrival time, text)."""
        import httpx

        async with httpx.AsyncClient(timeout=60) as client:
            answer = await client.get(f"{self.url}/_created")
        return [(str(n), float(t), str(x)) for n, t, x in answer.json()]

    async def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            await self._process.wait()


async def serve_fake(latency: float) -> None:
    fake = FakeNetwork(latency)
    await fake.start()
    print(fake.url, flush=True)
    await asyncio.Event().wait()  # until terminated
