"""The public media server: Herald's stored images and videos at plain https URLs.

What it serves
    ``GET /media/{sha256}.{ext}`` (and ``HEAD``): the bytes of a ``media`` row found by the
    SHA-256 of its content. The extension must fit the stored content: ``.jpg``/``.jpeg`` for
    JPEG, ``.png``, ``.webp``, ``.gif``, ``.mp4`` for MP4 and ``.mov`` for QuickTime video.
    Asking ``.jpg``/``.jpeg`` for a PNG, WebP or GIF image gets it converted to JPEG (RGB,
    transparency on white, quality 90, first frame of a GIF); the last conversions are kept in
    a small LRU cache. An image is converted once however many requests ask for it at the same
    time (one conversion in flight per sha256; the other requests wait for its result), and
    conversions — the database read and Pillow's work — run in their own pool of
    `CONVERTERS` threads, so a burst of new images queues there instead of filling memory or
    the default thread pool. A file the retention task removed (handlers/posts/media.py) is 404
    from then on, except a JPEG conversion still held in this process's cache. Anything else (an image as ``.mp4``, a video as ``.jpg``) is 404.
    Responses carry Content-Type, Content-Length, ``ETag: "<sha256>"`` (``"<sha256>-jpeg"`` for
    a conversion, which is a different byte string), ``Cache-Control: public, max-age=86400,
    immutable`` and honour ``If-None-Match`` (304) and single byte ranges (``Range: bytes=a-b``,
    ``bytes=a-``, ``bytes=-n`` → 206 with Content-Range, 416 when unsatisfiable; ``If-Range``
    respected; multi-range requests get the whole file). A range of a stored file is read with
    SQL ``substr`` so a network fetching a 500 MB video in pieces never loads it whole.
    ``GET /healthz`` answers 200 ``ok`` for a load balancer.

Why
    Instagram, Threads and TikTok photo posts take no uploaded bytes: the network downloads
    each image (and Meta/TikTok videos, in ranges) from a public https URL. This server is
    that URL; `media_url` builds it.

Security
    A URL is the SHA-256 of the file's content, so it can't be guessed without having the file;
    nothing is listable (no index, no ids, no file names); only GET and HEAD exist (others 405);
    a name that isn't exactly 64 lowercase hex digits plus a known extension is 404 before the
    database is touched; only JPEG, PNG, WebP, GIF, MP4 and QuickTime are ever served, with
    ``X-Content-Type-Options: nosniff``. Database reads run in a thread (`asyncio.to_thread`),
    so large blobs never block the event loop.

Settings (wired in bot/settings.py / bot/app.py)
    ``HERALD_PUBLIC_URL``: the https address the networks can reach, e.g. your load balancer
    forwarding to this server (``https://herald.example.com`` → URLs
    ``https://herald.example.com/media/<sha256>.jpg``); the server runs only when it's set.
    ``HERALD_HTTP_PORT``: the port it listens on (default 8080, all interfaces).
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web
from PIL import Image
from sqlalchemy import LargeBinary, func
from sqlmodel import select

from storage.db import Database
from storage.models import Media

log = logging.getLogger(__name__)

# the extensions each served content type answers to; the first one is what media_url uses
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "image/jpeg": ("jpg", "jpeg"),
    "image/png": ("png",),
    "image/webp": ("webp",),
    "image/gif": ("gif",),
    "video/mp4": ("mp4",),
    "video/quicktime": ("mov",),
}
ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg"}
JPEG_EXTENSIONS = ("jpg", "jpeg")
CONVERTIBLE = frozenset({"image/png", "image/webp", "image/gif"})  # to JPEG on a .jpg request
JPEG_QUALITY = 90
CACHE_CONTROL = "public, max-age=86400, immutable"
CACHE_ENTRIES = 32
CACHE_BYTES = 64 * 1024 * 1024
CONVERTERS = 2  # JPEG conversions at once (each holds an image of up to 20 MB and its pixels)

_NAME = re.compile(r"([0-9a-f]{64})\.([A-Za-z0-9]{1,5})")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_RANGE = re.compile(r"bytes[ \t]*=[ \t]*(\d*)[ \t]*-[ \t]*(\d*)", re.IGNORECASE)

Reader = Callable[[int, int], Awaitable[bytes | None]]  # (start, stop) → bytes[start:stop], None if gone


def normal_type(content_type: str) -> str:
    """'Image/PNG; x=y' → 'image/png'; 'image/jpg' → 'image/jpeg'."""
    kind = content_type.split(";", 1)[0].strip().lower()
    return ALIASES.get(kind, kind)


def media_url(public_url: str, sha256: str, content_type: str, *, want_jpeg: bool = False) -> str:
    """`{public_url}/media/{sha256}.{ext}`: ext `jpg` for an image when `want_jpeg` (the server converts
    PNG/WebP/GIF), else the content type's own extension. ValueError for a bad hash or an unserved type."""
    kind = normal_type(content_type)
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"not a lowercase hex SHA-256: {sha256!r}")
    if kind not in EXTENSIONS:
        raise ValueError(f"the media server doesn't serve {content_type!r}")
    if want_jpeg and kind.startswith("image/") and (kind == "image/jpeg" or kind in CONVERTIBLE):
        ext = "jpg"
    else:
        ext = EXTENSIONS[kind][0]
    return f"{public_url.rstrip('/')}/media/{sha256}.{ext}"


