"""The one exception a handler raises to refuse a command: its text goes to the user, nothing is saved."""

from __future__ import annotations


class UserError(Exception):
    """A refusal: says what is wrong and what to type instead. The transaction is rolled back."""
