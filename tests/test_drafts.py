"""Writing posts through the console chat: /draft, /edit, /variant, /targets, /preview, /posts and /history."""

from __future__ import annotations

from storage.models import Post
from tests.conftest import Team, refused

LONG = "Our biggest sale ever starts today. " * 9  # 323 characters (stripped): over X's 280 and Bluesky's 300



# /draft


async def test_a_draft_is_saved_with_a_check_per_target(team: Team) -> None:
    await team.setup_workspace()
    out = await team.say("alice", "/draft Spring sale starts today!")
    assert "Draft #1 saved." in out
    assert "Post #1 · draft · revision 1 · by alice" in out
    assert "│ Spring sale starts today!" in out
    assert "brand-bsky: ✓ Bluesky: 25/300 graphemes" in out
    assert "brand-x: ✓ X: 25/280 weighted characters" in out
    assert "[1] Submit for approval  [2] Preview  [3] Schedule…" in out
    post = team.post(1)
    assert (post.state, post.revision, post.text, post.author_name) == ("draft", 1, "Spring sale starts today!", "alice")
    assert len(team.deliveries(1)) == 2


async def test_a_multi_line_draft_with_link_campaign_and_target(team: Team) -> None:
    await team.setup_workspace()
    assert await team.say("alice", "/draft Line one\\") == ""
    assert await team.say("alice", "line two\\") == ""
    assert team.snapshot()["post"] == []  # nothing is saved before the last line
    out = await team.say("alice", "line three link=https://shop.example/x campaign=spring to=brand-bsky")
    assert "Draft #1 saved." in out
    assert "│ Line one\n│ line two\n│ line three" in out
    assert "Link: https://shop.example/x" in out and "campaign spring" in out
    assert "brand-bsky: ✓" in out and "brand-x" not in out
    post = team.post(1)
    assert (post.text, post.link, post.campaign) == ("Line one\nline two\nline three", "https://shop.example/x", "spring")
    assert len(team.deliveries(1)) == 1


