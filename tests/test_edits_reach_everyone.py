"""An approved edit must go out (the trust issue, item 1): the card shows what each account receives, an edit
whose text would reach no account says so, and a variant written before an edit is marked until it is renewed."""

from __future__ import annotations

from tests.conftest import Team
from tests.test_console import changes_nothing


async def test_the_card_shows_each_variant_as_the_account_receives_it(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/draft Spring sale starts today!")
    out = await team.say("alice", "/variant 1 x Short for X")
    assert "Instead of the text above, these accounts get their variant:" in out
    assert "  brand-x (variant for x):\n  │ Short for X" in out
    assert "brand-bsky (variant" not in out  # Bluesky gets the main text


async def test_an_edit_that_would_reach_no_account_is_refused_with_the_way_out(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/draft Spring sale starts today!")
    await team.say("alice", "/variant 1 x Short for X")
    await team.say("alice", "/variant 1 bluesky Longer for Bluesky")
    out = await changes_nothing(team, "alice", "/edit 1 Spring sale starts tomorrow!",
                                "Every account of #1 gets its own variant", "brand-bsky (bluesky), brand-x (x)",
                                "Nothing changed", "/variant 1 bluesky <text>", "/edit 1 all <text>")
    assert out.startswith("✋")
    out = await team.say("alice", "/edit 1 all Spring sale starts tomorrow!")
    assert "Edited #1." in out
    post = team.post(1)
    assert (post.text, post.variants, post.stale_variants) == ("Spring sale starts tomorrow!", {}, [])
    preview = await team.say("alice", "/preview 1")
    assert preview.count("│ Spring sale starts tomorrow!") == 2  # both accounts get the new text


async def test_a_variant_written_before_an_edit_is_marked_stale_until_it_is_written_again(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/draft Spring sale starts today!")
    await team.say("alice", "/variant 1 x Sale today on X")
    out = await team.say("alice", "/edit 1 Spring sale starts tomorrow!")
    assert ("brand-x (variant for x) ⚠ stale: written before the last edit of the text — /variant 1 x <text> "
            "renews it, /variant 1 x off drops it:") in out
    await team.say("alice", "/submit 1")
    approved = await team.say("bob", "/approve 1")
    assert "✅ bob approved #1" in approved
    assert team.post(1).stale_variants == ["x"]  # approving doesn't renew a variant; writing it does
    out = await team.say("alice", "/variant 1 x Sale tomorrow on X")
    assert "stale" not in out and "  │ Sale tomorrow on X" in out
    assert team.post(1).stale_variants == []
