"""The public media server over real HTTP: formats, JPEG conversion, headers, ranges, 404s."""

from __future__ import annotations

import asyncio
import hashlib
import io
import threading
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from PIL import Image
from sqlmodel import select

from bot import media_server
from bot.media_server import MediaServer, Unsatisfiable, media_url, parse_range
from storage.db import Database
from storage.models import Media, Workspace


def image_bytes(fmt: str, size: tuple[int, int] = (40, 30), mode: str = "RGBA") -> bytes:
    out = io.BytesIO()
    image = Image.new(mode, size, (200, 30, 30, 128) if mode == "RGBA" else (200, 30, 30))
    image.save(out, fmt)
    return out.getvalue()


PNG = image_bytes("PNG")
WEBP = image_bytes("WEBP", (16, 12))
JPEG = image_bytes("JPEG", mode="RGB")
MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40  # 10 252 bytes
MOV = b"\x00\x00\x00\x14ftypqt  " + b"moov" * 100


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Served:
    server: MediaServer
    client: httpx.AsyncClient
    base: str


@pytest.fixture
async def served(db_url: str) -> AsyncIterator[Served]:
    db = Database(db_url)
    db.migrate()
    with db.session() as session:
        workspace = Workspace(name="A")
        session.add(workspace)
        session.flush()
        assert workspace.id is not None
        for name, kind, data in (("a.png", "image/png", PNG), ("b.webp", "image/webp", WEBP),
                                 ("c.jpg", "image/jpeg", JPEG), ("d.mp4", "video/mp4", MP4),
                                 ("e.mov", "video/quicktime", MOV)):
            session.add(Media(workspace_id=workspace.id, filename=name, content_type=kind, size=len(data),
                              sha256=sha(data), data=data, added_by="alice"))
    server = MediaServer(db, host="127.0.0.1", port=0)
    await server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            yield Served(server, client, base)
    finally:
        await server.stop()
        db.dispose()