async def test_options_on_their_own_continuation_line_are_read(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/draft\\")
    await team.say("alice", "Hello there\\")
    await team.say("alice", "link=https://a.example/x\\")
    out = await team.say("alice", "campaign=launch to=brand-x,BRAND-X")
    assert "Draft #1 saved." in out
    post = team.post(1)
    assert (post.text, post.link, post.campaign) == ("Hello there", "https://a.example/x", "launch")
    assert len(team.deliveries(1)) == 1  # brand-x named twice, targeted once


async def test_a_draft_over_the_x_limit_shows_the_count_and_the_variant_fix(team: Team) -> None:
    await team.setup_workspace()
    out = await team.say("alice", f"/draft {LONG.strip()}")
    assert "Draft #1 saved." in out
    assert (
        "brand-x: ✗ X: 323/280 weighted characters — 43 weighted characters over the limit "
        "→ fix with /variant 1 brand-x <text>"
    ) in out
    assert "brand-bsky: ✗ Bluesky: 323/300 graphemes — 23 graphemes over the limit" in out
    await refused(team, "alice", "/submit 1", "#1 doesn't fit every network yet", "323/280",
                  "/variant 1 <account> <text>")
    out = await team.say("alice", "/variant 1 brand-x Biggest sale ever, today only!")
    assert "brand-x: ✓ X: 30/280 weighted characters" in out
    out = await team.say("alice", "/variant 1 bluesky Biggest sale ever starts today.")
    assert "✗" not in out
    assert "asks for approval of #1" in await team.say("alice", "/submit 1")


async def test_a_viewer_cannot_draft_and_nothing_is_saved(team: Team) -> None:
    await team.setup_workspace()
    await refused(team, "carol", "/draft Hello", "Only admins or editors can use /draft", "You're a viewer",
                  "/role carol")


async def test_an_approver_cannot_draft(team: Team) -> None:
    await team.setup_workspace()
    await refused(team, "bob", "/draft Hello", "Only admins or editors can use /draft", "You're an approver")


async def test_a_draft_without_text_asks_for_it_and_the_next_line_is_the_text(team: Team) -> None:
    await team.setup_workspace()
    asked = await team.say("alice", "/draft")
    assert "What should the post say?" in asked and not asked.startswith("✋")
    out = await team.say("alice", "Spring sale starts today! campaign=spring")
    assert "Draft #1 saved." in out
    with team.herald.db.session() as session:
        post = session.get(Post, 1)
        assert post is not None and post.text == "Spring sale starts today!" and post.campaign == "spring"


async def test_a_draft_with_options_but_no_text_is_refused(team: Team) -> None:
    await team.setup_workspace()
    await refused(team, "alice", "/draft link=https://a.example", "What should the post say?", "Usage: /draft <text>")


async def test_bad_draft_options_are_refused(team: Team) -> None:
    await team.setup_workspace()
    await refused(team, "alice", "/draft Hello link=notaurl", "link=notaurl isn't a web address")
    await refused(team, "alice", "/draft Hello campaign=a/b", "campaign= takes one word")
    await refused(team, "alice", "/draft Hello to=nope", "No account called nope", "Accounts: brand-bsky, brand-x")
    await refused(team, "alice", "/draft Hello link=https://a.example link=https://b.example", "link= is given twice")
    await refused(team, "alice", "/draft " + "y" * 20_001, "20001 characters", "up to 20000")


async def test_a_draft_to_all_needs_connected_accounts(team: Team) -> None:
    await team.say("alice", "/setup Acme")
    await refused(team, "alice", "/draft Hello to=all", "No accounts are connected yet")
    out = await team.say("alice", "/draft Hello")  # without to=, a draft may wait for its targets
    assert "Targets: none — /targets 1 <account…>" in out


# /edit


async def test_editing_a_draft_replaces_its_text_and_bumps_the_revision(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/draft Old text link=https://a.example")
    out = await team.say("alice", "/edit 1 New text campaign=autumn")
    assert "Edited #1. Revision 2." in out
    assert "│ New text" in out
    post = team.post(1)
    assert (post.text, post.revision, post.state, post.link, post.campaign) == (
        "New text", 2, "draft", "https://a.example", "autumn")
    await team.say("alice", "/edit 1 link=https://b.example")  # options alone keep the text
    assert (team.post(1).text, team.post(1).link) == ("New text", "https://b.example")


async def test_editing_an_approved_post_voids_its_approvals(team: Team) -> None:
    await team.setup_workspace()
    post_id = await team.approved_post()
    assert team.post(post_id).state == "approved"
    out = await team.say("alice", f"/edit {post_id} Spring sale starts tomorrow!")
    assert f"Edited #{post_id}. Revision 2. It was approved; it's back in review." in out
    assert "The 1 earlier approval(s) no longer count." in out
    assert "Approvals: 0 of 1 (revision 2)" in out
    post = team.post(post_id)
    assert (post.state, post.revision) == ("in_review", 2)
    await refused(team, "alice", f"/publish {post_id}", "isn't approved yet")


async def test_editing_a_scheduled_post_stops_it_from_publishing_unapproved(team: Team) -> None:
    await team.setup_workspace()
    post_id = await team.approved_post()
    await team.say("alice", f"/schedule {post_id} in 1 hour")
    out = await team.say("alice", f"/variant {post_id} x Short for X")
    assert "It was scheduled; it's back in review." in out
    assert team.post(post_id).state == "in_review"
    await team.tick(minutes=61)
    assert team.sandbox_posts() == []
    assert team.post(post_id).state == "expired"


async def test_editing_voids_a_partial_approval_of_a_post_in_review(team: Team) -> None:
    await team.setup_workspace(approvers=("bob", "carol"))
    await team.say("alice", "/policy approvals=2")
    await team.say("alice", "/draft Two approvals")
    await team.say("alice", "/submit 1")
    await team.say("bob", "/approve 1")
    out = await team.say("alice", "/edit 1 Two approvals, edited")
    assert "The 1 earlier approval(s) no longer count." in out
    assert "Approvals: 0 of 2 (revision 2)" in out
    assert team.post(1).state == "in_review"


async def test_editing_an_expired_post_makes_it_a_draft_again(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/draft Expiring")
    await team.say("alice", "/submit 1")
    await team.say("alice", "/schedule 1 in 1 hour")
    await team.tick(minutes=61)
    assert team.post(1).state == "expired"
    out = await team.say("alice", "/edit 1 Fresh text")
    assert "It's a draft again and its old time is dropped: /submit it and /schedule 1 <when>." in out
    assert team.post(1).state == "draft"


async def test_an_expired_post_made_a_draft_again_stays_a_draft(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/draft Expiring")
    await team.say("alice", "/submit 1")
    await team.say("alice", "/schedule 1 in 1 hour")
    await team.tick(minutes=61)
    await team.say("alice", "/edit 1 Fresh text")
    await team.tick(minutes=1)
    assert team.post(1).state == "draft"
    assert not (await team.say("alice", "/submit 1")).startswith("✋")


async def test_editing_a_cancelled_post_is_refused(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/draft Hello")
    await team.say("alice", "/cancel 1")
    await refused(team, "alice", "/edit 1 Hello again", "Post #1 is cancelled, so it can't be edited any more.")
    await refused(team, "alice", "/variant 1 x Hi", "Post #1 is cancelled")
    await refused(team, "alice", "/targets 1 all", "Post #1 is cancelled, so it can't be retargeted any more.")


async def test_editing_a_published_post_is_refused(team: Team) -> None:
    await team.setup_workspace()
    post_id = await team.approved_post()
    await team.say("alice", f"/publish {post_id}")
    assert team.post(post_id).state == "published"
    await refused(team, "alice", f"/edit {post_id} Too late", f"Post #{post_id} is published")


async def test_editing_an_unknown_post_is_refused(team: Team) -> None:
    await team.setup_workspace()
    await refused(team, "alice", "/edit 99 New text", "There's no post #99", "/posts lists them")
    await refused(team, "alice", "/edit abc New text", "'abc' isn't a post number")


async def test_an_edit_without_text_or_with_to_is_refused(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/draft Hello")
    await refused(team, "alice", "/edit 1", "What's the new text?")
    await refused(team, "alice", "/edit 1 Hello to=brand-x", "Change targets with /targets 1")


async def test_a_viewer_or_approver_cannot_edit(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/draft Hello")
    await refused(team, "carol", "/edit 1 Hacked", "Only admins or editors can use /edit", "You're a viewer")
    await refused(team, "bob", "/edit 1 Hacked", "Only admins or editors can use /edit", "You're an approver")
    assert team.post(1).text == "Hello"


# /variant


async def test_a_variant_for_a_network_changes_only_that_networks_text(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/draft Long version for everyone link=https://shop.example")
    out = await team.say("alice", "/variant 1 X Short for X")
    assert "#1: variant for x set. Revision 2." in out and "Variants for: x" in out
    out = await team.say("alice", "/preview 1")
    assert "── brand-x ──\n│ Short for X\n│ https://shop.example" in out
    assert "── brand-bsky ──\n│ Long version for everyone\n│ https://shop.example" in out
    assert team.post(1).variants == {"x": "Short for X"}


async def test_a_variant_for_an_account_and_its_removal(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/draft Hello")
    await team.say("alice", "/variant 1 brand-bsky Hello Bluesky")
    assert team.post(1).variants == {"brand-bsky": "Hello Bluesky"}
    out = await team.say("alice", "/variant 1 brand-bsky off")
    assert "#1: variant for brand-bsky removed. Revision 3." in out
    assert team.post(1).variants == {}
    await refused(team, "alice", "/variant 1 brand-bsky off", "#1 has no variant for brand-bsky")


async def test_a_variant_for_something_not_targeted_is_refused(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/draft Hello to=brand-bsky")
    await refused(team, "alice", "/variant 1 x Short", "#1 has no X account among its targets")
    await refused(team, "alice", "/variant 1 myspace Hi", "'myspace' is neither a network", "brand-bsky")
    await refused(team, "alice", "/variant 1 brand-x Hi", "'brand-x' is neither a network")
    await refused(team, "alice", "/variant 1", "Usage: /variant <post>")
    await refused(team, "alice", "/variant 99 x Hi", "There's no post #99")


async def test_an_approver_cannot_write_a_variant(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/draft Hello")
    await refused(team, "bob", "/variant 1 x Hi", "Only admins or editors can use /variant")


# /targets


async def test_targets_choose_the_accounts_a_post_goes_to(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/draft Hello to=brand-bsky")
    assert len(team.deliveries(1)) == 1
    out = await team.say("alice", "/targets 1 all")
    assert "#1: targets set to brand-bsky, brand-x. Revision 2." in out
    assert len(team.deliveries(1)) == 2
    out = await team.say("alice", "/targets 1 brand-x")
    assert "#1: targets set to brand-x." in out
    assert "brand-bsky" not in out
    assert len(team.deliveries(1)) == 1


async def test_bad_targets_are_refused(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/draft Hello")
    await refused(team, "alice", "/targets 1 nope", "No account called nope")
    await refused(team, "alice", "/targets 1", "Which accounts?")
    await refused(team, "alice", "/targets 42 all", "There's no post #42")
    await refused(team, "carol", "/targets 1 brand-x", "Only admins or editors can use /targets")


# /preview


async def test_preview_shows_exactly_what_each_account_gets(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/draft Line one\\")
    await team.say("alice", "line two link=https://shop.example/x")
    await team.say("alice", "/schedule 1 tomorrow 9am")
    out = await team.say("carol", "/preview 1")  # viewers may look
    assert out.startswith("Preview of #1 (draft, revision 1):")
    assert ("── brand-bsky ──\n│ Line one\n│ line two\n│ https://shop.example/x?utm_source=sandbox&utm_medium=social"
            "&utm_campaign=herald&utm_content=post-1-brand-bsky\n  ✓ Bluesky:") in out
    assert "── brand-x ──" in out and "✓ X:" in out
    assert "Time: Tue 24 Nov 2026 09:00 CET (Europe/Paris) (in 23 hours)" in out


async def test_preview_of_a_post_without_targets_says_so(team: Team) -> None:
    await team.say("alice", "/setup Acme")
    await team.say("alice", "/draft Hello")
    out = await team.say("alice", "/preview 1")
    assert "No targets yet — /targets 1 <account…>" in out
    assert "Time: no time set" in out


async def test_preview_of_an_unknown_post_is_refused(team: Team) -> None:
    await team.setup_workspace()
    await refused(team, "alice", "/preview 99", "There's no post #99 in this workspace")
    await refused(team, "alice", "/preview", "Which post?")
    await refused(team, "alice", "/preview abc", "'abc' isn't a post number")


# /posts


async def test_posts_lists_recent_posts_newest_first_and_filters_by_state(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/draft First post")
    await team.say("alice", "/draft Second post")
    await team.say("alice", "/submit 2")
    out = await team.say("carol", "/posts")
    assert out.splitlines() == ["Recent posts:", "  #2 in review · Second post", "  #1 draft · First post"]
    out = await team.say("carol", "/posts in review")
    assert out.splitlines() == ["In review posts:", "  #2 in review · Second post"]
    assert "#2" not in await team.say("carol", "/posts draft")
    assert "No published posts yet." in await team.say("carol", "/posts published")


async def test_posts_with_an_unknown_state_is_refused(team: Team) -> None:
    await team.setup_workspace()
    await refused(team, "alice", "/posts bogus", "'bogus' isn't a post state", "draft, in_review")


async def test_posts_in_an_empty_workspace(team: Team) -> None:
    await team.setup_workspace()
    assert "No posts yet. /draft <text> writes one." in await team.say("alice", "/posts")


# /history


async def test_history_shows_each_step_with_who_and_when(team: Team) -> None:
    await team.setup_workspace()
    post_id = await team.approved_post("Big sale")
    await team.say("alice", f"/edit {post_id} Bigger sale")
    out = await team.say("carol", f"/history {post_id}")
    lines = out.splitlines()
    assert lines[0] == f"History of #{post_id} (now in review):"
    assert [line.split(" · ", 2)[1:] for line in lines[1:]] == [
        ["alice", "draft: Big sale"],
        ["alice", "submit: revision 1"],
        ["bob", "approve: revision 1 (1/1)"],
        ["alice", "edit: text edited; revision 2"],
    ]
    assert all(line.startswith("  Mon 23 Nov 2026 10:00 CET (Europe/Paris)") for line in lines[1:])


async def test_history_of_an_unknown_post_is_refused(team: Team) -> None:
    await team.setup_workspace()
    await refused(team, "alice", "/history 99", "There's no post #99")
