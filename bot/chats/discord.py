"""The Discord front end: Herald's commands as slash commands, its cards as embeds with buttons.

- Every command of `handlers.core.commands.COMMANDS` is a slash command whose options come from what
  the command declares it takes (`@command(takes=...)`): `post` and `account` options autocomplete
  (from what `/posts` and `/accounts` answer, kept a few seconds: front ends never read storage),
  `when`, `text`, `note`, `reason`… are text options, a Herald `role` is a choice, a person is a
  `member`, a Discord `group` (a server role: everyone holding it gets the Herald role) or a `person`
  by name, media an `image` attachment (downloaded and handed in as Command.media). The options are
  joined back into the command's words in their declared order, so the handler gets the same
  `Command` as from any chat. A command of free words (/connect, /policy…) keeps one text option
  `args`, described from its usage and example.
- Replies are embeds: the first line is the title, the rest the description, red for a refusal.
  `Reply.image` is the embed's image (chart.png), `Reply.attachment` (a CSV export) a file on the message.
  A refusal, a private reply (credentials) and the answer to a command that held a secret are
  ephemeral: only the person who asked sees them.
- Buttons are `discord.ui.DynamicItem`s whose custom_id carries the command and its arguments
  ("herald:approve:post=12,revision=3:", the shared codec of bot/chats/buttons.py), registered with
  `add_dynamic_items` at every start, so a button still works after Herald restarts. Pressing one runs the command as the presser; a reply
  with `update` edits the message the button was on and the answer follows it; a refusal (a
  stale button, a missing role) is shown only to the presser and changes nothing.
- A button that needs a note (Request changes, Reject, Schedule…) and `Reply.ask` open a modal
  with one text field; its submission runs the command with `args["text"]`. Submissions are read
  in `on_interaction` from the modal's custom_id, so a modal opened before a restart still works.
- `send(chat, reply)` is Herald's Notifier for Discord: a message in that channel.

Actor: the member's id, display name, username, whether they may administrate the server
(Administrator or Manage Server) and their role ids (`groups`). ChatRef: the channel id and
name, private for DMs, space = the guild id.

`api_url` points discord.py at another Discord (tests: a loopback fake). discord.py builds REST
URLs from the class attribute `discord.http.Route.BASE` and, for a plain `Client`, connects the
gateway at `DiscordWebSocket.DEFAULT_GATEWAY` (it asks GET /gateway/bot only when sharding), then
resumes at READY's `resume_gateway_url`. So with `api_url` we set `Route.BASE` to
f"{api_url}/api/v10", ask that API's GET /gateway/bot for the gateway URL as a sharded client would,
and set `DEFAULT_GATEWAY` to it; both are process-wide and put back by stop().
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import io
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket

from bot.chats.buttons import DISCORD, DISCORD_MODAL
from handlers.core.chat import (
    THEIRS_CLOSE,
    THEIRS_OPEN,
    Actor,
    Button,
    ChatAddress,
    ChatRef,
    Command,
    MediaIn,
    Reply,
    plain,
)
from handlers.core.commands import COMMANDS, CommandSpec, Kind
from handlers.posts.media import MAX_IMAGE_BYTES, MAX_VIDEO_BYTES

log = logging.getLogger("herald.discord")

PLATFORM = "discord"
ERROR_COLOUR = discord.Colour.red()
COLOUR = discord.Colour.blurple()
DEFER_AFTER = 2.0  # Discord wants an answer within 3 s; a slower command is deferred and answered later
OPTIONS_TTL = 5.0  # seconds the post numbers / account names for autocomplete are kept
SUCCESS = {"approve", "submit", "publish", "confirm"}
DANGER = {"reject", "cancel"}


# -- custom ids (bot/chats/buttons.py) ------------------------------------------------------------


def button_id(button: Button) -> str:
    """herald:<command>:<k=v,…>:?<prompt> — the prompt shortened to fit Discord's 100 characters."""
    custom_id = DISCORD.encode(button)
    if custom_id is None:
        raise ValueError(f"the button {button.label!r} carries too much for a custom_id")
    return custom_id


def modal_id(button: Button) -> str:
    custom_id = DISCORD_MODAL.encode(Button(button.label, button.command, button.args))
    if custom_id is None:
        raise ValueError(f"the button {button.label!r} carries too much for a modal's custom_id")
    return custom_id


