"""The command table: every handler module registers its commands here, and each command runs as a `Request`.

`@command(...)` declares a command's name, usage, example, help text, the roles that may run it, its
`/help` group and what it takes (`takes=(Param.post(), Param.when())`): chat front ends render their
options from that declaration (Discord's named slash-command options), and still hand the handler one
`Command` whose text is the words in that order. `@periodic(...)` declares work the clock runs (digests,
post reports, alerts, the inbox). The `Request` a handler receives carries the context, the command, its
spec, and the caller's workspace and role, resolved once by handlers/dispatch.py; a post command opens its
post with `req.post_command()` (session, post and workspace in one step, a pressed button's revision checked).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from sqlmodel import Session

from handlers.core.access import ALL_ROLES, role_refusal
from handlers.core.chat import Command, Reply
from handlers.core.context import Context
from handlers.core.errors import UserError
from handlers.core.lookups import get_post, get_workspace, parse_post_id
from storage.models import Post, Role, Workspace

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

    def post_and_rest(self) -> tuple[int, str]:
        """For commands shaped `/cmd <post> <more text>`: the post number and the raw rest (a button: its args)."""
        if self.pressed:
            return parse_post_id(self.arg("post"), self.spec.usage), self.rest
        return parse_post_id(self._head_and_rest()[0], self.spec.usage), self.rest

    @property
    def rest(self) -> str:
        """The words after the post number (a pressed button's `text`)."""
        if self.pressed:
            return str(self.arg("text", "")).strip()
        return self._head_and_rest()[1]

    def _head_and_rest(self) -> tuple[str, str]:
        head, _, rest = self.command.text.strip().partition(" ")
        if "\n" in head:
            head, _, more = head.partition("\n")
            rest = more + (" " + rest if rest else "")
        return head, rest.strip()

    @contextmanager
    def post_command(self) -> Iterator[OpenPost]:
        """The session (one transaction), the post this command names and its workspace, in one step.

        Refuses (UserError) outside a workspace, for a post of another workspace, and for a pressed
        button made for an older revision of the post."""
        workspace_id = self.need_workspace()
        post_id, _ = self.post_and_rest()
        with self.ctx.db.session() as session:
            post = get_post(session, workspace_id, post_id)
            check_revision(self, post)
            yield OpenPost(session, post, get_workspace(session, workspace_id))

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


class OpenPost(NamedTuple):
    """What `Request.post_command()` opens: the session, the post and its workspace."""

    session: Session
    post: Post
    workspace: Workspace


def check_revision(req: Request, post: Post) -> None:
    """Refuse a pressed button made for an older revision of the post (the post was edited since)."""
    revision = req.arg("revision")
    if revision is not None and int(revision) != post.revision:
        raise UserError(
            f"That button is for revision {revision} of #{post.id}, but the post was edited since "
            f"(now revision {post.revision}). Nothing changed; look at the latest version."
        )


class Kind(StrEnum):
    """What a command's parameter is: front ends pick the widget (Discord: the option type) from it."""

    POST = "post"  # a post number, completed from /posts
    ACCOUNT = "account"  # an account name (several with `many`), completed from /accounts
    PERSON = "person"  # someone of the chat (Discord: a member, a server role, or a name)
    ROLE = "role"  # a Herald role, one of `choices`
    MEDIA = "media"  # a picture or video handed in as Command.media
    TEXT = "text"  # free words
    WHEN = "when"  # a time phrase (handlers/core/when.py)
    CHOICE = "choice"  # one of `choices`


@dataclass(frozen=True)
class Param:
    """One thing a command takes, in the order its words are written after the command; a `keyword` one is
    written `name=value` (several accounts: `name=a,b`), like /draft's `to=`."""

    name: str
    kind: Kind
    description: str
    required: bool = True
    choices: tuple[str, ...] = ()
    many: bool = False
    keyword: bool = False

    def written(self, value: str) -> str:
        """How a front end writes this parameter's value among the command's words."""
        value = value.strip()
        if not self.keyword:
            return value
        return f"{self.name}={','.join(value.replace(',', ' ').split()) if self.many else value}"

    @classmethod
    def post(cls, *, required: bool = True, description: str = "the post's number (see /posts)") -> Param:
        return cls("post", Kind.POST, description, required)

    @classmethod
    def account(cls, name: str = "account", *, required: bool = True, many: bool = False, keyword: bool = False,
                description: str = "an account's name (see /accounts)") -> Param:
        return cls(name, Kind.ACCOUNT, description, required, many=many, keyword=keyword)

    @classmethod
    def person(cls, *, required: bool = True, description: str = "someone in this chat") -> Param:
        return cls("person", Kind.PERSON, description, required)

    @classmethod
    def role(cls, *, required: bool = True, description: str = "a Herald role") -> Param:
        return cls("role", Kind.ROLE, description, required, choices=tuple(r.value for r in Role))

    @classmethod
    def media(cls, name: str = "image", *, description: str = "a picture or video for the post") -> Param:
        return cls(name, Kind.MEDIA, description, required=False)

    @classmethod
    def text(cls, name: str = "text", *, required: bool = True, keyword: bool = False,
             description: str = "the words") -> Param:
        return cls(name, Kind.TEXT, description, required, keyword=keyword)

    @classmethod
    def when(cls, *, required: bool = True, description: str = "when, e.g. tomorrow 9am") -> Param:
        return cls("when", Kind.WHEN, description, required)

    @classmethod
    def choice(cls, name: str, choices: tuple[str, ...], *, required: bool = True, description: str = "") -> Param:
        return cls(name, Kind.CHOICE, description or " | ".join(choices), required, choices=choices)


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
    takes: tuple[Param, ...] | None = None  # None: free words (front ends offer one text field)

    def takes_kind(self, kind: Kind) -> bool:
        return any(p.kind == kind for p in self.takes or ())


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
    takes: tuple[Param, ...] | None = None,
) -> Callable[[Handler], Handler]:
    """Register a handler for `/name`; `roles` are the Herald roles allowed to run it; `takes` what it takes,
    in the order of its words (leave it out for a command of free words: /connect, /policy…)."""

    def register(handler: Handler) -> Handler:
        COMMANDS[name] = CommandSpec(
            name, usage, summary, details.strip(), roles, handler, example, needs_workspace, group, takes
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
