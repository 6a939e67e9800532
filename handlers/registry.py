"""The command table: each handler module registers its commands here with usage and help text."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from storage.models import Role

if TYPE_CHECKING:
    from handlers.chat import Reply
    from handlers.common import Request

Handler = Callable[["Request"], Awaitable["Reply"]]

ALL_ROLES = frozenset(Role)
CREW = frozenset({Role.ADMIN, Role.EDITOR, Role.APPROVER})
EDITORS = frozenset({Role.ADMIN, Role.EDITOR})
ADMINS = frozenset({Role.ADMIN})


@dataclass(frozen=True)
class CommandSpec:
    name: str
    usage: str
    summary: str
    details: str
    roles: frozenset[Role]
    handler: Handler
    example: str
    needs_workspace: bool = True
    group: str = "Other"


COMMANDS: dict[str, CommandSpec] = {}


def command(
    name: str,
    *,
    usage: str,
    example: str,
    summary: str,
    details: str = "",
    roles: frozenset[Role] = ALL_ROLES,
    needs_workspace: bool = True,
    group: str = "Other",
) -> Callable[[Handler], Handler]:
    """Register a handler for `/name`; `roles` are the Herald roles allowed to run it."""

    def register(handler: Handler) -> Handler:
        COMMANDS[name] = CommandSpec(
            name, usage, summary, details.strip(), roles, handler, example, needs_workspace, group
        )
        return handler

    return register
