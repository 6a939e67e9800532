"""Pinterest: Pins on one board through API v5.

`/connect pinterest name=<name> access_token=<token> board_id=<id>`

- A Pin needs an image: `POST /v5/pins` {board_id, title, description, link, media_source}; the
  image goes inline as `image_base64` {content_type, data} (2–5 images: `multiple_image_base64`
  items, shown as a carousel). Pinterest takes JPEG and PNG there.
- title = the first line of the text (≤100 characters), description = the text (≤800, checked by
  handlers.core.counting), link = the post's link (≤2,048).
- No idempotency key: a send whose answer is lost is UNKNOWN_OUTCOME.
- Rate limits: Standard access 100 requests/s per user per app, plus per-category per-minute caps
  (`org_write` for Pins); 429 may carry `X-RateLimit-Reset` (seconds) or `Retry-After`.
- Metrics: `GET /v5/pins/{id}/analytics` for the last 90 days (Pinterest's maximum window), one
  call per Pin: IMPRESSION, SAVE, OUTBOUND_CLICK (→ clicks), TOTAL_COMMENTS, TOTAL_REACTIONS
  (→ likes); PIN_CLICK (opening the Pin) is asked for but not a link click, so not mapped.
- There is no API to read Pin comments: `fetch_comments` returns [].
- Tokens: access ~30 days; the continuous refresh token (60 days, renewed on every refresh) is
  used at `POST /v5/oauth/token` with the app's client_id:client_secret as HTTP Basic auth.
"""

from __future__ import annotations

import base64
from datetime import UTC, timedelta
from typing import Any

import httpx

from bot.networks.common import (
    bearer,
    due_refresh,
    renewed_tokens,
    to_int,
    token_answer,
)
from bot.networks.http import HttpNetwork
from handlers.core.counting import TextRules
from handlers.core.ports import (
    AccountView,
    ConnectSpec,
    ErrorKind,
    Metrics,
    NetworkProfile,
    Outgoing,
    Published,
    PublishError,
    ReadBudget,
    Verified,
)

IMAGE_TYPES = ("image/jpeg", "image/png")
METRIC_TYPES = ("IMPRESSION", "SAVE", "PIN_CLICK", "OUTBOUND_CLICK", "TOTAL_COMMENTS", "TOTAL_REACTIONS")


def first_line(text: str, limit: int) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:limit]
    return ""