BUTTON_TEMPLATE = rf"{DISCORD.prefix}(?P<command>[a-z0-9_]+):(?P<args>[^:]*):(?P<prompt>.*)"


class HeraldButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=BUTTON_TEMPLATE):
    """A Herald button that works on any message, also one sent before a restart."""

    def __init__(self, button: Button) -> None:
        style = (discord.ButtonStyle.success if button.command in SUCCESS
                 else discord.ButtonStyle.danger if button.command in DANGER
                 else discord.ButtonStyle.secondary)
        super().__init__(discord.ui.Button(label=button.label[:80], style=style, custom_id=button_id(button)))
        self.button = button

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> HeraldButton:
        label = getattr(item, "label", None) or match["command"]
        decoded = DISCORD.decode(match.string)
        if decoded is None:
            raise ValueError(f"{match.string!r} isn't a Herald button")
        return cls(Button(label, decoded.command, decoded.args, prompt=decoded.prompt))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        front = getattr(interaction.client, "front", None)
        if isinstance(front, DiscordFront):
            await front.press(interaction, self.button)


class HeraldModal(discord.ui.Modal):
    """One line (or paragraph) of text for a button's command; submissions are read in on_interaction."""

    def __init__(self, button: Button, title: str) -> None:
        super().__init__(title=_clip(title or button.label, 45), custom_id=modal_id(button), timeout=900)
        prompt = button.prompt or "Your answer"
        self.add_item(discord.ui.TextInput(
            label=_clip(prompt, 45), custom_id="text", style=discord.TextStyle.paragraph, max_length=4000,
            placeholder=_clip(prompt, 100) if len(prompt) > 45 else None,
        ))


@dataclass(frozen=True)
class SlashOption:
    """One option of a slash command: its name, Discord type (by annotation), choices and autocomplete."""

    name: str
    annotation: Any
    description: str
    required: bool = False
    choices: tuple[str, ...] = ()
    complete: str | None = None  # "post" or "account": what to complete from
    many: bool = False


def slash_options(spec: CommandSpec) -> list[SlashOption]:
    """The options of `spec`'s slash command, from what it declares it takes: named options (a post or an
    account autocompleted, a role as choices, a person as a member, a server role or a name, media as an
    attachment); a command of free words gets one text option `args` described from its usage."""
    if spec.takes is None:
        words = spec.usage.split()[1:]
        if not words:
            return []
        return [SlashOption("args", str, _clip(" ".join(words) + f" — e.g. {spec.example}", 100))]
    options: list[SlashOption] = []
    for param in spec.takes:
        description = _clip(param.description, 100)
        if param.kind == Kind.PERSON:
            options += [
                SlashOption("member", discord.Member, "a member of this server"),
                SlashOption("group", discord.Role, "a server role: everyone holding it gets the Herald role"),
                SlashOption("person", str, "someone by name (instead of member)"),
            ]
        elif param.kind == Kind.MEDIA:
            options.append(SlashOption(param.name, discord.Attachment, description))
        elif param.kind in (Kind.POST, Kind.ACCOUNT):
            options.append(SlashOption(param.name, str, description, param.required, complete=param.kind.value,
                                       many=param.many))
        else:  # text, when, role, choice
            options.append(SlashOption(param.name, str, description, param.required, param.choices))
    return options


class HeraldClient(discord.Client):
    def __init__(self, front: DiscordFront) -> None:
        super().__init__(intents=discord.Intents.default(), guild_ready_timeout=front.guild_ready_timeout)
        self.front = front
        self.tree = app_commands.CommandTree(self)

    async def setup_hook(self) -> None:
        await self.front.setup(self)

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        if interaction.type == discord.InteractionType.modal_submit:
            await self.front.modal_submitted(interaction)


AUDIENCE = "audience:"  # how a target names an audience (handlers/posts/drafts.py)

# the channels whose messages Herald can edit by id (a notice that replaces an earlier one)
EDITABLE = (discord.TextChannel, discord.Thread, discord.DMChannel, discord.VoiceChannel, discord.StageChannel,
            discord.PartialMessageable)


# -- the front end ----------------------------------------------------------------------------------


