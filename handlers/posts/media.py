"""Images and videos on posts: Herald's media store and /attach.

Front ends download what a person sends (a photo, an album, a Discord attachment) and hand it
in as `Command.media`; Herald checks each file (type read from its bytes, size, decodable) and
keeps it in the database, so every worker can send it later. A post holds the ids in order.

A file counts as a video only when FFmpeg (through PyAV) opens it as MP4/QuickTime, finds a video stream
and decodes its first frame; the check is bounded (one decoding thread, at most `MAX_PROBE_PACKETS`
packets, at most `MAX_VIDEO_PIXELS` a frame), so a crafted file can't hold a worker for long.

Retention (`remove_old_media`, every hour): a file is removed once no post that could still go out
needs it. A cancelled or rejected post can't, so its files go at the next run; an expired post (which
can be brought back), a published, partially published or failed one keeps them for
`Context.media_retention` (HERALD_MEDIA_RETENTION_DAYS, default 90) after it ended (published, last
edited or due); a file no post holds any more (/attach clear) goes too. A post keeps the ids of removed
files, harmlessly: its card says "Images: 0 of 2 (removed after the media retention period)", a send
carries only the files still stored, and /attach <post> clear empties the list.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import warnings
from datetime import datetime, timedelta

import av
from PIL import Image, UnidentifiedImageError
from sqlmodel import Session, col, delete, select

from handlers.core.access import EDITORS
from handlers.core.audit import audit
from handlers.core.chat import MediaIn, Reply
from handlers.core.commands import Param, Request, command, periodic
from handlers.core.context import Context
from handlers.core.errors import UserError
from handlers.core.lookups import get_workspace, parse_post_id
from handlers.core.ports import MediaFile
from handlers.posts.editing import after_content_change, content_changed, editable_post
from storage.models import EvergreenItem, Media, Post, PostState

MAX_ITEMS = 10  # Telegram albums, Instagram carousels and Threads carousels stop at 10
MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_VIDEO_BYTES = 512 * 1024 * 1024
IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}
VIDEO_TYPES = ("video/mp4", "video/quicktime")
# ISO base media brands of MP4/MOV video (HEIC/AVIF photos and M4A audio share the container: refused)
VIDEO_BRANDS = {b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"mp4v", b"M4V ",
                b"qt  ", b"dash", b"3gp4", b"3gp5"}
MAX_VIDEO_PIXELS = 8192 * 4320  # 8K: what the largest network (YouTube) takes
MAX_PROBE_PACKETS = 120  # a first frame comes within a few packets; past this the file isn't worth more time
MAX_PIXELS = 50_000_000  # no phone photo comes close; a small file decoding to more is a decompression bomb
RETENTION_BATCH = 200  # media rows claimed and removed per transaction
# a post in one of these states may still go out: its files stay whatever their age
OPEN_STATES = frozenset({PostState.DRAFT, PostState.IN_REVIEW, PostState.CHANGES_REQUESTED, PostState.APPROVED,
                         PostState.SCHEDULED, PostState.PUBLISHING})
# these can't go out (nothing leaves them): their files go at the next run
FINAL_STATES = frozenset({PostState.CANCELLED, PostState.REJECTED})
RECENT = timedelta(minutes=30)  # a photo sent without a post number joins the sender's draft of the last 30 min


def sniff(item: MediaIn) -> tuple[str, str]:
    """The real content type of a file (from its bytes, not its name) and a safe file name; refuses the rest."""
    name = (item.filename or "file").replace("/", "_").replace("\\", "_")[-80:]
    if not item.data:
        raise UserError(f"{name} is empty.")
    if item.content_type in VIDEO_TYPES or item.data[4:8] == b"ftyp":
        if item.data[4:8] != b"ftyp" or item.data[8:12] not in VIDEO_BRANDS:
            raise UserError(f"{name} says it's a video but isn't an MP4/MOV file.")
        if len(item.data) > MAX_VIDEO_BYTES:
            raise UserError(f"{name} is {len(item.data) // 2**20} MB; videos can be at most {MAX_VIDEO_BYTES // 2**20} MB.")
        problem = video_problem(item.data)
        if problem is not None:
            raise UserError(f"{name} says it's a video but isn't an MP4/MOV file I can play: {problem}. "
                            "Export it again as MP4 (H.264) and send it once more.")
        kind = "video/quicktime" if item.data[8:10] == b"qt" else "video/mp4"
        return kind, name
    if len(item.data) > MAX_IMAGE_BYTES:
        raise UserError(f"{name} is {len(item.data) // 2**20} MB; images can be at most {MAX_IMAGE_BYTES // 2**20} MB.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(item.data)) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise UserError(f"{name} is {width}×{height} pixels; images can be at most "
                                    f"{MAX_PIXELS // 1_000_000} megapixels.")
                image.verify()
                fmt = image.format or ""
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise UserError(f"{name} is too many pixels to be a photo; images can be at most "
                        f"{MAX_PIXELS // 1_000_000} megapixels.") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UserError(f"{name} isn't an image I can read (JPEG, PNG, GIF, WebP) or an MP4 video.") from exc
    if fmt not in IMAGE_TYPES:
        raise UserError(f"{name} is a {fmt or 'unknown'} image; networks take JPEG, PNG, GIF or WebP.")
    return IMAGE_TYPES[fmt], name


def video_problem(data: bytes) -> str | None:
    """None when `data` opens as MP4/QuickTime with a video stream whose first frame decodes; else why not."""
    try:
        with av.open(io.BytesIO(data), mode="r", format="mov") as container:
            if not container.streams.video:
                return "it has no video in it"
            stream = container.streams.video[0]
            codec = stream.codec_context
            if codec is None:
                return "its video is in a format I can't decode"
            if codec.width * codec.height > MAX_VIDEO_PIXELS:
                return f"its frames are {codec.width}×{codec.height} pixels, more than 8K"
            codec.thread_count = 1
            for count, packet in enumerate(container.demux(stream)):  # the last packet flushes the decoder
                if count >= MAX_PROBE_PACKETS:
                    break
                if codec.decode(packet):
                    return None
    except (av.FFmpegError, ValueError, OSError, EOFError, MemoryError):
        return "its data can't be read (a damaged or unfinished file?)"
    return "its first frame can't be decoded"


def store_media(session: Session, ws_id: int, items: tuple[MediaIn, ...], added_by: str) -> list[int]:
    """Check every file first (all or nothing), then store them; their ids in order."""
    checked = [(item, *sniff(item)) for item in items]
    ids = []
    for item, content_type, name in checked:
        row = Media(workspace_id=ws_id, filename=name, content_type=content_type, size=len(item.data),
                    sha256=hashlib.sha256(item.data).hexdigest(), data=item.data, added_by=added_by)
        session.add(row)
        session.flush()
        assert row.id is not None
        ids.append(row.id)
    return ids


def load_media(session: Session, post: Post) -> tuple[MediaFile, ...]:
    if not post.media:
        return ()
    rows = {m.id: m for m in session.exec(select(Media).where(col(Media.id).in_(post.media))).all()}
    return tuple(MediaFile(rows[i].filename, rows[i].content_type, rows[i].data, rows[i].sha256)
                 for i in post.media if i in rows)


def latest_open_draft(req: Request, session: Session, ws_id: int) -> Post:
    actor = req.command.actor
    since = req.ctx.clock.now() - RECENT
    post = session.exec(
        select(Post).where(Post.workspace_id == ws_id).where(Post.author_platform == actor.platform)
        .where(Post.author_user_id == actor.user_id)
        .where(col(Post.state).in_([PostState.DRAFT.value, PostState.CHANGES_REQUESTED.value]))
        .where(col(Post.updated_at) >= since).order_by(col(Post.updated_at).desc(), col(Post.id).desc())
    ).first()
    if post is None:
        raise UserError("Which post should these go on? You have no draft from the last 30 minutes: "
                        "send them with the caption /draft <text> to start one, or /attach <post>.")
    return post


@command(
    "attach",
    usage="/attach [post] [clear]", example="/attach 12",
    summary="add the photos or video sent with it to a post (or clear them)",
    details=(
        "Send a photo or an album with the caption /draft <text> to start a post with it, or with /attach 12\n"
        "to add it to #12. Photos sent right after your /draft join that draft. /attach 12 clear removes them.\n"
        f"At most {MAX_ITEMS} files a post: JPEG, PNG, GIF, WebP up to {MAX_IMAGE_BYTES // 2**20} MB, "
        f"MP4/MOV up to {MAX_VIDEO_BYTES // 2**20} MB. Adding media is an edit: earlier approvals no longer count."
    ),
    roles=EDITORS,
    group="Posts",
    takes=(Param.post(required=False),
           Param.choice("clear", ("clear",), required=False, description="clear: remove the post's media"),
           Param.media()),
)
async def attach(req: Request) -> Reply:
    ctx, cmd = req.ctx, req.command
    ws_id = req.need_workspace()
    words = req.words
    clear = bool(words) and words[-1].lower() == "clear"
    if clear:
        words = words[:-1]
    post_token = req.arg("post") or (words[0] if words else None)
    if not clear and not cmd.media:
        raise UserError("Send the photo or video itself with the caption /attach <post> "
                        "(or /attach <post> clear to remove a post's media).")
    with ctx.db.session() as session:
        if post_token is not None:
            post = editable_post(session, ws_id, parse_post_id(post_token, req.spec.usage), "changed")
        else:
            post = latest_open_draft(req, session, ws_id)
        assert post.id is not None
        post_id = post.id
        ws = get_workspace(session, ws_id)
        if clear:
            if not post.media:
                raise UserError(f"#{post_id} has no media to clear.")
            post.media = []
            what = "media removed"
        else:
            if len(post.media) + len(cmd.media) > MAX_ITEMS:
                raise UserError(f"A post can hold at most {MAX_ITEMS} files; #{post_id} has {len(post.media)} "
                                f"and you sent {len(cmd.media)}. Nothing was added.")
            ids = store_media(session, ws_id, cmd.media, cmd.actor.name)
            post.media = [*post.media, *ids]
            what = f"{len(ids)} file(s) attached"
        audit(session, ctx, ws_id, post_id, cmd.actor.name, "attach", what)
        note = content_changed(ctx, session, post, ws, cmd.actor, what)
    headline = f"#{post_id}: {what}." if clear else f"#{post_id}: {what} ({len(post.media)} in all)."
    return await after_content_change(req, post_id, headline, note)


def media_in_use(session: Session, cutoff: datetime) -> set[int]:
    """Ids of the files some post still needs: open posts, finished ones that ended after `cutoff` (their
    publishing, last edit or due time: an expired post expires around its due time), and the evergreen library's."""
    rows = session.exec(
        select(Post.state, Post.media, Post.published_at, Post.updated_at, Post.due_at)  # type: ignore[call-overload]
        .where(col(Post.state).not_in([s.value for s in FINAL_STATES]))
    ).all()
    keep: set[int] = set()
    # a post in the evergreen library (/evergreen) is posted again from its files, however long ago it went out
    for media in session.exec(select(Post.media).join(EvergreenItem, col(EvergreenItem.post_id) == col(Post.id))
                              .where(col(EvergreenItem.active).is_(True))).all():
        keep.update(media or [])
    for state, media, *stamps in rows:
        if not media:
            continue
        ended = max((stamp for stamp in stamps if stamp is not None), default=None)
        if state in OPEN_STATES or ended is None or ended >= cutoff:
            keep.update(media)
    return keep


