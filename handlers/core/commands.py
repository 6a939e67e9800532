"""The command table: every handler module registers its commands here, and each command runs as a `Request`.

`@command(...)` declares a command's name, usage, example, help text, the roles that may run it and its
`/help` group; `@periodic(...)` declares work the clock runs (digests, post reports, alerts, the inbox).
The `Request` a handler receives carries the context, the command, its spec, and the caller's workspace and
role, resolved once by handlers/dispatch.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from handlers.core.access import ALL_ROLES, role_refusal
from handlers.core.chat import Command, Reply
from handlers.core.context import Context
from handlers.core.errors import UserError
from storage.models import Role

Handler = Callable[["Request"], Awaitable[Reply]]


@dataclass
class Request:
    """A command on its way through a handler, with the caller's workspace and role resolved."""

    ctx: Context
    command: Command
    spec: CommandSpec
    workspace_id: int | None
    role: Role

    @property
    def actor_name(self) -> str:
        return self.command.actor.name

    @property
    def words(self) -> list[str]:
        return self.command.text.split()

    @property
    def pressed(self) -> bool:
        """The command came from a button on a post's card (its args name the post)."""
        return "post" in self.command.args

    def arg(self, key: str, default: Any = None) -> Any:
        return self.command.args.get(key, default)

    def need_workspace(self) -> int:
        if self.workspace_id is None:
            raise UserError("This chat isn't set up yet. /setup creates a workspace here.")
        return self.workspace_id

    def require_role(self, allowed: frozenset[Role], doing: str) -> None:
        """Refuse (UserError) unless the caller holds one of `allowed`, for a part of a command open to more roles."""
        if self.role not in allowed:
            raise UserError(role_refusal((r.value for r in allowed), self.role, doing, self.actor_name))


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


Task = Callable[[Context], Awaitable[object]]


@dataclass(frozen=True)
class Periodic:
    """Work the clock runs every `every` (digests, post reports, alerts, inbox): see bot/scheduler.py.

    A periodic task must be safe with several workers running it at once: it claims what it sends
    (handlers.core.notices.send_once, or a conditional UPDATE) so each notice goes out once.
    """

    name: str
    every: timedelta
    task: Task


PERIODIC: dict[str, Periodic] = {}


def periodic(name: str, *, every: timedelta) -> Callable[[Task], Task]:
    """Register `task(ctx)` to run every `every` while Herald runs."""

    def register(task: Task) -> Task:
        PERIODIC[name] = Periodic(name, every, task)
        return task

    return register
