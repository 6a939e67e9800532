"""Links in posts carry UTM parameters per network and campaign, so the company site's analytics see where
visits come from; `/utm on|off` is the workspace's switch (on by default).

Every http(s) link of the text that goes to an account — and the post's `link=`, which is added to the text
when the text doesn't hold it — gets, after its own query parameters and before its #fragment:

    utm_source=<the account's network>  utm_medium=social  utm_campaign=<the post's campaign, else "herald">
    utm_content=post-<the post's number>-<the account's name>

so each delivery (post × account) has its own tags, even with two accounts on one network; the site's
analytics group visits by utm_content, and Herald reads them back per post (handlers/engagement/traffic.py).
A delivery to an audience (a post's target audience:<name>) also gets utm_term=<the audience's name>, or the
parameter the team chose with /utm audience=<parameter> (none with /utm audience=off).

Left as written: a link that already carries any `utm_` parameter (the team tagged it by hand), a link to a
social network itself (a profile or another post: their analytics aren't the team's — each connector's profile
names its network's sites, a few sites Herald has no connector for are listed here; also the account's own
server, e.g. a self-hosted Mastodon), and anything that isn't http(s). The rest of the link — other
parameters, their encoding, the fragment — is kept exactly, by appending to the raw query string.

The tagging happens where the outgoing text is composed (handlers/posts/render.py), so /preview, the
draft card's limit check and the publish request all see the text as it is sent, each network with its own
`utm_source`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from handlers.core.access import ADMINS
from handlers.core.audit import audit
from handlers.core.chat import Reply
from handlers.core.commands import Request, command
from handlers.core.errors import UserError
from handlers.core.lookups import audience_name, get_workspace
from handlers.core.ports import Networks
from storage.models import Account, Audience, Post

MEDIUM = "social"
AUDIENCE_FIELD = "utm_term"  # the parameter that names a delivery's audience
DEFAULT_CAMPAIGN = "herald"  # utm_campaign of a post without campaign=

# Social sites Herald has no connector for: never tagged (with their subdomains). The networks Herald connects
# to name their own sites in their profiles (`hosts`, and `site_names` under any country domain).
OTHER_SOCIAL_HOSTS = frozenset({"reddit.com", "redd.it", "whatsapp.com", "wa.me"})


@dataclass(frozen=True)
class SocialSites:
    """The hosts (with their subdomains) and names under any country domain (pinterest.fr) never tagged."""

    hosts: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()

    def holds(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        if host.startswith("www."):
            host = host[4:]
        if any(host == known or host.endswith("." + known) for known in self.hosts):
            return True
        return any(label in self.names for label in host.split(".")[:-1])

    def adding(self, hosts: frozenset[str]) -> SocialSites:
        return SocialSites(self.hosts | hosts, self.names)


def social_sites(networks: Networks) -> SocialSites:
    """Every connector's own sites, and the social sites Herald has no connector for."""
    profiles = networks.profiles()
    return SocialSites(OTHER_SOCIAL_HOSTS.union(*(p.hosts for p in profiles)),
                       frozenset().union(*(p.site_names for p in profiles)))

# An http(s) link in a text, as handlers/core/counting.py counts them: up to whitespace, <, > or ", without the
# sentence punctuation that follows it (a closing parenthesis stays when the link opened one).
URL_RE = re.compile(r"https?://[^\s<>\"]+", re.IGNORECASE)
TRAILING = ".,;:!?'\")]}"


def _ends_sentence(char: str) -> bool:
    """ASCII sentence punctuation, or any non-ASCII punctuation or symbol (…, », 。, ）, an emoji): what
    follows a link in a sentence, not part of it (networks' own link detection stops there too)."""
    return char in TRAILING or (not char.isascii() and unicodedata.category(char)[0] in "PS")


def link_end(url: str) -> str:
    """The link without the punctuation that ends the sentence around it."""
    while url and _ends_sentence(url[-1]):
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break  # https://en.wikipedia.org/wiki/Bird_(band): the parenthesis belongs to the link
        url = url[:-1]
    return url


def has_utm(query: str) -> bool:
    return any(part.split("=", 1)[0].lower().startswith("utm_") for part in query.split("&") if part)


def tag_url(url: str, params: dict[str, str], social: SocialSites) -> str:
    """`url` with `params` appended to its query, or unchanged when it must not be tagged (see the module doc)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # e.g. a broken [IPv6] host: not a link anyone can visit, leave it
        return url
    if parts.scheme.lower() not in ("http", "https") or not host:
        return url
    if has_utm(parts.query) or social.holds(host):
        return url
    extra = urlencode(params)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(path=parts.path or "/", query=query))


def tag_links(text: str, params: dict[str, str], social: SocialSites,
              keep: Callable[[str], bool] = lambda _url: False) -> str:
    """Every http(s) link of `text` tagged with `params` (the punctuation after a link stays after it), except
    the links `keep` holds as written."""

    def replace(match: re.Match[str]) -> str:
        raw = match.group(0)
        url = link_end(raw)
        return (url if keep(url) else tag_url(url, params, social)) + raw[len(url):]

    return URL_RE.sub(replace, text)


def untagged(url: str) -> str:
    """`url` without its utm_ parameters: what the team wrote before Herald tagged it."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    kept = [p for p in parts.query.split("&") if p and not p.split("=", 1)[0].lower().startswith("utm_")]
    # tag_url writes an empty path as "/" (https://ex.com?a=1 → https://ex.com/?a=1&utm_…): compare alike
    path = parts.path or ("/" if parts.netloc else "")
    return urlunsplit(parts._replace(path=path, query="&".join(kept)))