@periodic("media_retention", every=timedelta(hours=1))
async def remove_old_media(ctx: Context) -> int:
    """Remove, in batches, the files no post needs any more (see the module's docstring); how many went.

    Each batch is claimed with `FOR UPDATE SKIP LOCKED` (PostgreSQL; SQLite has one writer at a time), so
    several workers running this at once share the table instead of fighting over it. The files are read
    before the posts that use them: a file is committed together with the post that holds it, so a file
    this run sees has its post visible too, and one still being attached is never taken.
    """
    cutoff = ctx.clock.now() - ctx.media_retention
    removed, after = 0, 0
    while True:
        batch = await asyncio.to_thread(_remove_batch, ctx, after, cutoff)  # blobs: off the event loop
        if batch is None:
            return removed
        after, count = batch
        removed += count


def _remove_batch(ctx: Context, after: int, cutoff: datetime) -> tuple[int, int] | None:
    """Claim the next batch of files after id `after` and remove those no post keeps: (last id, removed);
    None when no file is left to look at."""
    with ctx.db.session() as session:
        batch = [i for i in session.exec(
            select(Media.id).where(col(Media.id) > after).order_by(col(Media.id)).limit(RETENTION_BATCH)
            .with_for_update(skip_locked=True)
        ).all() if i is not None]
        if not batch:
            return None
        keep = media_in_use(session, cutoff)
        gone = [i for i in batch if i not in keep]
        if not gone:
            return max(batch), 0
        result = session.exec(delete(Media).where(col(Media.id).in_(gone)))
        return max(batch), result.rowcount or 0
