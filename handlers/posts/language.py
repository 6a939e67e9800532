"""Which language a text reads as, offline (handlers/core/languages.py): the approval card warns
when the text going to an audience reads in another language than the audience's own. Only a warning — nothing
is blocked — and only when the text is long enough to judge and the model is sure enough."""

from __future__ import annotations

from handlers.core.languages import detected_as, identifier
from handlers.posts.links import URL_RE

MIN_WORDS = 4  # shorter texts ("Hola amigos", "Big sale today") are too short to judge
MIN_CONFIDENCE = 0.7  # the model's probability of the language it names (0-1)


def reads_as(text: str) -> tuple[str, float] | None:
    """The language `text` reads as (ISO 639-1) and how sure the model is; None when the text (its links,
    mentions and hashtags left out) has fewer than MIN_WORDS words."""
    words = [w for w in URL_RE.sub(" ", text).split() if w[:1] not in "@#" and any(c.isalpha() for c in w)]
    if len(words) < MIN_WORDS:
        return None
    language, confidence = identifier().classify(" ".join(words))
    return str(language), float(confidence)


def language_warning(text: str, expected: str, who: str) -> str | None:
    """'⚠ south expects es, this reads as en' when `text` clearly reads in another language than `expected`."""
    found = reads_as(text)
    if found is None:
        return None
    language, confidence = found
    if language == detected_as(expected.lower()) or confidence < MIN_CONFIDENCE:
        return None
    return f"⚠ {who} expects {expected.lower()}, this reads as {language}"
