"""Engagement: polling published posts on a decaying cadence, /stats and /report, with the sandbox's real numbers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from bot.networks.sandbox import engagement
from handlers.core.ports import Metrics
from handlers.engagement.metrics import next_metrics_at, poll_metrics
from storage.models import Account
from tests.conftest import START, Team

ENGAGED = ("likes", "comments", "shares", "quotes", "saves", "clicks")


def account_names(team: Team) -> dict[int, str]:
    with team.herald.db.session() as session:
        return {a.id or 0: a.name for a in session.exec(select(Account)).all()}


def expected(team: Team, post_id: int) -> dict[str, Metrics]:
    """What the sandbox reports for each account of a post right now: its deterministic formula."""
    names = account_names(team)
    now = team.clock.now()
    numbers = {}
    for delivery in team.deliveries(post_id):
        assert delivery.sent_at is not None and delivery.remote_id is not None
        name = names[delivery.account_id]
        age = (now - delivery.sent_at).total_seconds() / 60
        numbers[name] = engagement(f"{name}:{delivery.remote_id}", age)
    return numbers


def engaged(m: Metrics) -> int:
    return sum(getattr(m, f) or 0 for f in ENGAGED)


def total(readings: list[Metrics], field: str) -> int:
    return sum(getattr(m, field) or 0 for m in readings)



def counted(value: int | None, word: str) -> str:
    """'1 quote', '3 quotes': how /stats names a number."""
    return f"{value} {word[:-1] if value == 1 else word}"


async def poll(team: Team) -> int:
    return await poll_metrics(team.herald.ctx)


async def published_post(team: Team, text: str = "Spring sale starts today!") -> int:
    post_id = await team.approved_post(text)
    out = await team.say("alice", f"/publish {post_id}")
    assert f"📣 #{post_id} is published" in out
    return post_id


# --- /stats ------------------------------------------------------------------------------------


async def test_stats_on_an_unpublished_post_says_there_are_no_numbers(team: Team) -> None:
    await team.setup_workspace()
    post_id = await team.approved_post()
    out = await team.say("bob", f"/stats {post_id}")
    assert out == f"#{post_id} isn't live anywhere yet (approved), so there are no numbers."
    out = await team.say("alice", "/draft Not even submitted")
    out = await team.say("bob", f"/stats {post_id + 1}")
    assert out == f"#{post_id + 1} isn't live anywhere yet (draft), so there are no numbers."


async def test_stats_right_after_publishing_waits_for_the_first_reading(team: Team) -> None:
    await team.setup_workspace()
    post_id = await published_post(team)
    out = await team.say("bob", f"/stats {post_id}")
    assert out.splitlines() == [
        f"📊 #{post_id} — published Mon 23 Nov 2026 10:00 CET (Europe/Paris) (now)",
        "  brand-bsky: no numbers yet",
        "  brand-x: no numbers yet",
        "Next reading Mon 23 Nov 2026 10:05 CET (Europe/Paris) (in 5 minutes).",
    ]


async def test_the_first_reading_comes_five_minutes_after_publishing(team: Team) -> None:
    await team.setup_workspace()
    post_id = await published_post(team)
    assert [d.metrics_due_at for d in team.deliveries(post_id)] == [START + timedelta(minutes=5)] * 2
    team.clock.advance(minutes=4)
    assert await poll(team) == 0
    team.clock.advance(minutes=1)
    assert await poll(team) == 2
    assert await poll(team) == 0  # nothing is due again until the next reading time
    assert [d.metrics_due_at for d in team.deliveries(post_id)] == [START + timedelta(minutes=15)] * 2


async def test_stats_show_each_accounts_numbers_the_totals_and_the_engagement_rate(team: Team) -> None:
    await team.setup_workspace()
    post_id = await published_post(team)
    team.clock.advance(hours=3)
    assert await poll(team) == 2
    numbers = expected(team, post_id)
    bsky, x = numbers["brand-bsky"], numbers["brand-x"]
    assert bsky != x  # each account's post has its own numbers
    out = await team.say("bob", f"/stats {post_id}")
    lines = out.splitlines()
    assert lines[0] == f"📊 #{post_id} — published Mon 23 Nov 2026 10:00 CET (Europe/Paris) (3 hours ago)"
    assert lines[1] == (
        f"  brand-bsky (sandbox): {counted(bsky.likes, 'likes')} · {counted(bsky.comments, 'comments')} · {counted(bsky.shares, 'shares')} · "
        f"{counted(bsky.quotes, 'quotes')} · {counted(bsky.impressions, 'views')} · {counted(bsky.clicks, 'clicks')} · {counted(bsky.saves, 'saves')}"
    )
    assert lines[2] == (
        f"    engagement rate {100 * engaged(bsky) / (bsky.impressions or 1):.1f}% = {engaged(bsky):,} engagements ÷ "
        f"{bsky.impressions:,} views"
    )
    assert lines[3].startswith(f"  brand-x (sandbox): {counted(x.likes, 'likes')} · {counted(x.comments, 'comments')}")
    both = [bsky, x]
    views, engagements = total(both, "impressions"), engaged(bsky) + engaged(x)
    assert f"  Total: {total(both, 'likes')} likes · {total(both, 'comments')} comments" in out
    assert f"{views:,} views" in lines[5]
    assert lines[6] == (
        f"  Engagement rate: {100 * engagements / views:.1f}% (engagements {engagements:,} ÷ views {views:,})"
    )
    assert lines[7] == "Engagements = likes + comments + shares + quotes + clicks + saves."
    assert lines[8] == f"First report of #{post_id}'s numbers: the next one shows the changes since this one."
    assert lines[9] == "Numbers read Mon 23 Nov 2026 13:00 CET (Europe/Paris) (now)."
    assert lines[10] == "Next reading Mon 23 Nov 2026 14:00 CET (Europe/Paris) (in 1 hour)."
    assert lines[11].startswith("[image: ")  # the chart (tests/test_stats.py decodes it)


async def test_stats_show_the_change_since_the_last_report(team: Team) -> None:
    await team.setup_workspace()
    post_id = await published_post(team)
    team.clock.advance(minutes=30)
    await poll(team)
    first = expected(team, post_id)["brand-bsky"]
    await team.say("bob", f"/stats {post_id}")  # the team sees the 10:30 numbers
    team.clock.advance(hours=2)
    await poll(team)
    second = expected(team, post_id)["brand-bsky"]
    assert second.likes > first.likes and second.impressions > first.impressions
    out = await team.say("bob", f"/stats {post_id}")
    line = next(line for line in out.splitlines() if line.startswith("  brand-bsky"))
    assert f"{counted(second.likes, 'likes')} (+{second.likes - first.likes})" in line
    assert f"{second.impressions:,} views (+{second.impressions - first.impressions:,})" in line
    assert "Changes (+n) are since the last report, Mon 23 Nov 2026 10:30 CET (Europe/Paris) (2 hours ago)." in out
    assert "Numbers read Mon 23 Nov 2026 12:30 CET (Europe/Paris) (now)" in out


async def test_a_post_read_after_thirty_days_is_never_read_again(team: Team) -> None:
    await team.setup_workspace()
    post_id = await published_post(team)
    team.clock.advance(days=40)  # long levelled off: the numbers barely move
    await poll(team)
    out = await team.say("bob", f"/stats {post_id}")
    assert "(+" not in out  # one reading only: nothing to compare with
    assert "Numbers read Sat 2 Jan 2027 10:00 CET (Europe/Paris) (now)" in out
    assert "Next reading" not in out  # after 30 days Herald stops reading
    assert [d.metrics_due_at for d in team.deliveries(post_id)] == [None, None]


async def test_a_scheduled_post_is_measured_after_the_clock_publishes_it(team: Team) -> None:
    await team.setup_workspace()
    post_id = await team.approved_post()
    await team.say("alice", f"/schedule {post_id} in 2 hours")
    await team.tick(hours=2)
    assert team.post(post_id).state == "published"
    team.clock.advance(minutes=50)
    assert await poll(team) == 2
    numbers = expected(team, post_id)
    names = account_names(team)
    remote = {names[d.account_id]: d.remote_id for d in team.deliveries(post_id)}
    assert numbers["brand-x"] == engagement(f"brand-x:{remote['brand-x']}", 50)
    out = await team.say("bob", f"/stats {post_id}")
    assert f"📊 #{post_id} — published Mon 23 Nov 2026 12:00 CET (Europe/Paris) (50 minutes ago)" in out
    views = total(list(numbers.values()), "impressions")
    assert f"engagements {sum(engaged(m) for m in numbers.values()):,} ÷ views {views:,})" in out


# --- the decaying cadence -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "every"),
    [
        (timedelta(minutes=5), timedelta(minutes=10)),
        (timedelta(hours=1, minutes=59), timedelta(minutes=10)),
        (timedelta(hours=2), timedelta(hours=1)),
        (timedelta(hours=23), timedelta(hours=1)),
        (timedelta(hours=24), timedelta(hours=6)),
        (timedelta(days=6, hours=17), timedelta(hours=6)),
        (timedelta(days=7), timedelta(days=1)),
        (timedelta(days=20), timedelta(days=1)),
    ],
)
def test_the_reading_cadence_slows_down_as_a_post_ages(age: timedelta, every: timedelta) -> None:
    now = START + age
    assert next_metrics_at(START, now) == now + every


def test_the_last_reading_is_at_thirty_days_and_none_after() -> None:
    assert next_metrics_at(START, START + timedelta(days=29, hours=12)) == START + timedelta(days=30)
    assert next_metrics_at(START, START + timedelta(days=30)) is None
    assert next_metrics_at(START, START + timedelta(days=45)) is None


async def test_a_deliverys_next_reading_follows_the_cadence_after_each_poll(team: Team) -> None:
    await team.setup_workspace()
    post_id = await published_post(team)
    steps = [
        (timedelta(minutes=5), timedelta(minutes=15)),
        (timedelta(hours=3), timedelta(hours=4)),
        (timedelta(days=2), timedelta(days=2, hours=6)),
        (timedelta(days=10), timedelta(days=11)),
        (timedelta(days=29, hours=12), timedelta(days=30)),
        (timedelta(days=30), None),
    ]
    for age, due in steps:
        team.clock.current = START + age
        assert await poll(team) == 2, age
        assert [d.metrics_due_at for d in team.deliveries(post_id)] == [None if due is None else START + due] * 2
    team.clock.advance(days=5)
    assert await poll(team) == 0  # a 35-day-old post is never read again


# --- /report (the period reports' own tests, on the network fakes, are in tests/test_digests.py) ------


def top_line(place: int, post_id: int, readings: list[Metrics], text: str) -> str:
    score, views = sum(engaged(m) for m in readings), total(readings, "impressions")
    return f"  {place}. #{post_id} · {score:,} engagements · {100 * score / views:.1f}% of {views:,} views · {text}"


async def test_report_day_counts_todays_posts_compares_with_the_day_before_and_ranks_the_top_posts(
    team: Team,
) -> None:
    await team.setup_workspace()
    monday = await published_post(team, "Monday news")
    team.clock.advance(days=1)
    only_x = await published_post(team, "Tuesday short to=brand-x")
    both = await published_post(team, "Tuesday big news")
    team.clock.advance(hours=3)
    assert await poll(team) == 5
    today = [*expected(team, only_x).values(), *expected(team, both).values()]
    out = await team.say("bob", "/report day")
    lines = out.splitlines()
    assert lines[0] == (
        "📈 Report for the last 24 hours (Mon 23 Nov 2026 13:00 → Tue 24 Nov 2026 13:00 CET (Europe/Paris))"
    )
    # Monday's post was published the day before; it had no reading yet at that day's end
    assert lines[2] == "Published: 2 posts on 3 accounts (before: 1, +100%)"
    views, score = total(today, "impressions"), sum(engaged(m) for m in today)
    assert f"Engagements: {score:,} (before: 0, new) · views: {views:,} (before: 0, new) · engagement rate: " \
           f"{100 * score / views:.1f}% (before: –)" in lines
    assert f"Total: {total(today, 'likes')} likes · {total(today, 'comments')} comments" in out
    assert f"  sandbox: 2 posts · {score:,} engagements (before: 0, new) · {views:,} views · rate " \
           f"{100 * score / views:.1f}%" in lines  # both accounts are sandbox ones
    assert sum(engaged(m) for m in expected(team, both).values()) > sum(engaged(m) for m in expected(team, only_x).values())
    top = lines.index("Top posts (engagements = likes + comments + shares + quotes + saves + clicks):")
    assert lines[top + 1:top + 3] == [  # two accounts reach more people than one
        top_line(1, both, list(expected(team, both).values()), "Tuesday big news"),
        top_line(2, only_x, list(expected(team, only_x).values()), "Tuesday short"),
    ]
    assert f"#{monday} " not in out


async def test_report_week_covers_every_post_of_the_week_ordered_by_engagements(team: Team) -> None:
    await team.setup_workspace()
    monday = await published_post(team, "Monday news")
    team.clock.advance(days=1)
    only_x = await published_post(team, "Tuesday short to=brand-x")
    both = await published_post(team, "Tuesday big news")
    team.clock.advance(hours=3)
    await poll(team)
    readings = {p: expected(team, p) for p in (monday, only_x, both)}
    scores = {p: sum(engaged(m) for m in numbers.values()) for p, numbers in readings.items()}
    everything = [m for numbers in readings.values() for m in numbers.values()]
    for command in ("/report week", "/report"):
        out = await team.say("bob", command)
        lines = out.splitlines()
        assert lines[2] == "Published: 3 posts on 5 accounts (before: 0, new)"
        assert f"Total: {total(everything, 'likes')} likes" in out
        assert f" · views: {total(everything, 'impressions'):,} (before: 0, new) · " in out
        top = lines.index("Top posts (engagements = likes + comments + shares + quotes + saves + clicks):")
        ranked = sorted(scores, key=lambda p: -scores[p])
        assert ranked[0] == monday  # a day older: it has gathered the most
        assert [line.split(" · ")[0].strip() for line in lines[top + 1:top + 4]] == [
            f"{i}. #{p}" for i, p in enumerate(ranked, start=1)]
        assert lines[top + 1] == top_line(1, monday, list(readings[monday].values()), "Monday news")


async def test_report_of_a_quiet_day_says_nothing_was_published(team: Team) -> None:
    await team.setup_workspace()
    await published_post(team)
    team.clock.advance(days=1, hours=1)
    out = await team.say("bob", "/report day")
    assert out.splitlines()[2] == "Nothing was published in this period (before: 1 post, 0 engagements)."


async def test_report_of_an_unknown_period_is_refused(team: Team) -> None:
    await team.setup_workspace()
    await published_post(team)
    before = team.snapshot()
    out = await team.say("bob", "/report year")
    assert out.startswith("✋ 'year' isn't a period. Use day, week or month")
    assert out.endswith("Usage: /report [day|week|month|<period>] [by audience] | /report campaign <name> | "
                        "/report audience <name> [period]")
    assert team.snapshot() == before


def test_engagement_of_the_sandbox_is_deterministic_and_grows() -> None:
    early, later = engagement("brand-x:1", 30), engagement("brand-x:1", 300)
    assert engagement("brand-x:1", 30) == early
    assert later.impressions is not None and early.impressions is not None
    assert later.impressions > early.impressions > 0
    assert engagement("brand-x:1", 0).impressions == 0

