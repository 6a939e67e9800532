"""An outside reviewer's page: `GET /review/<token>` shows exactly what each account will publish and the decision
form; `POST /review/<token>` records Approve, Request changes (note required) or Reject (reason required) through
handlers/posts/review.py, which tells the approvals chat at once.

The form is protected against cross-site request forgery with a double-submit token: a random cookie
(`HttpOnly`, `SameSite=Strict`, `Secure` over https, scoped to /review) and a hidden field holding an HMAC of that
cookie and the link's token; a POST without both, or with a mismatch, is refused (403) and changes nothing. A
replayed form finds its link used (the decision claims it once). A forged, unknown or tampered link is 404; a link
that was used, revoked, expired or outlived an edit of the post says so (410).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets

from aiohttp import web

from bot.web.calendar import media_images, preview_response
from bot.web.pages import guarded, not_found, page
from bot.web.previews import preview_png
from handlers.core.context import Context
from handlers.core.errors import UserError
from handlers.posts.calendar import first_picture
from handlers.posts.review import ReviewClosed, ReviewPage, decide_outside, open_review

TOKEN = "{token:[A-Za-z0-9_.-]{20,200}}"
COOKIE = "herald_csrf"


class ReviewPages:
    """The review routes on the one web app."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.key = ctx.secrets.derive("review-form")

    def attach(self, app: web.Application) -> None:
        app.router.add_get(f"/review/{TOKEN}", guarded(self.show))
        app.router.add_post(f"/review/{TOKEN}", guarded(self.decide))
        app.router.add_get(f"/review/{TOKEN}/preview/{{index:[0-9]{{1,3}}}}.png", guarded(self.preview))

    def form_token(self, cookie: str, token: str) -> str:
        return hmac.new(self.key, f"{cookie}|{token}".encode(), hashlib.sha256).hexdigest()

    def closed(self, reason: str) -> web.Response:
        if not reason:
            return not_found()
        return page("message.html", status=410, title="This review link is closed", message=reason)

    def form(self, request: web.Request, token: str, review: ReviewPage, *, error: str = "", note: str = "",
             status: int = 200) -> web.Response:
        cookie = request.cookies.get(COOKIE, "")
        fresh = len(cookie) < 32
        if fresh:
            cookie = secrets.token_urlsafe(32)
        response = page("review.html", status=status, title=f"Review post #{review.post.number}", page=review,
                        post=review.post, images=media_images(review.post), csrf=self.form_token(cookie, token),
                        action=f"/review/{token}", error=error, note=note, preview_base=f"/review/{token}")
        if fresh:
            response.set_cookie(COOKIE, cookie, path="/review", httponly=True, samesite="Strict",
                                secure=_secure(request))
        return response

    async def show(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        try:
            review = await asyncio.to_thread(open_review, self.ctx, token)
        except ReviewClosed as closed:
            return self.closed(closed.reason)
        return self.form(request, token, review)

    async def preview(self, request: web.Request) -> web.StreamResponse:
        token, index = request.match_info["token"], int(request.match_info["index"])

        def draw() -> bytes | None:
            try:
                review = open_review(self.ctx, token)
            except ReviewClosed:
                return None
            if index >= len(review.post.accounts):
                return None
            with self.ctx.db.session() as session:
                picture = first_picture(session, review.workspace_id, review.post)
            return preview_png(review.post.accounts[index], picture)

        png = await asyncio.to_thread(draw)
        return not_found() if png is None else preview_response(png)

    async def decide(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        form = await request.post()
        cookie = request.cookies.get(COOKIE, "")
        sent = str(form.get("csrf", ""))
        if len(cookie) < 32 or not hmac.compare_digest(sent, self.form_token(cookie, token)):
            return page("message.html", status=403, title="Not accepted",
                        message="This form can't be accepted: open the review link again and decide from there.")
        choice, note = str(form.get("choice", "")), str(form.get("note", ""))
        try:
            said = await decide_outside(self.ctx, token, choice, note)
        except ReviewClosed as closed:
            return self.closed(closed.reason)
        except UserError as problem:
            try:
                review = await asyncio.to_thread(open_review, self.ctx, token)
            except ReviewClosed as closed:
                return self.closed(closed.reason)
            return self.form(request, token, review, error=str(problem), note=note, status=400)
        return page("message.html", title="Decision recorded", message=said)


def _secure(request: web.Request) -> bool:
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"
