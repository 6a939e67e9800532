"""Who may do what: the role sets commands declare, and the refusal a person gets when their role falls short."""

from __future__ import annotations

from collections.abc import Iterable

from storage.models import Role

ALL_ROLES = frozenset(Role)
CREW = frozenset({Role.ADMIN, Role.EDITOR, Role.APPROVER})
EDITORS = frozenset({Role.ADMIN, Role.EDITOR})
ADMINS = frozenset({Role.ADMIN})

# the strongest of several roles wins (a person holding two Discord roles that map to Herald roles)
ROLE_RANK = {Role.VIEWER: 0, Role.APPROVER: 1, Role.EDITOR: 2, Role.ADMIN: 3}


def role_refusal(
    allowed: Iterable[str], role: Role, doing: str, actor: str, *, suggest: str = "<role>", here: bool = True
) -> str:
    """'Only admins or editors can use /draft. You're a viewer here; an admin can change that with /role …'"""
    names = " or ".join(sorted(r + "s" for r in allowed))
    return (
        f"Only {names} can {doing}. You're {role.with_article}{' here' if here else ''}; "
        f"an admin can change that with /role {actor} {suggest}."
    )
