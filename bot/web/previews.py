"""Previews as images: roughly how one account's post will look on its network — a card drawn by Herald with
Pillow (the account, the network's colour, the text as sent, the first picture, the link card), labelled as
approximate. The post page and the review page show one per account, at `…/preview/<n>.png` (n: the account's
place in the page, never an id)."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFont

from handlers.core.ports import PreviewCard

WIDTH = 600
PAD = 20
COLOURS = {"x": (15, 20, 25), "bluesky": (17, 133, 254), "mastodon": (99, 100, 255), "facebook": (8, 102, 255),
           "instagram": (193, 53, 132), "threads": (0, 0, 0), "linkedin": (10, 102, 194), "pinterest": (230, 0, 35),
           "tiktok": (37, 244, 238), "youtube": (255, 0, 0), "telegram": (36, 161, 222), "discord": (88, 101, 242)}
GREY = (90, 96, 108)
LABEL = "Approximate preview drawn by Herald, not the network's own"


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
          width: int) -> list[str]:
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if draw.textlength(candidate, font=font) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            while draw.textlength(word, font=font) > width:  # a long link: cut it where it must
                cut = max(1, int(len(word) * width / draw.textlength(word, font=font)) - 1)
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        lines.append(line)
    return lines


def preview_png(one: PreviewCard, picture: bytes | None) -> bytes:
    """The card of `one` account's post (with `picture`, the post's first image, when it has one) as PNG bytes."""
    font = ImageFont.load_default(size=18)
    small = ImageFont.load_default(size=14)
    bold = ImageFont.load_default(size=20)
    scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    lines = _wrap(scratch, one.text, font, WIDTH - 2 * PAD)
    line_height = 26
    photo = None
    if picture is not None:
        try:
            with Image.open(io.BytesIO(picture)) as opened:
                opened.seek(0)
                photo = opened.convert("RGB")
            photo.thumbnail((WIDTH - 2 * PAD, 320))
        except Exception:  # not an image Pillow reads (a video): no picture in the preview
            photo = None
    height = 90 + line_height * len(lines) + (photo.height + PAD if photo else 0) + (40 if one.link else 0) + 40
    card = Image.new("RGB", (WIDTH, height), (255, 255, 255))
    draw = ImageDraw.Draw(card)
    colour = COLOURS.get(one.network, GREY)
    draw.rectangle((0, 0, WIDTH, 8), fill=colour)
    draw.ellipse((PAD, 24, PAD + 40, 64), fill=colour)
    draw.text((PAD + 52, 24), one.account, font=bold, fill=(20, 22, 28))
    draw.text((PAD + 52, 48), one.network.capitalize(), font=small, fill=GREY)
    y = 84
    for line in lines:
        draw.text((PAD, y), line, font=font, fill=(20, 22, 28))
        y += line_height
    if photo is not None:
        y += PAD // 2
        card.paste(photo, (PAD, y))
        y += photo.height + PAD // 2
    if one.link:
        draw.rectangle((PAD, y + 4, WIDTH - PAD, y + 34), outline=(200, 204, 211))
        draw.text((PAD + 8, y + 10), _wrap(draw, one.link, small, WIDTH - 2 * PAD - 16)[0], font=small, fill=GREY)
        y += 40
    draw.text((PAD, height - 28), LABEL, font=small, fill=GREY)
    out = io.BytesIO()
    card.save(out, format="PNG", optimize=True)
    return out.getvalue()


def preview_sheet(cards: list[PreviewCard], picture: bytes | None) -> bytes:
    """Every account's card, one under the other, as one PNG (for the chat: /preview <post> image)."""
    images = [Image.open(io.BytesIO(preview_png(card, picture))) for card in cards]
    sheet = Image.new("RGB", (WIDTH, sum(i.height for i in images) + 8 * max(len(images) - 1, 0) or 1),
                      (228, 231, 236))
    y = 0
    for image in images:
        sheet.paste(image, (0, y))
        y += image.height + 8
    out = io.BytesIO()
    sheet.save(out, format="PNG", optimize=True)
    return out.getvalue()


class PillowPreviews:
    """The Previews port (handlers/core/ports.py)."""

    def sheet(self, cards: list[PreviewCard], picture: bytes | None) -> bytes:
        return preview_sheet(cards, picture)