def holds_link(text: str, link: str) -> bool:
    """True when `text` already holds `link`, as written or tagged with UTM parameters."""
    if link in text:
        return True
    plain = untagged(link)
    return any(untagged(link_end(m)) == plain for m in URL_RE.findall(text))


def kept(post: Post, url: str) -> bool:
    """True when the team marked this link keep= (it goes out as written): compared without UTM parameters."""
    plain = untagged(url)
    return any(plain == untagged(keep) for keep in post.keep_links)


def utm_params(post: Post, account: Account, audience: Audience | None = None,
               audience_field: str = AUDIENCE_FIELD) -> dict[str, str]:
    params = {"utm_source": account.network, "utm_medium": MEDIUM,
              "utm_campaign": (post.campaign or "").strip() or DEFAULT_CAMPAIGN}
    if post.id is not None:
        params["utm_content"] = f"post-{post.id}-{account.name}"  # one delivery: post × account
    if audience is not None and audience_field:
        # … and audience: the site's analytics group visits by audience
        params[audience_field] = audience_name(audience)
    return params


def own_hosts(account: Account) -> frozenset[str]:
    """The account's own server (a self-hosted Mastodon, a Bluesky PDS): links there are the network's too."""
    if not account.base_url:
        return frozenset()
    try:
        host = urlsplit(account.base_url).hostname
    except ValueError:
        return frozenset()
    return frozenset({host.lower()}) if host else frozenset()


def tagger_for_account(networks: Networks, post: Post, account: Account, audience: Audience | None = None,
                       audience_field: str = AUDIENCE_FIELD) -> Callable[[str], str]:
    """Tags the links of an outgoing text for `account`'s network (and the delivery's audience, in the workspace's
    `audience_field`); the parameters and the sites left as written are worked out once, for the post's text and
    its link card alike."""
    params = utm_params(post, account, audience, audience_field)
    sites = social_sites(networks).adding(own_hosts(account))
    return lambda text: tag_links(text, params, sites, lambda url: kept(post, url))


# the parameters Herald sets itself: naming the audience in one of them would overwrite what it says
OWN_PARAMETERS = ("utm_source", "utm_medium", "utm_campaign", "utm_content")
PARAMETER_RE = re.compile(r"[a-z][a-z0-9_]{0,39}")


def read_audience_field(raw: str) -> str:
    """/utm audience=<parameter>: a query parameter name (utm_term by default), or off ('' = don't name it)."""
    field = raw.strip().lower()
    if field in ("off", "none"):
        return ""
    if field in OWN_PARAMETERS:
        raise UserError(f"{field} already says something else ({', '.join(OWN_PARAMETERS)} are Herald's own tags). "
                        "Pick another parameter, e.g. /utm audience=utm_term (the default) or /utm audience=audience. "
                        "Nothing changed.")
    if not PARAMETER_RE.fullmatch(field):
        raise UserError(f"'{raw.strip()}' isn't a parameter name: use lower-case letters, digits and _ (at most 40), "
                        "starting with a letter, e.g. /utm audience=utm_term, or /utm audience=off. Nothing changed.")
    return field


def audience_words(ws_field: str) -> str:
    return (f"a post sent to an audience also gets {ws_field}=<audience>" if ws_field
            else "the audience isn't named in links (/utm audience=utm_term names it)")


@command(
    "utm",
    usage="/utm [on|off|audience=<parameter>|audience=off]", example="/utm off",
    summary="show or set whether links in posts get UTM parameters (on by default), and which names the audience",
    details=(
        "On: every http(s) link in a post gets utm_source=<network>, utm_medium=social, "
        f"utm_campaign=<the post's campaign, else {DEFAULT_CAMPAIGN}> and utm_content=post-<number>-<account>, "
        "so your site's analytics see which network, post and account each visit came from; a post sent to an "
        f"audience also gets {AUDIENCE_FIELD}=<audience> (/utm audience=<parameter> picks another parameter, "
        "/utm audience=off none). "
        "Links that already have utm_ parameters and links to social networks are left as they are. "
        "/preview shows the links as they will be sent."
    ),
    group="Posts",
)
async def utm(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    wanted = req.command.text.strip().lower()
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        if not wanted:
            if ws.utm:
                return Reply(
                    "UTM tagging is on: links in posts get utm_source=<network>, utm_medium=social, "
                    f"utm_campaign=<campaign, else {DEFAULT_CAMPAIGN}> and utm_content=post-<number>-<account>; "
                    f"{audience_words(ws.utm_audience)}. /preview <post> shows them. /utm off turns it off.")
            return Reply("UTM tagging is off: links go out exactly as written. /utm on turns it on.")
        if wanted.startswith("audience="):
            field = read_audience_field(req.command.text.strip()[len("audience="):])
            req.require_role(ADMINS, "change UTM tagging")
            if ws.utm_audience == field:
                return Reply(f"Already so: {audience_words(field)}.")
            ws.utm_audience = field
            audit(session, ctx, ws_id, None, req.actor_name, "utm", f"audience={field or 'off'}")
            off = "" if ws.utm else " (UTM tagging itself is off: /utm on)"
            return Reply(f"From now on {audience_words(field)}, in posts not yet published{off}.")
        if wanted not in ("on", "off"):
            raise UserError(f"'{req.command.text.strip()}' isn't on, off or audience=<parameter>. "
                            f"Usage: {req.spec.usage}")
        req.require_role(ADMINS, "change UTM tagging")
        on = wanted == "on"
        if ws.utm == on:
            return Reply(f"UTM tagging is already {wanted}.")
        ws.utm = on
        audit(session, ctx, ws_id, None, req.actor_name, "utm", wanted)
    if on:
        return Reply("UTM tagging is on: links in posts not yet published get UTM parameters per network. "
                     "/preview <post> shows them.")
    return Reply("UTM tagging is off: links in posts not yet published go out exactly as written.")
