"""How Herald words things in the chat: short quotes of a post, a post's state in words."""

from __future__ import annotations

from storage.models import Post, PostState


def state_label(post: Post) -> str:
    return PostState(post.state).value.replace("_", " ")


def short_text(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
