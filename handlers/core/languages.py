"""Languages: the codes a team may give an audience (any ISO 639-1 code, named by pycountry) and the offline
detector that checks which language a text reads as (py3langid's model, loaded once per process on first use,
about 0.7 s)."""

from __future__ import annotations

from functools import cache
from typing import Any

import pycountry

# the code py3langid reports for a language some teams write otherwise (Norwegian Bokmål nb is reported as no)
DETECTED_AS = {"nb": "no"}


@cache
def identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


@cache
def checkable_languages() -> frozenset[str]:
    """The ISO 639-1 (two-letter) codes the detector recognises: a text can be checked only in those."""
    return frozenset(label for label in identifier().nb_classes if len(label) == 2)


def detected_as(language: str) -> str:
    """The code the detector reports for text in `language` (an audience's lang=)."""
    return DETECTED_AS.get(language, language)


def language_name(code: str) -> str | None:
    """'es' → 'Spanish' (ISO 639 names from pycountry); None for a code that isn't ISO 639-1."""
    found = pycountry.languages.get(alpha_2=code) if len(code) == 2 else None
    return str(found.name) if found is not None else None