async def raw_status(port: int, target: str, method: str = "GET") -> int:
    """Send a request line exactly as written (no client normalising the path); the status code."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return int(status_line.split()[1])


async def test_start_on_port_zero_picks_a_port_and_healthz_answers(served: Served) -> None:
    assert served.server.port > 0
    response = await served.client.get("/healthz")
    assert response.status_code == 200 and response.text == "ok"


async def test_png_is_served_as_stored_with_its_headers(served: Served) -> None:
    response = await served.client.get(f"/media/{sha(PNG)}.png")
    assert response.status_code == 200
    assert response.content == PNG
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-length"] == str(len(PNG))
    assert response.headers["etag"] == f'"{sha(PNG)}"'
    assert response.headers["cache-control"] == "public, max-age=86400, immutable"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_png_and_webp_asked_as_jpg_become_real_jpegs(served: Served) -> None:
    for data, ext in ((PNG, "jpg"), (PNG, "jpeg"), (WEBP, "jpg")):
        response = await served.client.get(f"/media/{sha(data)}.{ext}")
        assert response.status_code == 200, ext
        assert response.headers["content-type"] == "image/jpeg"
        assert response.headers["content-length"] == str(len(response.content))
        with Image.open(io.BytesIO(response.content)) as image:
            assert image.format == "JPEG" and image.mode == "RGB"
            assert image.size == Image.open(io.BytesIO(data)).size
            red, _green, _blue = image.getpixel((1, 1))  # type: ignore[misc]
            assert red > 200  # half-transparent red on white, not on black
    assert served.server.jpegs.get(sha(PNG)) is not None  # the conversion is cached


async def test_a_cached_conversion_is_served_without_the_database(
        served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    first = await served.client.get(f"/media/{sha(PNG)}.jpg")

    def boom(*_args: object) -> None:
        raise AssertionError("database read")

    monkeypatch.setattr(served.server, "_meta", boom)
    monkeypatch.setattr(served.server, "_data", boom)
    again = await served.client.get(f"/media/{sha(PNG)}.jpg")
    assert again.status_code == 200 and again.content == first.content


async def test_a_jpeg_is_served_unchanged_as_jpg_and_jpeg(served: Served) -> None:
    for ext in ("jpg", "jpeg"):
        response = await served.client.get(f"/media/{sha(JPEG)}.{ext}")
        assert response.status_code == 200 and response.content == JPEG
        assert response.headers["content-type"] == "image/jpeg"


async def test_head_gives_the_headers_without_a_body(served: Served) -> None:
    response = await served.client.head(f"/media/{sha(MP4)}.mp4")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len(MP4))
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["etag"] == f'"{sha(MP4)}"'
    converted = await served.client.head(f"/media/{sha(PNG)}.jpg")
    assert converted.status_code == 200 and converted.headers["content-type"] == "image/jpeg"
    assert int(converted.headers["content-length"]) > 0


async def test_if_none_match_gives_304(served: Served) -> None:
    response = await served.client.get(f"/media/{sha(PNG)}.png", headers={"If-None-Match": f'"{sha(PNG)}"'})
    assert response.status_code == 304 and response.content == b""


async def test_unknown_hash_and_wrong_extension_are_404(served: Served) -> None:
    assert (await served.client.get(f"/media/{'0' * 64}.png")).status_code == 404
    for data, ext in ((PNG, "mp4"), (PNG, "webp"), (PNG, "gif"), (JPEG, "png"), (MP4, "jpg"),
                      (MP4, "mov"), (MOV, "mp4"), (MP4, "png"), (PNG, "txt")):
        response = await served.client.get(f"/media/{sha(data)}.{ext}")
        assert response.status_code == 404, ext
    assert (await served.client.get(f"/media/{sha(MOV)}.mov")).content == MOV


TRAVERSALS = (
    "/media/", "/media", "/media/abc.png", f"/media/{sha(PNG)}", f"/media/{sha(PNG).upper()}.png",
    f"/media/{sha(PNG)[:-1]}.png", f"/media/{sha(PNG)}0.png", f"/media/{sha(PNG)}.png.exe",
    f"/media/{sha(PNG)}..png", "/media/../storage/db.py", "/media/..%2F..%2Fetc%2Fpasswd",
    "/media/%2e%2e/%2e%2e/etc/passwd", f"/media/..%2f{sha(PNG)}.png", f"/media/{sha(PNG)}.png%00.jpg",
    f"/media/{sha(PNG)}.png/", f"/media/{sha(PNG)}.png?x=/../../etc/passwd".replace("?", "%3F"),
    "/media/*.png", "/", "/etc/passwd", "/media/../../../../etc/passwd",
)


async def test_malformed_names_and_traversal_are_404_without_a_database_read(
        served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[str] = []
    monkeypatch.setattr(served.server, "_meta", reads.append)
    for target in TRAVERSALS:
        assert await raw_status(served.server.port, target) == 404, target
        assert await raw_status(served.server.port, target, "HEAD") == 404, target
    assert reads == []


async def test_only_get_and_head(served: Served) -> None:
    for method in ("POST", "PUT", "DELETE"):
        response = await served.client.request(method, f"/media/{sha(PNG)}.png")
        assert response.status_code == 405, method


async def test_video_ranges(served: Served) -> None:
    url = f"/media/{sha(MP4)}.mp4"
    size = len(MP4)
    for header, start, stop in (("bytes=0-99", 0, 100), ("bytes=1000-1999", 1000, 2000), ("bytes=5000-", 5000, size),
                                ("bytes=-300", size - 300, size), ("bytes=10000-99999", 10000, size),
                                ("bytes=-99999", 0, size), (f"bytes={size - 1}-{size - 1}", size - 1, size)):
        response = await served.client.get(url, headers={"Range": header})
        assert response.status_code == 206, header
        assert response.content == MP4[start:stop], header
        assert response.headers["content-range"] == f"bytes {start}-{stop - 1}/{size}", header
        assert response.headers["content-length"] == str(stop - start), header
        assert response.headers["content-type"] == "video/mp4"
    for header in (f"bytes={size}-", f"bytes={size + 5}-{size + 10}", "bytes=-0"):
        response = await served.client.get(url, headers={"Range": header})
        assert response.status_code == 416, header
        assert response.headers["content-range"] == f"bytes */{size}"
    for header in ("bytes=0-1,5-6", "bytes=9-3", "items=0-5", "bytes=abc"):  # ignored: the whole file
        response = await served.client.get(url, headers={"Range": header})
        assert response.status_code == 200 and response.content == MP4, header
    stale = await served.client.get(url, headers={"Range": "bytes=0-9", "If-Range": '"other"'})
    assert stale.status_code == 200 and stale.content == MP4
    fresh = await served.client.get(url, headers={"Range": "bytes=0-9", "If-Range": f'"{sha(MP4)}"'})
    assert fresh.status_code == 206 and fresh.content == MP4[:10]
    assert (await served.client.get(url)).headers["accept-ranges"] == "bytes"


async def test_ranges_of_a_converted_jpeg(served: Served) -> None:
    whole = (await served.client.get(f"/media/{sha(PNG)}.jpg")).content
    part = await served.client.get(f"/media/{sha(PNG)}.jpg", headers={"Range": "bytes=2-11"})
    assert part.status_code == 206 and part.content == whole[2:12]


def test_parse_range() -> None:
    assert parse_range(None, 10) is None
    assert parse_range("bytes=2-4", 10) == (2, 5)
    assert parse_range("bytes=8-", 10) == (8, 10)
    assert parse_range("bytes=-3", 10) == (7, 10)
    assert parse_range("bytes=0-0,2-3", 10) is None


def test_a_range_with_thousands_of_digits_is_answered_not_a_crash() -> None:
    huge = "9" * 5000
    with pytest.raises(Unsatisfiable):
        parse_range(f"bytes={huge}-", 10)  # starts beyond the end: 416
    assert parse_range(f"bytes=2-{huge}", 10) == (2, 10)  # to the end
    assert parse_range(f"bytes=-{huge}", 10) == (0, 10)  # "the last n bytes" of a shorter file: all of it


async def test_a_request_with_a_5000_digit_range_gets_416_and_the_server_keeps_serving(served: Served) -> None:
    url = f"/media/{sha(MP4)}.mp4"
    response = await served.client.get(url, headers={"Range": "bytes=" + "9" * 5000 + "-"})
    assert response.status_code == 416
    assert (await served.client.get(url)).status_code == 200


def test_media_url() -> None:
    digest = sha(PNG)
    assert media_url("https://h.example/", digest, "image/png") == f"https://h.example/media/{digest}.png"
    assert media_url("https://h.example", digest, "image/png", want_jpeg=True) == f"https://h.example/media/{digest}.jpg"
    assert media_url("https://h.example", digest, "image/jpeg") == f"https://h.example/media/{digest}.jpg"
    assert media_url("https://h.example", digest, "video/mp4", want_jpeg=True) == f"https://h.example/media/{digest}.mp4"
    assert media_url("https://h.example", digest, "video/quicktime") == f"https://h.example/media/{digest}.mov"
    with pytest.raises(ValueError):
        media_url("https://h.example", "../x", "image/png")
    with pytest.raises(ValueError):
        media_url("https://h.example", digest, "text/html")


async def test_urls_built_by_media_url_are_served(served: Served) -> None:
    for data, kind in ((PNG, "image/png"), (WEBP, "image/webp"), (MP4, "video/mp4"), (MOV, "video/quicktime")):
        for want_jpeg in (False, True):
            response = await served.client.get(media_url(served.base, sha(data), kind, want_jpeg=want_jpeg))
            assert response.status_code == 200, (kind, want_jpeg)


async def test_concurrent_requests_convert_each_image_once_and_at_most_two_at_a_time(
        served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """Five requests at once for each of three images: the converter runs once per image, never more than
    two conversions at a time, and every request gets the same JPEG."""
    gif = image_bytes("GIF", (10, 10), mode="RGB")
    with served.server.db.session() as session:
        workspace_id = session.exec(select(Workspace.id)).first()
        session.add(Media(workspace_id=workspace_id, filename="f.gif", content_type="image/gif", size=len(gif),
                          sha256=sha(gif), data=gif, added_by="alice"))
    images, per_image = (PNG, WEBP, gif), 5
    calls: Counter[str] = Counter()
    lock = threading.Lock()
    active, most = [0], [0]
    two_in, release, all_asked = threading.Event(), threading.Event(), threading.Event()
    real_to_jpeg, real_meta = media_server.to_jpeg, served.server._meta
    asked = [0]

    def counting_to_jpeg(data: bytes) -> bytes:
        with lock:
            calls[sha(data)] += 1
            active[0] += 1
            most[0] = max(most[0], active[0])
            if active[0] == 2:
                two_in.set()
        try:
            assert release.wait(10), "the test never released the converter"
            return real_to_jpeg(data)
        finally:
            with lock:
                active[0] -= 1

    def counting_meta(sha256: str) -> tuple[str, int] | None:
        found = real_meta(sha256)
        with lock:
            asked[0] += 1
            if asked[0] == len(images) * per_image:
                all_asked.set()
        return found

    monkeypatch.setattr(media_server, "to_jpeg", counting_to_jpeg)
    monkeypatch.setattr(served.server, "_meta", counting_meta)
    requests = asyncio.gather(*(served.client.get(f"/media/{sha(data)}.jpg")
                                for data in images for _ in range(per_image)))
    # every request has looked the image up (and found no JPEG cached) while two conversions are held
    assert await asyncio.to_thread(all_asked.wait, 10) and await asyncio.to_thread(two_in.wait, 10)
    release.set()
    responses = await requests
    assert [r.status_code for r in responses] == [200] * len(images) * per_image
    assert calls == {sha(data): 1 for data in images}
    assert most[0] == 2
    for n in range(len(images)):
        bodies = {r.content for r in responses[n * per_image:(n + 1) * per_image]}
        assert len(bodies) == 1 and next(iter(bodies))[:3] == b"\xff\xd8\xff"
    assert not served.server._converting  # nothing left in flight