class DiscordFront:
    platform = PLATFORM

    def __init__(
        self,
        handle: Callable[[Command], Awaitable[Reply]],
        token: str,
        *,
        api_url: str | None = None,
        guild_ids: list[int] | None = None,
        ready_timeout: float = 30.0,
        guild_ready_timeout: float = 2.0,
        max_replaceable: int = 1000,
    ) -> None:
        self.handle = handle
        self.token = token
        self.api_url = api_url.rstrip("/") if api_url else None
        self.guild_ids = list(guild_ids or [])
        self.ready_timeout = ready_timeout
        self.guild_ready_timeout = guild_ready_timeout  # how long discord.py waits for more GUILD_CREATEs
        self.client: HeraldClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._saved: tuple[str, yarl.URL] | None = None
        self._options: dict[tuple[str, str, str], tuple[float, list[tuple[str, str]]]] = {}
        # (channel, Reply.replaces key) → the message Herald sent for it, edited when that notice changes
        self.replaceable: OrderedDict[tuple[int, str], int] = OrderedDict()
        self.max_replaceable = max_replaceable

    # -- life cycle ---------------------------------------------------------------------------

    @property
    def leader_name(self) -> str:
        """Two gateway sessions of one bot both receive every interaction, so one Herald process at a time
        holds the gateway: the name of the lock that decides which (bot/leader.py)."""
        return "discord-" + hashlib.sha256(self.token.encode()).hexdigest()[:16]

    @property
    def receiving(self) -> bool:
        """Whether this process holds the gateway (receives commands and button presses)."""
        return self._task is not None and not self._task.done()

    async def start(self, *, receive: bool = True) -> None:
        """Log in (REST: notices can be sent from now on) and, when `receive`, sync the slash commands and
        connect the gateway; else send only: another process holds the gateway, `start_receiving` takes over."""
        if self.api_url:
            self._saved = (discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
            discord.http.Route.BASE = f"{self.api_url}/api/v10"
        client = self.client = HeraldClient(self)
        try:
            await client.login(self.token)  # GET /users/@me and the application; setup_hook registers the commands
            if self.api_url:
                _shards, url, _limit = await client.http.get_bot_gateway()
                DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
        except BaseException:
            await self.stop()
            raise
        if receive:
            await self._connect()
        else:
            log.info("Discord: sends only from this process; another Herald process holds the gateway")

    async def _connect(self) -> None:
        """Sync the slash commands and connect the gateway; stops everything and raises if it doesn't get ready."""
        client = self.client
        assert client is not None
        try:
            await self.sync_commands(client)
        except BaseException:
            await self.stop()
            raise
        self._task = asyncio.create_task(client.connect(reconnect=True), name="discord-gateway")
        self._task.add_done_callback(_gateway_ended)
        ready = asyncio.create_task(client.wait_until_ready())
        done, _ = await asyncio.wait({ready, self._task}, timeout=self.ready_timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            failure = self._task.exception() if self._task in done else None
            await self.stop()
            raise RuntimeError(f"Discord didn't get ready in {self.ready_timeout:g} s"
                               + (f": {failure}" if failure else "")) from failure
        log.info("Discord: this process holds the gateway")

    async def start_receiving(self) -> None:
        """This process became the one that holds the gateway: connect it. If that fails, it goes on
        sending only (and the error is raised)."""
        if self.client is None or self.receiving:
            return
        try:
            await self._connect()
        except BaseException:
            await self.start(receive=False)
            raise

    async def stop_receiving(self) -> None:
        """Let go of the gateway and only send. discord.py can't close the gateway and keep the REST
        session, so the client is closed and logged in again without connecting."""
        if self.client is None or not self.receiving:
            return
        await self.stop()
        await self.start(receive=False)
        log.info("Discord: this process let go of the gateway; it only sends")

    async def stop(self) -> None:
        client, task = self.client, self._task
        self.client, self._task = None, None
        if client is not None:
            await client.close()
        if task is not None:
            try:
                await asyncio.wait_for(task, 5.0)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
            except Exception:
                log.debug("the Discord gateway task ended with an error", exc_info=True)
        if self._saved is not None:
            discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = self._saved
            self._saved = None

    async def setup(self, client: HeraldClient) -> None:
        """Register the dynamic buttons and the slash commands (synced with Discord by the receiving process)."""
        client.add_dynamic_items(HeraldButton)
        for spec in COMMANDS.values():
            client.tree.add_command(self.slash_command(spec))

    async def sync_commands(self, client: HeraldClient) -> None:
        """Sync the slash commands with Discord: in the listed servers at once, else globally."""
        if self.guild_ids:
            for guild_id in self.guild_ids:
                guild = discord.Object(id=guild_id)
                client.tree.copy_global_to(guild=guild)
                try:
                    await client.tree.sync(guild=guild)
                except discord.HTTPException as exc:  # one server we can't reach mustn't stop the others
                    log.error("couldn't register Herald's commands in Discord server %s (%s); is the bot "
                              "invited there with the applications.commands scope?", guild_id, exc)
        else:
            await client.tree.sync()

    # -- Notifier -----------------------------------------------------------------------------

    async def send(self, chat: ChatAddress, reply: Reply) -> None:
        """Herald speaking on its own: a message with the reply's embed and buttons in that channel."""
        client = self.client
        if client is None:
            log.warning("the Discord front end isn't running; a notice for channel %s was dropped", chat.chat_id)
            return
        channel = client.get_channel(int(chat.chat_id)) or await client.fetch_channel(int(chat.chat_id))
        if not isinstance(channel, discord.abc.Messageable):
            log.warning("Discord channel %s can't take messages", chat.chat_id)
            return
        key = reply.replaces
        if key is None:
            sent = await channel.send(**self.render(reply))
            if reply.pinned:
                await self.pin(channel, sent.id, pinned=True)
            return
        place = (int(chat.chat_id), key)
        known = self.replaceable.get(place)
        if known is not None and reply.pinned is False:
            await self.pin(channel, known, pinned=False)
        if known is not None and await self.replace_message(channel, known, reply):
            self.replaceable.move_to_end(place)
            return
        message = await channel.send(**self.render(reply))
        if reply.pinned:
            await self.pin(channel, message.id, pinned=True)
        self.replaceable[place] = message.id
        self.replaceable.move_to_end(place)
        while len(self.replaceable) > self.max_replaceable:
            self.replaceable.popitem(last=False)

    async def pin(self, channel: discord.abc.Messageable, message_id: int, *, pinned: bool) -> None:
        """Pin (or unpin) a message Herald sent (PUT / DELETE of the channel's message pin). Without the Pin
        Messages permission the notice is there all the same, unpinned, and the log says why."""
        if not isinstance(channel, EDITABLE):
            return
        message = channel.get_partial_message(message_id)
        try:
            await (message.pin() if pinned else message.unpin())
        except discord.HTTPException as exc:
            log.warning("couldn't %s message %s in %s (%s); give Herald the Pin Messages permission",
                        "pin" if pinned else "unpin", message_id, channel.id, exc)

    async def replace_message(self, channel: discord.abc.Messageable, message_id: int, reply: Reply) -> bool:
        """Edit a notice Herald sent (PATCH of the channel message) into the new content of `reply`; False when
        it can't be (it carries a file, the message was deleted): send a new one then."""
        if reply.image is not None or reply.attachment is not None:
            return False
        if not isinstance(channel, EDITABLE):
            return False
        try:
            await channel.get_partial_message(message_id).edit(**self.render(reply, editing=True))
        except discord.HTTPException as exc:
            log.info("couldn't edit notice %s in %s (%s); sending a new one", message_id, channel.id, exc)
            return False
        return True

    # -- slash commands -----------------------------------------------------------------------

    def slash_command(self, spec: CommandSpec) -> app_commands.Command[Any, Any, None]:
        """The slash command for `spec`, its options generated from what the command declares it takes."""
        front = self
        options = slash_options(spec)

        async def callback(interaction: discord.Interaction[Any], **values: Any) -> None:
            await front.run_options(interaction, spec, values)

        callback.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
            inspect.Parameter("interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=discord.Interaction),
            *(inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY,
                                annotation=o.annotation if o.required else o.annotation | None,
                                default=inspect.Parameter.empty if o.required else None) for o in options),
        ])
        described: Any = app_commands.describe(**{o.name: o.description for o in options})(callback)
        choices = {o.name: [app_commands.Choice(name=c, value=c) for c in o.choices] for o in options if o.choices}
        if choices:
            described = app_commands.choices(**choices)(described)
        command: app_commands.Command[Any, Any, None] = app_commands.Command(
            name=spec.name, description=_clip(spec.summary, 100), callback=described
        )
        for option in options:
            if option.complete is not None:
                command.autocomplete(option.name)(self._completer(option))
        return command

    def _completer(
        self, option: SlashOption
    ) -> Callable[[discord.Interaction[Any], str], Coroutine[Any, Any, list[app_commands.Choice[str]]]]:
        async def complete(interaction: discord.Interaction[Any], current: str) -> list[app_commands.Choice[str]]:
            return await self.complete(interaction, option, current)

        return complete

    async def run_options(self, interaction: discord.Interaction[Any], spec: CommandSpec,
                          values: dict[str, Any]) -> None:
        """A slash command's options back into the words the command takes, in its order, and run it."""
        if spec.takes is None:
            await self.run_slash(interaction, spec.name, str(values.get("args") or ""))
            return
        words: list[str] = []
        mentions: list[Actor] = []
        image: discord.Attachment | None = None
        for param in spec.takes:
            if param.kind == Kind.MEDIA:
                image = values.get(param.name)
            elif param.kind == Kind.PERSON:
                member, group = values.get("member"), values.get("group")
                if isinstance(member, discord.Member | discord.User):
                    mentions.append(self.actor_of(member))
                if isinstance(group, discord.Role):
                    mentions.append(Actor(PLATFORM, f"role:{group.id}", f"@{group.name}"))
                if values.get("person"):
                    words.append(str(values["person"]).strip())
            elif values.get(param.name) not in (None, ""):
                words.append(param.written(str(values[param.name])))
        await self.run_slash(interaction, spec.name, " ".join(words), mentions=tuple(mentions), image=image)

    async def run_slash(self, interaction: discord.Interaction[Any], name: str, text: str, *,
                        mentions: tuple[Actor, ...] = (), image: discord.Attachment | None = None) -> None:
        actor, chat = self.actor_of(interaction.user, interaction), self.chat_of(interaction)

        async def run() -> Reply:
            media: tuple[MediaIn, ...] = ()
            if image is not None:
                video = (image.content_type or "").startswith("video/")
                cap = MAX_VIDEO_BYTES if video else MAX_IMAGE_BYTES
                if image.size > cap:
                    return Reply(f"{image.filename} is {image.size // 2**20} MB; "
                                 f"{'videos' if video else 'images'} can be at most {cap // 2**20} MB.", error=True)
                try:
                    data = await image.read()
                except discord.HTTPException as exc:
                    return Reply(f"I couldn't download {image.filename} from Discord ({exc.status}); "
                                 "try sending it again.", error=True)
                media = (MediaIn(image.filename, image.content_type or "application/octet-stream", data),)
            return await self.handle(Command(name, actor, chat, text=text.strip(), mentions=mentions, media=media))

        reply = await self._in_time(interaction, run())
        await self.answer(interaction, reply)

    # -- buttons and modals -------------------------------------------------------------------

    async def press(self, interaction: discord.Interaction[Any], button: Button) -> None:
        if button.prompt is not None:
            await interaction.response.send_modal(HeraldModal(button, button.label))
            return
        command = Command(button.command, self.actor_of(interaction.user, interaction), self.chat_of(interaction),
                          args=dict(button.args))
        reply = await self._in_time(interaction, self.handle(command))
        await self.answer(interaction, reply, on_message=True)

    async def modal_submitted(self, interaction: discord.Interaction[Any]) -> None:
        data: dict[str, Any] = dict(interaction.data or {})
        button = DISCORD_MODAL.decode(str(data.get("custom_id", "")))
        if button is None:
            return
        text = _modal_text(data.get("components") or [])
        command = Command(button.command, self.actor_of(interaction.user, interaction), self.chat_of(interaction),
                          args={**button.args, "text": text.strip()})
        reply = await self._in_time(interaction, self.handle(command))
        await self.answer(interaction, reply, on_message=interaction.message is not None)

    # -- answering ----------------------------------------------------------------------------

    async def _in_time(self, interaction: discord.Interaction[Any], work: Awaitable[Reply]) -> Reply:
        """Run a command; if it takes long, acknowledge the interaction first (Discord waits 3 s)."""
        task = asyncio.ensure_future(work)
        done, _ = await asyncio.wait({task}, timeout=DEFER_AFTER)
        if not done and not interaction.response.is_done():
            if interaction.type == discord.InteractionType.application_command:
                await interaction.response.defer(thinking=True)
            else:
                await interaction.response.defer()  # components and modals: "deferred update"
        return await task

    async def answer(self, interaction: discord.Interaction[Any], reply: Reply, *, on_message: bool = False) -> None:
        """Show a reply: as the response, editing the button's message for `update`, ephemeral when private."""
        hidden = reply.private or reply.error or reply.delete_command
        deferred = interaction.response.is_done()
        can_modal = not deferred and interaction.type != discord.InteractionType.modal_submit
        if reply.ask is not None and can_modal and not reply.error:
            await interaction.response.send_modal(HeraldModal(reply.ask, _first_line(reply.text)))
            return
        if reply.ask is not None:  # a modal can't answer a modal: offer a button that opens one
            ask = reply.ask
            reply = Reply(reply.text, buttons=(*reply.buttons, Button(ask.label, ask.command, dict(ask.args),
                                                                     prompt=ask.prompt or "Your answer")),
                          image=reply.image, private=reply.private, error=reply.error)
        content = self.render(reply)
        if on_message and reply.update is not None and not reply.error:
            card = self.render(reply.update, editing=True)
            if deferred:
                await interaction.edit_original_response(**card)
            else:
                await interaction.response.edit_message(**card)
            await interaction.followup.send(**content, ephemeral=hidden)
            return
        if not deferred:
            await interaction.response.send_message(**content, ephemeral=hidden)
        elif interaction.response.type == discord.InteractionResponseType.deferred_channel_message and not hidden:
            await interaction.edit_original_response(**_as_edit(content))
        else:
            if interaction.response.type == discord.InteractionResponseType.deferred_channel_message:
                # the public "thinking…" can't turn ephemeral, and Discord makes the first followup after a
                # deferral take its visibility: settle it with a neutral line first, then answer privately
                await interaction.edit_original_response(content="Answered privately (only you can see it).",
                                                         embed=None, view=None)
            await interaction.followup.send(**content, ephemeral=hidden)

    def render(self, reply: Reply, *, editing: bool = False) -> dict[str, Any]:
        """channel.send / send_message keyword arguments: an embed, the image as a file, the buttons."""
        text = "\n".join(_as_written(line) for line in reply.text.strip().splitlines()) or "…"
        first, _, rest = text.partition("\n")
        title = ("✋ " if reply.error else "") + first
        if len(title) > 256:
            title, rest = _clip(title, 256), first + ("\n" + rest if rest else "")
        embed = discord.Embed(title=title, description=_clip(rest.strip(), 4096) or None,
                              colour=ERROR_COLOUR if reply.error else COLOUR)
        out: dict[str, Any] = {"embed": embed}
        files = []
        if reply.image is not None:
            embed.set_image(url="attachment://chart.png")
            files.append(discord.File(io.BytesIO(reply.image), filename="chart.png"))
        if reply.attachment is not None:  # a CSV export: a file on the message
            files.append(discord.File(io.BytesIO(reply.attachment.data), filename=reply.attachment.filename))
        if files:
            out["attachments" if editing else "files"] = files
        if reply.buttons:
            view = discord.ui.View(timeout=None)
            for button in reply.buttons[:25]:
                view.add_item(HeraldButton(button))
            out["view"] = view
        elif editing:
            out["view"] = None  # the card's buttons go away when its new content has none
        return out

    # -- who and where ------------------------------------------------------------------------

    def actor_of(self, user: discord.User | discord.Member,
                 interaction: discord.Interaction[Any] | None = None) -> Actor:
        admin = False
        groups: tuple[str, ...] = ()
        if isinstance(user, discord.Member):
            permissions = interaction.permissions if interaction is not None else user.guild_permissions
            admin = permissions.administrator or permissions.manage_guild
            # the role ids as Discord sent them with the member (the guild's role cache may be partial)
            groups = tuple(str(role_id) for role_id in getattr(user, "_roles", ()))
        return Actor(PLATFORM, str(user.id), user.display_name, is_chat_admin=admin,
                     username=user.name.lower(), groups=groups)

    def chat_of(self, interaction: discord.Interaction[Any]) -> ChatRef:
        channel = interaction.channel
        private = interaction.guild_id is None
        title = getattr(channel, "name", None) or ("direct messages" if private else "")
        return ChatRef(PLATFORM, str(interaction.channel_id), title=str(title), private=private,
                       space=str(interaction.guild_id) if interaction.guild_id else "")

    # -- autocomplete -------------------------------------------------------------------------

    async def complete(self, interaction: discord.Interaction[Any], option: SlashOption,
                       current: str) -> list[app_commands.Choice[str]]:
        """Post numbers or account names starting like `current` (its last word, for several accounts)."""
        assert option.complete is not None
        before, _, partial = current.rpartition(" ") if option.many else ("", "", current)
        partial = partial.strip().lstrip("#").lower()
        found = await self.options(interaction, option.complete)
        return [app_commands.Choice(name=_clip(label, 100), value=_clip(f"{before} {value}".strip(), 100))
                for value, label in found
                if value.lower().startswith(partial) or value.lower().removeprefix(AUDIENCE).startswith(partial)][:25]

    async def options(self, interaction: discord.Interaction[Any], kind: str) -> list[tuple[str, str]]:
        """(value, label) of recent posts or of the accounts, read from /posts or /accounts as the asker."""
        key = (kind, str(interaction.channel_id), str(interaction.user.id))
        now = time.monotonic()
        cached = self._options.get(key)
        if cached is not None and now - cached[0] < OPTIONS_TTL:
            return cached[1]
        # accounts come with the workspace's audiences (targets take audience:<name> too)
        commands = ("posts",) if kind == "post" else ("accounts", "audience")
        actor, chat = self.actor_of(interaction.user, interaction), self.chat_of(interaction)
        try:  # Discord waits 3 s for choices and autocomplete can't be deferred
            replies = await asyncio.wait_for(asyncio.gather(
                *(self.handle(Command(command, actor, chat)) for command in commands)), 2.5)
        except TimeoutError:
            return cached[1] if cached is not None else []
        for stale in [k for k, (at, _v) in self._options.items() if now - at > OPTIONS_TTL]:
            del self._options[stale]
        found: list[tuple[str, str]] = []
        for command, reply in zip(commands, replies, strict=True):
            if reply.error:
                continue
            pattern = r"^\s*#(\d+) (.*)$" if kind == "post" else r"^\s+([A-Za-z0-9][\w.\-]*): (.*)$"
            for line in reply.text.splitlines():
                match = re.match(pattern, line)
                if match and kind == "post":
                    found.append((match[1], f"#{match[1]} {match[2]}"))
                elif match and command == "audience":
                    found.append((AUDIENCE + match[1], f"{AUDIENCE}{match[1]} — {match[2]}"))
                elif match:
                    found.append((match[1], f"{match[1]} — {match[2]}"))
        self._options[key] = (now, found)
        return found


