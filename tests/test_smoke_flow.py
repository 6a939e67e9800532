"""The whole flow through the console chat: draft, approve by button, schedule, publish once, measure."""

from __future__ import annotations

from tests.conftest import Team


async def test_a_post_goes_from_draft_to_published_once_on_each_account(team: Team) -> None:
    await team.setup_workspace()
    out = await team.say("alice", "/draft Spring sale starts today! link=https://shop.example/sale campaign=spring")
    assert "Draft #1 saved." in out
    assert "brand-x: ✓ X:" in out and "brand-bsky: ✓ Bluesky:" in out
    out = await team.say("alice", "/submit 1")
    assert "[1] Approve" in out
    out = await team.say("bob", "1")
    assert "bob approved #1 (1 of 1)" in out
    out = await team.say("alice", "/schedule 1 tomorrow 9am")
    assert "Tue 24 Nov 2026 09:00 CET (Europe/Paris)" in out
    assert team.post(1).state == "scheduled"
    assert await team.tick(hours=20) == ""  # not due yet: nothing happens
    out = await team.tick(hours=3, minutes=1)
    assert "#1 is published on all 2 account(s)" in out
    assert [d.state for d in team.deliveries(1)] == ["sent", "sent"]
    assert len(team.sandbox_posts()) == 2
    await team.tick(minutes=5)  # a second sweep finds nothing more to do
    assert len(team.sandbox_posts()) == 2