def to_jpeg(data: bytes) -> bytes:
    """An image (PNG, WebP, GIF: first frame) as an RGB JPEG, transparent parts on white."""
    with Image.open(io.BytesIO(data)) as image:
        image.seek(0)
        if "A" in image.getbands() or "transparency" in image.info:
            rgba = image.convert("RGBA")
            rgb = Image.new("RGB", rgba.size, (255, 255, 255))
            rgb.paste(rgba, mask=rgba.getchannel("A"))
        else:
            rgb = image.convert("RGB")
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return out.getvalue()


class Unsatisfiable(Exception):
    """A Range the file can't satisfy (416)."""


def _position(digits: str) -> int:
    """A byte position from the header: past 18 digits it lies beyond any file (and Python refuses to read a
    number of thousands of digits), so it stands for "beyond the end"."""
    return int(digits) if len(digits) <= 18 else 10**18


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The (start, stop) slice a single `bytes=` range asks for, or None to send the whole file
    (no header, a syntax we ignore, several ranges, first > last). Raises Unsatisfiable."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # bytes=-n: the last n bytes
        suffix = _position(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable
        return max(0, size - suffix), size
    start = _position(first)
    if last and _position(last) < start:
        return None  # an invalid range-spec: RFC 9110 says ignore the header
    if start >= size:
        raise Unsatisfiable
    end = min(_position(last), size - 1) if last else size - 1
    return start, end + 1


class _LRU:
    """Converted JPEGs by sha256, bounded in entries and total bytes."""

    def __init__(self, entries: int = CACHE_ENTRIES, max_bytes: int = CACHE_BYTES) -> None:
        self.entries = entries
        self.max_bytes = max_bytes
        self.items: OrderedDict[str, bytes] = OrderedDict()
        self.bytes = 0

    def get(self, key: str) -> bytes | None:
        value = self.items.get(key)
        if value is not None:
            self.items.move_to_end(key)
        return value

    def put(self, key: str, value: bytes) -> None:
        if len(value) > self.max_bytes:
            return
        old = self.items.pop(key, None)
        if old is not None:
            self.bytes -= len(old)
        self.items[key] = value
        self.bytes += len(value)
        while len(self.items) > self.entries or self.bytes > self.max_bytes:
            _key, dropped = self.items.popitem(last=False)
            self.bytes -= len(dropped)


class MediaServer:
    """Serves `media` rows over HTTP at /media/{sha256}.{ext}; start() / stop() in the running loop."""

    def __init__(self, db: Database, *, host: str = "0.0.0.0", port: int = 8080,
                 public_url: str | None = None) -> None:
        self.db = db
        self.host = host
        self.port = port
        self.public_url = public_url.rstrip("/") if public_url else None
        self.jpegs = _LRU()
        self._converting: dict[str, asyncio.Future[bytes | None]] = {}  # sha256 → the conversion in flight
        self._converter: ThreadPoolExecutor | None = None
        self._runner: web.AppRunner | None = None
        self.app = web.Application()
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/media/{name}", self._media)  # add_get answers HEAD too

    @property
    def base_url(self) -> str:
        """The public address when set, else where this server listens (for tests and local runs)."""
        if self.public_url:
            return self.public_url
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def url_for(self, sha256: str, content_type: str, *, want_jpeg: bool = False) -> str:
        return media_url(self.base_url, sha256, content_type, want_jpeg=want_jpeg)

    async def start(self) -> None:
        if self._runner is not None:
            return
        runner = web.AppRunner(self.app, shutdown_timeout=5.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        if self.port == 0 and runner.addresses:
            self.port = int(runner.addresses[0][1])
        log.info("media server listening on %s:%s (public: %s)", self.host, self.port, self.public_url or "not set")

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        converter, self._converter = self._converter, None
        if converter is not None:
            converter.shutdown(wait=False, cancel_futures=True)

    # --- handlers -----------------------------------------------------------------------------

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok", headers={"Cache-Control": "no-store"})

    async def _media(self, request: web.Request) -> web.StreamResponse:
        match = _NAME.fullmatch(request.match_info.get("name", ""))
        if match is None:
            raise web.HTTPNotFound()
        sha256, ext = match.group(1), match.group(2).lower()
        if ext in JPEG_EXTENSIONS:
            cached = self.jpegs.get(sha256)
            if cached is not None:
                return await self._send_bytes(request, cached, "image/jpeg", f'"{sha256}-jpeg"')
        meta = await asyncio.to_thread(self._meta, sha256)
        if meta is None:
            raise web.HTTPNotFound()
        kind, size = normal_type(meta[0]), meta[1]
        if ext in EXTENSIONS.get(kind, ()):
            return await self._send(request, kind, f'"{sha256}"', size, self._reader(sha256, size))
        if ext in JPEG_EXTENSIONS and kind in CONVERTIBLE:
            jpeg = await self._converted(sha256)
            if jpeg is None:
                raise web.HTTPNotFound()
            return await self._send_bytes(request, jpeg, "image/jpeg", f'"{sha256}-jpeg"')
        raise web.HTTPNotFound()

    async def _converted(self, sha256: str) -> bytes | None:
        """The image as JPEG: from the cache, from the conversion already in flight, or converted now."""
        cached = self.jpegs.get(sha256)
        if cached is not None:
            return cached
        pending = self._converting.get(sha256)
        if pending is None:
            pending = asyncio.ensure_future(self._convert(sha256))
            self._converting[sha256] = pending
            pending.add_done_callback(lambda _done: self._converting.pop(sha256, None))
        # shielded: a client hanging up mustn't cancel the conversion the other requests wait for
        return await asyncio.shield(pending)

    async def _convert(self, sha256: str) -> bytes | None:
        if self._converter is None:
            self._converter = ThreadPoolExecutor(max_workers=CONVERTERS, thread_name_prefix="herald-jpeg")
        jpeg = await asyncio.get_running_loop().run_in_executor(self._converter, self._jpeg_of, sha256)
        if jpeg is not None:
            self.jpegs.put(sha256, jpeg)
        return jpeg

    def _jpeg_of(self, sha256: str) -> bytes | None:
        """(In a converter thread.) The stored image converted to JPEG; None if gone or unreadable."""
        data = self._data(sha256)
        if data is None:
            return None
        try:
            return to_jpeg(data)
        except Exception:  # a stored image Pillow can't read any more: nothing to serve
            log.warning("couldn't convert media %s to JPEG", sha256, exc_info=True)
            return None

    def _reader(self, sha256: str, size: int) -> Reader:
        async def read(start: int, stop: int) -> bytes | None:
            if start == 0 and stop == size:
                return await asyncio.to_thread(self._data, sha256)
            return await asyncio.to_thread(self._slice, sha256, start, stop - start)
        return read

    async def _send_bytes(self, request: web.Request, data: bytes, kind: str, etag: str) -> web.StreamResponse:
        async def read(start: int, stop: int) -> bytes:
            return data[start:stop]
        return await self._send(request, kind, etag, len(data), read)

    async def _send(self, request: web.Request, kind: str, etag: str, size: int,
                    read: Reader) -> web.StreamResponse:
        headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Accept-Ranges": "bytes",
                   "X-Content-Type-Options": "nosniff"}
        if _etag_matches(request.headers.get("If-None-Match"), etag):
            return web.Response(status=304, headers=headers)
        span = None
        if request.method == "GET" and _if_range_holds(request.headers.get("If-Range"), etag):
            try:
                span = parse_range(request.headers.get("Range"), size)
            except Unsatisfiable:
                headers["Content-Range"] = f"bytes */{size}"
                return web.Response(status=416, headers=headers)
        start, stop = span if span is not None else (0, size)
        headers["Content-Type"] = kind
        headers["Content-Length"] = str(stop - start)
        status = 200
        if span is not None:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
        if request.method == "HEAD":
            return web.Response(status=status, headers=headers)
        body = await read(start, stop)
        if body is None or len(body) != stop - start:  # deleted (or changed) meanwhile
            raise web.HTTPNotFound()
        return web.Response(status=status, body=body, headers=headers)

    # --- database (in a worker thread) --------------------------------------------------------

    def _meta(self, sha256: str) -> tuple[str, int] | None:
        """The stored content type and real byte length, without loading the blob."""
        with self.db.session() as session:
            row: Any = session.exec(
                select(Media.content_type, func.length(Media.data)).where(Media.sha256 == sha256).limit(1)
            ).first()
        return (str(row[0]), int(row[1])) if row is not None else None

    def _data(self, sha256: str) -> bytes | None:
        with self.db.session() as session:
            data = session.exec(select(Media.data).where(Media.sha256 == sha256).limit(1)).first()
        return bytes(data) if data is not None else None

    def _slice(self, sha256: str, start: int, length: int) -> bytes | None:
        """Bytes [start, start + length) of the stored file, cut by the database (substr is 1-based)."""
        piece = func.substr(Media.data, start + 1, length, type_=LargeBinary)
        with self.db.session() as session:
            data = session.exec(select(piece).where(Media.sha256 == sha256).limit(1)).first()
        return bytes(data) if data is not None else None


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


def _if_range_holds(header: str | None, etag: str) -> bool:
    """No If-Range, or one naming this ETag: the Range applies. A date or another tag: send it all."""
    return header is None or header.strip() == etag