# -- helpers ----------------------------------------------------------------------------------------


def _gateway_ended(task: asyncio.Task[None]) -> None:
    """The gateway connection stopped for good (bad token, disallowed intents): say so loudly."""
    if task.cancelled():
        return
    failure = task.exception()
    if failure is not None:
        log.error("the Discord connection ended and won't come back: %s — Herald no longer answers in Discord",
                  failure, exc_info=failure)


_THEIRS = re.compile(f"{THEIRS_OPEN}([^{THEIRS_CLOSE}]*){THEIRS_CLOSE}?")


def _as_written(line: str) -> str:
    """A line of a reply as Discord shows it: a post's own lines ("│ …") and third-party text (a commenter's
    name, a comment) are escaped, so no markdown, no masked link and no mention renders from them."""
    if line.startswith("│ "):
        return "│ " + discord.utils.escape_markdown(plain(line[2:]))
    return plain(_THEIRS.sub(lambda m: discord.utils.escape_markdown(m[1]), line))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0]


def _as_edit(content: dict[str, Any]) -> dict[str, Any]:
    edit = dict(content)
    if "files" in edit:
        edit["attachments"] = edit.pop("files")
    return edit


def _modal_text(components: list[Any]) -> str:
    """The value of the modal's text input (inside action rows, or labels in newer payloads)."""
    for component in components:
        if not isinstance(component, dict):
            continue
        if "value" in component and component.get("type") == 4:
            return str(component["value"])
        inner = component.get("components") or ([component["component"]] if "component" in component else [])
        found = _modal_text(inner)
        if found:
            return found
    return ""