class PinterestNetwork(HttpNetwork):
    key = "pinterest"
    url_id_pattern = r"/pin/(?P<id>\d+)"
    label = "Pinterest"
    no_replies = "Pinterest's API has no way to answer comments on a Pin, so answer them on Pinterest itself"
    idempotent = False
    default_base_url = "https://api.pinterest.com"
    # Pinterest's write caps are per minute per user (org_write); stay well below them
    publish_limits = ((10, 60.0),)
    profile = NetworkProfile(
        key="pinterest", label="Pinterest",
        text=TextRules(800, max_images=5, media_only=True),
        # one analytics call per Pin; the analytics category has its own per-minute cap
        read_budget=ReadBudget(1_000, timedelta(hours=1)),
        hosts=frozenset({"pinterest.com", "pin.it"}), site_names=frozenset({"pinterest"}),
    )
    connect_spec = ConnectSpec(
        required=("access_token",),
        optional=("board_id", "client_id", "expires_at"),
        secret=("access_token", "refresh_token", "client_secret"),
        help=(
            "Create an app at https://developers.pinterest.com/apps/ (scopes pins:read, pins:write, "
            "boards:read, user_accounts:read), authorize it and copy the access token (and refresh token, "
            "client_id and client_secret to keep it fresh). board_id= is the board to pin to; leave it "
            "out once to see your boards. Trial apps make Pins only you can see. Example: "
            "/connect pinterest name=acme-pins access_token=pina_… board_id=549755885175"
        ),
    )

    def text_problems(self, text: str, media_count: int) -> list[str]:
        return [] if media_count else ["Pinterest needs an image"]

    def headers(self, account: AccountView) -> dict[str, str]:
        return bearer(account.credentials.get("access_token", ""))

    def classify(self, response: httpx.Response) -> PublishError | None:
        if response.status_code == 404:
            return PublishError(ErrorKind.REJECTED, f"Pinterest can't find it: {self.error_reason(response)} "
                                "(was the board deleted?)")
        return None

    # -- connect ---------------------------------------------------------------------------

    async def verify(self, account: AccountView) -> Verified:
        base = self.base(account)
        user = await self.call("GET", f"{base}/v5/user_account", headers=self.headers(account))
        username = str(user.get("username") or "?")
        board_id = str(account.settings.get("board_id") or "").strip()
        if not board_id:
            boards = await self.call("GET", f"{base}/v5/boards", headers=self.headers(account),
                                     params={"page_size": 25})
            items = boards.get("items") or []
            listing = ", ".join(f"board_id={b.get('id')} ({b.get('name')})" for b in items) or "none yet"
            raise ValueError(f"Which board should Herald pin to? Add one of: {listing}")
        if not board_id.isdigit():
            raise ValueError("board_id= is the board's number (leave it out to see your boards)")
        try:
            board = await self.call("GET", f"{base}/v5/boards/{board_id}", headers=self.headers(account))
        except PublishError as exc:
            if exc.kind == ErrorKind.REJECTED:
                raise ValueError(f"Pinterest has no board {board_id} for @{username} ({exc.reason})") from exc
            raise
        return Verified(
            description=f"@{username} on Pinterest, board “{board.get('name')}” (id {board_id})",
            settings={"board_id": board_id, "username": username},
        )

    # -- publish ---------------------------------------------------------------------------

    async def publish(self, account: AccountView, post: Outgoing) -> Published:
        if not post.media:
            raise PublishError(ErrorKind.REJECTED, "Pinterest needs an image")
        bad = [m.filename for m in post.media if m.content_type not in IMAGE_TYPES]
        if bad:
            raise PublishError(ErrorKind.REJECTED, f"Pinterest takes JPEG or PNG images here, not {', '.join(bad)}")
        if len(post.media) > 5:
            raise PublishError(ErrorKind.REJECTED, "Pinterest takes at most 5 images in a Pin")
        board_id = str(account.settings.get("board_id") or "")
        if not board_id:
            raise PublishError(ErrorKind.REJECTED, "this Pinterest account has no board; reconnect with board_id=")
        items = [{"content_type": m.content_type, "data": base64.b64encode(m.data).decode("ascii")}
                 for m in post.media]
        source: dict[str, Any]
        if len(items) == 1:
            source = {"source_type": "image_base64", **items[0]}
        else:
            source = {"source_type": "multiple_image_base64", "items": items, "index": 0}
        body: dict[str, Any] = {"board_id": board_id, "description": post.text, "media_source": source}
        title = first_line(post.text, 100)
        if title:
            body["title"] = title
        if post.link:
            body["link"] = post.link
        await self.hold_back(account)
        pin = await self.call("POST", f"{self.base(account)}/v5/pins", sending=True, headers=self.headers(account),
                              json=body)
        pin_id = str(pin.get("id") or "")
        if not pin_id:
            raise PublishError(ErrorKind.UNKNOWN_OUTCOME, "Pinterest answered without the Pin's id; the Pin may "
                               "or may not be there")
        return Published(remote_id=pin_id, url=f"https://www.pinterest.com/pin/{pin_id}/")

    # -- metrics ---------------------------------------------------------------------------

    async def fetch_metrics(self, account: AccountView, remote_ids: list[str]) -> dict[str, Metrics]:
        today = self.clock.now().astimezone(UTC).date()
        params = {"start_date": (today - timedelta(days=89)).isoformat(), "end_date": today.isoformat(),
                  "metric_types": ",".join(METRIC_TYPES)}
        readings: dict[str, Metrics] = {}
        for pin_id in remote_ids:
            try:
                data = await self.call("GET", f"{self.base(account)}/v5/pins/{pin_id}/analytics",
                                       headers=self.headers(account), params=params)
            except PublishError as exc:
                if exc.kind == ErrorKind.REJECTED:  # deleted Pin: leave it out
                    continue
                raise
            block = (data.get("all") or next(iter(data.values()), None)) if data else None
            summary = (block or {}).get("summary_metrics") or {}
            readings[pin_id] = Metrics(
                likes=to_int(summary.get("TOTAL_REACTIONS")), comments=to_int(summary.get("TOTAL_COMMENTS")),
                impressions=to_int(summary.get("IMPRESSION")), saves=to_int(summary.get("SAVE")),
                clicks=to_int(summary.get("OUTBOUND_CLICK")))  # clicks through to the link
        return readings

    # -- tokens ----------------------------------------------------------------------------

    async def refresh(self, account: AccountView) -> dict[str, Any] | None:
        now = self.clock.now()
        grant = due_refresh(account, now, timedelta(hours=24))
        if grant is None:
            return None
        refresh_token, client_id, client_secret = grant
        data = await self.refresh_grant(
            f"{self.base(account)}/v5/oauth/token", refresh_token, form={}, auth=(client_id, client_secret),
            refused=lambda why: f"Pinterest refused the refresh token ({why}); reconnect with /connect pinterest "
                                f"name={account.name} access_token=<new> refresh_token=<new>")
        return renewed_tokens(account.credentials, token_answer(data, "Pinterest"), now,
                              lifetime=to_int(data.get("expires_in")) or 2592000,
                              refresh_lifetime_field="refresh_token_expires_in")
