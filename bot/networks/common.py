"""Small helpers several connectors share: auth headers, times, tokens, resumable uploads, HTML.

Only logic that is the same for every connector using it lives here; what differs from one network to
another (URLs, lifetimes, field names, messages) is passed in by the connector.
"""

from __future__ import annotations

import html
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from handlers.core.ports import AccountView, ErrorKind, Outgoing, PublishError

T = TypeVar("T")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def to_int(value: Any) -> int | None:
    """An int, or None for anything that isn't one (None, '', 'n/a', …)."""
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


# -- times -------------------------------------------------------------------------------------------


def iso_z(moment: datetime, timespec: str = "auto") -> str:
    """A moment as ISO 8601 in UTC with a 'Z' (e.g. 2026-11-23T11:00:00Z)."""
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def parse_iso(value: Any) -> datetime | None:
    """An ISO 8601 time ('Z' allowed; a naive one is UTC), or None when it's missing or unreadable."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def stored_expiry(account: AccountView) -> datetime | None:
    """When the account's access token ends: `expires_at` from its credentials, else from its settings."""
    return parse_iso(account.credentials.get("expires_at") or account.settings.get("expires_at"))


def refresh_due(expires: datetime | None, now: datetime, within: timedelta) -> bool:
    """True when a token ending at `expires` (None: unknown) should be renewed now."""
    return expires is None or expires - now <= within


def due_refresh(account: AccountView, now: datetime, within: timedelta,
                id_field: str = "client_id") -> tuple[str, str, str] | None:
    """(refresh token, app id, app secret) when the account's token ends within `within` (or its end is
    unknown) and it has all three; None when it isn't due or can't be renewed. The app id is a setting or
    a credential named `id_field`; the secret is the `client_secret` credential."""
    refresh_token = account.credentials.get("refresh_token")
    app_id = account.settings.get(id_field) or account.credentials.get(id_field)
    secret = account.credentials.get("client_secret")
    if not refresh_token or not refresh_due(stored_expiry(account), now, within) or not app_id or not secret:
        return None
    return refresh_token, app_id, secret


def token_answer(answer: Any, who: str) -> dict[str, Any]:
    """A token endpoint's answer that holds an access token; TRANSIENT when it doesn't."""
    token = answer.get("access_token") if isinstance(answer, dict) else None
    if not isinstance(token, str) or not token:
        raise PublishError(ErrorKind.TRANSIENT, f"{who} answered the token refresh without a token")
    return answer


def renewed_tokens(creds: dict[str, Any], answer: dict[str, Any], now: datetime, *, lifetime: float,
                   refresh_lifetime_field: str | None = None,
                   stamp: Callable[[datetime], str] = datetime.isoformat) -> dict[str, Any]:
    """The credentials after an OAuth 2.0 refresh: the new access token and its end (`lifetime` seconds
    from `now`), the new refresh token when the answer has one (they rotate), and the refresh token's
    end when the answer gives it in `refresh_lifetime_field`."""
    new = {**creds, "access_token": answer["access_token"], "expires_at": stamp(now + timedelta(seconds=lifetime))}
    if answer.get("refresh_token"):
        new["refresh_token"] = answer["refresh_token"]
    if refresh_lifetime_field and answer.get(refresh_lifetime_field):
        new["refresh_expires_at"] = stamp(now + timedelta(seconds=int(answer[refresh_lifetime_field])))
    return new


# -- resumable uploads ---------------------------------------------------------------------------------


async def with_resume(awaitable: Awaitable[T], resume: dict[str, Any]) -> T:
    """Await; a PublishError on the way carries `resume` so the next attempt reuses the uploads."""
    try:
        return await awaitable
    except PublishError as exc:
        if resume and not exc.resume:
            exc.resume = resume
        raise


def carried(exc: PublishError, resume: dict[str, Any]) -> PublishError:
    """A failure once the network holds the upload/publish: keep `resume` so the retry asks about it first;
    that makes a retry safe, so an UNKNOWN_OUTCOME becomes TRANSIENT."""
    kind = ErrorKind.TRANSIENT if exc.kind == ErrorKind.UNKNOWN_OUTCOME else exc.kind
    return PublishError(kind, exc.reason, retry_after=exc.retry_after, resume=resume)


def media_key(index: int, sha256: str) -> str:
    """How a post's upload is named in `resume`: its place in the post and its content."""
    return f"{index}:{sha256}"


def resumed_uploads(post: Outgoing, field: str, at_field: str, ttl: timedelta, now: datetime) -> dict[str, Any]:
    """The uploads an earlier attempt kept in `resume[field]` (by media key), or {} when there are none
    or they were made (`resume[at_field]`) more than `ttl` ago."""
    saved = post.resume.get(field)
    at = parse_iso(post.resume.get(at_field))
    if not isinstance(saved, dict) or at is None or now - at > ttl:
        return {}
    return {str(k): v for k, v in saved.items()}


def uploads_resume(post: Outgoing, uploads: list[Any], field: str, at_field: str, *, reused: bool,
                   stamp: str) -> dict[str, Any]:
    """What a failure carries so the next attempt reuses `uploads` (in the post's media order): keyed by
    media key, with when they were made (the earlier attempt's time when `reused`, else `stamp`)."""
    if not uploads:
        return {}
    at = post.resume.get(at_field) if reused else None
    keys = [media_key(i, m.sha256) for i, m in enumerate(post.media)]
    return {field: dict(zip(keys, uploads, strict=False)), at_field: at or stamp}


# -- text ------------------------------------------------------------------------------------------------


def plain_text(content: str) -> str:
    """HTML (e.g. Mastodon's status content) as plain text: paragraphs and <br> as line breaks."""
    text = re.sub(r"(?i)<br\s*/?>", "\n", content)
    text = re.sub(r"(?i)</p>\s*<p[^>]*>", "\n\n", text)
    text = re.sub(r"<[^>]+>", "", text)
    return html.unescape(text).strip()
