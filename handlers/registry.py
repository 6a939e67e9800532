"""The command table: each handler module registers its commands here with usage and help text."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from storage.models import Role

if TYPE_CHECKING:
    from handlers.chat import Reply
    from handlers.common import Request
    from handlers.context import Context

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

Task = Callable[["Context"], Awaitable[object]]


@dataclass(frozen=True)
class Periodic:
    """Work the clock runs every `every` (digests, post reports, alerts, inbox): see bot/scheduler.py.

    A periodic task must be safe with several workers running it at once: it claims what it sends
    (handlers.common.send_once, or a conditional UPDATE) so each notice goes out once.
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
