"""`python -m bot demo`: a scripted console session showing Herald end to end, in a throwaway database.

Alice drafts, Bob approves, the post is scheduled a few seconds ahead and the real scheduler
publishes it to two sandbox accounts; then the demo moves its clock a few hours ahead so
engagement comes in, and /stats and /report show it. Exits 0 when all of that happened.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bot.app import Herald
from bot.clock import OffsetClock
from bot.settings import load_settings
from handlers.engagement.metrics import poll_metrics
from storage.models import Post, PostState

SCRIPT_BEFORE = [
    "/as alice",
    "/setup Acme Marketing",
    "/timezone Europe/Paris",
    "/connect sandbox name=acme-x like=x",
    "/connect sandbox name=acme-bsky like=bluesky",
    "/role bob approver",
    "/draft Our spring collection is here 🌸 Light fabrics, bright colours, same comfort. "
    "link=https://shop.example/spring campaign=spring",
    "/variant 1 bluesky Spring is here 🌸 Light fabrics and bright colours — see the collection:",
    "/submit 1",
    "/as bob",
    "1",
    "/as alice",
    "/schedule 1 in 3 seconds",
    "/queue",
]
SCRIPT_AFTER = ["/stats 1", "/report day", "/history 1"]


async def play(pause: float = 0.4) -> int:
    with tempfile.TemporaryDirectory(prefix="herald-demo-") as tmp:
        settings = load_settings(DATABASE_URL=f"sqlite:///{Path(tmp) / 'demo.db'}")
        clock = OffsetClock()
        herald = Herald(settings, clock=clock)
        await herald.start()
        try:
            return await _script(herald, clock, pause)
        finally:
            await herald.stop()


async def _type(herald: Herald, line: str, pause: float) -> None:
    print(f"\n{herald.console.user}> {line}", flush=True)
    await herald.console.say(line)
    await asyncio.sleep(pause)


def _post_state(herald: Herald) -> str:
    with herald.db.session() as session:
        post = session.get(Post, 1)
        return post.state if post else "missing"


async def _script(herald: Herald, clock: OffsetClock, pause: float) -> int:
    print("Herald demo: Alice drafts, Bob approves, the scheduler publishes to two sandbox accounts.")
    for line in SCRIPT_BEFORE:
        await _type(herald, line, pause)
    print("\n(waiting for the scheduler to publish post #1…)", flush=True)
    deadline = time.monotonic() + 20
    while _post_state(herald) != PostState.PUBLISHED.value and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    if _post_state(herald) != PostState.PUBLISHED.value:
        print(f"\nDemo failed: post #1 is {_post_state(herald)}, not published.")
        return 1
    for hours in (1, 3):
        clock.advance(timedelta(hours=hours) - clock.offset)
        print(f"\n(demo: moving the clock {hours} hour(s) past publishing and reading engagement…)", flush=True)
        await poll_metrics(herald.ctx)
    for line in SCRIPT_AFTER:
        await _type(herald, line, pause)
    print("\nDemo finished: drafted, approved, scheduled, published once per account, and measured.")
    return 0
