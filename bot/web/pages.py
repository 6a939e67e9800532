"""What every page of the web app shares: the Jinja2 templates (autoescaped), the strict security headers, the
plain 'not found' page, and a guard that turns any error into a plain page — no traceback reaches a visitor."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-store",
}
TEMPLATES = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                        trim_blocks=True, lstrip_blocks=True)
STYLE = (HERE / "static" / "herald.css").read_bytes()

Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


def page(template: str, *, status: int = 200, headers: dict[str, str] | None = None, **values: Any) -> web.Response:
    """A template rendered as an HTML page with the security headers."""
    body = TEMPLATES.get_template(template).render(**values)
    return web.Response(status=status, text=body, content_type="text/html", charset="utf-8",
                        headers={**HEADERS, **(headers or {})})


def not_found() -> web.Response:
    return page("message.html", status=404, title="Not found",
                message="There is nothing here. The address may be mistyped, or it was withdrawn.")


def guarded(route: Route) -> Route:
    """The route, with any unexpected error logged and answered by a plain page (500)."""

    @functools.wraps(route)
    async def run(request: web.Request) -> web.StreamResponse:
        try:
            return await route(request)
        except web.HTTPException:
            raise
        except Exception:
            log.exception("the page %s failed", request.path)
            return page("message.html", status=500, title="Something went wrong",
                        message="Herald couldn't show this page just now. Try again in a minute.")

    return run


async def style(_request: web.Request) -> web.Response:
    return web.Response(body=STYLE, content_type="text/css", charset="utf-8",
                        headers={**HEADERS, "Cache-Control": "public, max-age=3600"})


def attach_assets(app: web.Application) -> None:
    app.router.add_get("/assets/herald.css", style)
