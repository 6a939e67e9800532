"""A post's life: /draft, /edit, /variant, /targets, /preview (`drafts`, `editing`), media, approvals and /policy,
scheduling, threads and first comments (`thread_parts`), recurring posts (`series`), the evergreen queue
(`evergreen`), planning from a CSV file (`imports`, `plan_file`), the post's rules (`rules`), cards, what each
account receives (`render`, `links`, `shortlinks`), and `publishing`
(claims, sending, settling, held after downtime, the clock's entry points, the commands).

May import: `handlers.engagement`, `handlers.workspace`, `handlers.core` and `storage`. Importing the package
registers its commands.
"""

from handlers.posts import (  # noqa: F401
    approvals,
    calendar,
    drafts,
    evergreen,
    imports,
    links,
    media,
    publishing,
    review,
    scheduling,
    series,
    shortlinks,
    thread_parts,
)
