"""Best times: /besttime from the workspace's own numbers (fed through the X fake over simulated weeks), the
general defaults with their wording when there is too little history, and `/schedule <post> next best`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from handlers.engagement.besttime import history
from handlers.engagement.metrics import poll_metrics
from storage.models import Account, Delivery, MetricSnapshot, Post, Workspace
from tests.conftest import START, Team, refused
from tests.fakes.mastodon_api import FakeMastodon
from tests.fakes.x_api import FakeX

DEFAULTS_HEAD = ("General defaults — not your numbers, Sprout Social's 2023 study of engagement across 34,000+ "
                 "brands — in Europe/Paris:")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- too little history: the general defaults ---------------------------------------------------------------


async def test_without_history_besttime_gives_the_general_defaults_and_says_so(team: Team) -> None:
    await team.setup_workspace()  # brand-x follows X's rules, brand-bsky Bluesky's
    out = await team.say("bob", "/besttime")
    assert out.splitlines() == [
        "⏰ Not enough history yet: 0 posts with numbers 24 hours after publishing in the last 12 weeks; Herald "
        "needs 10 to suggest times from your own numbers.",
        DEFAULTS_HEAD,
        "  Bluesky: Tue–Thu 09:00–12:00 (the study's overall finding)",
        "  X: Tue–Fri 09:00–12:00",
        "/schedule <post> next best uses these until your own history is enough.",
    ]
    out = await team.say("bob", "/besttime facebook")  # a network without accounts here: its defaults
    assert out.splitlines()[0].startswith("⏰ Not enough history yet on Facebook: 0 posts")
    assert "  Facebook: Mon 08:00–13:00, Tue 08:00–14:00, Wed 08:00–13:00, Thu 08:00–12:00" in out
    assert "  TikTok: Tue 14:00–18:00, Wed 14:00–17:00, Thu 15:00–17:00" in await team.say("bob", "/besttime TikTok")
    assert "  LinkedIn: Tue–Wed 10:00–12:00" in await team.say("bob", "/besttime linkedin")


async def test_an_unknown_network_is_refused(team: Team) -> None:
    await team.setup_workspace()
    await refused(team, "bob", "/besttime myspace", "'myspace' isn't a network. Try one of: bluesky, x.",
                  "Usage: /besttime [clicks] [network] | /besttime [clicks] audience <name>")


async def test_next_best_without_history_takes_the_default_hours_the_posts_networks_share(team: Team) -> None:
    await team.setup_workspace()
    first = await team.approved_post("First")
    second = await team.approved_post("Second")
    # Monday 10:00 in Paris; X's defaults are Tue–Fri 09–12, Bluesky's Tue–Thu 09–12: Tuesday 09:00 first
    out = await team.say("alice", f"/schedule {first} next best")
    assert out == (
        f"🗓 #{first} is scheduled for Tue 24 Nov 2026 09:00 CET (Europe/Paris) (in 23 hours) on brand-bsky, brand-x.\n"
        "⏰ That's a general default best time for its networks: there isn't enough history of your own yet "
        "(/besttime).")
    out = await team.say("alice", f"/schedule {second} next best")  # 09:00 is taken by the first
    assert out.startswith(f"🗓 #{second} is scheduled for Tue 24 Nov 2026 10:00 CET (Europe/Paris) (in 1 day)")
    assert team.herald.scheduler.armed() == {first: utc(2026, 11, 24, 8, 0), second: utc(2026, 11, 24, 9, 0)}


async def test_next_slot_without_slots_points_to_next_best(team: Team) -> None:
    await team.setup_workspace()
    post_id = await team.approved_post()
    out = await refused(team, "alice", f"/schedule {post_id} next slot", "has posting slots")
    assert out.endswith(f"or take the next best time (/besttime): /schedule {post_id} next best")


# --- the workspace's own numbers, through the X fake -----------------------------------------------------------

# Paris times (CET, UTC+1) of twelve posts over four weeks, and the likes each has 24 hours later (of 1,000 views)
TUE_9, THU_17, SAT_12 = (1, 8), (3, 16), (5, 11)  # weekday, UTC hour
PLAN: list[tuple[datetime, int]] = []
for week in range(4):
    monday = utc(2026, 11, 23) + timedelta(weeks=week)
    PLAN += [
        (monday + timedelta(days=1, hours=8), (30, 50, 40, 40)[week]),  # Tue 09:00 Paris: 4.0% on average
        (monday + timedelta(days=3, hours=16), (20, 30, 25, 25)[week]),  # Thu 17:00: 2.5%
        (monday + timedelta(days=5, hours=11), (10, 10, 10, 14)[week]),  # Sat 12:00: 1.1%
    ]


@pytest.fixture
async def x() -> AsyncIterator[FakeX]:
    async with FakeX() as fake:
        yield fake


async def publish_now(team: Team, text: str) -> int:
    out = await team.say("alice", f"/draft {text} to=acme-x")
    post_id = int(out.split("#", 1)[1].split(" ", 1)[0].rstrip("."))
    await team.say("alice", f"/submit {post_id}")
    await team.say("bob", f"/approve {post_id}")
    assert f"📣 #{post_id} is published" in await team.say("alice", f"/publish {post_id}")
    return post_id


async def four_weeks_of_posts(team: Team, x: FakeX, plan: list[tuple[datetime, int]] = PLAN) -> None:
    """alice's workspace posts `plan` on X; each post is read 24 h 5 min after publishing, with its numbers."""
    await team.say("alice", "/setup Acme")
    await team.say("alice", "/timezone Europe/Paris")
    await team.say("alice", "/role bob approver")
    assert "Connected acme-x" in await team.say("alice", f"/connect x name=acme-x base_url={x.url} access_token=tok-1")
    for n, (at, likes) in enumerate(plan):
        team.clock.current = at
        await publish_now(team, f"Post number {n}")
        tweet = list(x.tweets)[-1]
        x.engage(tweet, like_count=likes, impression_count=1000)
        team.clock.current = at + timedelta(hours=24, minutes=5)
        assert await poll_metrics(team.herald.ctx) >= 1


