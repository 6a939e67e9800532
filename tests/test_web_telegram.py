# ruff: noqa: F811  (the Telegram fixtures are imported from tests/test_telegram.py and taken by name)
"""An outside reviewer who uses Telegram: the /review link's deep link (`t.me/<bot>?start=r-…`) opens the review in a
private chat with Herald's bot, through the real python-telegram-bot front end against the fake Bot API."""

from __future__ import annotations

import re

from tests.test_telegram import World, post_number, tg, world  # noqa: F401


async def test_a_reviewer_on_telegram_starts_the_bot_with_the_deep_link_and_asks_for_changes(world: World) -> None:
    world.herald.ctx.public_url = "https://plan.acme.example"
    await world.setup()
    post = post_number((await world.cmd(world.alice, "/draft Spring sale starts today"))["text"])
    await world.cmd(world.alice, f"/submit {post}")
    out = (await world.cmd(world.bob, f"/review {post} Dana"))["text"]  # an approver hands on his approval
    bot = world.tg.bot["username"]  # the link names the bot Herald is connected as
    code = re.search(rf"https://t\.me/{bot}\?start=(r-[A-Za-z0-9_-]+)", out).group(1)

    dana = world.tg.user("Dana")
    dm = world.tg.private(dana)
    shown = await world.cmd(dana, f"/start {code}", chat=dm)  # what Telegram sends when the deep link is opened
    assert f"Review of post #{post} for Dana" in shown["text"] and "Spring sale starts today" in shown["text"]
    await world.press(dana, shown, "Request changes")
    question = await world.tg.wait_sent(dm, "What should change?")
    await world.tg.say(dana, dm, "Please add the price", reply_to=question)
    await world.tg.wait_sent(dm, "Thank you: the team is told what should change.")
    await world.tg.wait_sent(world.group, f"Dana (outside reviewer) asked for changes on #{post}: Please add the price")
    start = await world.cmd(dana, "/start", chat=dm)  # the Start button alone still shows /help
    assert "Herald drafts, approves" in start["text"]
