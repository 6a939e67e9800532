"""Media retention: the clock's `media_retention` task removes the files no post that could still go out needs."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest
from sqlmodel import select

from bot.settings import SettingsError
from handlers.core.chat import MediaIn
from handlers.core.commands import PERIODIC
from handlers.posts import media as media_module
from storage.models import Media, Post
from tests.conftest import FakeClock, Team, make_herald, recording_team
from tests.test_chats_and_people import png, run


def media_ids(team: Team) -> list[int]:
    with team.herald.db.session() as session:
        return [i for i in session.exec(select(Media.id).order_by(Media.id)).all() if i is not None]


def post_media(team: Team, post_id: int) -> list[int]:
    with team.herald.db.session() as session:
        post = session.get(Post, post_id)
        assert post is not None
        return list(post.media)


async def draft_with_photos(team: Team, text: str, count: int = 2) -> int:
    photos = tuple(MediaIn(f"p{n}.png", "image/png", png((4 + n, 3))) for n in range(count))
    made = await run(team, "console", "console", "alice", f"/draft {text}", media=photos)
    assert not made.error, made.text
    return int(made.text.split("#", 1)[1].split(" ", 1)[0].rstrip("."))


async def retention(team: Team) -> int:
    removed = await PERIODIC["media_retention"].task(team.herald.ctx)
    assert isinstance(removed, int)
    return removed


async def test_cancelled_posts_lose_their_media_at_once_and_published_ones_after_the_retention(
        team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(media_module, "RETENTION_BATCH", 3)  # several batches in one run
    network = await recording_team(team, "brand")
    published = await draft_with_photos(team, "Out now")
    await team.say("alice", f"/submit {published}")
    await team.say("bob", f"/approve {published}")
    await team.say("alice", f"/publish {published}")
    assert [m.content_type for m in network.outgoing[-1].media] == ["image/png"] * 2
    cancelled = await draft_with_photos(team, "Never mind")
    await team.say("alice", f"/cancel {cancelled}")
    cleared = await draft_with_photos(team, "Text only in the end")
    await team.say("alice", f"/attach {cleared} clear")
    draft = await draft_with_photos(team, "Still working on it")
    assert len(media_ids(team)) == 8

    assert await retention(team) == 4  # the cancelled post's two and the two nobody holds
    assert media_ids(team) == post_media(team, published) + post_media(team, draft)

    team.clock.advance(days=89)
    assert await retention(team) == 0
    team.clock.advance(days=2)
    assert await retention(team) == 2  # published 91 days ago
    assert media_ids(team) == post_media(team, draft)  # a draft keeps its files whatever their age
    assert await retention(team) == 0
    assert len(post_media(team, published)) == 2  # the post still holds the ids of the removed files


async def test_an_expired_post_brought_back_after_the_retention_says_its_files_were_removed(team: Team) -> None:
    await recording_team(team, "brand")
    post = await draft_with_photos(team, "Flash sale")
    await team.say("alice", f"/schedule {post} in 2 hours")
    expired = await team.tick(hours=3)
    assert "⌛" in expired and team.post(post).state == "expired"
    team.clock.advance(days=80)
    assert await retention(team) == 0  # an expired post may come back: its files wait for the retention
    team.clock.advance(days=11)
    assert await retention(team) == 2 and media_ids(team) == []
    card = await team.say("alice", f"/edit {post} Flash sale, back again")
    assert "Images: 0 of 2 (removed after the media retention period)" in card, card
    cleared = await team.say("alice", f"/attach {post} clear")
    assert f"#{post}: media removed." in cleared and post_media(team, post) == []


async def test_the_retention_is_a_setting(db_url: str, clock: FakeClock) -> None:
    assert make_herald(db_url, clock).ctx.media_retention == timedelta(days=90)
    with pytest.raises(SettingsError, match="HERALD_MEDIA_RETENTION_DAYS"):
        make_herald(db_url, clock, HERALD_MEDIA_RETENTION_DAYS="0")
    herald = make_herald(db_url, clock, HERALD_MEDIA_RETENTION_DAYS="7")
    await herald.start()
    try:
        await settings_week(Team(herald, clock, db_url))
    finally:
        await herald.stop()


async def settings_week(team: Team) -> None:
    await recording_team(team, "brand")
    await draft_with_photos(team, "Old news")
    await team.say("alice", "/submit 1")
    await team.say("bob", "/approve 1")
    await team.say("alice", "/publish 1")
    team.clock.advance(days=6)
    assert await retention(team) == 0
    team.clock.advance(days=2)
    assert await retention(team) == 2 and media_ids(team) == []


async def test_workers_running_the_retention_at_once_remove_each_file_once(
        team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(media_module, "RETENTION_BATCH", 2)
    await recording_team(team, "brand")
    for n in range(4):
        await team.say("alice", f"/cancel {await draft_with_photos(team, f'Draft {n}', count=3)}")
    kept = await draft_with_photos(team, "Keep me")
    start = threading.Barrier(2)

    def worker() -> int:
        start.wait(10)
        return asyncio.run(media_module.remove_old_media(team.herald.ctx))

    counts = await asyncio.gather(asyncio.to_thread(worker), asyncio.to_thread(worker))
    assert sum(counts) == 12
    assert media_ids(team) == post_media(team, kept)