OWN = [
    "  1. Tue 09:00–10:00 · 4.0% engagement rate (4 posts)",
    "  2. Thu 17:00–18:00 · 2.5% engagement rate (4 posts)",
    "  3. Sat 12:00–13:00 · 1.1% engagement rate (4 posts)",
    "Based on 12 posts over 4 weeks: each post's numbers 24 hours after publishing; engagement rate = "
    "engagements ÷ views.",
    "/schedule <post> next best takes the next of these times.",
]


async def test_besttime_ranks_the_hours_of_the_week_by_the_workspaces_own_engagement_rate(
    team: Team, x: FakeX
) -> None:
    await four_weeks_of_posts(team, x)
    out = await team.say("bob", "/besttime x")
    assert out.splitlines() == ["⏰ Best times to post on X, from this workspace's own numbers (Europe/Paris):", *OWN]
    out = await team.say("bob", "/besttime")  # every network: only X has posts
    assert out.splitlines() == ["⏰ Best times to post, from this workspace's own numbers (Europe/Paris):", *OWN]


async def test_a_network_without_enough_history_still_gets_the_defaults(team: Team, x: FakeX) -> None:
    await four_weeks_of_posts(team, x)
    async with FakeMastodon() as mastodon:
        await team.say("alice", f"/connect mastodon name=acme-masto base_url={mastodon.url} access_token=masto-token")
        out = await team.say("bob", "/besttime mastodon")
    assert out.splitlines() == [
        "⏰ Not enough history yet on Mastodon: 0 posts with numbers 24 hours after publishing in the last 12 "
        "weeks; Herald needs 10 to suggest times from your own numbers.",
        DEFAULTS_HEAD,
        "  Mastodon: Tue–Thu 09:00–12:00 (the study's overall finding)",
        "/schedule <post> next best uses these until your own history is enough.",
    ]


async def test_nine_posts_are_not_enough_and_the_tenth_is(team: Team, x: FakeX) -> None:
    await four_weeks_of_posts(team, x, PLAN[:9])
    out = await team.say("bob", "/besttime x")
    assert out.startswith("⏰ Not enough history yet on X: 9 posts with numbers 24 hours after publishing")
    at, likes = PLAN[9]
    team.clock.current = at
    await publish_now(team, "The tenth")
    x.engage(list(x.tweets)[-1], like_count=likes, impression_count=1000)
    team.clock.current = at + timedelta(hours=24, minutes=5)
    await poll_metrics(team.herald.ctx)
    out = await team.say("bob", "/besttime x")
    assert out.splitlines()[1:] == [
        "  1. Tue 09:00–10:00 · 4.0% engagement rate (4 posts)",
        "  2. Thu 17:00–18:00 · 2.5% engagement rate (3 posts)",
        "  3. Sat 12:00–13:00 · 1.0% engagement rate (3 posts)",
        "Based on 10 posts over 3 weeks: each post's numbers 24 hours after publishing; engagement rate = "
        "engagements ÷ views.",
        "/schedule <post> next best takes the next of these times.",
    ]


async def test_next_best_takes_the_soonest_free_one_of_the_workspaces_best_times(team: Team, x: FakeX) -> None:
    await four_weeks_of_posts(team, x)
    assert team.clock.now() == utc(2026, 12, 20, 11, 5)  # Sunday 12:05 in Paris
    first = await team.approved_post("Next week's news to=acme-x")
    second = await team.approved_post("More news to=acme-x")
    third = await team.approved_post("Even more to=acme-x")
    out = await team.say("alice", f"/schedule {first} next best")
    assert out == (f"🗓 #{first} is scheduled for Tue 22 Dec 2026 09:00 CET (Europe/Paris) (in 1 day 20 hours) on "
                   "acme-x.\n⏰ That's one of this workspace's best times by its own numbers (/besttime).")
    out = await team.say("alice", f"/schedule {second} next best")
    assert out.startswith(f"🗓 #{second} is scheduled for Thu 24 Dec 2026 17:00 CET (Europe/Paris)")
    out = await team.say("alice", f"/schedule {third} next best")
    assert out.startswith(f"🗓 #{third} is scheduled for Sat 26 Dec 2026 12:00 CET (Europe/Paris)")


# --- what counts as a post's 24-hour reading (rows written directly, for the edge cases) --------------------------


def seed(team: Team, readings: list[tuple[datetime, list[tuple[float, dict[str, int | None]]]]]) -> tuple[Workspace, int]:
    """A workspace with one account; per post its publishing time and its readings (hours after, numbers)."""
    with team.herald.db.session() as session:
        ws = Workspace(name="Seeded", timezone="Europe/Paris")
        session.add(ws)
        session.flush()
        account = Account(workspace_id=ws.id or 0, network="mastodon", name="seeded")
        session.add(account)
        session.flush()
        for n, (sent_at, snaps) in enumerate(readings):
            post = Post(workspace_id=ws.id or 0, author_platform="console", author_user_id="a", author_name="a",
                        text=f"post {n}", state="published", published_at=sent_at)
            session.add(post)
            session.flush()
            delivery = Delivery(post_id=post.id or 0, account_id=account.id or 0, state="sent",
                                idempotency_key=f"seed-{n}", remote_id=str(n), sent_at=sent_at)
            session.add(delivery)
            session.flush()
            for hours, numbers in snaps:
                session.add(MetricSnapshot(delivery_id=delivery.id or 0, taken_at=sent_at + timedelta(hours=hours),
                                           **numbers))
        session.flush()
        session.expunge(ws)
        return ws, account.id or 0


async def test_the_reading_nearest_24_hours_counts_and_posts_without_views_are_scored_by_engagements(
    team: Team,
) -> None:
    now = START + timedelta(weeks=4)
    tue_9 = utc(2026, 11, 24, 8)  # Tue 09:00 in Paris
    ws, account_id = seed(team, [
        # 23.5 h and 25 h: the 23.5 h one counts (3 + 1 + 2 = 6 engagements); 12 h and 48 h are out of range
        (tue_9, [(12, {"likes": 100}), (23.5, {"likes": 3, "comments": 1, "shares": 2}), (25, {"likes": 9}),
                 (48, {"likes": 100})]),
        # the same hour a week later: only a 29 h reading (10)
        (tue_9 + timedelta(weeks=1), [(29, {"likes": 10})]),
        # readings only at 2 h and 31 h: not counted
        (tue_9 + timedelta(days=2), [(2, {"likes": 50}), (31, {"likes": 50})]),
        # younger than a day: not counted yet
        (now - timedelta(hours=20), [(19, {"likes": 70})]),
        # older than 12 weeks: not counted
        (now - timedelta(weeks=13), [(24, {"likes": 90})]),
    ])
    with team.herald.db.session() as session:
        past = history(session, ws, [account_id], now)
    assert (past.posts, past.weeks, past.by_rate) == (2, 1, False)
    assert [(s.label(), s.score, s.posts) for s in past.slots] == [("Tue 09:00–10:00", 8.0, 2)]


async def test_history_is_read_in_the_workspace_timezone(team: Team) -> None:
    sent = utc(2026, 11, 24, 23, 30)  # Tuesday 23:30 UTC is Wednesday 00:30 in Paris
    ws, account_id = seed(team, [(sent, [(24, {"likes": 5, "impressions": 100})])])
    with team.herald.db.session() as session:
        past = history(session, ws, [account_id], sent + timedelta(days=2))
    assert [(s.label(), s.score) for s in past.slots] == [("Wed 00:00–01:00", 0.05)] and past.by_rate
